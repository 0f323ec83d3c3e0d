package compile

// Gradient rules of the convolution and pooling ops (graph/ops_conv.go).

func convGrad() map[string]gradFunc {
	return map[string]gradFunc{}
}
