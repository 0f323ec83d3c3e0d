package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/flops"
)

// The methods of the shared head, MLA and ReconBoost, from the CLI.

// sharedTiny is synth data small enough for a CLI run of a second or two.
const sharedTiny = "train=128,val=32,test=32"

// sharedBackbones are tiny transformer, ViT and BERT encoders of feature
// widths 16, 16 and 12 on synth-avt, so the shared head pads the text.
var sharedBackbones = []string{
	"--data", "train=48,val=16,test=16,classes=3,shape.audio=6x8,shape.visual=3x32x32,vocab.text=40,shape.text=8",
	"--encoder", "audio=transformer:d_model=16,heads=2,ff=24,layers=1",
	"--encoder", "visual=vit_b_16:width=16,layers=1,heads=2,mlp=24",
	"--encoder", "text=bert:vocab=40,hidden=16,layers=1,heads=2,ff=24,max_len=16,out=12",
	"--batch-size", "8", "--eval-batch-size", "8",
}

// sharedResNet is the CREMA-D fixture (audio and video on disk) with
// ResNet18 encoders at its 8 × 8 frames.
var sharedResNet = []string{
	"--dataset", "cremad", "--data-root", filepath.Join("..", "..", "datasets", "testdata", "cremad"),
	"--data", "size=8,val_fraction=0.34", "--encoder", "resnet18", "--batch-size", "3", "--eval-batch-size", "3",
}

func TestSharedHeadMethodsRunFromTheCLI(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		// The default synth-av (2000 training samples) learns in 2 epochs.
		{"mla-av", []string{"--method", "mla", "--dataset", "synth-av", "--epochs", "2"}},
		{"mla-avt-adamw-compat", []string{"--method", "mla", "--hp", "compat=true", "--dataset", "synth-avt", "--data", sharedTiny, "--epochs", "2", "--batch-size", "32", "--optimizer", "adamw"}},
		{"mla-window", []string{"--method", "mla", "--hp", "modulation_starts=1", "--dataset", "synth-av", "--data", sharedTiny, "--epochs", "2", "--batch-size", "32"}},
		{"mla-backbones", append([]string{"--method", "mla", "--dataset", "synth-avt", "--epochs", "1"}, sharedBackbones...)},
		{"mla-resnet18-cremad", append([]string{"--method", "mla", "--epochs", "1"}, sharedResNet...)},
		{"reconboost-av", []string{"--method", "reconboost", "--dataset", "synth-av", "--epochs", "2"}},
		{"reconboost-avt-adamw", []string{"--method", "reconboost", "--hp", "T_epochs=2", "--dataset", "synth-avt", "--data", sharedTiny, "--epochs", "2", "--batch-size", "32", "--optimizer", "adamw"}},
		{"reconboost-window-compat", []string{"--method", "reconboost", "--hp", "modulation_ends=0,compat=true", "--dataset", "synth-av", "--data", sharedTiny, "--epochs", "2", "--batch-size", "32"}},
		{"reconboost-backbones", append([]string{"--method", "reconboost", "--dataset", "synth-avt", "--epochs", "1"}, sharedBackbones...)},
		{"reconboost-resnet18-cremad", append([]string{"--method", "reconboost", "--epochs", "1"}, sharedResNet...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := checkMethodRun(t, false, tc.args...)
			if r.Result.Test.Samples == 0 {
				t.Error("no test samples evaluated")
			}
			// Masking works (the reference's ReconBoost masks nothing): with
			// every input zero-filled a model that learnt is far worse.
			if strings.HasSuffix(tc.name, "-av") && r.Result.Imbalance.Coalitions[""] > r.Result.Test.Acc-0.2 {
				t.Errorf("v(∅) = %v, the full model %v: the modalities were not masked", r.Result.Imbalance.Coalitions[""], r.Result.Test.Acc)
			}
		})
	}
}

