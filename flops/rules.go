// Package flops counts floating-point operations exactly from graphs, without
// running them: one rule per op (below), summed per graph and phase, then
// multiplied by how often a plan runs each graph.
//
// Conventions (docs/flops.md): one FLOP is one scalar add, subtract,
// multiply, divide, comparison, max/min or elementary function (exp, log,
// sqrt, tanh, sigmoid, erf, sin, cos, reciprocal). A multiply-accumulate is
// 2 FLOPs. Data movement (reshape, transpose, concat, slice, pad, expand,
// one-hot, where, cast, constants, gathers) and boolean logic are 0 FLOPs.
// MACs count only the multiply-accumulates of MatMul, Gemm, Conv and
// ConvTranspose, the thop/fvcore convention.
package flops

import (
	"fmt"

	"bmc/graph"
)

// Cost is what one node costs.
type Cost struct {
	FLOPs int64
	MACs  int64
}

// rule computes a node's cost from its inputs' and outputs' static shapes.
type rule func(n *graph.Node) (Cost, error)

func outSize(n *graph.Node) int64 { return n.Outputs[0].Shape().Size() }
func inSize(n *graph.Node) int64  { return n.Inputs[0].Shape().Size() }

// perOutput costs k FLOPs per output element.
func perOutput(k int64) rule {
	return func(n *graph.Node) (Cost, error) { return Cost{FLOPs: k * outSize(n)}, nil }
}

func free(*graph.Node) (Cost, error) { return Cost{}, nil }

// variadic costs (inputs − 1) FLOPs per output element, plus extra per element.
func variadic(extra int64) rule {
	return func(n *graph.Node) (Cost, error) {
		return Cost{FLOPs: (int64(len(n.Inputs)) - 1 + extra) * outSize(n)}, nil
	}
}

// reduction costs (in − out) FLOPs (one per element folded in) plus
// perOut per output element.
func reduction(perIn, perOut int64) rule {
	return func(n *graph.Node) (Cost, error) {
		in, out := inSize(n), outSize(n)
		return Cost{FLOPs: perIn*in - out + perOut*out}, nil
	}
}

// softmaxRule: per row of length L, max (L−1) + subtract L + exp L + sum
// (L−1) + divide L = 5L−2; LogSoftmax replaces the divide by one log and a
// subtract of L: 5L−1.
func softmaxRule(perRowExtra int64) rule {
	return func(n *graph.Node) (Cost, error) {
		s := n.Inputs[0].Shape()
		axis := n.Attrs.Int("axis", -1)
		if axis < 0 {
			axis += int64(s.Rank())
		}
		l := s[axis]
		rows := s.Size() / l
		return Cost{FLOPs: rows * (5*l - 2 + perRowExtra)}, nil
	}
}

// layerNormRule: per row of N normalised elements, mean N (N−1 adds, one
// divide), centre N, variance 2N (square, N−1 adds, one divide), ε, √ and
// reciprocal 3, normalise N, scale N: 6N+3; a bias adds N.
func layerNormRule(n *graph.Node) (Cost, error) {
	s := n.Inputs[0].Shape()
	ax, err := graph.LayerNormAxis(s.Rank(), n.Attrs)
	if err != nil {
		return Cost{}, err
	}
	l := s[ax:].Size()
	perRow := 6*l + 3
	if len(n.Inputs) == 3 && n.Inputs[2] != nil {
		perRow += l
	}
	return Cost{FLOPs: s.Size() / l * perRow}, nil
}

func matmulRule(n *graph.Node) (Cost, error) {
	a := n.Inputs[0].Shape()
	k := a[a.Rank()-1]
	// Output [batch..., M, N]: one K-long dot product per output element.
	macs := outSize(n) * k
	return Cost{FLOPs: 2 * macs, MACs: macs}, nil
}

func gemmRule(n *graph.Node) (Cost, error) {
	a := n.Inputs[0].Shape()
	k := a[1]
	if n.Attrs.Int("transA", 0) != 0 {
		k = a[0]
	}
	mn := outSize(n)
	c := Cost{MACs: mn * k, FLOPs: 2 * mn * k}
	if n.Attrs.Float("alpha", 1) != 1 {
		c.FLOPs += mn
	}
	if len(n.Inputs) == 3 && n.Inputs[2] != nil {
		c.FLOPs += mn
		if n.Attrs.Float("beta", 1) != 1 {
			c.FLOPs += mn
		}
	}
	return c, nil
}

// clipRule costs one comparison per bound present, per element.
func clipRule(n *graph.Node) (Cost, error) {
	bounds := int64(0)
	for _, in := range n.Inputs[1:] {
		if in != nil {
			bounds++
		}
	}
	return Cost{FLOPs: bounds * outSize(n)}, nil
}

func rules() map[string]rule {
	r := baseRules()
	for _, family := range []map[string]rule{convRules(), indexRules()} {
		for op, f := range family {
			r[op] = f
		}
	}
	return r
}

// baseRules are the rules of the elementwise, product, reduction, softmax and
// data-movement ops.
func baseRules() map[string]rule {
	return map[string]rule{
		// Elementwise arithmetic and functions: one per output element.
		"Add": perOutput(1), "Sub": perOutput(1), "Mul": perOutput(1), "Div": perOutput(1), "Pow": perOutput(1),
		"Neg": perOutput(1), "Abs": perOutput(1), "Relu": perOutput(1), "Sign": perOutput(1),
		"Exp": perOutput(1), "Log": perOutput(1), "Sqrt": perOutput(1), "Tanh": perOutput(1), "Sigmoid": perOutput(1),
		"Erf": perOutput(1), "Reciprocal": perOutput(1), "Sin": perOutput(1), "Cos": perOutput(1),
		"Greater": perOutput(1), "Less": perOutput(1), "Equal": perOutput(1), "GreaterOrEqual": perOutput(1), "LessOrEqual": perOutput(1),
		"Max": variadic(0), "Min": variadic(0), "Sum": variadic(0), "Mean": variadic(1),
		"Clip": clipRule,
		// Boolean logic, selection and casts move data.
		"And": free, "Or": free, "Xor": free, "Not": free, "Where": free, "Cast": free, "Identity": free,
		// Products.
		"MatMul": matmulRule, "Gemm": gemmRule,
		// Reductions.
		"ReduceSum": reduction(1, 0), "ReduceMean": reduction(1, 1), "ReduceMax": reduction(1, 0), "ReduceMin": reduction(1, 0),
		"ReduceProd": reduction(1, 0), "ReduceSumSquare": reduction(2, 0), "ReduceL2": reduction(2, 1),
		"ArgMax": reduction(1, 0), "ArgMin": reduction(1, 0),
		"Softmax": softmaxRule(0), "LogSoftmax": softmaxRule(1),
		"LayerNormalization": layerNormRule,
		// Data movement.
		"Constant": free, "Reshape": free, "Transpose": free, "Concat": free, "Split": free, "Slice": free,
		"Squeeze": free, "Unsqueeze": free, "Expand": free, "Pad": free, "OneHot": free,
	}
}

// NodeCost is the cost of one node.
func NodeCost(n *graph.Node) (Cost, error) {
	if n.CountAs != nil {
		return Cost{FLOPs: *n.CountAs}, nil
	}
	r, ok := rules()[n.Op]
	if !ok {
		return Cost{}, fmt.Errorf("flops: no rule for op %s (node %s)", n.Op, n.Name)
	}
	return r(n)
}

// HasRule reports whether op has a FLOP rule.
func HasRule(op string) bool {
	_, ok := rules()[op]
	return ok
}
