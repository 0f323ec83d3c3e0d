package compile

import (
	"fmt"
	"math"

	"bmc/graph"
)

// Gradient rules of the elementwise ops (graph/ops_elementwise.go).

func elementwiseGrad() map[string]gradFunc {
	return map[string]gradFunc{
		"Add":      gradAdd,
		"Sub":      gradSub,
		"Mul":      gradMul,
		"Div":      gradDiv,
		"Sum":      gradSum,
		"Neg":      unaryGrad(func(b *gradBuilder, x, y, dy *graph.Value) *graph.Value { return b.g.Neg(dy) }),
		"Identity": unaryGrad(func(b *gradBuilder, x, y, dy *graph.Value) *graph.Value { return dy }),
		// d|x| = sign(x), 0 at 0 as in PyTorch.
		"Abs": unaryGrad(func(b *gradBuilder, x, y, dy *graph.Value) *graph.Value { return b.g.Mul(dy, b.g.Sign(x)) }),
		// 0 at x = 0, as in PyTorch. The mask reads the output (y > 0 where
		// x > 0), so the input need not stay alive for the backward: after a
		// batch norm that frees its output, as PyTorch's in-place ReLU does.
		"Relu": unaryGrad(func(b *gradBuilder, x, y, dy *graph.Value) *graph.Value {
			return b.g.Where(b.g.Greater(y, b.g.ConstFloat(0)), dy, b.g.ConstFloat(0))
		}),
		"Exp": unaryGrad(func(b *gradBuilder, x, y, dy *graph.Value) *graph.Value { return b.g.Mul(dy, y) }),
		"Log": unaryGrad(func(b *gradBuilder, x, y, dy *graph.Value) *graph.Value { return b.g.Div(dy, x) }),
		"Sqrt": unaryGrad(func(b *gradBuilder, x, y, dy *graph.Value) *graph.Value {
			return b.g.Div(b.g.Mul(dy, b.g.ConstFloat(0.5)), y)
		}),
		"Tanh": unaryGrad(func(b *gradBuilder, x, y, dy *graph.Value) *graph.Value {
			return b.g.Mul(dy, b.g.Sub(b.g.ConstFloat(1), b.g.Mul(y, y)))
		}),
		"Sigmoid": unaryGrad(func(b *gradBuilder, x, y, dy *graph.Value) *graph.Value {
			return b.g.Mul(dy, b.g.Mul(y, b.g.Sub(b.g.ConstFloat(1), y)))
		}),
		"Reciprocal": unaryGrad(func(b *gradBuilder, x, y, dy *graph.Value) *graph.Value {
			return b.g.Neg(b.g.Mul(dy, b.g.Mul(y, y)))
		}),
		"Erf": unaryGrad(func(b *gradBuilder, x, y, dy *graph.Value) *graph.Value {
			k := b.g.ConstFloat(float32(2 / math.Sqrt(math.Pi)))
			return b.g.Mul(dy, b.g.Mul(k, b.g.Exp(b.g.Neg(b.g.Mul(x, x)))))
		}),
		"Sin":   unaryGrad(func(b *gradBuilder, x, y, dy *graph.Value) *graph.Value { return b.g.Mul(dy, b.g.Cos(x)) }),
		"Cos":   unaryGrad(func(b *gradBuilder, x, y, dy *graph.Value) *graph.Value { return b.g.Neg(b.g.Mul(dy, b.g.Sin(x))) }),
		"Where": gradWhere,
		"Cast":  gradCast,
		"Clip":  gradClip,
		// Piecewise constant: no gradient (Abs's rule emits it, so a second
		// derivative meets it).
		"Sign": unaryGrad(func(b *gradBuilder, x, y, dy *graph.Value) *graph.Value { return nil }),
	}
}

// unaryGrad adapts a one-input rule: f(b, x, y, dy) = dx.
func unaryGrad(f func(b *gradBuilder, x, y, dy *graph.Value) *graph.Value) gradFunc {
	return func(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
		return []*graph.Value{f(b, n.Inputs[0], n.Outputs[0], dy[0])}, nil
	}
}

func gradAdd(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	a, c := n.Inputs[0], n.Inputs[1]
	return []*graph.Value{b.sumTo(dy[0], a.Shape()), b.sumTo(dy[0], c.Shape())}, nil
}

func gradSub(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	a, c := n.Inputs[0], n.Inputs[1]
	return []*graph.Value{b.sumTo(dy[0], a.Shape()), b.sumTo(b.g.Neg(dy[0]), c.Shape())}, nil
}

func gradMul(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	a, c := n.Inputs[0], n.Inputs[1]
	if a == c {
		// x·x (batch-norm variances): one product, counted for both inputs.
		t := b.g.Mul(dy[0], a)
		return []*graph.Value{t, t}, nil
	}
	return []*graph.Value{b.sumTo(b.g.Mul(dy[0], c), a.Shape()), b.sumTo(b.g.Mul(dy[0], a), c.Shape())}, nil
}

// gradDiv: d(a/c) = da/c − dc·(a/c)/c.
func gradDiv(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	a, c, y := n.Inputs[0], n.Inputs[1], n.Outputs[0]
	da := b.g.Div(dy[0], c)
	dc := b.g.Neg(b.g.Div(b.g.Mul(dy[0], y), c))
	return []*graph.Value{b.sumTo(da, a.Shape()), b.sumTo(dc, c.Shape())}, nil
}

func gradSum(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	out := make([]*graph.Value, len(n.Inputs))
	for i, in := range n.Inputs {
		out[i] = b.sumTo(dy[0], in.Shape())
	}
	return out, nil
}

func gradWhere(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	cond, x, y := n.Inputs[0], n.Inputs[1], n.Inputs[2]
	zero := b.g.ConstFloat(0)
	if x.DType() != graph.Float32 {
		return nil, fmt.Errorf("gradient of Where is implemented for float32")
	}
	return []*graph.Value{nil,
		b.sumTo(b.g.Where(cond, dy[0], zero), x.Shape()),
		b.sumTo(b.g.Where(cond, zero, dy[0]), y.Shape())}, nil
}

func gradCast(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	x := n.Inputs[0]
	if !x.DType().IsFloat() {
		return []*graph.Value{nil}, nil
	}
	return []*graph.Value{b.g.Cast(dy[0], x.DType())}, nil
}

// gradClip passes the gradient where lo ≤ x ≤ hi (PyTorch's clamp rule);
// the bounds get none.
func gradClip(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	x := n.Inputs[0]
	var inside *graph.Value
	if len(n.Inputs) > 1 && n.Inputs[1] != nil {
		inside = b.g.GreaterOrEqual(x, n.Inputs[1])
	}
	if len(n.Inputs) > 2 && n.Inputs[2] != nil {
		hi := b.g.LessOrEqual(x, n.Inputs[2])
		if inside == nil {
			inside = hi
		} else {
			inside = b.g.And(inside, hi)
		}
	}
	dx := dy[0]
	if inside != nil {
		dx = b.g.Where(inside, dy[0], b.g.ConstFloat(0))
	}
	out := make([]*graph.Value, len(n.Inputs))
	out[0] = dx
	return out, nil
}
