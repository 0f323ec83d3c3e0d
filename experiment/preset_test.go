package experiment_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/datasets"
	"bmc/experiment"
)

func TestEveryPresetValidatesForEveryDataset(t *testing.T) {
	for _, d := range datasets.Names() {
		for _, name := range experiment.PresetNames() {
			c, err := experiment.Preset(d, name)
			if err != nil {
				t.Fatalf("%s/%s: %v", d, name, err)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("%s/%s: %v", d, name, err)
			}
		}
	}
	if _, err := experiment.Preset("cremad", "fast"); err == nil || !strings.Contains(err.Error(), "default, paper, reference") {
		t.Errorf("an unknown preset: %v", err)
	}
}

// The paper's settings (spec rule 2) and the reference's last config (spec §6).
func TestPresetsFollowThePaperAndTheReference(t *testing.T) {
	sgd := func(lr float64) compile.OptimizerConfig {
		return compile.OptimizerConfig{Name: "sgd", LR: lr, Momentum: 0.9, WeightDecay: 1e-4}
	}
	paper := func(lr float64) compile.TrainConfig {
		return compile.TrainConfig{Epochs: 70, BatchSize: 64, EvalBatchSize: 64, Optimizer: sgd(lr), Scheduler: compile.StepLR{StepSize: 30, Gamma: 0.1}, Protocol: "bmc"}
	}
	adamw := func(lr, wd float64) compile.OptimizerConfig {
		return compile.OptimizerConfig{Name: "adamw", LR: lr, WeightDecay: wd, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	}
	tests := []struct {
		dataset, preset string
		want            compile.TrainConfig
	}{
		{"cremad", "paper", paper(1e-3)},
		{"cremad", "default", paper(1e-3)},
		{"ks", "paper", paper(1e-3)},
		{"food101", "paper", paper(1e-3)},
		{"balancedav", "paper", paper(5e-3)},
		{"ucf101", "paper", paper(1e-2)},
		{"mosei", "paper", paper(1e-2)},
		{"vggsound", "paper", compile.TrainConfig{Epochs: 30, BatchSize: 32, EvalBatchSize: 32, Optimizer: adamw(1e-3, 1e-3), Scheduler: compile.StepLR{StepSize: 10, Gamma: 0.1}, Protocol: "bmc"}},
		{"cremad", "reference", compile.TrainConfig{Epochs: 30, BatchSize: 32, EvalBatchSize: 32, Optimizer: adamw(1e-3, 0.01), Scheduler: compile.StepLR{StepSize: 10, Gamma: 0.1}, Protocol: "balancemm"}},
	}
	for _, tt := range tests {
		got, err := experiment.Preset(tt.dataset, tt.preset)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s/%s = %+v, want %+v", tt.dataset, tt.preset, got, tt.want)
		}
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigFileAndFlags(t *testing.T) {
	path := writeFile(t, `method: ogm
dataset: synth-av
preset: reference
hyper: {alpha: 0.5, method: OGM}
data: {train: 128, signal.visual: 0.7}
encoder: linear:8
train:
  epochs: 4
  optimizer: sgd
  momentum: 0
  lr: 0.05
  seed: 9
`)
	file, err := experiment.ReadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	flags := experiment.Request{Hyper: map[string]string{"alpha": "0.7"}, Train: experiment.Overrides{Epochs: 6}}
	r := experiment.Merge(file, flags)
	p, _, err := experiment.Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	m := p.Manifest
	if m.Method != "ogm" || m.Hyper["alpha"] != "0.7" || m.Hyper["method"] != "OGM" || m.Dataset.Params["signal.visual"] != "0.7" ||
		m.Dataset.Spec.Sizes["train"] != 128 || m.Model.Modalities[0].Encoder.Kind != "linear" {
		t.Errorf("manifest from the file and flags: method %s hyper %v data %v encoder %+v", m.Method, m.Hyper, m.Dataset.Params, m.Model.Modalities[0].Encoder)
	}
	want := compile.OptimizerConfig{Name: "sgd", LR: 0.05, WeightDecay: 0.01}
	if m.Train.Epochs != 6 || m.Train.Optimizer != want || m.Train.Seed != 9 || m.Train.BatchSize != 32 || m.Train.Protocol != "balancemm" {
		t.Errorf("train config %+v, want epochs 6 (flag), optimizer %+v, seed 9, batch 32 and protocol balancemm (reference preset)", m.Train, want)
	}

	// The effective configuration reproduces the plan.
	eff, err := experiment.EffectiveConfig(&m)
	if err != nil {
		t.Fatal(err)
	}
	again, err := experiment.ReadConfig(writeFile(t, string(eff)))
	if err != nil {
		t.Fatal(err)
	}
	q, _, err := experiment.Compile(again)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(q.Manifest.Train, m.Train) || !reflect.DeepEqual(q.Manifest.Hyper, m.Hyper) ||
		!reflect.DeepEqual(q.Manifest.Dataset, m.Dataset) || !reflect.DeepEqual(q.Manifest.Model, m.Model) {
		t.Errorf("the effective configuration does not reproduce the plan:\n%s", eff)
	}
}

func TestConfigFileErrorsNameTheFileAndField(t *testing.T) {
	tests := []struct {
		content string
		want    []string
	}{
		{"method: agm\nlearning_rate: 3\n", []string{"run.yaml", "learning_rate"}},
		{"train:\n  epochs: many\n", []string{"run.yaml", "many"}},
		{"hyper:\n  alpha: [1, 2]\n", []string{"run.yaml", "hyper", "alpha"}},
	}
	for _, tt := range tests {
		_, err := experiment.ReadConfig(writeFile(t, tt.content))
		if err == nil {
			t.Errorf("%q: no error", tt.content)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q lacks %q", tt.content, err, w)
			}
		}
	}
}
