// Package experiment turns what a user asks for (a method, a dataset,
// hyperparameters and training settings) into a compiled plan: it picks the
// dataset's default model and training preset, lets the method adapt the
// model, and has the method build its graphs.
package experiment

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"bmc/compile"
	"bmc/datasets"
	"bmc/flops"
	"bmc/graph"
	"bmc/graph/nn"
	"bmc/methods"
)

// Request is one experiment to compile.
type Request struct {
	Method string
	Hyper  map[string]string
	// Dataset and DataParams select and configure the data.
	Dataset    string
	DataParams map[string]string
	DataRoot   string
	// Encoder overrides the default encoder of every modality ("mlp:64,32"
	// means hidden width 64 and feature width 32; "linear:32").
	Encoder string
	// Train overrides preset fields: only the non-zero ones apply.
	Train Overrides
}

// Overrides are training settings a user may change; zero values keep the preset.
type Overrides struct {
	Epochs, BatchSize, EvalBatchSize, StepSize, Threads int
	LR, Momentum, WeightDecay, Gamma                    float64
	Seed                                                *uint64
	Protocol                                            string
	MomentumSet, WeightDecaySet                         bool
}

// Preset is the training configuration bmc uses for a dataset unless told otherwise.
func Preset(dataset string) compile.TrainConfig {
	// The synthetic datasets follow the paper's SGD recipe (spec rule 2) at
	// a size that trains in seconds.
	return compile.TrainConfig{
		Epochs: 30, BatchSize: 64, EvalBatchSize: 256,
		Optimizer: compile.OptimizerConfig{Name: "sgd", LR: 0.01, Momentum: 0.9, WeightDecay: 1e-4},
		Scheduler: compile.StepLR{StepSize: 30, Gamma: 0.1},
		Seed:      0, Protocol: "bmc",
	}
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
	setInt(&c.Threads, o.Threads)
	if o.LR != 0 {
		c.Optimizer.LR = o.LR
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

// DefaultEncoder is the encoder the built-in datasets use: a one-hidden-layer MLP.
const DefaultEncoder = "mlp:64,32"

// ParseEncoder reads "linear:OUT" or "mlp:H1,…,OUT".
func ParseEncoder(s string) (nn.EncoderSpec, error) {
	kind, widths, ok := strings.Cut(s, ":")
	if !ok {
		return nn.EncoderSpec{}, fmt.Errorf("encoder %q: want linear:OUT or mlp:HIDDEN,…,OUT", s)
	}
	var ws []int64
	for _, w := range strings.Split(widths, ",") {
		v, err := strconv.ParseInt(strings.TrimSpace(w), 10, 64)
		if err != nil || v < 1 {
			return nn.EncoderSpec{}, fmt.Errorf("encoder %q: width %q is not a positive integer", s, w)
		}
		ws = append(ws, v)
	}
	spec := nn.EncoderSpec{Kind: kind, Out: ws[len(ws)-1], Hidden: ws[:len(ws)-1]}
	switch kind {
	case "linear":
		if len(ws) != 1 {
			return spec, fmt.Errorf("encoder %q: a linear encoder has one width", s)
		}
		spec.Hidden = nil
	case "mlp":
		if len(ws) < 2 {
			return spec, fmt.Errorf("encoder %q: an mlp needs at least one hidden width and the output width", s)
		}
	default:
		return spec, fmt.Errorf("encoder %q: kind %q is unknown (linear, mlp)", s, kind)
	}
	return spec, nil
}

// Open opens the request's dataset.
func (r Request) Open() (datasets.Dataset, error) {
	return datasets.Open(r.Dataset, datasets.Options{Root: r.DataRoot, Params: r.DataParams})
}

// Compile builds the plan of a request; it also returns the opened dataset.
func Compile(r Request) (*compile.Plan, datasets.Dataset, error) {
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
	encText := r.Encoder
	if encText == "" {
		encText = DefaultEncoder
	}
	enc, err := ParseEncoder(encText)
	if err != nil {
		return nil, nil, err
	}
	ms := nn.ModelSpec{Classes: int64(spec.Classes), Fusion: nn.FusionConcat}
	for _, m := range spec.Modalities {
		if m.Int {
			return nil, nil, fmt.Errorf("dataset %s: modality %s holds token ids, which the %s encoder cannot take", spec.Name, m.Name, enc.Kind)
		}
		ms.Modalities = append(ms.Modalities, nn.ModalitySpec{Name: m.Name, Shape: graph.Shape(m.Shape), Encoder: enc})
	}
	if ms, err = method.Model(ms, hp); err != nil {
		return nil, nil, err
	}
	model, err := nn.New(ms)
	if err != nil {
		return nil, nil, err
	}
	cfg := r.Train.apply(Preset(r.Dataset))
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
	report, err := flops.PlanReport(plan)
	if err != nil {
		return nil, nil, err
	}
	if plan.Manifest.Flops, err = json.Marshal(report); err != nil {
		return nil, nil, err
	}
	return plan, data, nil
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
// parameters) and checks that it still has the plan's shapes.
func OpenPlanData(p *compile.Plan, root string) (datasets.Dataset, error) {
	ref := p.Manifest.Dataset
	data, err := datasets.Open(ref.Name, datasets.Options{Root: root, Params: ref.Params})
	if err != nil {
		return nil, err
	}
	got := data.Spec()
	if got.Classes != ref.Spec.Classes {
		return nil, fmt.Errorf("dataset %s has %d classes, the plan was compiled for %d", ref.Name, got.Classes, ref.Spec.Classes)
	}
	for _, m := range ref.Spec.Modalities {
		gm, ok := got.Modality(m.Name)
		if !ok || !graph.Shape(gm.Shape).Equal(m.Shape) {
			return nil, fmt.Errorf("dataset %s: modality %s has shape %v, the plan was compiled for %v", ref.Name, m.Name, gm.Shape, m.Shape)
		}
	}
	return data, nil
}

// ParseKeyValues reads repeated "k=v" or "k=v,k2=v2" flags into a map.
func ParseKeyValues(flag string, items []string) (map[string]string, error) {
	out := map[string]string{}
	for _, item := range items {
		for _, kv := range strings.Split(item, ",") {
			k, v, ok := strings.Cut(kv, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return nil, fmt.Errorf("--%s %q: want key=value", flag, kv)
			}
			out[k] = strings.TrimSpace(v)
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
