package experiment

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"go.yaml.in/yaml/v3"

	"bmc/compile"
)

// FileConfig is a run configuration file (`--config run.yaml`). Every field
// is optional; command-line flags override it. An unknown field is an error.
type FileConfig struct {
	Method   string         `yaml:"method,omitempty"`
	Dataset  string         `yaml:"dataset,omitempty"`
	Preset   string         `yaml:"preset,omitempty"`
	Hyper    map[string]any `yaml:"hyper,omitempty"`
	Data     map[string]any `yaml:"data,omitempty"`
	DataRoot string         `yaml:"data_root,omitempty"`
	Encoder  string         `yaml:"encoder,omitempty"`
	// Encoders are per-modality encoders (modality → spec).
	Encoders map[string]string `yaml:"encoders,omitempty"`
	// Pretrained maps modalities to weight files; AllowMissing tolerates
	// tensors those files lack.
	Pretrained   map[string]string `yaml:"pretrained,omitempty"`
	AllowMissing bool              `yaml:"allow_missing,omitempty"`
	Train        TrainFile         `yaml:"train,omitempty"`
}

// TrainFile is the train section of a configuration file; absent fields keep
// the preset's value.
type TrainFile struct {
	Epochs        *int     `yaml:"epochs,omitempty"`
	BatchSize     *int     `yaml:"batch_size,omitempty"`
	EvalBatchSize *int     `yaml:"eval_batch_size,omitempty"`
	Optimizer     string   `yaml:"optimizer,omitempty"`
	LR            *float64 `yaml:"lr,omitempty"`
	Momentum      *float64 `yaml:"momentum,omitempty"`
	Nesterov      *bool    `yaml:"nesterov,omitempty"`
	WeightDecay   *float64 `yaml:"weight_decay,omitempty"`
	Beta1         *float64 `yaml:"beta1,omitempty"`
	Beta2         *float64 `yaml:"beta2,omitempty"`
	Eps           *float64 `yaml:"eps,omitempty"`
	StepSize      *int     `yaml:"step_size,omitempty"`
	Gamma         *float64 `yaml:"gamma,omitempty"`
	Seed          *uint64  `yaml:"seed,omitempty"`
	Protocol      string   `yaml:"protocol,omitempty"`
	Threads       *int     `yaml:"threads,omitempty"`
}

// ReadConfig reads a configuration file into a request.
func ReadConfig(path string) (Request, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Request{}, err
	}
	var fc FileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return Request{}, fmt.Errorf("%s: %w", path, err)
	}
	r := Request{Method: fc.Method, Dataset: fc.Dataset, Preset: fc.Preset, DataRoot: fc.DataRoot, Encoder: fc.Encoder, Encoders: fc.Encoders,
		Pretrained: fc.Pretrained, AllowMissing: fc.AllowMissing}
	if r.Hyper, err = scalars(fc.Hyper); err != nil {
		return Request{}, fmt.Errorf("%s: field hyper: %w", path, err)
	}
	if r.DataParams, err = scalars(fc.Data); err != nil {
		return Request{}, fmt.Errorf("%s: field data: %w", path, err)
	}
	t := fc.Train
	o := &r.Train
	setInt := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	setInt(&o.Epochs, t.Epochs)
	setInt(&o.BatchSize, t.BatchSize)
	setInt(&o.EvalBatchSize, t.EvalBatchSize)
	setInt(&o.StepSize, t.StepSize)
	setInt(&o.Threads, t.Threads)
	o.Optimizer, o.Protocol, o.Seed, o.Nesterov = t.Optimizer, t.Protocol, t.Seed, t.Nesterov
	for _, f := range []struct {
		dst *float64
		set *bool
		v   *float64
	}{{&o.LR, nil, t.LR}, {&o.Momentum, &o.MomentumSet, t.Momentum}, {&o.WeightDecay, &o.WeightDecaySet, t.WeightDecay},
		{&o.Gamma, nil, t.Gamma}, {&o.Beta1, nil, t.Beta1}, {&o.Beta2, nil, t.Beta2}, {&o.Eps, nil, t.Eps}} {
		if f.v != nil {
			*f.dst = *f.v
			if f.set != nil {
				*f.set = true
			}
		}
	}
	return r, nil
}

// scalars turns a YAML map of scalars into key=value strings.
func scalars(m map[string]any) (map[string]string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for k, v := range m {
		switch x := v.(type) {
		case string:
			out[k] = x
		case int:
			out[k] = strconv.Itoa(x)
		case float64:
			out[k] = strconv.FormatFloat(x, 'g', -1, 64)
		case bool:
			out[k] = strconv.FormatBool(x)
		default:
			return nil, fmt.Errorf("%s: want a number, string or bool, got %T", k, v)
		}
	}
	return out, nil
}

// Merge overlays the non-empty fields of flags on a file's request.
func Merge(file, flags Request) Request {
	r := file
	pick := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	pick(&r.Method, flags.Method)
	pick(&r.Dataset, flags.Dataset)
	pick(&r.Preset, flags.Preset)
	pick(&r.DataRoot, flags.DataRoot)
	pick(&r.Encoder, flags.Encoder)
	if flags.Encoder != "" {
		// An all-modality encoder on the command line replaces the file's
		// per-modality ones; the flags' own per-modality ones apply after.
		r.Encoders = nil
	}
	r.Encoders = mergeMaps(r.Encoders, flags.Encoders)
	r.Pretrained = mergeMaps(file.Pretrained, flags.Pretrained)
	r.AllowMissing = file.AllowMissing || flags.AllowMissing
	r.Hyper = mergeMaps(file.Hyper, flags.Hyper)
	r.DataParams = mergeMaps(file.DataParams, flags.DataParams)
	r.Train = file.Train.merge(flags.Train)
	return r
}

func mergeMaps(a, b map[string]string) map[string]string {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// ConfigFile is a run directory's effective configuration, the file
// EffectiveConfig writes.
const ConfigFile = "config.yaml"

// EffectiveConfig is the configuration file that reproduces a plan: the
// method, dataset, resolved hyperparameters and the complete training setup.
func EffectiveConfig(m *compile.Manifest) ([]byte, error) {
	t := m.Train
	o := t.Optimizer
	fc := FileConfig{Method: m.Method, Dataset: m.Dataset.Name, Hyper: map[string]any{}, Data: map[string]any{}}
	for k, v := range m.Hyper {
		fc.Hyper[k] = v
	}
	for k, v := range m.Dataset.Params {
		fc.Data[k] = v
	}
	fc.Encoders = map[string]string{}
	for _, mod := range m.Model.Modalities {
		fc.Encoders[mod.Name] = EncoderString(mod.Encoder)
	}
	fc.Train = TrainFile{Epochs: &t.Epochs, BatchSize: &t.BatchSize, EvalBatchSize: &t.EvalBatchSize, Optimizer: o.Name,
		LR: &o.LR, WeightDecay: &o.WeightDecay, StepSize: &t.Scheduler.StepSize, Gamma: &t.Scheduler.Gamma,
		Seed: &t.Seed, Protocol: t.Protocol, Threads: &t.Threads}
	if o.Name == compile.AdamW {
		fc.Train.Beta1, fc.Train.Beta2, fc.Train.Eps = &o.Beta1, &o.Beta2, &o.Eps
	} else {
		fc.Train.Momentum, fc.Train.Nesterov = &o.Momentum, &o.Nesterov
	}
	var buf bytes.Buffer
	buf.WriteString("# The effective configuration of this run: bmc train --config FILE reproduces it.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(fc); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}
