package flops

import "bmc/graph"

// FLOP rules of the indexing ops (graph/ops_index.go).

func indexRules() map[string]rule {
	return map[string]rule{
		"Gather":          free,
		"GatherElements":  free,
		"ScatterElements": scatterRule,
	}
}

// scatterRule: writing moves data; reduction "add" costs one add per update.
func scatterRule(n *graph.Node) (Cost, error) {
	if n.Attrs.String("reduction", "none") == "add" {
		return Cost{FLOPs: n.Inputs[2].Shape().Size()}, nil
	}
	return Cost{}, nil
}
