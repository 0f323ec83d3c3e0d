package graph

import "fmt"

// Elementwise ops: broadcasting arithmetic, unary math, comparisons, logic,
// selection and casts.

func elementwiseRule() map[string]ruleFunc {
	return map[string]ruleFunc{
		"Add":            binaryArith,
		"Sub":            binaryArith,
		"Mul":            binaryArith,
		"Div":            binaryArith,
		"Pow":            binaryArith,
		"Max":            variadicArith,
		"Min":            variadicArith,
		"Sum":            variadicArith,
		"Mean":           variadicArith,
		"Neg":            unary(false),
		"Abs":            unary(false),
		"Relu":           unary(false),
		"Identity":       unary(false),
		"Sign":           unary(false),
		"Exp":            unary(true),
		"Log":            unary(true),
		"Sqrt":           unary(true),
		"Tanh":           unary(true),
		"Sigmoid":        unary(true),
		"Erf":            unary(true),
		"Reciprocal":     unary(true),
		"Sin":            unary(true),
		"Cos":            unary(true),
		"Greater":        compare,
		"Less":           compare,
		"Equal":          compare,
		"GreaterOrEqual": compare,
		"LessOrEqual":    compare,
		"And":            logic,
		"Or":             logic,
		"Xor":            logic,
		"Not":            notRule,
		"Where":          whereRule,
		"Cast":           castRule,
		"Clip":           clipRule,
	}
}

func broadcastInputs(in []*Value) (Shape, error) {
	shapes := make([]Shape, 0, len(in))
	for _, v := range in {
		shapes = append(shapes, v.shape)
	}
	return Broadcast(shapes...)
}

func binaryArith(in []*Value, _ Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 2, 2); err != nil {
		return nil, err
	}
	if err := sameDType(in); err != nil {
		return nil, err
	}
	s, err := broadcastInputs(in)
	if err != nil {
		return nil, err
	}
	return one(in[0].dtype, s), nil
}

func variadicArith(in []*Value, _ Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 1, -1); err != nil {
		return nil, err
	}
	for i, v := range in {
		if v == nil {
			return nil, fmt.Errorf("input %d is absent", i)
		}
	}
	if err := sameDType(in); err != nil {
		return nil, err
	}
	s, err := broadcastInputs(in)
	if err != nil {
		return nil, err
	}
	return one(in[0].dtype, s), nil
}

func unary(floatOnly bool) ruleFunc {
	return func(in []*Value, _ Attrs, _ int) ([]outInfo, error) {
		if err := arity(in, 1, 1); err != nil {
			return nil, err
		}
		if floatOnly {
			if err := requireFloat(in); err != nil {
				return nil, err
			}
		}
		return one(in[0].dtype, in[0].shape.Clone()), nil
	}
}

func compare(in []*Value, _ Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 2, 2); err != nil {
		return nil, err
	}
	if err := sameDType(in); err != nil {
		return nil, err
	}
	s, err := broadcastInputs(in)
	if err != nil {
		return nil, err
	}
	return one(Bool, s), nil
}

func logic(in []*Value, _ Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 2, 2); err != nil {
		return nil, err
	}
	for i, v := range in {
		if v.dtype != Bool {
			return nil, fmt.Errorf("input %d is %v, want bool", i, v.dtype)
		}
	}
	s, err := broadcastInputs(in)
	if err != nil {
		return nil, err
	}
	return one(Bool, s), nil
}

func notRule(in []*Value, _ Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 1, 1); err != nil {
		return nil, err
	}
	if in[0].dtype != Bool {
		return nil, fmt.Errorf("input is %v, want bool", in[0].dtype)
	}
	return one(Bool, in[0].shape.Clone()), nil
}

func whereRule(in []*Value, _ Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 3, 3); err != nil {
		return nil, err
	}
	if in[0].dtype != Bool {
		return nil, fmt.Errorf("condition is %v, want bool", in[0].dtype)
	}
	if err := sameDType(in[1:]); err != nil {
		return nil, err
	}
	s, err := broadcastInputs(in)
	if err != nil {
		return nil, err
	}
	return one(in[1].dtype, s), nil
}

func castRule(in []*Value, a Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 1, 1); err != nil {
		return nil, err
	}
	to := DType(a.Int("to", 0))
	if to.Size() == 0 {
		return nil, fmt.Errorf("attribute to=%d is not a supported type", to)
	}
	return one(to, in[0].shape.Clone()), nil
}

func clipRule(in []*Value, _ Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 1, 3); err != nil {
		return nil, err
	}
	if err := sameDType(in); err != nil {
		return nil, err
	}
	for i, v := range in[1:] {
		if v != nil && v.shape.Rank() != 0 {
			return nil, fmt.Errorf("bound %d has shape %v, want a scalar", i+1, v.shape)
		}
	}
	return one(in[0].dtype, in[0].shape.Clone()), nil
}

// Add returns a + b (broadcasting).
func (g *Graph) Add(a, b *Value) *Value { return g.apply1("Add", nil, a, b) }

