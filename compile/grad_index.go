package compile

// Gradient rules of the indexing ops (graph/ops_index.go).

func indexGrad() map[string]gradFunc {
	return map[string]gradFunc{}
}
