package graph

// Convolution and pooling ops.

func convRule() map[string]ruleFunc {
	return map[string]ruleFunc{}
}
