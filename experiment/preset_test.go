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

func TestConfigFileErrorsNameTheFileLineAndKey(t *testing.T) {
	tests := []struct {
		content string
		want    []string
	}{
		{"method: agm\nlearning_rate: 3\n", []string{"run.yaml:2: learning_rate: unknown key", "under train: as train.lr", "valid keys: allow_missing, data,"}},
		{"train:\n  learning_rate: 3\n", []string{"run.yaml:2: train.learning_rate: unknown key; did you mean train.lr?", "valid keys under train: batch_size, beta1"}},
		{"train:\n  batch-size: 3\n", []string{"run.yaml:2: train.batch-size", "did you mean train.batch_size?"}},
		{"train:\n  epochs: many\n", []string{"run.yaml:2: train.epochs: want an integer, got \"many\""}},
		{"train:\n  epochs: 1.5\n", []string{"run.yaml:2: train.epochs: want an integer, got \"1.5\""}},
		{"train:\n  epochs: 0\n", []string{"run.yaml:2: train.epochs 0: want an integer from 1 to"}},
		{"train:\n  epochs:\n", []string{"run.yaml:2: train.epochs: no value"}},
		{"train:\n  batch_size: -4\n", []string{"train.batch_size -4: want an integer from 1"}},
		{"train:\n  step_size: 0\n", []string{"train.step_size 0: want an integer from 1", "gamma 1"}},
		{"train:\n  threads: 100000\n", []string{"train.threads 100000: want an integer from 0 to", "per CPU"}},
		{"train:\n  lr: .inf\n", []string{"train.lr +Inf: want a number in (0, ∞)"}},
		{"train:\n  lr: 0\n", []string{"train.lr 0: want a number in (0, ∞)"}},
		{"train:\n  momentum: 1\n", []string{"train.momentum 1: want a number in [0, 1)"}},
		{"train:\n  seed: -1\n", []string{"run.yaml:2: train.seed: want a non-negative integer"}},
		{"train: 3\n", []string{"run.yaml:1: train must be a mapping of keys", "epochs"}},
		{"hyper:\n  alpha: [1, 2]\n", []string{"run.yaml:1: hyper.alpha (line 2): want a number, string or bool"}},
		{"hyper: {alpha: 1, alpha: 2}\n", []string{"run.yaml:1: hyper: mapping key \"alpha\" already defined"}},
		{"method: agm\nmethod: ogm\n", []string{"run.yaml:2: method: the key is given twice (first on line 1)"}},
		{"method: [agm]\n", []string{"run.yaml:1: method: want a single value, got a list"}},
		{"allow_missing: maybe\n", []string{"run.yaml:1: allow_missing: want true or false"}},
		{"method: agm\n  dataset: x\n", []string{"run.yaml:2: mapping values are not allowed"}},
		{"- agm\n", []string{"run.yaml:1: the file must be a mapping of keys"}},
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

// An explicit 0 in the file counts where 0 is in a setting's range, and an
// empty file is an empty request.
func TestConfigFileZeroWhereZeroIsValid(t *testing.T) {
	r, err := experiment.ReadConfig(writeFile(t, "method: agm\ndataset: synth-av\ntrain:\n  optimizer: adamw\n  beta1: 0\n  threads: 0\n  weight_decay: 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	file := experiment.Request{Train: experiment.Overrides{Threads: 3, Beta1: 0.5}}
	m := experiment.Merge(file, r)
	p, _, err := experiment.Compile(m)
	if err != nil {
		t.Fatal(err)
	}
	if o := p.Manifest.Train.Optimizer; o.Beta1 != 0 || o.WeightDecay != 0 || p.Manifest.Train.Threads != 0 {
		t.Errorf("explicit zeros lost: %+v threads %d", o, p.Manifest.Train.Threads)
	}
	if r, err := experiment.ReadConfig(writeFile(t, "")); err != nil || r.Method != "" {
		t.Errorf("an empty file: %+v, %v", r, err)
	}
}
