package compile

import (
	"fmt"
	"slices"

	"bmc/graph"
)

// Gradient rules of the convolution and pooling ops (graph/ops_conv.go).
//
// The convolution gradients are lowered to the forms ONNX Runtime runs at
// GEMM speed (measurements in docs/performance.md, "Conv backward
// lowerings"), not to the textbook ConvTranspose and transposed-tensor Conv,
// which ORT's CPU provider runs 5–20× slower than the forward Conv:
//
//   - weight gradient: an im2col of the input gathered one kernel tap at a
//     time, each tap one MatMul with the output gradient (convWeightGrad);
//     a single Gemm over an element-gathered im2col when the output maps are
//     small (convWeightGradSmall); a Conv of transposed tensors for inputs
//     of few channels (convWeightGradByConv);
//   - input gradient: one ConvTranspose with explicit pads and output
//     padding (convInputGrad), which ORT 1.29's CPU provider runs at the
//     forward's speed at ResNet18's sizes.
//
// Average pooling reuses the input-gradient lowering as a depthwise
// ConvTranspose with a constant kernel; max pooling scatters through its
// Indices output.

func convGrad() map[string]gradFunc {
	return map[string]gradFunc{
		"Conv":              gradConv,
		"MaxPool":           gradMaxPool,
		"AveragePool":       gradAveragePool,
		"GlobalAveragePool": gradGlobalAveragePool,
	}
}

// convGeom is a Conv node's geometry.
type convGeom struct {
	n, c, m, group int64
	in, out        []int64 // spatial lengths of the input and the output
	win            graph.Window
}

func convGeomOf(n *graph.Node) (convGeom, error) {
	x, w, y := n.Inputs[0].Shape(), n.Inputs[1].Shape(), n.Outputs[0].Shape()
	win, err := graph.WindowOf(n.Attrs, w[2:])
	if err != nil {
		return convGeom{}, err
	}
	return convGeom{n: x[0], c: x[1], m: w[0], group: n.Attrs.Int("group", 1),
		in: x[2:].Clone(), out: y[2:].Clone(), win: win}, nil
}

// gradConv: dX by convInputGrad, dW by convWeightGrad, db sums dY over the
// batch and spatial axes.
func gradConv(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	geo, err := convGeomOf(n)
	if err != nil {
		return nil, err
	}
	out := make([]*graph.Value, len(n.Inputs))
	out[0] = b.convInputGrad(dy[0], n.Inputs[1], geo)
	switch {
	case geo.group == 1 && geo.c < minGatherChannels:
		out[1] = b.convWeightGradByConv(n.Inputs[0], dy[0], geo)
	case geo.group == 1 && geo.n*graph.Shape(geo.out).Size() < geo.m:
		out[1] = b.convWeightGradSmall(n.Inputs[0], dy[0], geo)
	default:
		out[1] = b.convWeightGrad(n.Inputs[0], dy[0], geo)
	}
	if len(n.Inputs) == 3 && n.Inputs[2] != nil {
		axes := []int64{0}
		for i := range geo.win.Rank() {
			axes = append(axes, int64(2+i))
		}
		out[2] = b.g.ReduceSum(dy[0], false, axes...)
	}
	return out, nil
}

// offsets lists every multi-index of a kernel, row-major.
func offsets(kernel []int64) [][]int64 {
	all := [][]int64{{}}
	for _, k := range kernel {
		var next [][]int64
		for _, prefix := range all {
			for i := range k {
				next = append(next, append(slices.Clone(prefix), i))
			}
		}
		all = next
	}
	return all
}

// spatialAxes are the axes first, first+1, … of r spatial dimensions.
func spatialAxes(first, r int) []int64 {
	axes := make([]int64, r)
	for i := range axes {
		axes[i] = int64(first + i)
	}
	return axes
}

// padSpatial pads (or, for negative entries, crops) the spatial axes of x,
// which start at axis first; pads are ONNX-ordered begins then ends.
func (b *gradBuilder) padSpatial(x *graph.Value, first int, pads []int64) *graph.Value {
	if !slices.ContainsFunc(pads, func(p int64) bool { return p != 0 }) {
		return x
	}
	rank, r := x.Shape().Rank(), len(pads)/2
	full := make([]int64, 2*rank)
	for i := range r {
		full[first+i] = pads[i]
		full[rank+first+i] = pads[r+i]
	}
	return b.g.Pad(x, full...)
}

