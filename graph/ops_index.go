package graph

// Indexing ops: gathers and scatters.

func indexRule() map[string]ruleFunc {
	return map[string]ruleFunc{}
}
