package graph

import "fmt"

// Matrix products: MatMul (numpy semantics, batched) and Gemm (2-D with
// optional transposes, scaling and a broadcast bias).

func matmulRule() map[string]ruleFunc {
	return map[string]ruleFunc{
		"MatMul": matmulShape,
		"Gemm":   gemmShape,
	}
}

func matmulShape(in []*Value, _ Attrs, _ int) ([]outInfo, error) {
	if err := floatOperands(in, 2, 2); err != nil {
		return nil, err
	}
	a, b := in[0].shape, in[1].shape
	if a.Rank() < 2 || b.Rank() < 2 {
		return nil, fmt.Errorf("bmc's MatMul needs rank ≥ 2 on both sides (reshape vectors first)")
	}
	if a[a.Rank()-1] != b[b.Rank()-2] {
		return nil, fmt.Errorf("inner dimensions differ: %d (last of A) vs %d (second to last of B)", a[a.Rank()-1], b[b.Rank()-2])
	}
	batch, err := Broadcast(a[:a.Rank()-2], b[:b.Rank()-2])
	if err != nil {
		return nil, fmt.Errorf("batch dimensions: %w", err)
	}
	out := append(batch, a[a.Rank()-2], b[b.Rank()-1])
	return one(in[0].dtype, out), nil
}

func gemmShape(in []*Value, a Attrs, _ int) ([]outInfo, error) {
	if err := floatOperands(in, 2, 3); err != nil {
		return nil, err
	}
	sa, sb := in[0].shape, in[1].shape
	if sa.Rank() != 2 || sb.Rank() != 2 {
		return nil, fmt.Errorf("operands A and B must be 2-D")
	}
	m, k := sa[0], sa[1]
	if a.Int("transA", 0) != 0 {
		m, k = k, m
	}
	k2, n := sb[0], sb[1]
	if a.Int("transB", 0) != 0 {
		k2, n = n, k2
	}
	if k != k2 {
		return nil, fmt.Errorf("inner dimensions differ after transA=%d, transB=%d: %d vs %d", a.Int("transA", 0), a.Int("transB", 0), k, k2)
	}
	out := Shape{m, n}
	if len(in) == 3 && in[2] != nil {
		if s, err := Broadcast(out, in[2].shape); err != nil || !s.Equal(out) {
			return nil, fmt.Errorf("bias C of shape %v does not broadcast to the output %v", in[2].shape, out)
		}
	}
	return one(in[0].dtype, out), nil
}

// MatMul returns the (batched) matrix product a·b.
func (g *Graph) MatMul(a, b *Value) *Value { return g.apply1("MatMul", nil, a, b) }

// Gemm returns alpha·op(a)·op(b) + beta·c, op transposing when asked; c may be nil.
func (g *Graph) Gemm(a, b, c *Value, transA, transB bool, alpha, beta float32) *Value {
	attrs := Attrs{}
	if transA {
		attrs["transA"] = int64(1)
	}
	if transB {
		attrs["transB"] = int64(1)
	}
	if alpha != 1 {
		attrs["alpha"] = alpha
	}
	if beta != 1 {
		attrs["beta"] = beta
	}
	in := []*Value{a, b}
	if c != nil {
		in = append(in, c)
	}
	return g.apply1("Gemm", attrs, in...)
}
