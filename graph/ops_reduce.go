package graph

import (
	"fmt"
	"slices"
)

// Reductions. At opset 17 ReduceSum takes its axes as an input; ReduceMean,
// ReduceMax and ReduceMin take them as an attribute. ArgMax reduces one axis.

func reduceRule() map[string]ruleFunc {
	return map[string]ruleFunc{
		"ReduceSum":       reduceShape(true),
		"ReduceMean":      reduceShape(false),
		"ReduceMax":       reduceShape(false),
		"ReduceMin":       reduceShape(false),
		"ReduceProd":      reduceShape(false),
		"ReduceSumSquare": reduceShape(false),
		"ReduceL2":        reduceShape(false),
		"ArgMax":          argShape,
		"ArgMin":          argShape,
	}
}

// ReduceAxes returns the normalised, sorted axes a reduce node reduces, and
// whether it keeps them as size-1 dimensions.
func ReduceAxes(n *Node) ([]int, bool, error) {
	var axes []int64
	if n.Op == "ReduceSum" {
		if len(n.Inputs) > 1 && n.Inputs[1] != nil {
			var err error
			if axes, err = constInts(n.Inputs[1], "axes"); err != nil {
				return nil, false, err
			}
		}
	} else {
		axes = n.Attrs.Ints("axes")
	}
	return normReduceAxes(n.Inputs[0].shape, axes, n.Attrs)
}

func normReduceAxes(in Shape, axes []int64, a Attrs) ([]int, bool, error) {
	keep := a.Int("keepdims", 1) != 0
	var out []int
	if len(axes) == 0 {
		if a.Int("noop_with_empty_axes", 0) != 0 {
			return nil, keep, nil
		}
		for i := range in {
			out = append(out, i)
		}
		return out, keep, nil
	}
	for _, ax := range axes {
		i, err := normAxis(ax, in.Rank())
		if err != nil {
			return nil, false, err
		}
		if slices.Contains(out, i) {
			return nil, false, fmt.Errorf("axis %d is listed twice", ax)
		}
		out = append(out, i)
	}
	slices.Sort(out)
	return out, keep, nil
}

func reducedShape(in Shape, axes []int, keep bool) Shape {
	out := Shape{}
	for i, d := range in {
		if slices.Contains(axes, i) {
			if keep {
				out = append(out, 1)
			}
			continue
		}
		out = append(out, d)
	}
	return out
}

func reduceShape(axesInput bool) ruleFunc {
	return func(in []*Value, a Attrs, _ int) ([]outInfo, error) {
		var axes []int64
		if axesInput {
			if err := arity(in, 1, 2); err != nil {
				return nil, err
			}
			if len(in) == 2 {
				var err error
				if axes, err = constInts(in[1], "axes"); err != nil {
					return nil, err
				}
			}
		} else {
			if err := arity(in, 1, 1); err != nil {
				return nil, err
			}
			axes = a.Ints("axes")
		}
		ax, keep, err := normReduceAxes(in[0].shape, axes, a)
		if err != nil {
			return nil, err
		}
		return one(in[0].dtype, reducedShape(in[0].shape, ax, keep)), nil
	}
}

func argShape(in []*Value, a Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 1, 1); err != nil {
		return nil, err
	}
	ax, err := normAxis(a.Int("axis", 0), in[0].shape.Rank())
	if err != nil {
		return nil, err
	}
	return one(Int64, reducedShape(in[0].shape, []int{ax}, a.Int("keepdims", 1) != 0)), nil
}

func reduceAttrs(keep bool) Attrs {
	k := int64(0)
	if keep {
		k = 1
	}
	return Attrs{"keepdims": k}
}

// ReduceSum sums x over axes (all axes when none are given).
func (g *Graph) ReduceSum(x *Value, keep bool, axes ...int64) *Value {
	in := []*Value{x}
	if len(axes) > 0 {
		in = append(in, g.ConstInts(axes...))
	}
	return g.apply1("ReduceSum", reduceAttrs(keep), in...)
}

func (g *Graph) reduceAttrOp(op string, x *Value, keep bool, axes []int64) *Value {
	attrs := reduceAttrs(keep)
	if len(axes) > 0 {
		attrs["axes"] = append([]int64{}, axes...)
	}
	return g.apply1(op, attrs, x)
}

// ReduceMean averages x over axes (all axes when none are given).
func (g *Graph) ReduceMean(x *Value, keep bool, axes ...int64) *Value {
	return g.reduceAttrOp("ReduceMean", x, keep, axes)
}

// ReduceMax takes the maximum of x over axes (all axes when none are given).
func (g *Graph) ReduceMax(x *Value, keep bool, axes ...int64) *Value {
	return g.reduceAttrOp("ReduceMax", x, keep, axes)
}

// ReduceMin takes the minimum of x over axes (all axes when none are given).
func (g *Graph) ReduceMin(x *Value, keep bool, axes ...int64) *Value {
	return g.reduceAttrOp("ReduceMin", x, keep, axes)
}

// ArgMax returns the index of the first maximum along axis.
func (g *Graph) ArgMax(x *Value, axis int64, keep bool) *Value {
	k := int64(0)
	if keep {
		k = 1
	}
	return g.apply1("ArgMax", Attrs{"axis": axis, "keepdims": k}, x)
}
