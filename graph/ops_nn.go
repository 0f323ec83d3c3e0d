package graph

import "fmt"

// Neural-network ops: softmax forms and one-hot encoding.

func nnRule() map[string]ruleFunc {
	return map[string]ruleFunc{
		"Softmax":    softmaxShape,
		"LogSoftmax": softmaxShape,
		"OneHot":     oneHotShape,
	}
}

func softmaxShape(in []*Value, a Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 1, 1); err != nil {
		return nil, err
	}
	if err := requireFloat(in); err != nil {
		return nil, err
	}
	if _, err := normAxis(a.Int("axis", -1), in[0].shape.Rank()); err != nil {
		return nil, err
	}
	return one(in[0].dtype, in[0].shape.Clone()), nil
}

func oneHotShape(in []*Value, a Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 3, 3); err != nil {
		return nil, err
	}
	if in[0].dtype != Int64 && in[0].dtype != Int32 {
		return nil, fmt.Errorf("indices are %v, want an integer type", in[0].dtype)
	}
	depth, err := constInts(in[1], "depth")
	if err != nil {
		return nil, err
	}
	if len(depth) != 1 || depth[0] < 1 {
		return nil, fmt.Errorf("depth must be one positive value, got %v", depth)
	}
	if !in[2].shape.Equal(Shape{2}) {
		return nil, fmt.Errorf("values must have shape [2] (off, on), got %v", in[2].shape)
	}
	rank := in[0].shape.Rank() + 1
	ax, err := normAxis(a.Int("axis", -1), rank)
	if err != nil {
		return nil, err
	}
	out := make(Shape, 0, rank)
	out = append(out, in[0].shape[:ax]...)
	out = append(out, depth[0])
	out = append(out, in[0].shape[ax:]...)
	return one(in[2].dtype, out), nil
}

// Softmax normalises exp(x) along axis.
func (g *Graph) Softmax(x *Value, axis int64) *Value {
	return g.apply1("Softmax", Attrs{"axis": axis}, x)
}

// LogSoftmax is log(Softmax(x)) along axis, computed stably.
func (g *Graph) LogSoftmax(x *Value, axis int64) *Value {
	return g.apply1("LogSoftmax", Attrs{"axis": axis}, x)
}

// OneHot encodes integer labels as float32 rows of length depth (last axis).
func (g *Graph) OneHot(labels *Value, depth int64) *Value {
	return g.apply1("OneHot", Attrs{"axis": int64(-1)}, labels, g.Constant(Int64Tensor(Shape{1}, []int64{depth})), g.ConstFloats(Shape{2}, []float32{0, 1}))
}
