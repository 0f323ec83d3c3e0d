package compile

import (
	"fmt"

	"bmc/graph"
)

// Gradient rules of the reductions (graph/ops_reduce.go).

func reduceGrad() map[string]gradFunc {
	return map[string]gradFunc{
		"ReduceSum":  gradReduce(false),
		"ReduceMean": gradReduce(true),
	}
}

// gradReduce spreads dY back over the reduced axes (divided by their size
// for a mean).
func gradReduce(mean bool) gradFunc {
	return func(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error) {
		x := n.Inputs[0]
		axes, keep, err := graph.ReduceAxes(n)
		if err != nil {
			return nil, err
		}
		d := dy[0]
		if !keep {
			kept := x.Shape().Clone()
			count := int64(1)
			for _, ax := range axes {
				kept[ax] = 1
			}
			for _, dim := range kept {
				count *= dim
			}
			if count != d.Shape().Size() {
				return nil, fmt.Errorf("reduced gradient of shape %v does not fit %v", d.Shape(), kept)
			}
			d = b.g.Reshape(d, kept...)
		}
		dx := b.g.Expand(d, x.Shape())
		if mean {
			count := int64(1)
			for _, ax := range axes {
				count *= x.Shape()[ax]
			}
			dx = b.g.Div(dx, b.g.ConstFloat(float32(count)))
		}
		out := make([]*graph.Value, len(n.Inputs))
		out[0] = dx
		return out, nil
	}
}
