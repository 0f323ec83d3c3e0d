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
//   - weight gradient: im2col of the input built from strided Slices, then
//     one matrix product with the output gradient (convWeightGrad);
//   - input gradient: a polyphase decomposition into stride-1 Convs of the
//     output gradient with flipped, channel-transposed sub-kernels, one per
//     output phase, interleaved by Concat and Reshape (convInputGrad). For
//     stride 1 this is a single plain Conv.
//
// Average pooling reuses the input-gradient lowering as a depthwise Conv
// with a constant kernel; max pooling scatters through its Indices output.

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
	out[1] = b.convWeightGrad(n.Inputs[0], dy[0], geo)
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

// convWeightGrad computes dW [M, C/G, k…] as an im2col matrix product:
//
//	cols[g, c·K + k, n·P + o] = xpad[n, g·C/G + c, o·s + k·d]   (one strided Slice per tap k)
//	dW[g·M/G + m, c·K + k]    = Σ_q dY[n, g·M/G + m, o] · cols[g, c·K + k, q]   (q = n·P + o)
//
// The input is transposed once to [G, C/G, N, spatial…] so that every tap's
// Slice is a block of whole rows and the taps concatenate on an outer axis.
// With one group the product is a single Gemm with B transposed; with more
// it is a batched MatMul.
func (b *gradBuilder) convWeightGrad(x, dy *graph.Value, geo convGeom) *graph.Value {
	g, win, r := b.g, geo.win, geo.win.Rank()
	cg, mg := geo.c/geo.group, geo.m/geo.group
	taps := graph.Shape(win.Kernel).Size()
	p := graph.Shape(geo.out).Size()

	// x [N, C, S…] → [G, C/G, N, S…], padded.
	xs := append([]int64{geo.n, geo.group, cg}, geo.in...)
	perm := append([]int64{1, 2, 0}, spatialAxes(3, r)...)
	xt := b.padSpatial(g.Transpose(g.Reshape(x, xs...), perm...), 3, win.Pads)

	pieces := make([]*graph.Value, 0, taps)
	for _, k := range offsets(win.Kernel) {
		starts, ends, steps := make([]int64, r), make([]int64, r), make([]int64, r)
		whole := true
		for i := range r {
			starts[i] = k[i] * win.Dilations[i]
			ends[i] = starts[i] + win.Strides[i]*(geo.out[i]-1) + 1
			steps[i] = win.Strides[i]
			whole = whole && starts[i] == 0 && steps[i] == 1 && ends[i] == xt.Shape()[3+i]
		}
		if whole {
			pieces = append(pieces, xt)
		} else {
			pieces = append(pieces, g.Slice(xt, starts, ends, spatialAxes(3, r), steps))
		}
	}
	cols := pieces[0]
	if len(pieces) > 1 {
		// Concatenating [G, C/G, N, O…] pieces on axis 2 lays them out as
		// [G, C/G, K, N, O…].
		cols = g.Concat(2, pieces...)
	}
	// dY [N, M, O…] → [M, N, O…] → [G, M/G, N·P].
	dyt := g.Transpose(dy, append([]int64{1, 0}, spatialAxes(2, r)...)...)
	wshape := append([]int64{geo.m, cg}, win.Kernel...)
	if geo.group == 1 {
		dw := g.Gemm(g.Reshape(dyt, geo.m, geo.n*p), g.Reshape(cols, cg*taps, geo.n*p), nil, false, true, 1, 1)
		return g.Reshape(dw, wshape...)
	}
	colsT := g.Transpose(g.Reshape(cols, geo.group, cg*taps, geo.n*p), 0, 2, 1)
	dw := g.MatMul(g.Reshape(dyt, geo.group, mg, geo.n*p), colsT)
	return g.Reshape(dw, wshape...)
}

// flippedWeights turns Conv weights [M, C/G, k…] into the weights of the
// transposed convolution: [C, M/G, k…] with every spatial axis reversed.
func (b *gradBuilder) flippedWeights(w *graph.Value, geo convGeom) *graph.Value {
	g, r := b.g, geo.win.Rank()
	cg, mg := geo.c/geo.group, geo.m/geo.group
	wt := g.Reshape(w, append([]int64{geo.group, mg, cg}, geo.win.Kernel...)...)
	wt = g.Transpose(wt, append([]int64{0, 2, 1}, spatialAxes(3, r)...)...)
	wt = g.Reshape(wt, append([]int64{geo.c, mg}, geo.win.Kernel...)...)
	starts, ends, steps := make([]int64, r), make([]int64, r), make([]int64, r)
	for i, k := range geo.win.Kernel {
		if k == 1 {
			starts[i], ends[i], steps[i] = 0, 1, 1
		} else {
			starts[i], ends[i], steps[i] = k-1, -k-1, -1
		}
	}
	if slices.Equal(geo.win.Kernel, slices.Repeat([]int64{1}, r)) {
		return wt
	}
	return g.Slice(wt, starts, ends, spatialAxes(2, r), steps)
}

// phaseAxis is one output phase r of one spatial axis in the polyphase input
// gradient: the input positions i = s·q + r receive the taps k = k0 + j·step
// (j < taps) of the kernel; with dY padded by (padBegin, padEnd) they are a
// stride-1 Conv with the sub-kernel of those taps, dilated by dil.
type phaseAxis struct {
	k0, step, taps, dil int64
	padBegin, padEnd    int64
}

