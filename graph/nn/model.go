// Package nn builds models as graph IR: per-modality encoders and the fusion
// head, with parameters named like the PyTorch state_dict keys of the same
// modules and initialised as PyTorch initialises them. It builds graphs; it
// never runs them.
package nn

import (
	"fmt"
	"math"
	"slices"

	"bmc/graph"
	"bmc/internal/randstream"
)

// EncoderSpec describes one modality's encoder.
type EncoderSpec struct {
	// Kind is "linear" (one Linear layer) or "mlp" (Linear+ReLU layers).
	Kind string `json:"kind"`
	// Hidden are the widths of an MLP's hidden layers.
	Hidden []int64 `json:"hidden,omitempty"`
	// Out is the feature width d_m the encoder produces.
	Out int64 `json:"out"`
}

// ModalitySpec is one input modality of a model.
type ModalitySpec struct {
	Name    string      `json:"name"`
	Shape   graph.Shape `json:"shape"` // one sample, without the batch axis
	Encoder EncoderSpec `json:"encoder"`
}

// Fusion heads.
const (
	// FusionConcat is Linear(Σd_m → C) over the concatenated features, with
	// unimodal logits z_m = φ_m·W_mᵀ + b/n.
	FusionConcat = "concat"
)

// ModelSpec is a whole multimodal classifier.
type ModelSpec struct {
	Modalities []ModalitySpec `json:"modalities"`
	Classes    int64          `json:"classes"`
	Fusion     string         `json:"fusion"`
}

// Param is one trainable tensor.
type Param struct {
	// Name is the PyTorch state_dict key of the equivalent module.
	Name  string      `json:"name"`
	Shape graph.Shape `json:"shape"`
	// Modality is the modality whose encoder owns the parameter, "" for the
	// fusion head.
	Modality string `json:"modality,omitempty"`
	// Init is how the initial value is drawn.
	Init Init `json:"init"`
}

// Init is a PyTorch initialisation rule.
type Init struct {
	// Kind is "uniform" (U(−Bound, Bound)).
	Kind  string  `json:"kind"`
	Bound float64 `json:"bound"`
}

// Model is a validated model spec with its parameter table.
type Model struct {
	Spec   ModelSpec
	params []Param
}

// Mode selects training or evaluation behaviour (dropout, batch statistics).
type Mode int

// The forward modes.
const (
	Train Mode = iota
	Eval
)

// New validates a spec and lays out its parameters.
func New(spec ModelSpec) (*Model, error) {
	if len(spec.Modalities) == 0 {
		return nil, fmt.Errorf("model: no modalities")
	}
	if spec.Classes < 2 {
		return nil, fmt.Errorf("model: classes is %d, want at least 2", spec.Classes)
	}
	if spec.Fusion != FusionConcat {
		return nil, fmt.Errorf("model: fusion %q is not available (available: %s)", spec.Fusion, FusionConcat)
	}
	m := &Model{Spec: spec}
	seen := map[string]bool{}
	var featTotal int64
	for _, mod := range spec.Modalities {
		if mod.Name == "" || seen[mod.Name] {
			return nil, fmt.Errorf("model: modality name %q is empty or repeated", mod.Name)
		}
		seen[mod.Name] = true
		in := mod.Shape.Size()
		if mod.Shape.Rank() == 0 || in <= 0 {
			return nil, fmt.Errorf("model: modality %s has input shape %v", mod.Name, mod.Shape)
		}
		widths, err := encoderWidths(mod)
		if err != nil {
			return nil, err
		}
		prefix := "modality_encoder." + mod.Name + "."
		for i := 1; i < len(widths); i++ {
			// nn.Sequential numbering: Linear at even indices, ReLU between.
			layer := fmt.Sprintf("%s%d.", prefix, 2*(i-1))
			m.params = append(m.params, linearParams(layer, widths[i-1], widths[i], mod.Name)...)
		}
		featTotal += mod.Encoder.Out
	}
	m.params = append(m.params, linearParams("fusion_module.fc_out.", featTotal, spec.Classes, "")...)
	return m, nil
}

// encoderWidths lists the layer widths from input to features.
func encoderWidths(mod ModalitySpec) ([]int64, error) {
	e := mod.Encoder
	if e.Out < 1 {
		return nil, fmt.Errorf("model: modality %s: encoder out is %d, want ≥ 1", mod.Name, e.Out)
	}
	widths := []int64{mod.Shape.Size()}
	switch e.Kind {
	case "linear":
		if len(e.Hidden) > 0 {
			return nil, fmt.Errorf("model: modality %s: a linear encoder has no hidden layers", mod.Name)
		}
	case "mlp":
		for _, h := range e.Hidden {
			if h < 1 {
				return nil, fmt.Errorf("model: modality %s: hidden width %d", mod.Name, h)
			}
		}
		widths = append(widths, e.Hidden...)
	default:
		return nil, fmt.Errorf("model: modality %s: encoder kind %q is not available (available: linear, mlp)", mod.Name, e.Kind)
	}
	return append(widths, e.Out), nil
}

