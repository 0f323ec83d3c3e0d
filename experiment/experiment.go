// Package experiment turns what a user asks for (a method, a dataset,
// hyperparameters and training settings) into a compiled plan: it picks the
// dataset's default model and training preset, lets the method adapt the
// model, and has the method build its graphs.
package experiment

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"bmc/compile"
	"bmc/datasets"
	"bmc/flops"
	"bmc/graph"
	"bmc/graph/nn"
	"bmc/methods"
	"bmc/pretrained"
)

// Request is one experiment to compile.
type Request struct {
	Method string
	Hyper  map[string]string
	// Dataset and DataParams select and configure the data.
	Dataset    string
	DataParams map[string]string
	DataRoot   string
	// SkipBad passes over unreadable files while the dataset is opened
	// (datasets.Options.SkipBad).
	SkipBad bool
	// Encoder overrides the default encoder of every modality ("mlp:64,32"
	// means hidden width 64 and feature width 32; "linear:32"; "resnet18").
	Encoder string
	// Encoders override the encoder of single modalities (modality → spec),
	// after Encoder.
	Encoders map[string]string
	// Pretrained maps modalities to weight files (safetensors or ONNX)
	// loaded onto their encoders; AllowMissing keeps the initial values of
	// tensors a file lacks or has with another shape instead of failing.
	Pretrained   map[string]string
	AllowMissing bool
	// Teachers map modalities to finished unimodal runs whose models a
	// distillation method (UMT) reads as frozen teachers.
	Teachers map[string]string
	// Preset names the training preset (default: PresetDefault).
	Preset string
	// Train overrides preset fields: only the non-zero ones apply.
	Train Overrides
}

// Overrides are training settings a user may change; zero values keep the
// preset. The settings whose valid range includes 0 have a flag that makes
// an explicit 0 count (MomentumSet, WeightDecaySet, Beta1Set, Beta2Set,
// ThreadsSet); for the others 0 is outside the range, and the user layers
// (flags, configuration files) refuse an explicit 0 instead of passing it on.
type Overrides struct {
	Epochs, BatchSize, EvalBatchSize, StepSize, Threads int
	LR, Momentum, WeightDecay, Gamma, Beta1, Beta2, Eps float64
	Seed                                                *uint64
	Nesterov                                            *bool
	Protocol, Optimizer                                 string
	MomentumSet, WeightDecaySet                         bool
	Beta1Set, Beta2Set, ThreadsSet                      bool
}

// merge overlays the set fields of o2 on o.
func (o Overrides) merge(o2 Overrides) Overrides {
	ints := []struct{ dst, v *int }{{&o.Epochs, &o2.Epochs}, {&o.BatchSize, &o2.BatchSize}, {&o.EvalBatchSize, &o2.EvalBatchSize},
		{&o.StepSize, &o2.StepSize}}
	for _, f := range ints {
		if *f.v != 0 {
			*f.dst = *f.v
		}
	}
	floats := []struct{ dst, v *float64 }{{&o.LR, &o2.LR}, {&o.Gamma, &o2.Gamma}, {&o.Eps, &o2.Eps}}
	for _, f := range floats {
		if *f.v != 0 {
			*f.dst = *f.v
		}
	}
	if o2.MomentumSet {
		o.Momentum, o.MomentumSet = o2.Momentum, true
	}
	if o2.WeightDecaySet {
		o.WeightDecay, o.WeightDecaySet = o2.WeightDecay, true
	}
	if o2.Beta1Set || o2.Beta1 != 0 {
		o.Beta1, o.Beta1Set = o2.Beta1, true
	}
	if o2.Beta2Set || o2.Beta2 != 0 {
		o.Beta2, o.Beta2Set = o2.Beta2, true
	}
	if o2.ThreadsSet || o2.Threads != 0 {
		o.Threads, o.ThreadsSet = o2.Threads, true
	}
	if o2.Seed != nil {
		o.Seed = o2.Seed
	}
	if o2.Nesterov != nil {
		o.Nesterov = o2.Nesterov
	}
	if o2.Protocol != "" {
		o.Protocol = o2.Protocol
	}
	if o2.Optimizer != "" {
		o.Optimizer = o2.Optimizer
	}
	return o
}

