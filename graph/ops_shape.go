package graph

import (
	"fmt"
	"math"
	"slices"
)

// Ops that move data without arithmetic: constants, reshapes, transposes,
// concatenation and splitting, slicing and broadcasting. Shape-like operands
// (Reshape's shape, Slice's bounds, axes) must be constants: bmc graphs have
// static shapes.

func shapeOpRule() map[string]ruleFunc {
	return map[string]ruleFunc{
		"Constant":  constantShape,
		"Reshape":   reshapeShape,
		"Transpose": transposeShape,
		"Concat":    concatShape,
		"Split":     splitShape,
		"Slice":     sliceShape,
		"Squeeze":   squeezeShape,
		"Unsqueeze": unsqueezeShape,
		"Expand":    expandShape,
		"Pad":       padShape,
	}
}

func constantShape(in []*Value, a Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 0, 0); err != nil {
		return nil, err
	}
	t := a.Tensor("value")
	if t == nil {
		return nil, fmt.Errorf("Constant needs a tensor attribute 'value'")
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return []outInfo{{DType: t.DType, Shape: t.Shape.Clone(), Const: t}}, nil
}

// ReshapeTarget resolves a Reshape shape operand (0 copies a dimension,
// −1 is inferred) against the input shape.
func ReshapeTarget(in Shape, target []int64) (Shape, error) {
	out := make(Shape, len(target))
	infer := -1
	known := int64(1)
	for i, d := range target {
		switch {
		case d == 0:
			if i >= in.Rank() {
				return nil, fmt.Errorf("target dimension %d is 0 (copy) but the input has rank %d", i, in.Rank())
			}
			out[i] = in[i]
		case d == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("target %v has more than one -1", target)
			}
			infer = i
			continue
		case d < -1:
			return nil, fmt.Errorf("target %v has a negative dimension", target)
		default:
			out[i] = d
		}
		known *= out[i]
	}
	if infer >= 0 {
		if known == 0 || in.Size()%known != 0 {
			return nil, fmt.Errorf("cannot infer the -1 of %v from %d elements", target, in.Size())
		}
		out[infer] = in.Size() / known
	}
	if out.Size() != in.Size() {
		return nil, fmt.Errorf("target %v (%d elements) does not match %d input elements", out, out.Size(), in.Size())
	}
	return out, nil
}

func reshapeShape(in []*Value, a Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 2, 2); err != nil {
		return nil, err
	}
	target, err := constInts(in[1], "the shape operand")
	if err != nil {
		return nil, err
	}
	if a.Int("allowzero", 0) != 0 {
		return nil, fmt.Errorf("allowzero=1 is not supported")
	}
	out, err := ReshapeTarget(in[0].shape, target)
	if err != nil {
		return nil, err
	}
	return one(in[0].dtype, out), nil
}

// TransposePerm is a Transpose node's permutation (reversed axes by default).
func TransposePerm(rank int, a Attrs) ([]int64, error) {
	perm := a.Ints("perm")
	if perm == nil {
		for i := rank - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	if len(perm) != rank {
		return nil, fmt.Errorf("perm %v has %d entries for rank %d", perm, len(perm), rank)
	}
	seen := make([]bool, rank)
	for _, p := range perm {
		if p < 0 || p >= int64(rank) || seen[p] {
			return nil, fmt.Errorf("perm %v is not a permutation of 0..%d", perm, rank-1)
		}
		seen[p] = true
	}
	return perm, nil
}

func transposeShape(in []*Value, a Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 1, 1); err != nil {
		return nil, err
	}
	perm, err := TransposePerm(in[0].shape.Rank(), a)
	if err != nil {
		return nil, err
	}
	out := make(Shape, len(perm))
	for i, p := range perm {
		out[i] = in[0].shape[p]
	}
	return one(in[0].dtype, out), nil
}

func concatShape(in []*Value, a Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 1, -1); err != nil {
		return nil, err
	}
	if err := sameDType(in); err != nil {
		return nil, err
	}
	for i, v := range in {
		if v == nil {
			return nil, fmt.Errorf("input %d is absent", i)
		}
	}
	rank := in[0].shape.Rank()
	ax, err := normAxis(a.Int("axis", 0), rank)
	if err != nil {
		return nil, err
	}
	out := in[0].shape.Clone()
	for i, v := range in[1:] {
		if v.shape.Rank() != rank {
			return nil, fmt.Errorf("input %d has rank %d, input 0 has rank %d", i+1, v.shape.Rank(), rank)
		}
		for d := range rank {
			if d != ax && v.shape[d] != out[d] {
				return nil, fmt.Errorf("input %d differs from input 0 in dimension %d (%d vs %d), which is not the concat axis %d", i+1, d, v.shape[d], out[d], ax)
			}
		}
		out[ax] += v.shape[ax]
	}
	return one(in[0].dtype, out), nil
}