// Sub returns a − b (broadcasting).
func (g *Graph) Sub(a, b *Value) *Value { return g.apply1("Sub", nil, a, b) }

// Mul returns a · b (broadcasting).
func (g *Graph) Mul(a, b *Value) *Value { return g.apply1("Mul", nil, a, b) }

// Div returns a / b (broadcasting).
func (g *Graph) Div(a, b *Value) *Value { return g.apply1("Div", nil, a, b) }

// Max returns the elementwise maximum of its inputs (broadcasting).
func (g *Graph) Max(in ...*Value) *Value { return g.apply1("Max", nil, in...) }

// Min returns the elementwise minimum of its inputs (broadcasting).
func (g *Graph) Min(in ...*Value) *Value { return g.apply1("Min", nil, in...) }

// Sum returns the elementwise sum of its inputs (broadcasting).
func (g *Graph) Sum(in ...*Value) *Value {
	if len(in) == 1 {
		return in[0]
	}
	return g.apply1("Sum", nil, in...)
}

// Neg returns −x.
func (g *Graph) Neg(x *Value) *Value { return g.apply1("Neg", nil, x) }

// Abs returns |x|.
func (g *Graph) Abs(x *Value) *Value { return g.apply1("Abs", nil, x) }

// Sign returns −1, 0 or 1 by the sign of x.
func (g *Graph) Sign(x *Value) *Value { return g.apply1("Sign", nil, x) }

// GreaterOrEqual returns a ≥ b as bool.
func (g *Graph) GreaterOrEqual(a, b *Value) *Value { return g.apply1("GreaterOrEqual", nil, a, b) }

// LessOrEqual returns a ≤ b as bool.
func (g *Graph) LessOrEqual(a, b *Value) *Value { return g.apply1("LessOrEqual", nil, a, b) }

// Erf returns the error function of x.
func (g *Graph) Erf(x *Value) *Value { return g.apply1("Erf", nil, x) }

// Sin returns sin x.
func (g *Graph) Sin(x *Value) *Value { return g.apply1("Sin", nil, x) }

// Relu returns max(x, 0).
func (g *Graph) Relu(x *Value) *Value { return g.apply1("Relu", nil, x) }

// Identity returns a copy of x.
func (g *Graph) Identity(x *Value) *Value { return g.apply1("Identity", nil, x) }

// StopGradient returns x through an Identity node that autodiff treats as a
// constant (PyTorch's detach).
func (g *Graph) StopGradient(x *Value) *Value {
	y := g.Identity(x)
	if p := y.Producer(); p != nil {
		p.NoGrad = true
	}
	return y
}

// Exp returns eˣ.
func (g *Graph) Exp(x *Value) *Value { return g.apply1("Exp", nil, x) }

// Log returns ln x.
func (g *Graph) Log(x *Value) *Value { return g.apply1("Log", nil, x) }

// Sqrt returns √x.
func (g *Graph) Sqrt(x *Value) *Value { return g.apply1("Sqrt", nil, x) }

// Tanh returns tanh x.
func (g *Graph) Tanh(x *Value) *Value { return g.apply1("Tanh", nil, x) }

// Sigmoid returns 1/(1+e⁻ˣ).
func (g *Graph) Sigmoid(x *Value) *Value { return g.apply1("Sigmoid", nil, x) }

// Reciprocal returns 1/x.
func (g *Graph) Reciprocal(x *Value) *Value { return g.apply1("Reciprocal", nil, x) }

// Cos returns cos x.
func (g *Graph) Cos(x *Value) *Value { return g.apply1("Cos", nil, x) }

// Greater returns a > b as bool.
func (g *Graph) Greater(a, b *Value) *Value { return g.apply1("Greater", nil, a, b) }

// Less returns a < b as bool.
func (g *Graph) Less(a, b *Value) *Value { return g.apply1("Less", nil, a, b) }

// Equal returns a == b as bool.
func (g *Graph) Equal(a, b *Value) *Value { return g.apply1("Equal", nil, a, b) }

// Or returns a ∨ b.
func (g *Graph) Or(a, b *Value) *Value { return g.apply1("Or", nil, a, b) }

// And returns a ∧ b.
func (g *Graph) And(a, b *Value) *Value { return g.apply1("And", nil, a, b) }

// Where returns cond ? x : y (broadcasting).
func (g *Graph) Where(cond, x, y *Value) *Value { return g.apply1("Where", nil, cond, x, y) }

// Cast converts x to the given type.
func (g *Graph) Cast(x *Value, to DType) *Value {
	return g.apply1("Cast", Attrs{"to": int64(to)}, x)
}

// Clip bounds x to [lo, hi]; either bound may be nil.
func (g *Graph) Clip(x, lo, hi *Value) *Value {
	in := []*Value{x, lo, hi}
	for len(in) > 1 && in[len(in)-1] == nil {
		in = in[:len(in)-1]
	}
	return g.apply1("Clip", nil, in...)
}
