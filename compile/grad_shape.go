package compile

import (
	"fmt"

	"bmc/graph"
)

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

// gradSlice pads dY with zeros back to the input's shape (unit steps only).
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
	rank := x.Shape().Rank()
	pads := make([]int64, 2*rank)
	for _, r := range ranges {
		if r.Step != 1 {
			return nil, fmt.Errorf("strided Slice (step %d) has no gradient rule", r.Step)
		}
		pads[r.Axis] = r.Start
		pads[int(r.Axis)+rank] = x.Shape()[r.Axis] - r.Start - r.Count
	}
	return inputGrad(n, b.g.Pad(dy[0], pads...)), nil
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
