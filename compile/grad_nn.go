package compile

import "bmc/graph"

// Gradient rules of the neural-network ops (graph/ops_nn.go).

func nnGrad() map[string]gradFunc {
	return map[string]gradFunc{
		"Softmax":    gradSoftmax,
		"LogSoftmax": gradLogSoftmax,
	}
}

// gradSoftmax: dx = y ⊙ (dy − Σ_axis dy⊙y).
func gradSoftmax(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	y := n.Outputs[0]
	axis := n.Attrs.Int("axis", -1)
	s := b.g.ReduceSum(b.g.Mul(dy[0], y), true, axis)
	return []*graph.Value{b.g.Mul(y, b.g.Sub(dy[0], s))}, nil
}

// gradLogSoftmax: dx = dy − softmax(x) ⊙ Σ_axis dy, with softmax(x) = exp(y).
func gradLogSoftmax(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	y := n.Outputs[0]
	axis := n.Attrs.Int("axis", -1)
	s := b.g.ReduceSum(dy[0], true, axis)
	return []*graph.Value{b.g.Sub(dy[0], b.g.Mul(b.g.Exp(y), s))}, nil
}
