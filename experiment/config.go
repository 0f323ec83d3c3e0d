package experiment

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

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
	// Teachers map modalities to the unimodal runs a distillation method
	// reads.
	Teachers map[string]string `yaml:"teachers,omitempty"`
	Train    TrainFile         `yaml:"train,omitempty"`
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

// ReadConfig reads a configuration file into a request. Errors name the
// file, the line and the key as the file spells it ("run.yaml:4:
// train.epochs"); an unknown key lists the valid ones; a training setting
// outside its range is an error, as on the command line.
func ReadConfig(path string) (Request, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Request{}, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if n, tail, ok := strings.Cut(rest, ": "); ok {
				return Request{}, fmt.Errorf("%s:%s: %s", path, n, tail)
			}
		}
		return Request{}, fmt.Errorf("%s: %s", path, msg)
	}
	var fc FileConfig
	if len(doc.Content) > 0 {
		if err := decodeSection(path, "", doc.Content[0], reflect.ValueOf(&fc).Elem()); err != nil {
			return Request{}, err
		}
	}
	r := Request{Method: fc.Method, Dataset: fc.Dataset, Preset: fc.Preset, DataRoot: fc.DataRoot, Encoder: fc.Encoder, Encoders: fc.Encoders,
		Pretrained: fc.Pretrained, AllowMissing: fc.AllowMissing, Teachers: fc.Teachers}
	if r.Hyper, err = scalars(fc.Hyper); err != nil {
		return Request{}, fmt.Errorf("%s: key hyper: %w", path, err)
	}
	if r.DataParams, err = scalars(fc.Data); err != nil {
		return Request{}, fmt.Errorf("%s: key data: %w", path, err)
	}
	t := fc.Train
	o := &r.Train
	setInt := func(dst *int, set *bool, v *int) {
		if v != nil {
			*dst = *v
			if set != nil {
				*set = true
			}
		}
	}
	setInt(&o.Epochs, nil, t.Epochs)
	setInt(&o.BatchSize, nil, t.BatchSize)
	setInt(&o.EvalBatchSize, nil, t.EvalBatchSize)
	setInt(&o.StepSize, nil, t.StepSize)
	setInt(&o.Threads, &o.ThreadsSet, t.Threads)
	o.Optimizer, o.Protocol, o.Seed, o.Nesterov = t.Optimizer, t.Protocol, t.Seed, t.Nesterov
	for _, f := range []struct {
		dst *float64
		set *bool
		v   *float64
	}{{&o.LR, nil, t.LR}, {&o.Momentum, &o.MomentumSet, t.Momentum}, {&o.WeightDecay, &o.WeightDecaySet, t.WeightDecay},
		{&o.Gamma, nil, t.Gamma}, {&o.Beta1, &o.Beta1Set, t.Beta1}, {&o.Beta2, &o.Beta2Set, t.Beta2}, {&o.Eps, nil, t.Eps}} {
		if f.v != nil {
			*f.dst = *f.v
			if f.set != nil {
				*f.set = true
			}
		}
	}
	return r, nil
}

// decodeSection decodes a YAML mapping into the struct dst key by key,
// naming the file, line and key (prefix is the section's path, "train.")
// in every error.
func decodeSection(path, prefix string, node *yaml.Node, dst reflect.Value) error {
	fields := yamlFields(dst.Type())
	section := strings.TrimSuffix(prefix, ".")
	if section == "" {
		section = "the file"
	}
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: %s must be a mapping of keys (valid: %s)", path, node.Line, section, strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		at := fmt.Sprintf("%s:%d: %s%s", path, k.Line, prefix, k.Value)
		if line, dup := seen[k.Value]; dup {
			return fmt.Errorf("%s: the key is given twice (first on line %d)", at, line)
		}
		seen[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			return fmt.Errorf("%s: unknown key%s (valid %s: %s)", at, suggestKey(prefix, k.Value, fields),
				map[bool]string{true: "keys", false: "keys under " + section}[prefix == ""], strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
		}
		f := dst.Field(idx)
		if f.Kind() == reflect.Struct {
			if err := decodeSection(path, prefix+k.Value+".", v, f); err != nil {
				return err
			}
			continue
		}
		if err := decodeValue(at, v, f); err != nil {
			return err
		}
		if s, ok := lookupSetting(k.Value); ok && prefix == "train." {
			if err := s.check(at, reflect.Indirect(f).Convert(reflect.TypeFor[float64]()).Float()); err != nil {
				return err
			}
		}
	}
	return nil
}

