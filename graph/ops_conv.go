package graph

import (
	"fmt"
	"slices"
)

// Convolution and pooling ops over N×C×spatial tensors with one, two or
// three spatial axes: Conv, ConvTranspose, MaxPool, AveragePool and
// GlobalAveragePool. Padding is always explicit (auto_pad is NOTSET) and
// output sizes round down (ceil_mode 0), so every output shape follows from
// the attributes alone.

func convRule() map[string]ruleFunc {
	return map[string]ruleFunc{
		"Conv":              convShape,
		"ConvTranspose":     convTransposeShape,
		"MaxPool":           poolShape(true),
		"AveragePool":       poolShape(false),
		"GlobalAveragePool": globalPoolShape,
	}
}

// Window is the resolved geometry of a Conv or pool node along its spatial
// axes: kernel extent, strides, dilations and pads (ONNX order: all begins,
// then all ends).
type Window struct {
	Kernel, Strides, Dilations, Pads []int64
}

// Rank is the number of spatial axes.
func (w Window) Rank() int { return len(w.Kernel) }

// Span is the extent of the dilated kernel along spatial axis i.
func (w Window) Span(i int) int64 { return w.Dilations[i]*(w.Kernel[i]-1) + 1 }

// OutSize is the output length along spatial axis i for an input of length n
// (floor rounding), or an error when the padded input is shorter than the
// dilated kernel.
func (w Window) OutSize(i int, n int64) (int64, error) {
	padded := n + w.Pads[i] + w.Pads[i+w.Rank()]
	if padded < w.Span(i) {
		return 0, fmt.Errorf("spatial axis %d: padded length %d is shorter than the dilated kernel %d", i, padded, w.Span(i))
	}
	return (padded-w.Span(i))/w.Strides[i] + 1, nil
}

// WindowOf reads the window attributes of a Conv, ConvTranspose or pool node
// whose kernel has the given spatial extent; missing strides, dilations and
// pads take ONNX's defaults (1, 1, 0).
func WindowOf(a Attrs, kernel []int64) (Window, error) {
	r := len(kernel)
	w := Window{Kernel: slices.Clone(kernel)}
	if ks := a.Ints("kernel_shape"); ks != nil && !slices.Equal(ks, kernel) {
		return w, fmt.Errorf("kernel_shape %v does not match the kernel's spatial shape %v", ks, kernel)
	}
	if ap := a.String("auto_pad", "NOTSET"); ap != "NOTSET" {
		return w, fmt.Errorf("auto_pad %q is not supported: give explicit pads", ap)
	}
	if a.Int("ceil_mode", 0) != 0 {
		return w, fmt.Errorf("ceil_mode=1 is not supported: output sizes round down")
	}
	fill := func(name string, n int, def, lo int64) ([]int64, error) {
		v := a.Ints(name)
		if v == nil {
			v = make([]int64, n)
			for i := range v {
				v[i] = def
			}
			return v, nil
		}
		if len(v) != n {
			return nil, fmt.Errorf("%s %v must have %d entries for %d spatial axes", name, v, n, r)
		}
		for _, x := range v {
			if x < lo {
				return nil, fmt.Errorf("%s %v must be ≥ %d", name, v, lo)
			}
		}
		return slices.Clone(v), nil
	}
	var err error
	for _, k := range kernel {
		if k < 1 {
			return w, fmt.Errorf("kernel %v must be positive", kernel)
		}
	}
	if w.Strides, err = fill("strides", r, 1, 1); err != nil {
		return w, err
	}
	if w.Dilations, err = fill("dilations", r, 1, 1); err != nil {
		return w, err
	}
	if w.Pads, err = fill("pads", 2*r, 0, 0); err != nil {
		return w, err
	}
	return w, nil
}

// convOperands checks the float input, weight and optional bias of Conv and
// ConvTranspose: an N×C×spatial input and a weight of the same rank.
func convOperands(in []*Value) (x, w Shape, err error) {
	if err := floatOperands(in, 2, 3); err != nil {
		return nil, nil, err
	}
	x, w = in[0].shape, in[1].shape
	if err := spatialInput(in[0]); err != nil {
		return nil, nil, err
	}
	if w.Rank() != x.Rank() {
		return nil, nil, fmt.Errorf("weight has rank %d, the input has rank %d", w.Rank(), x.Rank())
	}
	return x, w, nil
}

// spatialInput checks an N×C×spatial input with 1 to 3 spatial axes.
func spatialInput(x *Value) error {
	if r := x.shape.Rank(); r < 3 || r > 5 {
		return fmt.Errorf("input must be N×C×spatial with 1 to 3 spatial axes, got rank %d", r)
	}
	return nil
}