// convWeightGrad computes dW [M, C/G, k…] as a sum over kernel taps of
// matrix products (im2col one tap at a time):
//
//	cols_k[n·P + o, c] = xpad[n, c, o·s + k·d]          (P output positions o)
//	dW[m, c, k]        = Σ_q dY[n, m, o] · cols_k[q, c]  (q = n·P + o, per group)
//
// The padded input is transposed once to channels-last [N, ΠS, C]; each
// cols_k is one Gather of whole channel rows along the flattened spatial
// axis, at a constant index shifted by the tap's offset. Gathering one tap
// at a time keeps each operand of the MatMul in cache; a Slice-based
// im2col runs element by element in ORT and is several times slower
// (docs/performance.md, "Conv backward lowerings").
func (b *gradBuilder) convWeightGrad(x, dy *graph.Value, geo convGeom) *graph.Value {
	g, win, r := b.g, geo.win, geo.win.Rank()
	cg, mg := geo.c/geo.group, geo.m/geo.group
	taps := graph.Shape(win.Kernel).Size()
	p := graph.Shape(geo.out).Size()

	xp := b.padSpatial(x, 2, win.Pads)
	padded := xp.Shape()[2:]
	// [N, C, S…] → [N, S…, C] → [N, ΠS, C].
	xt := g.Reshape(g.Transpose(xp, append(append([]int64{0}, spatialAxes(2, r)...), 1)...), geo.n, padded.Size(), geo.c)
	// dY [N, M, O…] → [M, N, O…] → [G, M/G, N·P].
	dyt := g.Reshape(g.Transpose(dy, append([]int64{1, 0}, spatialAxes(2, r)...)...), geo.group, mg, geo.n*p)

	elem := rowMajorStrides(padded)
	base := b.outputPositions(win, elem, geo.out)
	parts := make([]*graph.Value, 0, taps)
	for _, k := range offsets(win.Kernel) {
		var off int64
		for i := range r {
			off += k[i] * win.Dilations[i] * elem[i]
		}
		idx := base
		if off != 0 {
			idx = g.Add(base, g.ConstInt(off))
		}
		cols := g.Gather(xt, idx, 1) // [N, P, C]
		if geo.group == 1 {
			cols = g.Reshape(cols, 1, geo.n*p, geo.c)
		} else {
			cols = g.Transpose(g.Reshape(cols, geo.n*p, geo.group, cg), 1, 0, 2)
		}
		parts = append(parts, g.MatMul(dyt, cols)) // [G, M/G, C/G]
	}
	dw := parts[0]
	if taps > 1 {
		dw = g.Concat(2, parts...) // [G, M/G, K·C/G]
	}
	dw = g.Transpose(g.Reshape(dw, geo.m, taps, cg), 0, 2, 1)
	return g.Reshape(dw, append([]int64{geo.m, cg}, win.Kernel...)...)
}

