package compile

import "bmc/graph"

// Gradient rules of the indexing ops (graph/ops_index.go). Every gather's
// gradient is a scatter-add into zeros (repeated indices accumulate), every
// scatter's is a gather; the indices get none.

func indexGrad() map[string]gradFunc {
	return map[string]gradFunc{
		"Gather":          gradGather,
		"GatherElements":  gradGatherElements,
		"ScatterElements": gradScatterElements,
	}
}

// gradGather views data as [pre, V, post] (V the gathered axis) and dY as
// [pre, I, post] (I the number of indices), and scatter-adds dY's rows into
// zeros along the middle axis: for an embedding table, each looked-up row
// receives the sum of its tokens' gradients.
func gradGather(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	data, indices := n.Inputs[0], n.Inputs[1]
	ds := data.Shape()
	ax := n.Attrs.Int("axis", 0)
	if ax < 0 {
		ax += int64(ds.Rank())
	}
	pre, post := ds[:ax].Size(), ds[ax+1:].Size()
	count := indices.Shape().Size()
	d3 := b.g.Reshape(dy[0], pre, count, post)
	idx := b.g.Expand(b.g.Reshape(indices, 1, count, 1), graph.Shape{pre, count, post})
	sum := b.g.ScatterElements(b.zeros(graph.Shape{pre, ds[ax], post}), idx, d3, 1, true)
	return []*graph.Value{b.g.Reshape(sum, ds...), nil}, nil
}

// gradGatherElements scatter-adds dY into zeros at the gathered positions.
func gradGatherElements(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	data, indices := n.Inputs[0], n.Inputs[1]
	axis := n.Attrs.Int("axis", 0)
	return []*graph.Value{b.g.ScatterElements(b.zeros(data.Shape()), indices, dy[0], axis, true), nil}, nil
}

// gradScatterElements: the updates get dY at the positions they were
// written to (a GatherElements); data gets dY, with zeros where an update
// overwrote it (reduction none) or unchanged (reduction add).
func gradScatterElements(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	indices, updates := n.Inputs[1], n.Inputs[2]
	axis := n.Attrs.Int("axis", 0)
	ddata := dy[0]
	if n.Attrs.String("reduction", "none") != "add" {
		ddata = b.g.ScatterElements(dy[0], indices, b.zeros(updates.Shape()), axis, false)
	}
	return []*graph.Value{ddata, nil, b.g.GatherElements(dy[0], indices, axis)}, nil
}
