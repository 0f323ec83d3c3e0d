package compile

import "bmc/graph"

// Gradient rules of the data-movement ops (graph/ops_shape.go).

func shapeGrad() map[string]gradFunc {
	return map[string]gradFunc{
		"Reshape":   gradReshape,
		"Squeeze":   gradReshape,
		"Unsqueeze": gradReshape,
		"Transpose": gradTranspose,
		"Concat":    gradConcat,
		"Split":     gradSplit,
		"Slice":     gradSlice,
		"Expand":    gradExpand,
		"Pad":       gradPad,
	}
}

func inputGrad(n *graph.Node, dx *graph.Value) []*graph.Value {
	out := make([]*graph.Value, len(n.Inputs))
	out[0] = dx
	return out
}

func gradReshape(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	return inputGrad(n, b.g.Reshape(dy[0], n.Inputs[0].Shape()...)), nil
}

func gradTranspose(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	perm, err := graph.TransposePerm(n.Inputs[0].Shape().Rank(), n.Attrs)
	if err != nil {
		return nil, err
	}
	inv := make([]int64, len(perm))
	for i, p := range perm {
		inv[p] = int64(i)
	}
	return inputGrad(n, b.g.Transpose(dy[0], inv...)), nil
}

func gradConcat(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	axis := n.Attrs.Int("axis", 0)
	sizes := make([]int64, len(n.Inputs))
	rank := n.Inputs[0].Shape().Rank()
	ax := axis
	if ax < 0 {
		ax += int64(rank)
	}
	for i, in := range n.Inputs {
		sizes[i] = in.Shape()[ax]
	}
	if len(sizes) == 1 {
		return []*graph.Value{dy[0]}, nil
	}
	return b.g.Split(dy[0], ax, sizes...), nil
}

func gradSplit(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	parts := make([]*graph.Value, len(dy))
	for i, d := range dy {
		if d == nil {
			d = b.zeros(n.Outputs[i].Shape())
		}
		parts[i] = d
	}
	return inputGrad(n, b.g.Concat(n.Attrs.Int("axis", 0), parts...)), nil
}

// gradSlice puts dY back at the positions the slice took, zeros elsewhere.
// Unit steps are one Pad. A step s > 1 spreads dY first: each element is
// followed by s − 1 zeros (a Reshape that adds an axis of 1, a Pad of that
// axis to s, a Reshape that merges it), so element i lands at i·s; a
// negative step reverses dY along the axis and spreads it from the lowest
// position taken. Every op emitted is differentiable again, which second
// derivatives through the convolution gradients need (their flips and
// strided im2col are slices).
func gradSlice(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	x := n.Inputs[0]
	starts, ends, axes, steps, err := graph.SliceOperands(n.Inputs)
	if err != nil {
		return nil, err
	}
	ranges, err := graph.ResolveSlice(x.Shape(), starts, ends, axes, steps)
	if err != nil {
		return nil, err
	}
	g := b.g
	rank := x.Shape().Rank()
	pads := make([]int64, 2*rank)
	d := dy[0]
	for _, r := range ranges {
		ax := int(r.Axis)
		if r.Count == 0 {
			return inputGrad(n, b.zeros(x.Shape())), nil
		}
		lo, step := r.Start, r.Step
		if step < 0 {
			// Taken in reverse from Start: the same elements ascending from
			// the lowest one.
			lo, step = r.Start+(r.Count-1)*r.Step, -r.Step
			d = b.flipAxis(d, ax)
		}
		span := r.Count
		if step > 1 {
			d = b.spread(d, ax, step)
			span = r.Count * step
		}
		pads[ax] = lo
		pads[ax+rank] = x.Shape()[ax] - lo - span
	}
	return inputGrad(n, g.Pad(d, pads...)), nil
}

// flipAxis reverses x along one axis.
func (b *gradBuilder) flipAxis(x *graph.Value, axis int) *graph.Value {
	n := x.Shape()[axis]
	return b.g.Slice(x, []int64{n - 1}, []int64{-n - 1}, []int64{int64(axis)}, []int64{-1})
}

// spread follows every element of x along axis with step − 1 zeros: the
// axis grows from c to c·step and element i moves to i·step.
func (b *gradBuilder) spread(x *graph.Value, axis int, step int64) *graph.Value {
	s := x.Shape()
	split := append(append(s[:axis+1].Clone(), 1), s[axis+1:]...)
	pads := make([]int64, 2*split.Rank())
	pads[split.Rank()+axis+1] = step - 1
	merged := s.Clone()
	merged[axis] *= step
	return b.g.Reshape(b.g.Pad(b.g.Reshape(x, split...), pads...), merged...)
}

// gradPad crops dY back (negative pads).
func gradPad(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	pads, _ := n.Inputs[1].Const().Ints()
	neg := make([]int64, len(pads))
	for i, p := range pads {
		neg[i] = -p
	}
	return inputGrad(n, b.g.Pad(dy[0], neg...)), nil
}

func gradExpand(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	return inputGrad(n, b.sumTo(dy[0], n.Inputs[0].Shape())), nil
}
