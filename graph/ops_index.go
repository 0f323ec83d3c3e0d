package graph

import "fmt"

// Indexing ops: gathers and scatters with integer index tensors (int64 or
// int32; negative indices count from the end, as in ONNX).

func indexRule() map[string]ruleFunc {
	return map[string]ruleFunc{
		"Gather":          gatherShape,
		"GatherElements":  gatherElementsShape,
		"ScatterElements": scatterElementsShape,
	}
}

func requireIndices(v *Value, what string) error {
	if v.dtype != Int64 && v.dtype != Int32 {
		return fmt.Errorf("%s are %v, want int64 or int32", what, v.dtype)
	}
	return nil
}

func gatherShape(in []*Value, a Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 2, 2); err != nil {
		return nil, err
	}
	if err := requireIndices(in[1], "indices"); err != nil {
		return nil, err
	}
	data := in[0].shape
	if data.Rank() < 1 {
		return nil, fmt.Errorf("data must have rank ≥ 1")
	}
	ax, err := normAxis(a.Int("axis", 0), data.Rank())
	if err != nil {
		return nil, err
	}
	out := make(Shape, 0, data.Rank()-1+in[1].shape.Rank())
	out = append(out, data[:ax]...)
	out = append(out, in[1].shape...)
	out = append(out, data[ax+1:]...)
	return one(in[0].dtype, out), nil
}

func gatherElementsShape(in []*Value, a Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 2, 2); err != nil {
		return nil, err
	}
	if err := requireIndices(in[1], "indices"); err != nil {
		return nil, err
	}
	if err := sameRankAlong(in[0].shape, in[1].shape, a, "indices"); err != nil {
		return nil, err
	}
	return one(in[0].dtype, in[1].shape.Clone()), nil
}

// sameRankAlong checks the element-wise index rule of GatherElements and
// ScatterElements: indices (and updates) have data's rank, and no dimension
// other than axis is larger than data's.
func sameRankAlong(data, idx Shape, a Attrs, what string) error {
	if data.Rank() < 1 {
		return fmt.Errorf("data must have rank ≥ 1")
	}
	if idx.Rank() != data.Rank() {
		return fmt.Errorf("%s have rank %d, data has rank %d: they must match", what, idx.Rank(), data.Rank())
	}
	ax, err := normAxis(a.Int("axis", 0), data.Rank())
	if err != nil {
		return err
	}
	for i := range data {
		if i != ax && idx[i] > data[i] {
			return fmt.Errorf("%s dimension %d is %d, larger than data's %d", what, i, idx[i], data[i])
		}
	}
	return nil
}

func scatterElementsShape(in []*Value, a Attrs, _ int) ([]outInfo, error) {
	if err := arity(in, 3, 3); err != nil {
		return nil, err
	}
	if err := requireIndices(in[1], "indices"); err != nil {
		return nil, err
	}
	if in[2].dtype != in[0].dtype {
		return nil, fmt.Errorf("updates are %v, data is %v: types must match", in[2].dtype, in[0].dtype)
	}
	if !in[2].shape.Equal(in[1].shape) {
		return nil, fmt.Errorf("updates have shape %v, indices %v: they must match", in[2].shape, in[1].shape)
	}
	if r := a.String("reduction", "none"); r != "none" && r != "add" {
		return nil, fmt.Errorf("reduction %q is not supported (none and add are)", r)
	}
	if err := sameRankAlong(in[0].shape, in[1].shape, a, "indices"); err != nil {
		return nil, err
	}
	return one(in[0].dtype, in[0].shape.Clone()), nil
}

// Gather takes the slices of data at indices along axis (embedding lookup
// for axis 0): the output shape is data[:axis] ++ indices ++ data[axis+1:].
func (g *Graph) Gather(data, indices *Value, axis int64) *Value {
	return g.apply1("Gather", Attrs{"axis": axis}, data, indices)
}

// GatherElements picks, for every position of indices, the element of data
// whose coordinate along axis is the index there.
func (g *Graph) GatherElements(data, indices *Value, axis int64) *Value {
	return g.apply1("GatherElements", Attrs{"axis": axis}, data, indices)
}

// ScatterElements returns data with each element of updates written (add
// false) or added (add true; repeated indices accumulate) at the position
// GatherElements would read it from.
func (g *Graph) ScatterElements(data, indices, updates *Value, axis int64, add bool) *Value {
	reduction := "none"
	if add {
		reduction = "add"
	}
	return g.apply1("ScatterElements", Attrs{"axis": axis, "reduction": reduction}, data, indices, updates)
}