// Training presets, selectable by name.
const (
	// PresetDefault is the paper's recipe for the benchmark's datasets and a
	// quick SGD recipe for the synthetic ones.
	PresetDefault = "default"
	// PresetPaper is the BalanceBenchmark paper's per-dataset settings (spec rule 2).
	PresetPaper = "paper"
	// PresetReference is the reference code's last configuration (spec §6):
	// AdamW, StepLR every 10 epochs, batch 32, 30 epochs, model selection on
	// the test split.
	PresetReference = "reference"
)

// PresetNames lists the presets.
func PresetNames() []string { return []string{PresetDefault, PresetPaper, PresetReference} }

// Preset is a named training configuration for a dataset.
func Preset(dataset, name string) (compile.TrainConfig, error) {
	sgd := func(lr float64) compile.OptimizerConfig {
		return compile.OptimizerConfig{Name: compile.SGD, LR: lr, Momentum: 0.9, WeightDecay: 1e-4}
	}
	adamw := func(lr, wd float64) compile.OptimizerConfig {
		return compile.OptimizerConfig{Name: compile.AdamW, LR: lr, WeightDecay: wd, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	}
	synthetic := strings.HasPrefix(dataset, "synth-")
	switch name {
	case "", PresetDefault:
		if synthetic {
			// The paper's SGD recipe at a size that trains in seconds.
			return compile.TrainConfig{Epochs: 30, BatchSize: 64, EvalBatchSize: 256, Optimizer: sgd(0.01),
				Scheduler: compile.StepLR{StepSize: 30, Gamma: 0.1}, Protocol: "bmc"}, nil
		}
		return Preset(dataset, PresetPaper)
	case PresetPaper:
		// Paper §5.2: SGD 0.9 / 1e-4, StepLR ×0.1 every 30 epochs, batch 64,
		// 70 epochs; VGGSound AdamW (wd 1e-3), step 10, batch 32, 30 epochs.
		lr := map[string]float64{"cremad": 1e-3, "food101": 1e-3, "ks": 1e-3, "vggsound": 1e-3,
			"balancedav": 5e-3, "ucf101": 1e-2, "mosei": 1e-2}[dataset]
		if lr == 0 {
			lr = 1e-3 // the synthetic datasets take CREMA-D's rate
		}
		if dataset == "vggsound" {
			return compile.TrainConfig{Epochs: 30, BatchSize: 32, EvalBatchSize: 32, Optimizer: adamw(lr, 1e-3),
				Scheduler: compile.StepLR{StepSize: 10, Gamma: 0.1}, Protocol: "bmc"}, nil
		}
		return compile.TrainConfig{Epochs: 70, BatchSize: 64, EvalBatchSize: 64, Optimizer: sgd(lr),
			Scheduler: compile.StepLR{StepSize: 30, Gamma: 0.1}, Protocol: "bmc"}, nil
	case PresetReference:
		return compile.TrainConfig{Epochs: 30, BatchSize: 32, EvalBatchSize: 32, Optimizer: adamw(1e-3, 0.01),
			Scheduler: compile.StepLR{StepSize: 10, Gamma: 0.1}, Protocol: "balancemm"}, nil
	}
	return compile.TrainConfig{}, fmt.Errorf("unknown preset %q (presets: %s)", name, strings.Join(PresetNames(), ", "))
}

func (o Overrides) apply(c compile.TrainConfig) compile.TrainConfig {
	setInt := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	setInt(&c.Epochs, o.Epochs)
	setInt(&c.BatchSize, o.BatchSize)
	setInt(&c.EvalBatchSize, o.EvalBatchSize)
	setInt(&c.Scheduler.StepSize, o.StepSize)
	if o.ThreadsSet {
		c.Threads = o.Threads
	}
	setInt(&c.Threads, o.Threads)
	if o.Optimizer != "" && o.Optimizer != c.Optimizer.Name {
		// Switching optimizer starts from its PyTorch defaults.
		c.Optimizer = compile.OptimizerConfig{Name: o.Optimizer, LR: c.Optimizer.LR, WeightDecay: c.Optimizer.WeightDecay}
		if o.Optimizer == compile.AdamW {
			c.Optimizer.Beta1, c.Optimizer.Beta2, c.Optimizer.Eps = 0.9, 0.999, 1e-8
		}
	}
	for _, f := range []struct {
		dst, v *float64
		set    bool
	}{{&c.Optimizer.LR, &o.LR, false}, {&c.Optimizer.Beta1, &o.Beta1, o.Beta1Set}, {&c.Optimizer.Beta2, &o.Beta2, o.Beta2Set}, {&c.Optimizer.Eps, &o.Eps, false}} {
		if f.set || *f.v != 0 {
			*f.dst = *f.v
		}
	}
	if o.Nesterov != nil {
		c.Optimizer.Nesterov = *o.Nesterov
	}
	if o.Gamma != 0 {
		c.Scheduler.Gamma = o.Gamma
	}
	if o.MomentumSet {
		c.Optimizer.Momentum = o.Momentum
	}
	if o.WeightDecaySet {
		c.Optimizer.WeightDecay = o.WeightDecay
	}
	if o.Seed != nil {
		c.Seed = *o.Seed
	}
	if o.Protocol != "" {
		c.Protocol = o.Protocol
	}
	return c
}

// Open opens the request's dataset.
func (r Request) Open() (datasets.Dataset, error) {
	return datasets.Open(r.Dataset, datasets.Options{Root: r.DataRoot, Params: r.DataParams, SkipBad: r.SkipBad})
}

// Compile builds the plan of a request; it also returns the opened dataset.
// A request that names teacher runs needs CompileWith.
func Compile(r Request) (*compile.Plan, datasets.Dataset, error) { return CompileWith(r, nil) }

// RunReader reads a finished run directory: its plan and the tensors of its
// best checkpoint (runtime.ReadFinishedRun).
type RunReader func(dir string) (*compile.Plan, map[string][]float32, error)

// CompileWith is Compile for requests that read other runs: read opens the
// teacher runs a distillation method reads.
func CompileWith(r Request, read RunReader) (*compile.Plan, datasets.Dataset, error) {
	method, err := methods.Lookup(r.Method)
	if err != nil {
		return nil, nil, err
	}
	hp, err := methods.Resolve(method.Info(), r.Hyper)
	if err != nil {
		return nil, nil, err
	}
	data, err := r.Open()
	if err != nil {
		return nil, nil, err
	}
	spec := data.Spec()
	encs, err := r.encoderSpecs(spec)
	if err != nil {
		return nil, nil, err
	}
	ms := nn.ModelSpec{Classes: int64(spec.Classes), Fusion: nn.FusionConcat}
	for i, m := range spec.Modalities {
		ms.Modalities = append(ms.Modalities, nn.ModalitySpec{Name: m.Name, Shape: graph.Shape(m.Shape), Encoder: encs[i]})
	}
	if ms, err = method.Model(ms, hp); err != nil {
		return nil, nil, err
	}
	model, err := nn.New(ms)
	if err != nil {
		return nil, nil, err
	}
	preset, err := Preset(r.Dataset, r.Preset)
	if err != nil {
		return nil, nil, err
	}
	cfg := r.Train.apply(preset)
	if err := checkModelSize(model, cfg); err != nil {
		return nil, nil, err
	}
	ref := compile.DatasetRef{Name: r.Dataset, Params: r.DataParams, Spec: spec}
	b, err := compile.NewBuilder(model, ref, cfg, r.Method, hp.Values())
	if err != nil {
		return nil, nil, err
	}
	if err := method.Build(b, hp); err != nil {
		return nil, nil, fmt.Errorf("method %s: %w", r.Method, err)
	}
	plan, err := b.Finish()
	if err != nil {
		return nil, nil, err
	}
	if err := r.loadPretrained(plan, model); err != nil {
		return nil, nil, err
	}
	if err := r.loadTeachers(plan, read); err != nil {
		return nil, nil, err
	}
	report, err := flops.PlanReport(plan)
	if err != nil {
		return nil, nil, err
	}
	if plan.Manifest.Flops, err = json.Marshal(report); err != nil {
		return nil, nil, err
	}
	return plan, data, nil
}

// loadPretrained puts the pretrained weights into the plan's initial values
// and records what each file gave.
func (r Request) loadPretrained(plan *compile.Plan, model *nn.Model) error {
	for _, mod := range slices.Sorted(maps.Keys(r.Pretrained)) {
		path := r.Pretrained[mod]
		tensors, skipped, err := pretrained.ReadFile(path)
		if err != nil {
			return fmt.Errorf("pretrained weights for modality %s: %w", mod, err)
		}
		rep, err := pretrained.Apply(plan.Init, model, mod, tensors, skipped)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		rep.File = path
		if err := rep.Check(r.AllowMissing); err != nil {
			return err
		}
		plan.Manifest.Pretrained = append(plan.Manifest.Pretrained, rep)
	}
	return nil
}

// Schedule creates a plan's method schedule.
func Schedule(p *compile.Plan) (methods.Schedule, error) {
	method, err := methods.Lookup(p.Manifest.Method)
	if err != nil {
		return nil, err
	}
	hp, err := methods.Resolve(method.Info(), p.Manifest.Hyper)
	if err != nil {
		return nil, err
	}
	return method.Schedule(&p.Manifest, hp)
}

// OpenPlanData opens the dataset a plan was compiled for (with the same
// parameters, from root, passing over unreadable files with skipBad) and
// checks that it still has the plan's shapes.
func OpenPlanData(p *compile.Plan, root string, skipBad bool) (datasets.Dataset, error) {
	ref := p.Manifest.Dataset
	data, err := datasets.Open(ref.Name, datasets.Options{Root: root, Params: ref.Params, SkipBad: skipBad})
	if err != nil {
		return nil, err
	}
	got := data.Spec()
	if got.Classes != ref.Spec.Classes {
		return nil, fmt.Errorf("dataset %s has %d classes, the plan was compiled for %d", ref.Name, got.Classes, ref.Spec.Classes)
	}
	for _, m := range ref.Spec.Modalities {
		gm, ok := got.Modality(m.Name)
		if !ok || !graph.Shape(gm.Shape).Equal(m.Shape) || gm.Int != m.Int {
			return nil, fmt.Errorf("dataset %s: modality %s has shape %v, the plan was compiled for %v", ref.Name, m.Name, gm.Shape, m.Shape)
		}
	}
	return data, nil
}

// ParseKeyValues reads repeated "k=v" or "k=v,k2=v2" flags into a map. A
// key given twice is an error: which value was meant is not for bmc to guess.
func ParseKeyValues(flag string, items []string) (map[string]string, error) {
	out := map[string]string{}
	for _, item := range items {
		for _, kv := range strings.Split(item, ",") {
			k, v, ok := strings.Cut(kv, "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok || k == "" {
				return nil, fmt.Errorf("--%s %q: want key=value", flag, kv)
			}
			if prev, dup := out[k]; dup {
				return nil, fmt.Errorf("--%s: key %s is given twice (%s=%s and %s=%s); give it once", flag, k, k, prev, k, v)
			}
			out[k] = v
		}
	}
	return out, nil
}

// SortedKeys lists a map's keys in order.
func SortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Supports reports whether a method can train on a dataset with the
// request's encoders (r.Method, r.Dataset, r.Encoder, r.Encoders; the
// rest unused): the method's own model check (modality count, encoder
// kinds) on the catalogue's modalities, without opening the data. The
// error says why not.
func Supports(r Request) error {
	method, err := methods.Lookup(r.Method)
	if err != nil {
		return err
	}
	hp, err := methods.Resolve(method.Info(), r.Hyper)
	if err != nil {
		return err
	}
	entry, err := datasets.Lookup(r.Dataset)
	if err != nil {
		return err
	}
	spec := datasets.Spec{Name: entry.Name, Modalities: entry.Modalities, Classes: entry.Classes}
	encs, err := r.encoderSpecs(spec)
	if err != nil {
		return err
	}
	ms := nn.ModelSpec{Classes: int64(entry.Classes), Fusion: nn.FusionConcat}
	for i, m := range entry.Modalities {
		ms.Modalities = append(ms.Modalities, nn.ModalitySpec{Name: m.Name, Shape: graph.Shape(m.Shape), Encoder: encs[i]})
	}
	_, err = method.Model(ms, hp)
	return err
}
