package flops

// FLOP rules of the indexing ops (graph/ops_index.go).

func indexRules() map[string]rule {
	return map[string]rule{}
}
