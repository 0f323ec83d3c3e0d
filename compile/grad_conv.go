package compile

import (
	"fmt"
	"math"
	"slices"

	"bmc/graph"
)

// Gradient rules of the convolution and pooling ops (graph/ops_conv.go).
//
// The Conv gradients are lowered to the forms ONNX Runtime's CPU provider
// runs at about the forward Conv's speed at ResNet18's sizes (measurements
// and the candidates that lost: docs/performance.md, "Conv backward
// lowerings"):
//
//   - input gradient: a plain Conv of the flipped output gradient with the
//     channel-transposed kernel for unit strides, else one ConvTranspose
//     with the forward's geometry and explicit output padding
//     (convInputGrad);
//   - weight gradient: an im2col of the input gathered one kernel tap at a
//     time, each tap one MatMul with the output gradient (convWeightGrad);
//     one Gemm over an element-gathered im2col when the output maps are
//     small (convWeightGradSmall); a Conv of batch-transposed tensors when
//     the input has few channels (convWeightGradByConv).
//
// Average pooling reuses the input-gradient lowering as a depthwise
// ConvTranspose with a constant kernel; max pooling routes dY to each
// window's first maximum and adds the taps back with a one-hot
// ConvTranspose (large windows scatter-add through the Indices output).
// ConvTranspose, which the input gradients emit, has a rule too (a Conv and
// the weight-gradient lowerings), so the gradient graph of a convolutional
// network can be differentiated again.

func convGrad() map[string]gradFunc {
	return map[string]gradFunc{
		"Conv":              gradConv,
		"ConvTranspose":     gradConvTranspose,
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
	out[1] = b.convWeightGradOf(n.Inputs[0], dy[0], geo)
	if len(n.Inputs) == 3 && n.Inputs[2] != nil {
		out[2] = b.g.ReduceSum(dy[0], false, append([]int64{0}, spatialAxes(2, geo.win.Rank())...)...)
	}
	return out, nil
}

// convWeightGradOf picks the weight-gradient lowering for the geometry.
func (b *gradBuilder) convWeightGradOf(x, dy *graph.Value, geo convGeom) *graph.Value {
	switch {
	case geo.group == 1 && geo.c < minGatherChannels:
		return b.convWeightGradByConv(x, dy, geo)
	case geo.group == 1 && (graph.Shape(geo.win.Kernel).Size() == 1 || geo.n*graph.Shape(geo.out).Size() < geo.m):
		return b.convWeightGradSmall(x, dy, geo)
	default:
		return b.convWeightGrad(x, dy, geo)
	}
}

// gradConvTranspose: Y = ConvTranspose(X, W) is the adjoint of the Conv
// with W's geometry that maps Y's shape to X's, so ⟨dY, Y⟩ = ⟨Conv(dY, W),
// X⟩. Hence dX is that Conv of dY, and dW is the Conv weight gradient with dY as the Conv's input and
// X as its output gradient (the same lowerings as gradConv). The input
// gradients of Conv are ConvTransposes, so second derivatives of
// convolutional networks need this rule.
func gradConvTranspose(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	x, w, y := n.Inputs[0].Shape(), n.Inputs[1].Shape(), n.Outputs[0].Shape()
	win, err := graph.WindowOf(n.Attrs, w[2:])
	if err != nil {
		return nil, err
	}
	group := n.Attrs.Int("group", 1)
	geo := convGeom{n: x[0], c: y[1], m: x[1], group: group, in: y[2:].Clone(), out: x[2:].Clone(), win: win}
	r := win.Rank()
	dx := b.g.Conv(dy[0], n.Inputs[1], nil, graph.ConvOpts{Strides: win.Strides, Pads: win.Pads, Dilations: win.Dilations, Group: group})
	if !slices.Equal(dx.Shape()[2:], geo.out) {
		return nil, fmt.Errorf("output padding %v is not below the strides %v (ONNX Runtime refuses that form too)", n.Attrs.Ints("output_padding"), win.Strides)
	}
	out := make([]*graph.Value, len(n.Inputs))
	out[0] = dx
	out[1] = b.convWeightGradOf(dy[0], n.Inputs[0], geo)
	if len(n.Inputs) == 3 && n.Inputs[2] != nil {
		out[2] = b.g.ReduceSum(dy[0], false, append([]int64{0}, spatialAxes(2, r)...)...)
	}
	return out, nil
}

// offsets lists every multi-index of a box of the given extent, row-major.
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
	full, padded := fullPads(x, first, pads)
	if !padded {
		return x
	}
	return b.g.Pad(x, full...)
}

