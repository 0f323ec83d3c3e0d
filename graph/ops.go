package graph

import (
	"fmt"
	"slices"
)

// outInfo is what a shape rule says of one output.
type outInfo struct {
	DType DType
	Shape Shape
	Const *Tensor // set when the rule can compute the data (Constant)
}

// ruleFunc checks an op's inputs and attributes and gives its outputs.
type ruleFunc func(in []*Value, a Attrs, nOut int) ([]outInfo, error)

// shapeRule finds the shape rule of an op; the rules live in the ops_*.go
// file of the op's family.
func shapeRule(op string) (ruleFunc, bool) {
	for _, family := range ruleFamilies() {
		if r, ok := family()[op]; ok {
			return r, true
		}
	}
	return nil, false
}

func ruleFamilies() []func() map[string]ruleFunc {
	return []func() map[string]ruleFunc{elementwiseRule, matmulRule, reduceRule, shapeOpRule, nnRule, convRule, indexRule}
}

// Ops lists every op a bmc graph may contain, sorted.
func Ops() []string {
	var ops []string
	for _, family := range ruleFamilies() {
		for op := range family() {
			ops = append(ops, op)
		}
	}
	slices.Sort(ops)
	return ops
}

func one(dtype DType, shape Shape) []outInfo { return []outInfo{{DType: dtype, Shape: shape}} }

// arity checks the input count: at least min, at most max (max < 0: any).
func arity(in []*Value, min, max int) error {
	if len(in) < min || (max >= 0 && len(in) > max) {
		if min == max {
			return fmt.Errorf("takes %d inputs, got %d", min, len(in))
		}
		return fmt.Errorf("takes %d to %d inputs, got %d", min, max, len(in))
	}
	for i := 0; i < min; i++ {
		if in[i] == nil {
			return fmt.Errorf("input %d is required", i)
		}
	}
	return nil
}

func sameDType(in []*Value) error {
	var d DType
	for i, v := range in {
		if v == nil {
			continue
		}
		if d == Undefined {
			d = v.dtype
		} else if v.dtype != d {
			return fmt.Errorf("input %d is %v, input 0 is %v: types must match", i, v.dtype, d)
		}
	}
	return nil
}

func requireFloat(in []*Value) error {
	for i, v := range in {
		if v != nil && !v.dtype.IsFloat() {
			return fmt.Errorf("input %d is %v, want a float type", i, v.dtype)
		}
	}
	return nil
}

// floatOperands checks the input count and that the inputs are floats of
// one type.
func floatOperands(in []*Value, min, max int) error {
	if err := arity(in, min, max); err != nil {
		return err
	}
	if err := sameDType(in); err != nil {
		return err
	}
	return requireFloat(in)
}

// normAxis maps a possibly negative axis into [0, rank).
func normAxis(axis int64, rank int) (int, error) {
	if axis < -int64(rank) || axis >= int64(rank) {
		return 0, fmt.Errorf("axis %d is out of range for rank %d", axis, rank)
	}
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis), nil
}

// constInts reads an int64 input that must be known at build time.
func constInts(v *Value, what string) ([]int64, error) {
	if v == nil {
		return nil, nil
	}
	vals, ok := v.konst.Ints()
	if !ok {
		return nil, fmt.Errorf("%s must be a constant int64 tensor (bmc graphs have static shapes)", what)
	}
	return vals, nil
}

// Broadcast gives the numpy-style (ONNX multidirectional) broadcast of shapes.
func Broadcast(shapes ...Shape) (Shape, error) {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := make(Shape, rank)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			switch {
			case d == out[off+i] || d == 1:
			case out[off+i] == 1:
				out[off+i] = d
			default:
				return nil, fmt.Errorf("shapes %v do not broadcast: dimension %d is %d in one and %d in another", shapes, off+i-rank, out[off+i], d)
			}
		}
	}
	return out, nil
}

// ConstInts adds a Constant node holding a 1-D int64 tensor.
func (g *Graph) ConstInts(vals ...int64) *Value {
	return g.Constant(Int64Tensor(Shape{int64(len(vals))}, append([]int64{}, vals...)))
}

// ConstInt adds a Constant node holding an int64 scalar.
func (g *Graph) ConstInt(v int64) *Value {
	return g.Constant(Int64Tensor(Shape{}, []int64{v}))
}

// ConstFloat adds a Constant node holding a float32 scalar.
func (g *Graph) ConstFloat(v float32) *Value {
	return g.Constant(Float32Tensor(Shape{}, []float32{v}))
}

// ConstFloats adds a Constant node holding a float32 tensor of the given shape.
func (g *Graph) ConstFloats(shape Shape, vals []float32) *Value {
	return g.Constant(Float32Tensor(shape, append([]float32{}, vals...)))
}

// Constant adds a Constant node with the given data.
func (g *Graph) Constant(t *Tensor) *Value {
	return g.Apply("Constant", nil, Attrs{"value": t}, 1)[0]
}

func (g *Graph) apply1(op string, attrs Attrs, in ...*Value) *Value {
	return g.Apply(op, in, attrs, 1)[0]
}

// ConstZero adds a Constant scalar 0 of an int64 or float32 type.
func (g *Graph) ConstZero(dtype DType) *Value {
	if dtype == Int64 {
		return g.ConstInt(0)
	}
	return g.ConstFloat(0)
}