// phaseOf solves, along one axis, which kernel taps reach input phase r:
// d·k ≡ r + p (mod s). With gcd g = gcd(s, d) there are taps only when
// g | r + p; they are then k0, k0 + s/g, …, and consecutive taps read output
// positions d/g apart. q outputs are produced per phase.
func phaseOf(r, s, d, p, kernel, outLen, q int64) phaseAxis {
	gcd := func(a, b int64) int64 {
		for b != 0 {
			a, b = b, a%b
		}
		return a
	}(s, d)
	step, dil := s/gcd, d/gcd
	ph := phaseAxis{step: step, dil: dil}
	if (r+p)%gcd != 0 {
		return ph
	}
	ph.k0 = -1
	for k := range min(step, kernel) {
		if (d*k-r-p)%s == 0 {
			ph.k0 = k
			break
		}
	}
	if ph.k0 < 0 {
		return phaseAxis{step: step, dil: dil}
	}
	ph.taps = (kernel-1-ph.k0)/step + 1
	// dX[s·q + r] = Σ_j dY[q + c − j·dil]·w[k0 + j·step], c = (r + p − d·k0)/s.
	c := (r + p - d*ph.k0) / s
	ph.padBegin = (ph.taps-1)*dil - c
	ph.padEnd = q - outLen - ph.padBegin + (ph.taps-1)*dil
	return ph
}

// convInputGrad computes dX [N, C, S…] of a Conv from dY [N, M, O…] by the
// polyphase decomposition: along each axis the input positions split into
// s phases (i mod s), and each combination of phases is a stride-1 Conv of
// dY with the flipped, channel-transposed taps that reach it. The phases
// are interleaved by Unsqueeze, Concat and one Reshape, and cropped to the
// input length. With stride 1 this is one Conv with pads d·(k−1) − p.
func (b *gradBuilder) convInputGrad(dy, w *graph.Value, geo convGeom) *graph.Value {
	g, win, r := b.g, geo.win, geo.win.Rank()
	wf := b.flippedWeights(w, geo)
	q := make([]int64, r) // outputs per phase along each axis
	for i := range r {
		q[i] = (geo.in[i] + win.Strides[i] - 1) / win.Strides[i]
	}
	phaseShape := append([]int64{geo.n, geo.c}, q...)

	// One Conv per combination of phases, in row-major phase order.
	var phases []*graph.Value
	for _, ph := range offsets(win.Strides) {
		axes := make([]phaseAxis, r)
		empty := false
		for i := range r {
			axes[i] = phaseOf(ph[i], win.Strides[i], win.Dilations[i], win.Pads[i], win.Kernel[i], geo.out[i], q[i])
			empty = empty || axes[i].taps == 0
		}
		if empty {
			phases = append(phases, b.zeros(graph.Shape(phaseShape)))
			continue
		}
		phases = append(phases, b.phaseConv(dy, wf, geo, axes))
	}

	// Interleave: the last axis first, each phase axis right after its q axis.
	for i := r - 1; i >= 0; i-- {
		s := int(win.Strides[i])
		if s == 1 {
			continue
		}
		var merged []*graph.Value
		for start := 0; start < len(phases); start += s {
			group := make([]*graph.Value, s)
			for j := range s {
				group[j] = g.Unsqueeze(phases[start+j], int64(3+i))
			}
			merged = append(merged, g.Concat(int64(3+i), group...))
		}
		phases = merged
	}
	dx := phases[0]
	if dx.Shape().Rank() != 2+r {
		full := []int64{geo.n, geo.c}
		for i := range r {
			full = append(full, q[i]*win.Strides[i])
		}
		dx = g.Reshape(dx, full...)
	}
	if slices.Equal(dx.Shape()[2:], graph.Shape(geo.in)) {
		return dx
	}
	return g.Slice(dx, make([]int64, r), geo.in, spatialAxes(2, r), nil)
}

// phaseConv is one phase of convInputGrad: a stride-1 Conv of dY with the
// sub-kernel of the flipped weights wf that the phase's taps form.
func (b *gradBuilder) phaseConv(dy, wf *graph.Value, geo convGeom, axes []phaseAxis) *graph.Value {
	g, r := b.g, len(axes)
	starts, ends, steps := make([]int64, r), make([]int64, r), make([]int64, r)
	whole := true
	pads := make([]int64, 2*r)
	dil := make([]int64, r)
	for i, a := range axes {
		k := geo.win.Kernel[i]
		// Tap k0 + j·step of w is tap k−1−k0−j·step of wf; the sub-kernel
		// runs over them in increasing wf order.
		starts[i] = k - 1 - a.k0 - (a.taps-1)*a.step
		ends[i] = k - a.k0
		steps[i] = a.step
		whole = whole && a.taps == k
		pads[i], pads[r+i] = a.padBegin, a.padEnd
		dil[i] = a.dil
	}
	sub := wf
	if !whole {
		sub = g.Slice(wf, starts, ends, spatialAxes(2, r), steps)
	}
	opts := graph.ConvOpts{Dilations: dil, Group: geo.group}
	in := dy
	if slices.ContainsFunc(pads, func(p int64) bool { return p < 0 }) {
		in = b.padSpatial(dy, 2, pads)
	} else {
		opts.Pads = pads
	}
	return g.Conv(in, sub, nil, opts)
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