// yamlFields maps a struct's YAML keys to field indices.
func yamlFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			out[name] = i
		}
	}
	return out
}

// decodeValue decodes one value into dst after checking that the YAML node
// has the kind dst needs, so an error says what was wanted in plain words
// (the YAML library would truncate 1.5 into the integer 1).
func decodeValue(at string, v *yaml.Node, dst reflect.Value) error {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return fmt.Errorf("%s: no value (leave the key out to keep the default)", at)
	}
	t := dst.Type()
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var want string
	switch t.Kind() {
	case reflect.Int:
		if v.Kind != yaml.ScalarNode || v.Tag != "!!int" {
			want = "an integer"
		}
	case reflect.Uint64:
		if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || strings.HasPrefix(v.Value, "-") {
			want = "a non-negative integer"
		}
	case reflect.Float64:
		if v.Kind != yaml.ScalarNode || (v.Tag != "!!int" && v.Tag != "!!float") {
			want = "a number"
		}
	case reflect.Bool:
		if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
			want = "true or false"
		}
	case reflect.String:
		if v.Kind != yaml.ScalarNode {
			want = "a single value"
		}
	case reflect.Map:
		if v.Kind != yaml.MappingNode {
			want = "a mapping of keys to values"
			break
		}
		for i := 1; i < len(v.Content); i += 2 {
			if v.Content[i].Kind != yaml.ScalarNode {
				k := v.Content[i-1]
				return fmt.Errorf("%s.%s (line %d): want a number, string or bool", at, k.Value, k.Line)
			}
		}
	}
	if want != "" {
		return fmt.Errorf("%s: want %s, got %s", at, want, describeNode(v))
	}
	if err := v.Decode(dst.Addr().Interface()); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			// "line 3: cannot unmarshal …": the line is in at already.
			_, msg, _ := strings.Cut(te.Errors[0], ": ")
			return fmt.Errorf("%s: %s", at, msg)
		}
		return fmt.Errorf("%s: %w", at, err)
	}
	return nil
}

// describeNode names a YAML value for an error.
func describeNode(v *yaml.Node) string {
	switch v.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(v.Value)
}

// suggestKey proposes the key a mistyped one probably meant: the same with
// underscores for dashes, a common other name, or a training setting put
// at the top level.
func suggestKey(prefix, key string, fields map[string]int) string {
	aliases := map[string]string{"learning_rate": "lr", "batch": "batch_size", "bs": "batch_size", "epoch": "epochs",
		"wd": "weight_decay", "optim": "optimizer", "lr_step": "step_size", "hp": "hyper", "hyperparameters": "hyper",
		"params": "data", "data_params": "data", "root": "data_root", "workers": "", "model": "encoder"}
	norm := strings.ToLower(strings.ReplaceAll(key, "-", "_"))
	if a, ok := aliases[norm]; ok && a != "" {
		norm = a
	}
	if _, ok := fields[norm]; ok && norm != key {
		return fmt.Sprintf("; did you mean %s%s?", prefix, norm)
	}
	if prefix == "" {
		if _, ok := yamlFields(reflect.TypeFor[TrainFile]())[norm]; ok {
			return fmt.Sprintf("; %s is a training setting: put it under train: as train.%s", key, norm)
		}
	}
	return ""
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
	r.Teachers = mergeMaps(file.Teachers, flags.Teachers)
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
	for _, t := range m.Teachers {
		if fc.Teachers == nil {
			fc.Teachers = map[string]string{}
		}
		fc.Teachers[t.Modality] = t.Run
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