// fullPads spreads pads of the spatial axes (from axis first) over every
// axis of x, and reports whether any is nonzero.
func fullPads(x *graph.Value, first int, pads []int64) ([]int64, bool) {
	rank, r := x.Shape().Rank(), len(pads)/2
	full := make([]int64, 2*rank)
	for i := range r {
		full[first+i] = pads[i]
		full[rank+first+i] = pads[r+i]
	}
	return full, slices.ContainsFunc(pads, func(p int64) bool { return p != 0 })
}

// convWeightGrad computes dW [M, C/G, k…] as a sum over kernel taps of
// matrix products (im2col one tap at a time):
//
//	cols_k[n·P + o, c] = xpad[n, c, o·s + k·d]          (P output positions o)
//	dW[m, c, k]        = Σ_q dY[n, m, o] · cols_k[q, c]  (q = n·P + o, per group)
//
// The padded input is transposed once to channels-last [N, ΠS, C]; each
// cols_k is one Gather of whole channel rows along the flattened spatial
// axis, at a constant index of the tap's positions. Gathering one tap
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

	pos := outputPositions(win, padded, geo.out)
	parts := make([]*graph.Value, 0, taps)
	for _, off := range tapOffsets(win, padded) {
		idx := make([]int64, p)
		for o, at := range pos {
			idx[o] = at + off
		}
		cols := g.Gather(xt, g.Constant(graph.Int64Tensor(graph.Shape{p}, idx)), 1) // [N, P, C]
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

// convWeightGradSmall computes dW of a one-group Conv with a 1×1 kernel or
// few output positions (N·P below the output channels) as one Gemm over an
// im2col gathered element by element in channel-major order:
//
//	cols[c, k, n·P + o] = xpad[n, c, o·s + k·d],   dW[m, c·K + k] = Σ_q dY[n, m, o] · cols[c·K + k, q].
//
// The product then comes out in the weights' own [M, C, K] layout, where
// convWeightGrad's per-tap products need a transpose of dW that costs more
// than the whole product when the maps are 4×4 or 8×2 (ResNet18's last
// stage). For an unpadded 1×1 kernel cols is just the input at the output
// positions (a strided Slice), and this is the plain product dW = dY·xᵀ.
func (b *gradBuilder) convWeightGradSmall(x, dy *graph.Value, geo convGeom) *graph.Value {
	g, win, r := b.g, geo.win, geo.win.Rank()
	taps := graph.Shape(win.Kernel).Size()
	p := graph.Shape(geo.out).Size()
	swap := append([]int64{1, 0}, spatialAxes(2, r)...)
	dyt := g.Reshape(g.Transpose(dy, swap...), geo.m, geo.n*p)
	wshape := append([]int64{geo.m, geo.c}, win.Kernel...)
	if taps == 1 && !slices.ContainsFunc(win.Pads, func(p int64) bool { return p != 0 }) {
		// cols is the input at the output positions: a strided Slice.
		xs := x
		if !slices.Equal(geo.in, geo.out) {
			ends := make([]int64, r)
			for i := range r {
				ends[i] = win.Strides[i]*(geo.out[i]-1) + 1
			}
			xs = g.Slice(x, make([]int64, r), ends, spatialAxes(2, r), win.Strides)
		}
		cols := g.Reshape(g.Transpose(xs, swap...), geo.c, geo.n*p)
		return g.Reshape(g.Gemm(dyt, cols, nil, false, true, 1, 1), wshape...)
	}
	xp := b.padSpatial(x, 2, win.Pads)
	padded := xp.Shape()[2:]
	xt := g.Reshape(g.Transpose(xp, swap...), geo.c, geo.n*padded.Size())
	// idx[k, n·P + o] = tap offset + batch offset + output position.
	pos := outputPositions(win, padded, geo.out)
	idx := make([]int64, 0, taps*geo.n*p)
	for _, off := range tapOffsets(win, padded) {
		for n := range geo.n {
			for _, at := range pos {
				idx = append(idx, off+n*padded.Size()+at)
			}
		}
	}
	cols := g.Gather(xt, g.Constant(graph.Int64Tensor(graph.Shape{taps, geo.n * p}, idx)), 1) // [C, K, N·P]
	dw := g.Gemm(dyt, g.Reshape(cols, geo.c*taps, geo.n*p), nil, false, true, 1, 1)
	return g.Reshape(dw, wshape...)
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

// outputPositions are the flat positions, in an input of spatial shape
// padded (row-major), of every output's first tap: Σ_i o_i·s_i·stride_i,
// for the outputs in row-major order.
func outputPositions(win graph.Window, padded graph.Shape, out []int64) []int64 {
	elem := rowMajorStrides(padded)
	var pos []int64
	for _, o := range offsets(out) {
		var at int64
		for i := range o {
			at += o[i] * win.Strides[i] * elem[i]
		}
		pos = append(pos, at)
	}
	return pos
}

// tapOffsets are the flat offsets of the kernel taps (row-major) from an
// output's first tap: Σ_i k_i·d_i·stride_i.
func tapOffsets(win graph.Window, padded graph.Shape) []int64 {
	elem := rowMajorStrides(padded)
	var offs []int64
	for _, k := range offsets(win.Kernel) {
		var off int64
		for i := range k {
			off += k[i] * win.Dilations[i] * elem[i]
		}
		offs = append(offs, off)
	}
	return offs
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

// convInputGrad computes dX [N, C, S…] of a Conv from dY [N, M, O…]: one
// ConvTranspose with the forward's geometry, whose output padding restores
// the input rows no window reached (when S + pads − span is not a multiple
// of the stride). ORT's CPU provider runs it at about the forward Conv's
// speed except where the kernel dwarfs the maps (ResNet18's 512-channel
// 4×4 maps, 2× slower); there, with unit strides, a plain Conv
// (convInputGradStride1) is used instead (docs/performance.md).
func (b *gradBuilder) convInputGrad(dy, w *graph.Value, geo convGeom) *graph.Value {
	win := geo.win
	unit := !slices.ContainsFunc(win.Strides, func(s int64) bool { return s != 1 })
	if unit && w.Shape().Size() > 4*dy.Shape().Size() {
		return b.convInputGradStride1(dy, w, geo)
	}
	outPad := make([]int64, win.Rank())
	for i := range outPad {
		outPad[i] = geo.in[i] + win.Pads[i] + win.Pads[win.Rank()+i] - win.Span(i) - win.Strides[i]*(geo.out[i]-1)
	}
	o := graph.ConvOpts{Strides: win.Strides, Pads: win.Pads, Dilations: win.Dilations, Group: geo.group}
	return b.g.ConvTranspose(dy, w, o, outPad)
}

// convInputGradStride1 is the input gradient of a unit-stride Conv: the
// correlation of dY with the spatially flipped, channel-transposed kernel,
// padded by d·(k−1) − p on each side. Flipping the kernel costs a
// per-element copy of every weight, so dY is flipped instead, and the
// result back, with the pads swapped:
//
//	dX = flip(Conv(flip(dY), Wᵀ)),   Wᵀ[g·C/G + c, m] = W[g·M/G + m, c].
func (b *gradBuilder) convInputGradStride1(dy, w *graph.Value, geo convGeom) *graph.Value {
	g, win, r := b.g, geo.win, geo.win.Rank()
	cg, mg := geo.c/geo.group, geo.m/geo.group
	var wt *graph.Value
	if geo.group == 1 {
		wt = g.Transpose(w, append([]int64{1, 0}, spatialAxes(2, r)...)...)
	} else {
		wt = g.Reshape(w, append([]int64{geo.group, mg, cg}, win.Kernel...)...)
		wt = g.Transpose(wt, append([]int64{0, 2, 1}, spatialAxes(3, r)...)...)
		wt = g.Reshape(wt, append([]int64{geo.c, mg}, win.Kernel...)...)
	}

	pads := make([]int64, 2*r)
	for i := range r {
		pads[i] = win.Span(i) - 1 - win.Pads[r+i]
		pads[r+i] = win.Span(i) - 1 - win.Pads[i]
	}
	in := b.flipSpatial(dy)
	o := graph.ConvOpts{Dilations: win.Dilations, Group: geo.group}
	if slices.ContainsFunc(pads, func(p int64) bool { return p < 0 }) {
		in = b.padSpatial(in, 2, pads)
	} else {
		o.Pads = pads
	}
	return b.flipSpatial(g.Conv(in, wt, nil, o))
}

// flipSpatial reverses every spatial axis (2, 3, …) of x.
func (b *gradBuilder) flipSpatial(x *graph.Value) *graph.Value {
	r := x.Shape().Rank() - 2
	starts, ends, steps := make([]int64, r), make([]int64, r), make([]int64, r)
	for i := range r {
		n := x.Shape()[2+i]
		starts[i], ends[i], steps[i] = n-1, -n-1, -1
	}
	return b.g.Slice(x, starts, ends, spatialAxes(2, r), steps)
}

// gradMaxPool routes each dY to the maximum of its window. With at most
// maxPoolTapLimit taps per window it never materialises the indices
// (ORT's MaxPool with an Indices output and its ScatterElements with add
// are both element-by-element kernels, together about 60× the plain
// MaxPool at ResNet18's stem, docs/performance.md): the windows' taps are
// strided Slices of the input padded with −∞, stacked along a new axis of
// the (batch·channel)-flattened tensor [N·C, K, O…]; ArgMax picks the first
// maximum of each window (PyTorch's choice among ties); an Equal against
// the tap numbers and a Where put dY on the chosen tap; and a ConvTranspose
// with one-hot kernels [K, 1, k…] adds every tap back onto its input
// position, so windows that pick the same element add up. Larger windows
// scatter-add through the Indices. Both forms count the same FLOPs: the
// window's comparisons and one add per dY.
func gradMaxPool(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	x := n.Inputs[0]
	win, err := graph.WindowOf(n.Attrs, n.Attrs.Ints("kernel_shape"))
	if err != nil {
		return nil, err
	}
	if graph.Shape(win.Kernel).Size() > maxPoolTapLimit {
		return []*graph.Value{b.maxPoolGradByIndices(n, dy[0])}, nil
	}
	return []*graph.Value{b.maxPoolGradByTaps(x, dy[0], win)}, nil
}

// maxPoolTapLimit is the largest window gradMaxPool lowers tap by tap: the
// stacked taps are K× the output, so large windows scatter instead.
const maxPoolTapLimit = 27

func (b *gradBuilder) maxPoolGradByTaps(x, dy *graph.Value, win graph.Window) *graph.Value {
	g, r := b.g, win.Rank()
	xs, ys := x.Shape(), dy.Shape()
	nc := xs[0] * xs[1]
	xp := g.Reshape(x, append([]int64{nc, 1}, xs[2:]...)...)
	if pads, padded := fullPads(xp, 2, win.Pads); padded {
		xp = g.PadWith(xp, float32(math.Inf(-1)), pads...) // padding never wins
	}
	taps := offsets(win.Kernel)
	sliced := make([]*graph.Value, len(taps))
	for t, k := range taps {
		starts, ends, steps := make([]int64, r), make([]int64, r), make([]int64, r)
		for i := range r {
			starts[i] = k[i] * win.Dilations[i]
			steps[i] = win.Strides[i]
			ends[i] = starts[i] + (ys[2+i]-1)*win.Strides[i] + 1
		}
		sliced[t] = g.Slice(xp, starts, ends, spatialAxes(2, r), steps)
	}
	stacked := g.Concat(1, sliced...)
	first := g.ArgMax(stacked, 1, true)
	numbers := make([]int64, len(taps))
	for t := range numbers {
		numbers[t] = int64(t)
	}
	numShape := slices.Repeat(graph.Shape{1}, r+2) // [1, K, 1…]
	numShape[1] = int64(len(taps))
	tapNo := g.Constant(graph.Int64Tensor(numShape, numbers))
	flatDY := g.Reshape(dy, append([]int64{nc, 1}, ys[2:]...)...)
	chosen := g.Equal(first, tapNo)
	chosen.SetCountAs(0) // bookkeeping: ArgMax made the comparisons
	routed := g.Where(chosen, flatDY, g.ConstFloat(0))
	onehot := make([]float32, len(taps)*len(taps))
	for t := range taps {
		onehot[t*len(taps)+t] = 1
	}
	kernel := g.ConstFloats(append(graph.Shape{int64(len(taps)), 1}, win.Kernel...), onehot)
	geo := convGeom{n: nc, c: 1, m: int64(len(taps)), group: 1, in: xs[2:].Clone(), out: ys[2:].Clone(), win: win}
	dx := b.convInputGrad(routed, kernel, geo)
	dx.SetCountAs(ys.Size()) // one add per routed dY, as the scatter counts
	return g.Reshape(dx, xs...)
}

// maxPoolGradByIndices scatter-adds dY to the positions of the maxima. The
// indices are flat over the whole input (batch and channel offsets
// included), so the scatter runs over the flattened input; overlapping
// windows that pick the same element add up. A MaxPool node without the
// Indices output (what Graph.MaxPool builds, as ORT computes that form
// several times faster) gets a second MaxPool that computes them.
func (b *gradBuilder) maxPoolGradByIndices(n *graph.Node, dy *graph.Value) *graph.Value {
	x := n.Inputs[0]
	var idx *graph.Value
	if len(n.Outputs) == 2 {
		idx = n.Outputs[1]
	} else {
		idx = b.g.Apply("MaxPool", []*graph.Value{x}, n.Attrs, 2)[1]
	}
	size := x.Shape().Size()
	flat := b.g.ScatterElements(b.zeros(graph.Shape{size}), b.g.Reshape(idx, -1), b.g.Reshape(dy, -1), 0, true)
	return b.g.Reshape(flat, x.Shape()...)
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