// convWeightGradSmall computes dW of a one-group Conv with few output
// positions (N·P below the output channels) as one Gemm over an im2col
// gathered element by element in channel-major order:
//
//	cols[c, k, n·P + o] = xpad[n, c, o·s + k·d],   dW[m, c·K + k] = Σ_q dY[n, m, o] · cols[c·K + k, q].
//
// The product then comes out in the weights' own [M, C, K] layout, where
// convWeightGrad's per-tap products need a transpose of dW that costs more
// than the whole product when the maps are 4×4 or 8×2 (ResNet18's last
// stage).
func (b *gradBuilder) convWeightGradSmall(x, dy *graph.Value, geo convGeom) *graph.Value {
	g, win, r := b.g, geo.win, geo.win.Rank()
	taps := graph.Shape(win.Kernel).Size()
	p := graph.Shape(geo.out).Size()
	xp := b.padSpatial(x, 2, win.Pads)
	padded := xp.Shape()[2:]
	swap := append([]int64{1, 0}, spatialAxes(2, r)...)
	xt := g.Reshape(g.Transpose(xp, swap...), geo.c, geo.n*padded.Size())
	elem := rowMajorStrides(padded)
	// idx[k, n, o] = tap offset + batch offset + output position.
	tapOff := make([]int64, 0, taps)
	for _, k := range offsets(win.Kernel) {
		var off int64
		for i := range r {
			off += k[i] * win.Dilations[i] * elem[i]
		}
		tapOff = append(tapOff, off)
	}
	batchOff := make([]int64, geo.n)
	for i := range batchOff {
		batchOff[i] = int64(i) * padded.Size()
	}
	idx := g.Add(g.Constant(graph.Int64Tensor(graph.Shape{taps, 1, 1}, tapOff)), g.Constant(graph.Int64Tensor(graph.Shape{1, geo.n, 1}, batchOff)))
	idx = g.Add(idx, g.Reshape(b.outputPositions(win, elem, geo.out), 1, 1, p))
	cols := g.Gather(xt, g.Reshape(idx, taps, geo.n*p), 1) // [C, K, N·P]
	dyt := g.Reshape(g.Transpose(dy, swap...), geo.m, geo.n*p)
	dw := g.Gemm(dyt, g.Reshape(cols, geo.c*taps, geo.n*p), nil, false, true, 1, 1)
	return g.Reshape(dw, append([]int64{geo.m, geo.c}, win.Kernel...)...)
}

// rowMajorStrides are the element strides of a row-major shape.
func rowMajorStrides(s graph.Shape) []int64 {
	elem := make([]int64, len(s))
	acc := int64(1)
	for i := len(s) - 1; i >= 0; i-- {
		elem[i] = acc
		acc *= s[i]
	}
	return elem
}

// minGatherChannels is the channel count from which the gathered im2col of
// convWeightGrad beats convWeightGradByConv: its Gathers copy rows of C
// floats, which for the 1- and 3-channel stems of ResNet18 are too short
// (measured in docs/performance.md, "Conv backward lowerings").
const minGatherChannels = 16

// convWeightGradByConv computes dW of a one-group Conv as a Conv itself:
// the input with batch and channels swapped, [C, N, S…], correlated with the
// output gradient as the kernel, [M, N, O…], dilated by the stride and
// strided by the dilation, gives [C, M, k'…] ⊇ dWᵀ:
//
//	Σ_n Σ_o xpad[n, c, o·s + i·d] · dY[n, m, o] = dW[m, c, i].
func (b *gradBuilder) convWeightGradByConv(x, dy *graph.Value, geo convGeom) *graph.Value {
	g, win, r := b.g, geo.win, geo.win.Rank()
	swap := append([]int64{1, 0}, spatialAxes(2, r)...)
	c := g.Conv(g.Transpose(x, swap...), g.Transpose(dy, swap...), nil,
		graph.ConvOpts{Strides: win.Dilations, Dilations: win.Strides, Pads: win.Pads})
	if !slices.Equal(c.Shape()[2:], graph.Shape(win.Kernel)) {
		c = g.Slice(c, make([]int64, r), win.Kernel, spatialAxes(2, r), nil)
	}
	return g.Transpose(c, swap...)
}

// outputPositions is the int64 [P] index, into a flattened padded input
// with element strides elem, of every output position's first tap:
// Σ_i o_i·s_i·elem_i. It is a sum of broadcast per-axis vectors, so the
// graph stores ΣO numbers rather than ΠO.
func (b *gradBuilder) outputPositions(win graph.Window, elem, out []int64) *graph.Value {
	g, r := b.g, win.Rank()
	var idx *graph.Value
	for i := range r {
		shape := make(graph.Shape, r)
		for j := range shape {
			shape[j] = 1
		}
		shape[i] = out[i]
		v := make([]int64, out[i])
		for o := range v {
			v[o] = int64(o) * win.Strides[i] * elem[i]
		}
		c := g.Constant(graph.Int64Tensor(shape, v))
		if idx == nil {
			idx = c
		} else {
			idx = g.Add(idx, c)
		}
	}
	return g.Reshape(idx, graph.Shape(out).Size())
}