func convShape(in []*Value, a Attrs, _ int) ([]outInfo, error) {
	x, w, err := convOperands(in)
	if err != nil {
		return nil, err
	}
	group := a.Int("group", 1)
	if group < 1 || x[1]%group != 0 || w[0]%group != 0 {
		return nil, fmt.Errorf("group %d must divide the input channels %d and the output channels %d", group, x[1], w[0])
	}
	if w[1]*group != x[1] {
		return nil, fmt.Errorf("weight expects %d input channels per group, the input has %d channels in %d groups", w[1], x[1], group)
	}
	if len(in) == 3 && in[2] != nil && !in[2].shape.Equal(Shape{w[0]}) {
		return nil, fmt.Errorf("bias has shape %v, want [%d] (one per output channel)", in[2].shape, w[0])
	}
	win, err := WindowOf(a, w[2:])
	if err != nil {
		return nil, err
	}
	out := Shape{x[0], w[0]}
	for i, n := range x[2:] {
		o, err := win.OutSize(i, n)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return one(in[0].dtype, out), nil
}

func convTransposeShape(in []*Value, a Attrs, _ int) ([]outInfo, error) {
	x, w, err := convOperands(in)
	if err != nil {
		return nil, err
	}
	if a.Ints("output_shape") != nil {
		return nil, fmt.Errorf("output_shape is not supported: give explicit pads and output_padding")
	}
	group := a.Int("group", 1)
	if group < 1 || x[1]%group != 0 {
		return nil, fmt.Errorf("group %d must divide the input channels %d", group, x[1])
	}
	if w[0] != x[1] {
		return nil, fmt.Errorf("weight has %d input channels, the input has %d", w[0], x[1])
	}
	cout := w[1] * group
	if len(in) == 3 && in[2] != nil && !in[2].shape.Equal(Shape{cout}) {
		return nil, fmt.Errorf("bias has shape %v, want [%d] (one per output channel)", in[2].shape, cout)
	}
	win, err := WindowOf(a, w[2:])
	if err != nil {
		return nil, err
	}
	outPad := a.Ints("output_padding")
	if outPad == nil {
		outPad = make([]int64, win.Rank())
	}
	if len(outPad) != win.Rank() {
		return nil, fmt.Errorf("output_padding %v must have %d entries", outPad, win.Rank())
	}
	out := Shape{x[0], cout}
	for i, n := range x[2:] {
		if outPad[i] < 0 || outPad[i] >= max(win.Strides[i], win.Dilations[i]) {
			return nil, fmt.Errorf("output_padding %v must lie in [0, max(stride, dilation)) on every axis", outPad)
		}
		o := win.Strides[i]*(n-1) + outPad[i] + win.Span(i) - win.Pads[i] - win.Pads[i+win.Rank()]
		if o < 1 {
			return nil, fmt.Errorf("spatial axis %d: output length %d is not positive", i, o)
		}
		out = append(out, o)
	}
	return one(in[0].dtype, out), nil
}

// poolShape is the rule of MaxPool (whose optional second output holds the
// flat NCHW index of each maximum) and AveragePool.
func poolShape(isMax bool) ruleFunc {
	return func(in []*Value, a Attrs, nOut int) ([]outInfo, error) {
		if err := arity(in, 1, 1); err != nil {
			return nil, err
		}
		if err := requireFloat(in); err != nil {
			return nil, err
		}
		if err := spatialInput(in[0]); err != nil {
			return nil, err
		}
		if nOut < 1 || nOut > 2 || (!isMax && nOut != 1) {
			return nil, fmt.Errorf("has %d outputs, want 1 (or 2 for MaxPool with indices)", nOut)
		}
		if !isMax && a.Ints("dilations") != nil {
			return nil, fmt.Errorf("AveragePool has no dilations at opset 17")
		}
		if a.Int("storage_order", 0) != 0 {
			return nil, fmt.Errorf("storage_order=1 is not supported: indices are row-major")
		}
		x := in[0].shape
		kernel := a.Ints("kernel_shape")
		if len(kernel) != x.Rank()-2 {
			return nil, fmt.Errorf("kernel_shape %v must have one entry per spatial axis (%d)", kernel, x.Rank()-2)
		}
		win, err := WindowOf(a, kernel)
		if err != nil {
			return nil, err
		}
		out := Shape{x[0], x[1]}
		for i, n := range x[2:] {
			if win.Pads[i] >= win.Kernel[i] || win.Pads[i+win.Rank()] >= win.Kernel[i] {
				return nil, fmt.Errorf("pads %v must be smaller than the kernel %v", win.Pads, win.Kernel)
			}
			o, err := win.OutSize(i, n)
			if err != nil {
				return nil, err
			}
			out = append(out, o)
		}
		outs := one(in[0].dtype, out)
		if nOut == 2 {
			outs = append(outs, outInfo{DType: Int64, Shape: out.Clone()})
		}
		return outs, nil
	}
}

func globalPoolShape(in []*Value, _ Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 1, 1); err != nil {
		return nil, err
	}
	if err := requireFloat(in); err != nil {
		return nil, err
	}
	if err := spatialInput(in[0]); err != nil {
		return nil, err
	}
	out := in[0].shape.Clone()
	for i := 2; i < out.Rank(); i++ {
		out[i] = 1
	}
	return one(in[0].dtype, out), nil
}

