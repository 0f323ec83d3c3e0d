package compile

import "bmc/graph"

// CrossEntropy is PyTorch's F.cross_entropy with mean reduction:
// mean_i −log softmax(logits_i)[label_i], logits [B, C], labels int64 [B].
// It is built from LogSoftmax and a one-hot mask because ONNX Runtime has no
// stock SoftmaxCrossEntropyLoss kernel.
func CrossEntropy(g *graph.Graph, logits, labels *graph.Value) *graph.Value {
	return g.ReduceMean(CrossEntropyPerSample(g, logits, labels), false)
}

// CrossEntropyPerSample is −log softmax(logits_i)[label_i] for each row, [B].
func CrossEntropyPerSample(g *graph.Graph, logits, labels *graph.Value) *graph.Value {
	pop := g.Scope("cross_entropy")
	defer pop()
	classes := logits.Shape()[logits.Shape().Rank()-1]
	onehot := g.OneHot(labels, classes)
	return g.Neg(g.ReduceSum(g.Mul(onehot, g.LogSoftmax(logits, -1)), false, -1))
}