// convInputGrad computes dX [N, C, S…] of a Conv from dY [N, M, O…] as one
// ConvTranspose with the forward's weights and geometry. The output padding
// restores the input rows that no window reached (when (S + pads − span)
// is not a multiple of the stride). ORT's CPU ConvTranspose runs these at
// the forward Conv's speed, faster than a polyphase split into stride-1
// Convs with flipped sub-kernels (docs/performance.md).
func (b *gradBuilder) convInputGrad(dy, w *graph.Value, geo convGeom) *graph.Value {
	win := geo.win
	outPad := make([]int64, win.Rank())
	for i := range outPad {
		outPad[i] = geo.in[i] + win.Pads[i] + win.Pads[win.Rank()+i] - win.Span(i) - win.Strides[i]*(geo.out[i]-1)
	}
	o := graph.ConvOpts{Strides: win.Strides, Pads: win.Pads, Dilations: win.Dilations, Group: geo.group}
	return b.g.ConvTranspose(dy, w, o, outPad)
}

// gradMaxPool scatter-adds dY to the positions of the maxima. The indices
// are flat over the whole input (batch and channel offsets included), so the
// scatter runs over the flattened input; overlapping windows that pick the
// same element add up. A MaxPool node without the Indices output (read
// from a file) gets a second MaxPool that computes them.
func gradMaxPool(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	x := n.Inputs[0]
	var idx *graph.Value
	if len(n.Outputs) == 2 {
		idx = n.Outputs[1]
	} else {
		idx = b.g.Apply("MaxPool", []*graph.Value{x}, n.Attrs, 2)[1]
	}
	size := x.Shape().Size()
	flat := b.g.ScatterElements(b.zeros(graph.Shape{size}), b.g.Reshape(idx, -1), b.g.Reshape(dy[0], -1), 0, true)
	return []*graph.Value{b.g.Reshape(flat, x.Shape()...)}, nil
}

// gradAveragePool: AveragePool is a depthwise Conv with a kernel of ones
// whose output is divided by the window count (the kernel size, or with
// count_include_pad=0 the taps inside the input, a build-time constant per
// output position); its input gradient is convInputGrad of dY / count.
func gradAveragePool(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	x := n.Inputs[0].Shape()
	win, err := graph.WindowOf(n.Attrs, n.Attrs.Ints("kernel_shape"))
	if err != nil {
		return nil, err
	}
	out := n.Outputs[0].Shape()
	geo := convGeom{n: x[0], c: x[1], m: x[1], group: x[1], in: x[2:].Clone(), out: out[2:].Clone(), win: win}
	var scaled *graph.Value
	if n.Attrs.Int("count_include_pad", 0) != 0 {
		scaled = b.g.Div(dy[0], b.g.ConstFloat(float32(graph.Shape(win.Kernel).Size())))
	} else {
		scaled = b.g.Mul(dy[0], b.g.ConstFloats(append(graph.Shape{1, 1}, geo.out...), inverseCounts(win, geo.in, geo.out)))
	}
	wshape := append(graph.Shape{x[1], 1}, win.Kernel...)
	ones := b.g.Expand(b.g.ConstFloat(1), wshape)
	return []*graph.Value{b.convInputGrad(scaled, ones, geo)}, nil
}

// inverseCounts is 1 / (the number of taps inside the input) for every
// output position of a window, row-major over the output's spatial axes.
func inverseCounts(win graph.Window, in, out []int64) []float32 {
	perAxis := make([][]int64, len(in))
	for i := range in {
		perAxis[i] = make([]int64, out[i])
		for o := range out[i] {
			start := o*win.Strides[i] - win.Pads[i]
			for k := range win.Kernel[i] {
				if pos := start + k; pos >= 0 && pos < in[i] {
					perAxis[i][o]++
				}
			}
		}
	}
	var vals []float32
	for _, idx := range offsets(out) {
		c := int64(1)
		for i, o := range idx {
			c *= perAxis[i][o]
		}
		vals = append(vals, 1/float32(c))
	}
	return vals
}

// gradGlobalAveragePool spreads dY / (spatial size) over the spatial axes.
func gradGlobalAveragePool(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	x := n.Inputs[0].Shape()
	count := x[2:].Size()
	if count == 0 {
		return nil, fmt.Errorf("input %v has no spatial elements", x)
	}
	return []*graph.Value{b.g.Div(b.g.Expand(dy[0], x), b.g.ConstFloat(float32(count)))}, nil
}