// ConvOpts are a convolution's geometry, one entry per spatial axis; nil
// fields take the defaults (strides 1, no padding, dilations 1, one group).
type ConvOpts struct {
	Strides []int64
	// Pads are the zeros added before each spatial axis, then after each:
	// [h_begin, w_begin, h_end, w_end] in 2-D.
	Pads      []int64
	Dilations []int64
	// Group splits the channels into groups convolved separately (0 means 1).
	Group int64
}

// attrs writes every field explicitly, so a node never depends on ONNX
// defaults.
func (o ConvOpts) attrs(spatial int) Attrs {
	ones := func(v []int64, n int, def int64) []int64 {
		if v != nil {
			return slices.Clone(v)
		}
		out := make([]int64, n)
		for i := range out {
			out[i] = def
		}
		return out
	}
	return Attrs{
		"strides":   ones(o.Strides, spatial, 1),
		"pads":      ones(o.Pads, 2*spatial, 0),
		"dilations": ones(o.Dilations, spatial, 1),
		"group":     max(o.Group, 1),
	}
}

// spatialRank is the number of spatial axes of an N×C×spatial value (0 when
// it has none, which the shape rule then reports).
func spatialRank(x *Value) int { return max(x.Shape().Rank()-2, 0) }

// Conv is a cross-correlation of x [N, C, spatial…] with weights w
// [M, C/group, kernel…], plus bias b [M] when b is not nil (PyTorch's
// nn.Conv1d/2d/3d).
func (g *Graph) Conv(x, w, b *Value, o ConvOpts) *Value {
	in := []*Value{x, w}
	if b != nil {
		in = append(in, b)
	}
	return g.apply1("Conv", o.attrs(spatialRank(x)), in...)
}

// ConvTranspose is the transpose (input gradient) of Conv with weights w
// [C_in, C_out/group, kernel…]; outputPadding (nil: zeros) adds to the end of
// each spatial axis of the output and resolves the ambiguity strides leave.
func (g *Graph) ConvTranspose(x, w *Value, o ConvOpts, outputPadding []int64) *Value {
	attrs := o.attrs(spatialRank(x))
	if outputPadding != nil {
		attrs["output_padding"] = slices.Clone(outputPadding)
	}
	return g.apply1("ConvTranspose", attrs, x, w)
}

// PoolOpts are a pooling window, one entry per spatial axis.
type PoolOpts struct {
	Kernel  []int64
	Strides []int64 // nil: 1 on every axis (PyTorch's default is the kernel)
	Pads    []int64 // begins then ends, as ConvOpts.Pads; each smaller than the kernel
	// CountIncludePad makes AveragePool divide by the full kernel size even
	// where the window overlaps padding. PyTorch's nn.AvgPool*d default is
	// true; ONNX's default is false. MaxPool ignores it.
	CountIncludePad bool
}

func (o PoolOpts) attrs() Attrs {
	c := ConvOpts{Strides: o.Strides, Pads: o.Pads}.attrs(len(o.Kernel))
	delete(c, "group")
	delete(c, "dilations")
	c["kernel_shape"] = slices.Clone(o.Kernel)
	return c
}

// MaxPool takes the maximum over each window of x [N, C, spatial…]. Its
// gradient recomputes the positions of the maxima in the backward pass; a
// training graph that differentiates the pool anyway may use
// MaxPoolWithIndices instead to compute them once.
func (g *Graph) MaxPool(x *Value, o PoolOpts) *Value {
	return g.apply1("MaxPool", o.attrs(), x)
}

// MaxPoolWithIndices is MaxPool that also returns, for each output, the flat
// row-major index of its maximum in x (batch and channel offsets included;
// the first maximum of a window on ties), which the gradient scatters to.
// ONNX Runtime's CPU provider computes this form several times slower than
// plain MaxPool (docs/performance.md).
func (g *Graph) MaxPoolWithIndices(x *Value, o PoolOpts) (y, indices *Value) {
	out := g.Apply("MaxPool", []*Value{x}, o.attrs(), 2)
	return out[0], out[1]
}

// AveragePool averages each window of x [N, C, spatial…].
func (g *Graph) AveragePool(x *Value, o PoolOpts) *Value {
	attrs := o.attrs()
	if o.CountIncludePad {
		attrs["count_include_pad"] = int64(1)
	} else {
		attrs["count_include_pad"] = int64(0)
	}
	return g.apply1("AveragePool", attrs, x)
}

// GlobalAveragePool averages x [N, C, spatial…] over all spatial axes,
// keeping them with size 1 (PyTorch's AdaptiveAvgPool2d(1)).
func (g *Graph) GlobalAveragePool(x *Value) *Value {
	return g.apply1("GlobalAveragePool", nil, x)
}
