// Package nn builds models as graph IR: per-modality encoders and the fusion
// head, with parameters named like the PyTorch state_dict keys of the same
// modules and initialised as PyTorch initialises them. It builds graphs; it
// never runs them.
package nn

import (
	"fmt"
	"slices"
	"strings"

	"bmc/graph"
	"bmc/internal/randstream"
)

// EncoderSpec describes one modality's encoder.
type EncoderSpec struct {
	// Kind names the encoder (EncoderKinds lists them): "linear" (one
	// Linear layer), "mlp" (Linear+ReLU layers), or a backbone.
	Kind string `json:"kind"`
	// Hidden are the widths of an MLP's hidden layers.
	Hidden []int64 `json:"hidden,omitempty"`
	// Out is the feature width d_m of linear and MLP encoders; backbones
	// have their own.
	Out int64 `json:"out,omitempty"`
	// Options are a backbone's size settings; each kind lists its own.
	Options Options `json:"options,omitempty"`
}

// ModalitySpec is one input modality of a model.
type ModalitySpec struct {
	Name    string      `json:"name"`
	Shape   graph.Shape `json:"shape"` // one sample, without the batch axis
	Encoder EncoderSpec `json:"encoder"`
}

// ModelSpec is a whole multimodal classifier.
type ModelSpec struct {
	Modalities []ModalitySpec `json:"modalities"`
	Classes    int64          `json:"classes"`
	// Fusion is the fusion head's kind (FusionKinds lists them), with its
	// options.
	Fusion        string  `json:"fusion"`
	FusionOptions Options `json:"fusion_options,omitempty"`
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

// Buffer is a tensor the forward pass reads and, in training, updates
// without gradients (batch-norm running statistics).
type Buffer struct {
	// Name is the PyTorch state_dict key of the equivalent module.
	Name     string      `json:"name"`
	Shape    graph.Shape `json:"shape"`
	Modality string      `json:"modality,omitempty"`
	Init     Init        `json:"init"`
}

// Model is a validated model spec with its parameter and buffer tables.
type Model struct {
	Spec     ModelSpec
	encoders []Encoder
	fusion   Fusion
	outs     []int64
	params   []Param
	buffers  []Buffer
}

// Mode selects training or evaluation behaviour (dropout, batch statistics).
type Mode int

// The forward modes.
const (
	Train Mode = iota
	Eval
)

// EncoderPrefix is the name prefix of a modality encoder's parameters.
func EncoderPrefix(modality string) string { return "modality_encoder." + modality + "." }

// New validates a spec and lays out its parameters.
func New(spec ModelSpec) (*Model, error) {
	if len(spec.Modalities) == 0 {
		return nil, fmt.Errorf("model: no modalities")
	}
	if spec.Classes < 2 {
		return nil, fmt.Errorf("model: classes is %d, want at least 2", spec.Classes)
	}
	fusion, err := newFusion(spec.Fusion, spec.FusionOptions)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	m := &Model{Spec: spec, fusion: fusion}
	seen := map[string]bool{}
	names := map[string]bool{}
	for _, mod := range spec.Modalities {
		if mod.Name == "" || seen[mod.Name] {
			return nil, fmt.Errorf("model: modality name %q is empty or repeated", mod.Name)
		}
		seen[mod.Name] = true
		if mod.Shape.Rank() == 0 || mod.Shape.Size() <= 0 {
			return nil, fmt.Errorf("model: modality %s has input shape %v", mod.Name, mod.Shape)
		}
		enc, err := newEncoder(mod.Encoder)
		if err != nil {
			return nil, fmt.Errorf("model: modality %s: %w", mod.Name, err)
		}
		l, err := enc.Layout(EncoderPrefix(mod.Name), mod.Shape)
		if err != nil {
			return nil, fmt.Errorf("model: modality %s: %w", mod.Name, err)
		}
		for i := range l.Params {
			l.Params[i].Modality = mod.Name
		}
		for i := range l.Buffers {
			l.Buffers[i].Modality = mod.Name
		}
		m.encoders = append(m.encoders, enc)
		m.outs = append(m.outs, l.Out)
		m.params = append(m.params, l.Params...)
		m.buffers = append(m.buffers, l.Buffers...)
	}
	head, err := fusion.Params(m.outs, spec.Classes)
	if err != nil {
		return nil, fmt.Errorf("model: fusion %s: %w", spec.Fusion, err)
	}
	m.params = append(m.params, head...)
	for _, p := range m.params {
		if err := checkName(names, p.Name, p.Init); err != nil {
			return nil, err
		}
	}
	for _, b := range m.buffers {
		if err := checkName(names, b.Name, b.Init); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// checkName rejects a tensor name already in names, or an init rule that
// cannot draw, and records the name.
func checkName(names map[string]bool, name string, init Init) error {
	if names[name] {
		return fmt.Errorf("model: tensor name %s is used twice", name)
	}
	names[name] = true
	if err := init.Validate(); err != nil {
		return fmt.Errorf("model: %s: %w", name, err)
	}
	return nil
}

// Params are the model's parameters in state_dict order.
func (m *Model) Params() []Param { return slices.Clone(m.params) }

// Buffers are the model's buffers in state_dict order.
func (m *Model) Buffers() []Buffer { return slices.Clone(m.buffers) }

// FeatureWidths are d_m per modality, in fusion order.
func (m *Model) FeatureWidths() []int64 { return slices.Clone(m.outs) }

// ModalityNames lists the modalities in fusion (concatenation) order.
func (m *Model) ModalityNames() []string {
	names := make([]string, len(m.Spec.Modalities))
	for i, mod := range m.Spec.Modalities {
		names[i] = mod.Name
	}
	return names
}

// InitValues draws the initial value of every parameter and buffer. Each
// tensor has its own stream derived from the seed and its name, so adding a
// tensor changes no other.
func (m *Model) InitValues(seed uint64) map[string][]float32 {
	out := make(map[string][]float32, len(m.params)+len(m.buffers))
	draw := func(name string, shape graph.Shape, init Init) {
		v := make([]float32, shape.Size())
		init.fill(v, randstream.New(seed, name, 0))
		out[name] = v
	}
	for _, p := range m.params {
		draw(p.Name, p.Shape, p.Init)
	}
	for _, b := range m.buffers {
		draw(b.Name, b.Shape, b.Init)
	}
	return out
}

// tokenEncoder is implemented by encoders whose input is int64 token ids;
// every other encoder takes float features.
type tokenEncoder interface {
	takesTokens()
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

// Forward adds the model's forward pass to g. inputs maps modality names to
// [B, shape...] values.
func (m *Model) Forward(g *graph.Graph, b Bindings, inputs map[string]*graph.Value, mode Mode) (Outputs, error) {
	out := Outputs{Features: map[string]*graph.Value{}, Unimodal: map[string]*graph.Value{}}
	c := NewCtx(g, b, mode)
	var feats []*graph.Value
	for i, mod := range m.Spec.Modalities {
		x, ok := inputs[mod.Name]
		if !ok {
			return out, fmt.Errorf("model forward: no input for modality %s", mod.Name)
		}
		h, err := m.encode(c, i, x)
		if err != nil {
			return out, err
		}
		out.Features[mod.Name] = h
		feats = append(feats, h)
	}
	if err := g.Err(); err != nil {
		return out, err
	}
	pop := g.Scope("fusion_module")
	defer pop()
	fused, uni, err := m.fusion.Forward(c, feats)
	if err != nil {
		return out, fmt.Errorf("model forward: fusion %s: %w", m.Spec.Fusion, err)
	}
	out.Logits = fused
	for i, mod := range m.Spec.Modalities {
		out.Unimodal[mod.Name] = uni[i]
	}
	return out, g.Err()
}

// encode runs modality i's encoder on x [B, shape...].
func (m *Model) encode(c *Ctx, i int, x *graph.Value) (*graph.Value, error) {
	mod := m.Spec.Modalities[i]
	_, tokens := m.encoders[i].(tokenEncoder)
	if isInt := x.DType() == graph.Int64; isInt != tokens {
		what := map[bool]string{true: "token ids", false: "float features"}
		return nil, fmt.Errorf("model forward: modality %s holds %s, but encoder %s takes %s", mod.Name, what[isInt], mod.Encoder.Kind, what[tokens])
	}
	prefix := EncoderPrefix(mod.Name)
	pop := c.G.Scope(strings.TrimSuffix(prefix, "."))
	h, err := m.encoders[i].Forward(c, prefix, x)
	pop()
	if err != nil {
		return nil, fmt.Errorf("model forward: modality %s: %w", mod.Name, err)
	}
	return h, nil
}
