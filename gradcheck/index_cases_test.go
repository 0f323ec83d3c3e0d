package gradcheck

import "bmc/graph"

func ints(shape graph.Shape, v ...int64) Input {
	return Input{Shape: shape, DType: graph.Int64, Ints: v}
}

// indexCases check the gradient rules of the indexing ops, with repeated
// and negative indices where the op allows them (repeated rows must add).
// Gather along axis 0 lowers to ScatterND, along other axes to
// ScatterElements.
func indexCases() []Case {
	return []Case{
		{Name: "Gather/embedding-repeated", Inputs: []Input{f32(6, 4), ints(graph.Shape{2, 3}, 1, 4, 1, 0, 5, 1)},
			Build: func(g *graph.Graph, x []*graph.Value) *graph.Value { return g.Gather(x[0], x[1], 0) }},
		{Name: "Gather/axis0-negative-3d", Inputs: []Input{f32(5, 2, 3), ints(graph.Shape{4}, -1, 0, 4, -5)},
			Build: func(g *graph.Graph, x []*graph.Value) *graph.Value { return g.Gather(x[0], x[1], 0) }},
		{Name: "Gather/axis1-negative", Inputs: []Input{f32(3, 5, 2), ints(graph.Shape{4}, -1, 0, 4, 0)},
			Build: func(g *graph.Graph, x []*graph.Value) *graph.Value { return g.Gather(x[0], x[1], 1) }},
		unaryCase("Gather/scalar-index-last-axis", f32(2, 5), func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Gather(x, g.ConstInt(3), -1)
		}),
		{Name: "GatherElements/axis1", Inputs: []Input{f32(3, 4), ints(graph.Shape{3, 2}, 0, 0, 3, 1, 2, 2)},
			Build: func(g *graph.Graph, x []*graph.Value) *graph.Value { return g.GatherElements(x[0], x[1], 1) }},
		{Name: "GatherElements/axis0", Inputs: []Input{f32(3, 2), ints(graph.Shape{4, 2}, 2, 0, 2, 1, 0, 1, 2, 2)},
			Build: func(g *graph.Graph, x []*graph.Value) *graph.Value { return g.GatherElements(x[0], x[1], 0) }},
		{Name: "ScatterElements/none", Inputs: []Input{f32(4, 3), ints(graph.Shape{2, 3}, 1, 0, 3, 2, 3, 0), f32(2, 3)},
			Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
				return g.ScatterElements(x[0], x[1], x[2], 0, false)
			}},
		{Name: "ScatterElements/add-repeated", Inputs: []Input{f32(4, 3), ints(graph.Shape{3, 3}, 1, 0, 3, 1, 0, 3, 2, 2, 3), f32(3, 3)},
			Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
				return g.ScatterElements(x[0], x[1], x[2], 0, true)
			}},
		// Embedding gradients are ScatterNDs of whole rows (k = 1); k = 2
		// addresses elements, with a negative entry.
		{Name: "ScatterND/rows-add-repeated", Inputs: []Input{f32(5, 3), ints(graph.Shape{4, 1}, 1, 4, 1, 0), f32(4, 3)},
			Build: func(g *graph.Graph, x []*graph.Value) *graph.Value { return g.ScatterND(x[0], x[1], x[2], true) }},
		{Name: "ScatterND/rows-none", Inputs: []Input{f32(4, 5, 2), ints(graph.Shape{3, 1}, -1, 0, 1), f32(3, 5, 2)},
			Build: func(g *graph.Graph, x []*graph.Value) *graph.Value { return g.ScatterND(x[0], x[1], x[2], false) }},
		{Name: "ScatterND/elements-none", Inputs: []Input{f32(3, 4, 2), ints(graph.Shape{2, 2, 2}, 0, 1, 2, -1, 1, 0, 2, 2), f32(2, 2, 2)},
			Build: func(g *graph.Graph, x []*graph.Value) *graph.Value { return g.ScatterND(x[0], x[1], x[2], false) }},
	}
}
