package gradcheck

import "bmc/graph"

// transformerCases check the layer-normalization rule, in every form the
// op takes.
func transformerCases() []Case {
	return []Case{
		{Name: "LayerNormalization/last-axis", Inputs: []Input{f32(3, 5), f32(5), f32(5)}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
			return g.LayerNorm(x[0], x[1], x[2], 1e-5)
		}},
		{Name: "LayerNormalization/two-axes-no-bias", Inputs: []Input{f32(2, 3, 4), f32(3, 4)}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
			return g.LayerNorm(x[0], x[1], nil, 1e-12)
		}},
		// A node without the statistics outputs: the rule recomputes them.
		{Name: "LayerNormalization/y-only", Inputs: []Input{f32(2, 3, 4), f32(4), f32(4)}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
			return g.Apply("LayerNormalization", x, graph.Attrs{"axis": int64(-1), "epsilon": float32(1e-6)}, 1)[0]
		}},
		// Every axis normalised: no leading axes to sum the scale's gradient over.
		{Name: "LayerNormalization/all-axes", Inputs: []Input{f32(3, 4), f32(3, 4), f32(3, 4)}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
			return g.Apply("LayerNormalization", x, graph.Attrs{"axis": int64(0)}, 3)[0]
		}},
	}
}
