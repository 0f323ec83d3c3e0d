package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"bmc/flops"
)

// PMR, Re-learning and Modality-valuation from the CLI: 2 and 3 modalities,
// every encoder kind (linear, mlp, transformer, ViT, BERT on synthetic
// data; ResNet18 on Kinetics-Sounds' on-disk fixture), all at tiny sizes. Re-learning re-initialises after epoch 1 (reinit_epoch=1);
// Modality-valuation's training depends on its data, so its FLOPs tally
// is checked against the runs made, not the plan (runtime tests count them).
func TestPassMethodsRunFromTheCLI(t *testing.T) {
	synth := []string{"--data", "train=256,val=64,test=64", "--epochs", "2"}
	// The other encoder kinds, tiny; text as token ids; widths differ.
	kinds := []string{"--dataset", "synth-avt", "--epochs", "2", "--batch-size", "8", "--eval-batch-size", "8",
		"--data", "train=48,val=16,test=16,classes=3,shape.audio=6x8,shape.visual=3x32x32,vocab.text=40,shape.text=8",
		"--encoder", "audio=transformer:d_model=16,heads=2,ff=24,layers=1",
		"--encoder", "visual=vit_b_16:width=16,layers=1,heads=2,mlp=24",
		"--encoder", "text=bert:vocab=40,hidden=16,layers=1,heads=2,ff=24,max_len=16,out=12"}
	linear := []string{"--encoder", "audio=linear:12"}
	ks := []string{"--dataset", "ks", "--data-root", filepath.Join("..", "..", "datasets", "testdata", "ks"),
		"--data", "classes=3,audio_shape=8x6,size=16,val_fraction=0.34", "--encoder", "resnet18",
		"--batch-size", "2", "--eval-batch-size", "2"}
	tests := []struct {
		name    string
		dynamic bool
		args    []string
	}{
		{"pmr-av", false, append([]string{"--method", "pmr", "--dataset", "synth-av"}, append(linear, synth...)...)},
		{"pmr-avt", false, append([]string{"--method", "pmr", "--dataset", "synth-avt"}, synth...)},
		{"pmr-transformer-vit-bert", false, append([]string{"--method", "pmr"}, kinds...)},
		{"pmr-ks-resnet18", false, append([]string{"--method", "pmr", "--epochs", "1"}, ks...)},
		{"relearning-av", false, append([]string{"--method", "relearning", "--hp", "reinit_epoch=1", "--dataset", "synth-av"}, append(linear, synth...)...)},
		{"relearning-avt", false, append([]string{"--method", "relearning", "--hp", "reinit_epoch=1", "--dataset", "synth-avt"}, synth...)},
		{"relearning-transformer-vit-bert", false, append([]string{"--method", "relearning", "--hp", "reinit_epoch=1"}, kinds...)},
		{"relearning-ks-resnet18", false, append([]string{"--method", "relearning", "--hp", "reinit_epoch=1", "--epochs", "2"}, ks...)},
		{"sample-av", true, append([]string{"--method", "sample", "--dataset", "synth-av"}, append(linear, synth...)...)},
		{"sample-avt", true, append([]string{"--method", "sample", "--hp", "method=Sample-level", "--dataset", "synth-avt"}, synth...)},
		{"sample-transformer-vit-bert", true, append([]string{"--method", "sample"}, kinds...)},
		{"sample-ks-resnet18", true, append([]string{"--method", "sample", "--hp", "modulation_starts=0", "--epochs", "1"}, ks...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := checkMethodRun(t, tc.dynamic, tc.args...)
			if tc.dynamic && r.Result.TrainingFLOPs < r.Result.PlannedFLOPs {
				t.Errorf("training FLOPs %d: an enlarged epoch cannot cost less than the plan's default epoch (%d)", r.Result.TrainingFLOPs, r.Result.PlannedFLOPs)
			}
		})
	}
}