// linearParams are nn.Linear(in, out)'s weight [out, in] and bias [out],
// both U(−1/√in, 1/√in) as PyTorch's reset_parameters draws them.
func linearParams(prefix string, in, out int64, modality string) []Param {
	bound := 1 / math.Sqrt(float64(in))
	return []Param{
		{Name: prefix + "weight", Shape: graph.Shape{out, in}, Modality: modality, Init: Init{Kind: "uniform", Bound: bound}},
		{Name: prefix + "bias", Shape: graph.Shape{out}, Modality: modality, Init: Init{Kind: "uniform", Bound: bound}},
	}
}

// Params are the model's parameters in state_dict order.
func (m *Model) Params() []Param { return slices.Clone(m.params) }

// ModalityNames lists the modalities in fusion (concatenation) order.
func (m *Model) ModalityNames() []string {
	names := make([]string, len(m.Spec.Modalities))
	for i, mod := range m.Spec.Modalities {
		names[i] = mod.Name
	}
	return names
}

// InitParams draws initial values. Each parameter has its own stream derived
// from the seed and its name, so adding a parameter changes no other.
func (m *Model) InitParams(seed uint64) map[string][]float32 {
	out := make(map[string][]float32, len(m.params))
	for _, p := range m.params {
		rng := randstream.New(seed, p.Name, 0)
		v := make([]float32, p.Shape.Size())
		for i := range v {
			v[i] = float32((rng.Float64()*2 - 1) * p.Init.Bound)
		}
		out[p.Name] = v
	}
	return out
}

// Outputs are what a forward pass produces.
type Outputs struct {
	// Features are the encoder outputs φ_m, [B, d_m].
	Features map[string]*graph.Value
	// Logits are the fused logits z, [B, C].
	Logits *graph.Value
	// Unimodal are the per-modality logits z_m, [B, C].
	Unimodal map[string]*graph.Value
}

// Forward adds the model's forward pass to g. params maps parameter names to
// graph values; inputs maps modality names to [B, shape...] values.
func (m *Model) Forward(g *graph.Graph, params map[string]*graph.Value, inputs map[string]*graph.Value, mode Mode) (Outputs, error) {
	out := Outputs{Features: map[string]*graph.Value{}, Unimodal: map[string]*graph.Value{}}
	p := func(name string) *graph.Value {
		v, ok := params[name]
		if !ok {
			g.Fail(fmt.Errorf("model forward: parameter %s is not bound", name))
			return g.ConstFloat(0)
		}
		return v
	}
	var feats []*graph.Value
	var widths []int64
	for _, mod := range m.Spec.Modalities {
		x, ok := inputs[mod.Name]
		if !ok {
			return out, fmt.Errorf("model forward: no input for modality %s", mod.Name)
		}
		pop := g.Scope("modality_encoder." + mod.Name)
		h := x
		if x.Shape().Rank() != 2 {
			h = g.Reshape(x, -1, mod.Shape.Size())
		}
		ws, err := encoderWidths(mod)
		if err != nil {
			pop()
			return out, err
		}
		for i := 1; i < len(ws); i++ {
			layer := fmt.Sprintf("modality_encoder.%s.%d.", mod.Name, 2*(i-1))
			h = Linear(g, h, p(layer+"weight"), p(layer+"bias"))
			if mod.Encoder.Kind == "mlp" {
				h = g.Relu(h)
			}
		}
		pop()
		out.Features[mod.Name] = h
		feats = append(feats, h)
		widths = append(widths, mod.Encoder.Out)
	}
	pop := g.Scope("fusion_module")
	defer pop()
	w, b := p("fusion_module.fc_out.weight"), p("fusion_module.fc_out.bias")
	out.Logits = Linear(g, g.Concat(1, feats...), w, b)
	// z_m = φ_m·W_mᵀ + b/n (spec §2.3), so that Σ_m z_m = z.
	n := float32(len(feats))
	share := g.Div(b, g.ConstFloat(n))
	blocks := []*graph.Value{w}
	if len(feats) > 1 {
		blocks = g.Split(w, 1, widths...)
	}
	for i, mod := range m.Spec.Modalities {
		out.Unimodal[mod.Name] = Linear(g, feats[i], blocks[i], share)
	}
	return out, g.Err()
}

// Linear is PyTorch's nn.Linear: x·Wᵀ + b for x [B, in], W [out, in], b [out].
func Linear(g *graph.Graph, x, w, b *graph.Value) *graph.Value {
	return g.Gemm(x, w, b, false, true, 1, 1)
}