func splitShape(in []*Value, a Attrs, nOut int) ([]outInfo, error) {
	if err := arity(in, 1, 2); err != nil {
		return nil, err
	}
	s := in[0].shape
	ax, err := normAxis(a.Int("axis", 0), s.Rank())
	if err != nil {
		return nil, err
	}
	var sizes []int64
	if len(in) == 2 && in[1] != nil {
		if sizes, err = constInts(in[1], "split"); err != nil {
			return nil, err
		}
	} else {
		if nOut <= 0 || s[ax]%int64(nOut) != 0 {
			return nil, fmt.Errorf("dimension %d of size %d does not split evenly into %d outputs", ax, s[ax], nOut)
		}
		for range nOut {
			sizes = append(sizes, s[ax]/int64(nOut))
		}
	}
	var total int64
	for _, d := range sizes {
		if d < 0 {
			return nil, fmt.Errorf("split %v has a negative size", sizes)
		}
		total += d
	}
	if total != s[ax] {
		return nil, fmt.Errorf("split %v sums to %d, dimension %d is %d", sizes, total, ax, s[ax])
	}
	outs := make([]outInfo, len(sizes))
	for i, d := range sizes {
		o := s.Clone()
		o[ax] = d
		outs[i] = outInfo{DType: in[0].dtype, Shape: o}
	}
	return outs, nil
}

// SliceRange is one axis of a resolved Slice: elements start, start+step, …
// (count of them).
type SliceRange struct {
	Axis, Start, Step, Count int64
}

// ResolveSlice applies ONNX Slice clamping rules to a static shape.
func ResolveSlice(s Shape, starts, ends, axes, steps []int64) ([]SliceRange, error) {
	if len(starts) != len(ends) {
		return nil, fmt.Errorf("starts %v and ends %v differ in length", starts, ends)
	}
	if axes == nil {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if steps == nil {
		for range starts {
			steps = append(steps, 1)
		}
	}
	if len(axes) != len(starts) || len(steps) != len(starts) {
		return nil, fmt.Errorf("axes %v and steps %v must have the length of starts %v", axes, steps, starts)
	}
	var out []SliceRange
	var seen []int
	for i := range starts {
		ax, err := normAxis(axes[i], s.Rank())
		if err != nil {
			return nil, err
		}
		if slices.Contains(seen, ax) {
			return nil, fmt.Errorf("axis %d is sliced twice", axes[i])
		}
		seen = append(seen, ax)
		dim, step := s[ax], steps[i]
		if step == 0 {
			return nil, fmt.Errorf("step 0 on axis %d", ax)
		}
		clampIdx := func(v int64, lo, hi int64) int64 {
			if v < 0 {
				v += dim
			}
			return min(max(v, lo), hi)
		}
		var start, end, count int64
		// Counts are computed as (span − 1)/|step| + 1, which cannot
		// overflow however large the step.
		if step > 0 {
			start, end = clampIdx(starts[i], 0, dim), clampIdx(ends[i], 0, dim)
			if end > start {
				count = (end-start-1)/step + 1
			}
		} else {
			start, end = clampIdx(starts[i], 0, dim-1), clampIdx(ends[i], -1, dim-1)
			if start > end {
				span := start - end - 1
				if step == math.MinInt64 {
					count = 1
				} else {
					count = span/-step + 1
				}
			}
		}
		out = append(out, SliceRange{Axis: int64(ax), Start: start, Step: step, Count: count})
	}
	return out, nil
}

// SliceOperands reads a Slice node's constant starts, ends, axes and steps.
func SliceOperands(in []*Value) (starts, ends, axes, steps []int64, err error) {
	names := []string{"starts", "ends", "axes", "steps"}
	vals := make([][]int64, 4)
	for i := 1; i < len(in) && i <= 4; i++ {
		if vals[i-1], err = constInts(in[i], names[i-1]); err != nil {
			return
		}
	}
	return vals[0], vals[1], vals[2], vals[3], nil
}

func sliceShape(in []*Value, _ Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 3, 5); err != nil {
		return nil, err
	}
	starts, ends, axes, steps, err := SliceOperands(in)
	if err != nil {
		return nil, err
	}
	ranges, err := ResolveSlice(in[0].shape, starts, ends, axes, steps)
	if err != nil {
		return nil, err
	}
	out := in[0].shape.Clone()
	for _, r := range ranges {
		out[r.Axis] = r.Count
	}
	return one(in[0].dtype, out), nil
}

func squeezeShape(in []*Value, _ Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 1, 2); err != nil {
		return nil, err
	}
	s := in[0].shape
	var axes []int64
	if len(in) == 2 {
		var err error
		if axes, err = constInts(in[1], "axes"); err != nil {
			return nil, err
		}
	}
	drop := map[int]bool{}
	if axes == nil {
		for i, d := range s {
			if d == 1 {
				drop[i] = true
			}
		}
	}
	for _, ax := range axes {
		i, err := normAxis(ax, s.Rank())
		if err != nil {
			return nil, err
		}
		if s[i] != 1 {
			return nil, fmt.Errorf("cannot squeeze axis %d of size %d", ax, s[i])
		}
		drop[i] = true
	}
	out := Shape{}
	for i, d := range s {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return one(in[0].dtype, out), nil
}

