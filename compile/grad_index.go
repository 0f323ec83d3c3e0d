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
		"ScatterND":       gradScatterND,
	}
}

// gradGather scatter-adds dY's slices into zeros at the gathered positions:
// for an embedding table, each looked-up row receives the sum of its
// tokens' gradients. Along axis 0 this is one ScatterND of whole rows (the
// indices, made non-negative, address the first axis); along another axis
// data is viewed as [pre, V, post] and dY as [pre, I, post], and a
// ScatterElements adds along the middle axis, with the indices broadcast
// to dY's shape.
func gradGather(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	g := b.g
	data, indices := n.Inputs[0], n.Inputs[1]
	ds := data.Shape()
	ax := n.Attrs.Int("axis", 0)
	if ax < 0 {
		ax += int64(ds.Rank())
	}
	pre, post := ds[:ax].Size(), ds[ax+1:].Size()
	count := indices.Shape().Size()
	if ax == 0 {
		idx := g.Reshape(indices, count, 1)
		if idx.DType() != graph.Int64 {
			idx = g.Cast(idx, graph.Int64)
		}
		// ScatterND addresses rows by non-negative index: i < 0 ↦ i + V.
		neg := g.Less(idx, g.ConstInt(0))
		idx = g.Where(neg, g.Add(idx, g.ConstInt(ds[0])), idx)
		rows := g.Reshape(dy[0], append(graph.Shape{count}, ds[1:]...)...)
		return []*graph.Value{g.ScatterND(b.zeros(ds), idx, rows, true), nil}, nil
	}
	d3 := g.Reshape(dy[0], pre, count, post)
	idx := g.Expand(g.Reshape(indices, 1, count, 1), graph.Shape{pre, count, post})
	sum := g.ScatterElements(b.zeros(graph.Shape{pre, ds[ax], post}), idx, d3, 1, true)
	return []*graph.Value{g.Reshape(sum, ds...), nil}, nil
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

// gradScatterND: ScatterND writes each update slice to the position its
// index tuple (the last axis of indices, k long) names in data's first k
// axes. The updates get dY at those positions: data's first k axes are
// flattened and each tuple becomes one row index of a Gather (negative
// entries counted from the end, as the op allows). Data gets dY, with zeros
// where an update overwrote it (reduction none) or unchanged (add).
func gradScatterND(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
	g := b.g
	indices, updates := n.Inputs[1], n.Inputs[2]
	ds, is := n.Inputs[0].Shape(), indices.Shape()
	k := is[is.Rank()-1]
	count := is[:is.Rank()-1].Size()
	rows := g.Reshape(dy[0], append(graph.Shape{ds[:k].Size()}, ds[k:]...)...)
	idx := g.Reshape(indices, count, k)
	if k > 1 {
		// Row-major strides of data's first k axes; i < 0 ↦ i + dim.
		idx = g.Where(g.Less(idx, g.ConstInt(0)), g.Add(idx, g.ConstInts(ds[:k]...)), idx)
		idx = g.ReduceSum(g.Mul(idx, g.ConstInts(rowMajorStrides(ds[:k])...)), false, 1)
	} else {
		idx = g.Reshape(idx, count)
	}
	dupdates := g.Reshape(g.Gather(rows, idx, 0), updates.Shape()...)
	ddata := dy[0]
	if n.Attrs.String("reduction", "none") != "add" {
		ddata = g.ScatterND(dy[0], indices, b.zeros(updates.Shape()), false)
	}
	return []*graph.Value{ddata, nil, dupdates}, nil
}
