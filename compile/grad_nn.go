package compile

import "bmc/graph"

// Gradient rules of the neural-network ops (graph/ops_nn.go).

func nnGrad() map[string]gradFunc {
	return map[string]gradFunc{
		"Softmax":            gradSoftmax,
		"LogSoftmax":         gradLogSoftmax,
		"LayerNormalization": gradLayerNorm,
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

// gradLayerNorm differentiates y = x̂⊙γ + β with x̂ = (x − μ)·r over the
// normalised axes (r = 1/√(σ² + ε), N elements per row):
//
//	dx = r · (g − mean(g) − x̂ · mean(g⊙x̂)),  g = dy⊙γ
//	dγ = Σ_lead dy⊙x̂,  dβ = Σ_lead dy
//
// and, where the Mean and InvStdDev outputs reach the loss (the first
// gradient uses them, so a second derivative reaches them),
//
//	dx += dμ/N − dr·r²·x̂/N,
//
// from ∂μ/∂x = 1/N and ∂r/∂x = −r³·(x − μ)/N. μ and r come from the node's
// outputs when it declares them, else they are recomputed from x.
func gradLayerNorm(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	g := b.g
	x, scale := n.Inputs[0], n.Inputs[1]
	rank := x.Shape().Rank()
	ax, err := graph.LayerNormAxis(rank, n.Attrs)
	if err != nil {
		return nil, err
	}
	var norm, lead []int64
	for i := range rank {
		if i < ax {
			lead = append(lead, int64(i))
		} else {
			norm = append(norm, int64(i))
		}
	}
	var mean, r *graph.Value
	if len(n.Outputs) == 3 {
		mean, r = n.Outputs[1], n.Outputs[2]
	} else {
		mean = g.ReduceMean(x, true, norm...)
		c := g.Sub(x, mean)
		variance := g.ReduceMean(g.Mul(c, c), true, norm...)
		eps := g.ConstFloat(n.Attrs.Float("epsilon", 1e-5))
		r = g.Reciprocal(g.Sqrt(g.Add(variance, eps)))
	}
	xhat := g.Mul(g.Sub(x, mean), r)
	sumLead := func(v *graph.Value) *graph.Value {
		if len(lead) == 0 {
			return v
		}
		return g.ReduceSum(v, false, lead...)
	}
	out := make([]*graph.Value, len(n.Inputs))
	var terms []*graph.Value
	if d := dy[0]; d != nil {
		gx := g.Mul(d, scale)
		m1 := g.ReduceMean(gx, true, norm...)
		m2 := g.ReduceMean(g.Mul(gx, xhat), true, norm...)
		terms = append(terms, g.Mul(r, g.Sub(g.Sub(gx, m1), g.Mul(xhat, m2))))
		out[1] = sumLead(g.Mul(d, xhat))
		if len(n.Inputs) == 3 && n.Inputs[2] != nil {
			out[2] = sumLead(d)
		}
	}
	count := func() *graph.Value { return g.ConstFloat(float32(x.Shape()[ax:].Size())) }
	if len(dy) > 1 && dy[1] != nil {
		terms = append(terms, g.Div(g.Expand(dy[1], x.Shape()), count()))
	}
	if len(dy) > 2 && dy[2] != nil {
		terms = append(terms, g.Neg(g.Div(g.Mul(g.Mul(dy[2], g.Mul(r, r)), xhat), count())))
	}
	if len(terms) > 0 {
		dx := terms[0]
		for _, t := range terms[1:] {
			dx = g.Add(dx, t)
		}
		out[0] = dx
	}
	return out, nil
}