func unsqueezeShape(in []*Value, _ Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 2, 2); err != nil {
		return nil, err
	}
	axes, err := constInts(in[1], "axes")
	if err != nil {
		return nil, err
	}
	rank := in[0].shape.Rank() + len(axes)
	ins := map[int]bool{}
	for _, ax := range axes {
		i, err := normAxis(ax, rank)
		if err != nil {
			return nil, err
		}
		if ins[i] {
			return nil, fmt.Errorf("axis %d is listed twice", ax)
		}
		ins[i] = true
	}
	out := make(Shape, 0, rank)
	j := 0
	for i := range rank {
		if ins[i] {
			out = append(out, 1)
		} else {
			out = append(out, in[0].shape[j])
			j++
		}
	}
	return one(in[0].dtype, out), nil
}

func expandShape(in []*Value, _ Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 2, 2); err != nil {
		return nil, err
	}
	target, err := constInts(in[1], "the shape operand")
	if err != nil {
		return nil, err
	}
	out, err := Broadcast(in[0].shape, Shape(target))
	if err != nil {
		return nil, err
	}
	return one(in[0].dtype, out), nil
}

func padShape(in []*Value, a Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 2, 3); err != nil {
		return nil, err
	}
	if m := a.String("mode", "constant"); m != "constant" {
		return nil, fmt.Errorf("mode %q is not supported (constant is)", m)
	}
	pads, err := constInts(in[1], "pads")
	if err != nil {
		return nil, err
	}
	s := in[0].shape
	if len(pads) != 2*s.Rank() {
		return nil, fmt.Errorf("pads %v must have 2×rank = %d entries", pads, 2*s.Rank())
	}
	if len(in) == 3 && in[2] != nil && (in[2].dtype != in[0].dtype || in[2].shape.Size() != 1) {
		return nil, fmt.Errorf("constant_value must be one %v", in[0].dtype)
	}
	out := s.Clone()
	for i := range out {
		out[i] += pads[i] + pads[i+s.Rank()]
		if out[i] < 0 {
			return nil, fmt.Errorf("pads %v make dimension %d negative", pads, i)
		}
	}
	return one(in[0].dtype, out), nil
}

// Pad adds zeros before (pads[:rank]) and after (pads[rank:]) each axis;
// negative pads crop.
func (g *Graph) Pad(x *Value, pads ...int64) *Value {
	return g.apply1("Pad", Attrs{"mode": "constant"}, x, g.ConstInts(pads...))
}

// PadWith is Pad with value in place of zeros (a float32 x).
func (g *Graph) PadWith(x *Value, value float32, pads ...int64) *Value {
	return g.apply1("Pad", Attrs{"mode": "constant"}, x, g.ConstInts(pads...), g.ConstFloat(value))
}

// Reshape returns x with a new shape (0 copies a dimension, −1 is inferred).
func (g *Graph) Reshape(x *Value, shape ...int64) *Value {
	return g.apply1("Reshape", nil, x, g.ConstInts(shape...))
}

// Transpose permutes x's axes.
func (g *Graph) Transpose(x *Value, perm ...int64) *Value {
	return g.apply1("Transpose", Attrs{"perm": append([]int64{}, perm...)}, x)
}

// Concat joins its inputs along axis.
func (g *Graph) Concat(axis int64, in ...*Value) *Value {
	return g.apply1("Concat", Attrs{"axis": axis}, in...)
}

// Split cuts x along axis into pieces of the given sizes.
func (g *Graph) Split(x *Value, axis int64, sizes ...int64) []*Value {
	return g.Apply("Split", []*Value{x, g.ConstInts(sizes...)}, Attrs{"axis": axis}, len(sizes))
}

// Slice takes elements [start, end) with step along each given axis.
func (g *Graph) Slice(x *Value, starts, ends, axes, steps []int64) *Value {
	in := []*Value{x, g.ConstInts(starts...), g.ConstInts(ends...)}
	if axes != nil || steps != nil {
		if axes == nil {
			for i := range starts {
				axes = append(axes, int64(i))
			}
		}
		in = append(in, g.ConstInts(axes...))
	}
	if steps != nil {
		in = append(in, g.ConstInts(steps...))
	}
	return g.apply1("Slice", nil, in...)
}

// Squeeze drops size-1 axes.
func (g *Graph) Squeeze(x *Value, axes ...int64) *Value {
	if len(axes) == 0 {
		return g.apply1("Squeeze", nil, x)
	}
	return g.apply1("Squeeze", nil, x, g.ConstInts(axes...))
}

// Unsqueeze inserts size-1 axes at the given output positions.
func (g *Graph) Unsqueeze(x *Value, axes ...int64) *Value {
	return g.apply1("Unsqueeze", nil, x, g.ConstInts(axes...))
}

// Expand broadcasts x to shape.
func (g *Graph) Expand(x *Value, shape Shape) *Value {
	return g.apply1("Expand", nil, x, g.ConstInts(shape...))
}
