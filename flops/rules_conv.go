package flops

// FLOP rules of the convolution and pooling ops (graph/ops_conv.go).

func convRules() map[string]rule {
	return map[string]rule{}
}
