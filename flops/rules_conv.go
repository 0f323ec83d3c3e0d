package flops

import "bmc/graph"

// FLOP rules of the convolution and pooling ops (graph/ops_conv.go).

func convRules() map[string]rule {
	return map[string]rule{
		"Conv":              convRule,
		"ConvTranspose":     convTransposeRule,
		"MaxPool":           windowRule(-1),
		"AveragePool":       windowRule(0),
		"GlobalAveragePool": reduction(1, 1),
	}
}

// kernelSize is the number of taps of a kernel [.., .., spatial…].
func kernelSize(w graph.Shape) int64 { return w[2:].Size() }

// convRule: every output element is a dot product of length
// (C_in/group)·kernel, one MAC per tap (2 FLOPs), plus one add for the bias.
func convRule(n *graph.Node) (Cost, error) {
	w := n.Inputs[1].Shape()
	macs := outSize(n) * w[1] * kernelSize(w)
	c := Cost{MACs: macs, FLOPs: 2 * macs}
	if len(n.Inputs) == 3 && n.Inputs[2] != nil {
		c.FLOPs += outSize(n)
	}
	return c, nil
}

// convTransposeRule: every input element is multiplied into
// (C_out/group)·kernel outputs, one MAC each, plus one add per output for the
// bias.
func convTransposeRule(n *graph.Node) (Cost, error) {
	w := n.Inputs[1].Shape()
	macs := inSize(n) * w[1] * kernelSize(w)
	c := Cost{MACs: macs, FLOPs: 2 * macs}
	if len(n.Inputs) == 3 && n.Inputs[2] != nil {
		c.FLOPs += outSize(n)
	}
	return c, nil
}

// windowRule costs kernel+extra FLOPs per output element: a max over K taps
// is K−1 comparisons (extra −1); an average is K−1 adds and one divide
// (extra 0). Taps that fall in the padding are counted too, as the kernel
// has a fixed size.
func windowRule(extra int64) rule {
	return func(n *graph.Node) (Cost, error) {
		k := graph.Shape(n.Attrs.Ints("kernel_shape")).Size()
		return Cost{FLOPs: (k + extra) * outSize(n)}, nil
	}
}
