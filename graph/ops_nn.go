package graph

import "fmt"

// Neural-network ops: softmax forms, one-hot encoding and layer
// normalization.

func nnRule() map[string]ruleFunc {
	return map[string]ruleFunc{
		"Softmax":            softmaxShape,
		"LogSoftmax":         softmaxShape,
		"OneHot":             oneHotShape,
		"LayerNormalization": layerNormShape,
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

// layerNormShape: X is normalised over the axes [axis, rank); Scale and the
// optional B must have exactly those trailing dimensions. The optional
// outputs Mean and InvStdDev keep X's leading dimensions and have size 1 on
// the normalised axes, in float32 (stash_type 1, the only one supported).
func layerNormShape(in []*Value, a Attrs, nOut int) ([]outInfo, error) {
	if err := arity(in, 2, 3); err != nil {
		return nil, err
	}
	if err := sameDType(in); err != nil {
		return nil, err
	}
	if in[0].dtype != Float32 {
		return nil, fmt.Errorf("X is %v, want float32 (the statistics are stashed in float32)", in[0].dtype)
	}
	if nOut < 1 || nOut > 3 {
		return nil, fmt.Errorf("has 1 to 3 outputs (Y, Mean, InvStdDev), the node declares %d", nOut)
	}
	if st := a.Int("stash_type", 1); st != 1 {
		return nil, fmt.Errorf("stash_type %d is not supported (1, float32, is)", st)
	}
	if eps := a.Float("epsilon", 1e-5); !(eps > 0) {
		return nil, fmt.Errorf("epsilon %g must be positive", eps)
	}
	x := in[0].shape
	ax, err := LayerNormAxis(x.Rank(), a)
	if err != nil {
		return nil, err
	}
	norm := x[ax:]
	for i, name := range []string{"", "Scale", "B"} {
		if i == 0 || i >= len(in) || in[i] == nil {
			continue
		}
		if !in[i].shape.Equal(norm) {
			return nil, fmt.Errorf("%s has shape %v, want the normalised dimensions %v (X's axes %d..%d)", name, in[i].shape, norm, ax, x.Rank()-1)
		}
	}
	outs := []outInfo{{DType: in[0].dtype, Shape: x.Clone()}}
	stat := x.Clone()
	for i := ax; i < len(stat); i++ {
		stat[i] = 1
	}
	for range nOut - 1 {
		outs = append(outs, outInfo{DType: Float32, Shape: stat.Clone()})
	}
	return outs, nil
}

// LayerNormAxis is a LayerNormalization node's first normalised axis in
// [0, rank); rank-0 inputs have none.
func LayerNormAxis(rank int, a Attrs) (int, error) {
	if rank == 0 {
		return 0, fmt.Errorf("X must have rank ≥ 1")
	}
	return normAxis(a.Int("axis", -1), rank)
}

// LayerNorm normalises x over its last axes (as many as scale has
// dimensions) to zero mean and unit variance, then multiplies by scale and
// adds bias (nil for none): PyTorch's nn.LayerNorm, with the biased variance
// and eps added inside the square root. The node also outputs Mean and
// InvStdDev, which the gradient reuses instead of recomputing them.
func (g *Graph) LayerNorm(x, scale, bias *Value, eps float32) *Value {
	in := []*Value{x, scale}
	if bias != nil {
		in = append(in, bias)
	}
	axis := int64(-scale.shape.Rank())
	if scale.shape.Rank() == 0 {
		axis = 0 // the shape rule reports the mismatch
	}
	return g.Apply("LayerNormalization", in, Attrs{"axis": axis, "epsilon": eps}, 3)[0]
}
