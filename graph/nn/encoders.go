package nn

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"bmc/graph"
)

// Encoder is one kind of modality encoder: it lays out its parameters and
// buffers for an input shape and builds its forward pass.
type Encoder interface {
	// Layout lists the parameters and buffers the encoder owns for one
	// sample of shape in (no batch axis), each named prefix + its PyTorch
	// state_dict key, and gives the feature width.
	Layout(prefix string, in graph.Shape) (Layout, error)
	// Forward maps x [B, in...] to features [B, Out].
	Forward(c *Ctx, prefix string, x *graph.Value) (*graph.Value, error)
}

// Layout is what an encoder owns.
type Layout struct {
	Params  []Param
	Buffers []Buffer
	// Out is the feature width d_m.
	Out int64
}

// Options are an encoder kind's size settings (layers, heads, width, ...),
// numbers by name.
type Options map[string]float64

// Int returns option key as an integer, or def when it is absent.
func (o Options) Int(key string, def int64) int64 {
	if v, ok := o[key]; ok {
		return int64(v)
	}
	return def
}

// Float returns option key, or def when it is absent.
func (o Options) Float(key string, def float64) float64 {
	if v, ok := o[key]; ok {
		return v
	}
	return def
}

// Check rejects keys outside valid and integer options (those listed in
// ints) with a fractional or non-positive value.
func (o Options) Check(kind string, valid []string, ints []string) error {
	for _, k := range slices.Sorted(maps.Keys(o)) {
		if !slices.Contains(valid, k) {
			return fmt.Errorf("encoder %s: unknown option %q (valid: %s)", kind, k, strings.Join(valid, ", "))
		}
		v := o[k]
		if slices.Contains(ints, k) && (v != math.Trunc(v) || v < 1) {
			return fmt.Errorf("encoder %s: option %s is %v, want a positive integer", kind, k, v)
		}
	}
	return nil
}

// encoderKinds maps each encoder kind to its constructor.
func encoderKinds() map[string]func(EncoderSpec) (Encoder, error) {
	return map[string]func(EncoderSpec) (Encoder, error){
		"bert":        newBERT,
		"linear":      newMLP,
		"mlp":         newMLP,
		"resnet18":    newResNet18,
		"transformer": newTransformer,
		"vit_b_16":    newViT,
	}
}

// EncoderKinds lists the available encoder kinds, sorted.
func EncoderKinds() []string {
	return slices.Sorted(maps.Keys(encoderKinds()))
}

func newEncoder(spec EncoderSpec) (Encoder, error) {
	f, ok := encoderKinds()[spec.Kind]
	if !ok {
		return nil, fmt.Errorf("encoder kind %q is not available (available: %s)", spec.Kind, strings.Join(EncoderKinds(), ", "))
	}
	return f(spec)
}

// mlp is a stack of Linear layers, each followed by ReLU (and dropout when
// the option dropout is set) for kind "mlp" and none for kind "linear" (one
// layer), over the flattened input. Linear layers sit at the even indices
// of an nn.Sequential, as in the reference; dropout has no parameters, so
// it does not shift them.
type mlp struct {
	spec    EncoderSpec
	dropout float64
}

func newMLP(spec EncoderSpec) (Encoder, error) {
	var valid []string
	if spec.Kind == "mlp" {
		valid = []string{"dropout"}
	}
	if err := spec.Options.Check(spec.Kind, valid, nil); err != nil {
		return nil, err
	}
	dropout := spec.Options.Float("dropout", 0)
	if err := checkDropout(spec.Kind, "dropout", dropout); err != nil {
		return nil, err
	}
	if spec.Out < 1 {
		return nil, fmt.Errorf("encoder out is %d, want ≥ 1", spec.Out)
	}
	if spec.Kind == "linear" && len(spec.Hidden) > 0 {
		return nil, fmt.Errorf("a linear encoder has no hidden layers")
	}
	for _, h := range spec.Hidden {
		if h < 1 {
			return nil, fmt.Errorf("hidden width %d", h)
		}
	}
	return mlp{spec: spec, dropout: dropout}, nil
}

func (e mlp) widths(in graph.Shape) []int64 {
	return append(append([]int64{in.Size()}, e.spec.Hidden...), e.spec.Out)
}

func (e mlp) Layout(prefix string, in graph.Shape) (Layout, error) {
	ws := e.widths(in)
	var l Layout
	for i := 1; i < len(ws); i++ {
		l.Params = append(l.Params, LinearParams(fmt.Sprintf("%s%d.", prefix, 2*(i-1)), ws[i-1], ws[i])...)
	}
	l.Out = e.spec.Out
	return l, nil
}

func (e mlp) Forward(c *Ctx, prefix string, x *graph.Value) (*graph.Value, error) {
	h := x
	if x.Shape().Rank() != 2 {
		h = c.G.Reshape(x, 0, -1)
	}
	ws := e.widths(x.Shape()[1:])
	for i := 1; i < len(ws); i++ {
		layer := fmt.Sprintf("%s%d.", prefix, 2*(i-1))
		h = Linear(c.G, h, c.Param(layer+"weight"), c.Param(layer+"bias"))
		if e.spec.Kind == "mlp" {
			h = c.Dropout(c.G.Relu(h), e.dropout)
		}
	}
	return h, nil
}

// checkDropout rejects a dropout option outside [0, 1).
func checkDropout(kind, key string, p float64) error {
	if p < 0 || p >= 1 {
		return fmt.Errorf("encoder %s: option %s is %v, want a probability in [0, 1)", kind, key, p)
	}
	return nil
}

// checkOut accepts an unset spec.Out or one equal to the width the
// backbone's options give.
func checkOut(spec EncoderSpec, width int64, option string) error {
	if spec.Out != 0 && spec.Out != width {
		return fmt.Errorf("encoder %s: out is %d but the features are %d wide (set option %s instead)", spec.Kind, spec.Out, width, option)
	}
	return nil
}

// LinearParams are nn.Linear(in, out)'s weight [out, in] and bias [out],
// both U(−1/√in, 1/√in) as PyTorch's reset_parameters draws them.
func LinearParams(prefix string, in, out int64) []Param {
	bound := 1 / math.Sqrt(float64(in))
	return []Param{
		{Name: prefix + "weight", Shape: graph.Shape{out, in}, Init: Init{Kind: InitUniform, Bound: bound}},
		{Name: prefix + "bias", Shape: graph.Shape{out}, Init: Init{Kind: InitUniform, Bound: bound}},
	}
}

// Linear is PyTorch's nn.Linear: x·Wᵀ + b for x [B, in], W [out, in], b [out]
// (b may be nil).
func Linear(g *graph.Graph, x, w, b *graph.Value) *graph.Value {
	return g.Gemm(x, w, b, false, true, 1, 1)
}