// A killed run resumes bit for bit: MLA's projection, its step count and
// AdamW's per-parameter counts live in the checkpoint; ReconBoost's passes
// follow from the epoch.
func TestSharedHeadMethodsResume(t *testing.T) {
	for _, method := range []string{"mla", "reconboost"} {
		t.Run(method, func(t *testing.T) {
			checkKillResume(t, 3, "--method", method, "--dataset", "synth-av", "--data", "train=256,val=32,test=32",
				"--encoder", "visual=mlp:32,16,dropout=0.2", "--optimizer", "adamw", "--batch-size", "32", "--epochs", "40", "--seed", "3")
		})
	}
}

// bmc flops counts MLA's n steps per batch and ReconBoost's passes: the
// whole run's total equals the hand count of spec §4.19 from each graph's
// cost of one run.
func TestSharedHeadMethodsFLOPs(t *testing.T) {
	const train, val, test, batchSize, epochs = 128, 32, 32, 32, 3
	steps, valBatches, testBatches := int64(train/batchSize), int64(val/batchSize), int64(test/batchSize)
	tests := []struct {
		name string
		args []string
		n    int64
		// training is the whole run's cost from the graphs' costs c.
		training func(c map[string]int64) int64
	}{
		{"mla-av", []string{"--method", "mla", "--dataset", "synth-av"}, 2, func(c map[string]int64) int64 {
			// Every epoch: n steps (one per modality) per batch, a validation pass.
			return epochs * (steps*(c["train.audio"]+c["train.visual"]) + valBatches*c["eval"])
		}},
		{"mla-avt-window", []string{"--method", "mla", "--hp", "modulation_ends=0", "--dataset", "synth-avt"}, 3, func(c map[string]int64) int64 {
			// Epoch 0 inside the window, epochs 1 and 2 joint steps.
			return steps*(c["train.audio"]+c["train.visual"]+c["train.text"]) + 2*steps*c["train"] + epochs*valBatches*c["eval"]
		}},
		{"reconboost-avt", []string{"--method", "reconboost", "--hp", "T_epochs=2", "--dataset", "synth-avt"}, 3, func(c map[string]int64) int64 {
			// Every epoch, per modality: T boosting passes and T rectification passes.
			const T = 2
			return epochs * (T*steps*(c["boost.audio"]+c["boost.visual"]+c["boost.text"]) + 3*T*steps*c["rectify"] + valBatches*c["eval"])
		}},
		{"reconboost-av-window", []string{"--method", "reconboost", "--hp", "modulation_ends=0", "--dataset", "synth-av"}, 2, func(c map[string]int64) int64 {
			// Epoch 0: both modalities' boosting and rectification passes; epochs 1, 2: one rectification pass.
			return steps*(c["boost.audio"]+c["boost.visual"]) + (2+2)*steps*c["rectify"] + epochs*valBatches*c["eval"]
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := filepath.Join(t.TempDir(), "plan")
			args := append([]string{"compile", "-o", plan, "--data", "train=128,val=32,test=32", "--epochs", "3", "--batch-size", "32", "--eval-batch-size", "32"}, tc.args...)
			if out, err := bmc(t, args...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			out, err := bmc(t, "flops", plan, "--json")
			if err != nil {
				t.Fatal(err)
			}
			var rep flops.Report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			cost := map[string]int64{}
			for _, g := range rep.Graphs {
				cost[g.Name] = g.Counts.Total
			}
			if want := tc.training(cost); rep.Training.Total != want || want == 0 {
				t.Errorf("whole training %d FLOPs, the hand count %d (graphs %v)", rep.Training.Total, want, cost)
			}
			if want := int64(1<<tc.n) * testBatches * cost[compile.EvalGraph]; rep.Final.Total != want {
				t.Errorf("final evaluation %d FLOPs, want 2ⁿ test passes: %d", rep.Final.Total, want)
			}
		})
	}
}