// A run killed after its Go-side state or its random draws shaped it
// resumes bit for bit: PMR's prototypes, Re-learning after a re-init
// (epoch 2 of the 3 logged), Modality-valuation's enlarged lists.
func TestPassMethodsResumeBitForBit(t *testing.T) {
	tests := []struct {
		name  string
		after int
		args  []string
	}{
		{"pmr", 2, []string{"--method", "pmr", "--dataset", "synth-av", "--epochs", "30"}},
		{"pmr-3", 2, []string{"--method", "pmr", "--dataset", "synth-avt", "--epochs", "30"}},
		{"relearning", 3, []string{"--method", "relearning", "--hp", "reinit_epoch=2", "--dataset", "synth-av", "--epochs", "30"}},
		{"sample", 2, []string{"--method", "sample", "--dataset", "synth-av", "--epochs", "20"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkKillResume(t, tc.after, tc.args...) })
	}
}

// `bmc flops` counts every pass of the three methods in the whole-run
// total, as spec §4.19 gives it: S steps per epoch of 1F + 1BW (the train
// graph), a validation pass per epoch, and PMR's prototype pass over 10%
// of train every epoch, Re-learning's passes over train and val at each
// re-init epoch, Modality-valuation's 2ⁿ−1 masked passes over train from
// epoch modulation_starts.
func TestPassMethodsFlopsCountEveryPass(t *testing.T) {
	// 200 training samples, batch 16: S = 12; 48 validation samples in
	// evaluation batches of 32: 2 runs; 10 epochs.
	const epochs, steps, valRuns = 10, 12, 2
	base := []string{"--data", "train=200,val=48,test=32", "--epochs", "10", "--batch-size", "16", "--eval-batch-size", "32"}
	tests := []struct {
		name, dataset string
		hp            []string
		// extra is the method's runs over the run: graph → count.
		extra map[string]int64
	}{
		// ⌈200/10⌉ = 20 samples: 1 run per epoch.
		{"pmr", "synth-av", nil, map[string]int64{"pmr.features": epochs * 1}},
		{"pmr", "synth-avt", nil, map[string]int64{"pmr.features": epochs * 1}},
		// Re-inits after epochs 3 and 6 (9 would be the third): 7 + 2 runs each.
		{"relearning", "synth-av", []string{"--hp", "reinit_epoch=3"}, map[string]int64{"relearning.features": 2 * (7 + 2)}},
		// Epochs 1..9, (2² − 1) masks × 7 batches of train.
		{"sample", "synth-av", nil, map[string]int64{"eval": 9 * 3 * 7}},
		// Epochs 4..9, (2³ − 1) masks × 7 batches.
		{"sample", "synth-avt", []string{"--hp", "modulation_starts=4"}, map[string]int64{"eval": 6 * 7 * 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name+"-"+tc.dataset, func(t *testing.T) {
			plan := filepath.Join(t.TempDir(), "plan")
			args := append(append([]string{"compile", "--method", tc.name, "--dataset", tc.dataset, "-o", plan}, base...), tc.hp...)
			if out, err := bmc(t, args...); err != nil {
				t.Fatalf("bmc %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			out, err := bmc(t, "flops", plan, "--json")
			if err != nil {
				t.Fatal(err)
			}
			var rep flops.Report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			one := map[string]int64{}
			for _, g := range rep.Graphs {
				one[g.Name] = g.Counts.Total
			}
			want := epochs * (steps*one["train"] + valRuns*one["eval"])
			var extras int64
			for g, n := range tc.extra {
				if one[g] == 0 {
					t.Fatalf("the plan has no graph %s (graphs %v)", g, one)
				}
				extras += n * one[g]
			}
			if rep.Training.Total != want+extras || rep.MethodExtra.Total != extras {
				t.Errorf("whole training %d (method extras %d), the hand count gives %d (extras %d)", rep.Training.Total, rep.MethodExtra.Total, want+extras, extras)
			}
			if text, _ := bmc(t, "flops", plan); !strings.Contains(text, "method: ") {
				t.Errorf("bmc flops lists no method extra:\n%s", text)
			}
		})
	}
}
