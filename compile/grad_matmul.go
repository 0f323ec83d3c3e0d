package compile

import "bmc/graph"

// Gradient rules of MatMul and Gemm (graph/ops_matmul.go).

func matmulGrad() map[string]gradFunc {
	return map[string]gradFunc{
		"MatMul": gradMatMul,
		"Gemm":   gradGemm,
	}
}

// swapLast transposes the last two axes.
func (b *gradBuilder) swapLast(x *graph.Value) *graph.Value {
	r := x.Shape().Rank()
	perm := make([]int64, r)
	for i := range perm {
		perm[i] = int64(i)
	}
	perm[r-1], perm[r-2] = perm[r-2], perm[r-1]
	return b.g.Transpose(x, perm...)
}

// gradMatMul: Y = A·B gives dA = dY·Bᵀ and dB = Aᵀ·dY, each summed over
// the batch axes it was broadcast along.
func gradMatMul(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	a, c := n.Inputs[0], n.Inputs[1]
	da := b.g.MatMul(dy[0], b.swapLast(c))
	dc := b.g.MatMul(b.swapLast(a), dy[0])
	return []*graph.Value{b.sumTo(da, a.Shape()), b.sumTo(dc, c.Shape())}, nil
}

// gradGemm: Y = α·op(A)·op(B) + β·C. Each case is one Gemm with the
// transposes chosen so that no explicit Transpose node is needed.
func gradGemm(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	a, c := n.Inputs[0], n.Inputs[1]
	alpha := n.Attrs.Float("alpha", 1)
	beta := n.Attrs.Float("beta", 1)
	ta, tb := n.Attrs.Int("transA", 0) != 0, n.Attrs.Int("transB", 0) != 0
	g, d := b.g, dy[0]
	var da, dc *graph.Value
	if !ta {
		da = g.Gemm(d, c, nil, false, !tb, alpha, 1) // α·dY·op(B)ᵀ
	} else {
		da = g.Gemm(c, d, nil, tb, true, alpha, 1) // α·op(B)·dYᵀ
	}
	if !tb {
		dc = g.Gemm(a, d, nil, !ta, false, alpha, 1) // α·op(A)ᵀ·dY
	} else {
		dc = g.Gemm(d, a, nil, true, ta, alpha, 1) // α·dYᵀ·op(A)
	}
	out := []*graph.Value{da, dc}
	if len(n.Inputs) == 3 && n.Inputs[2] != nil {
		dbias := d
		if beta != 1 {
			dbias = g.Mul(d, g.ConstFloat(beta))
		}
		out = append(out, b.sumTo(dbias, n.Inputs[2].Shape()))
	}
	return out, nil
}
