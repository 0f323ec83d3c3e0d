package nn

import (
	"fmt"

	"bmc/graph"
)

// PyTorch's nn.BatchNorm2d defaults.
const (
	BatchNormEps      = 1e-5
	BatchNormMomentum = 0.1
)

// BatchNormTrain is nn.BatchNorm2d in training mode, decomposed into
// standard ops (ONNX Runtime's CUDA provider rejects BatchNormalization's
// training mode). x is [N, C, H, W]; weight, bias, runningMean and
// runningVar are [C].
//
// It normalises with the batch statistics over (N, H, W), using the biased
// variance σ² = E[x²] − μ²: y = (x − μ)·γ/√(σ² + eps) + β. The per-channel
// terms fold into one scale and one shift, so the forward makes three
// full-size elementwise passes (x², x·scale, + shift) and two reductions
// (Σx, Σx²). The sums are ReduceSum, whose gradient is a single broadcast,
// rather than ReduceMean, whose gradient also divides the full-size result.
// In float32 the one-pass variance matched PyTorch's float32 results as
// closely as PyTorch's own float32 run matched float64 (resnet_test.go).
// On a (nearly) constant channel it can round below zero, and below −eps
// √(σ² + eps) is NaN, so σ² is clamped at 0 (a Relu over C values).
//
// nextMean and nextVar are the running statistics after this batch, updated
// as PyTorch does: running ← (1 − momentum)·running + momentum·batch, with
// the unbiased batch variance (times n/(n − 1), n = N·H·W). They are outside
// the gradient (StopGradient).
func BatchNormTrain(g *graph.Graph, x, weight, bias, runningMean, runningVar *graph.Value) (y, nextMean, nextVar *graph.Value) {
	c, n, err := batchNormDims(x)
	if err == nil && n < 2 {
		err = fmt.Errorf("batch norm: input %s is %v: training needs more than one value per channel", x.Name(), x.Shape())
	}
	if err != nil {
		g.Fail(err)
		return x, runningMean, runningVar
	}
	inv := g.ConstFloat(float32(1 / float64(n)))
	mean := g.Mul(g.ReduceSum(x, true, 0, 2, 3), inv)             // [1 C 1 1]
	meanSq := g.Mul(g.ReduceSum(g.Mul(x, x), true, 0, 2, 3), inv) // E[x²]
	variance := g.Relu(g.Sub(meanSq, g.Mul(mean, mean)))
	y = normalize(g, x, c, mean, variance, weight, bias)

	m := g.ConstFloat(BatchNormMomentum)
	keep := g.ConstFloat(1 - BatchNormMomentum)
	batchMean := g.Reshape(g.StopGradient(mean), c)
	// n ≥ 2 was checked above (PyTorch also refuses one value per channel).
	unbiased := g.Mul(g.Reshape(g.StopGradient(variance), c), g.ConstFloat(float32(float64(n)/float64(n-1))))
	nextMean = g.Add(g.Mul(runningMean, keep), g.Mul(batchMean, m))
	nextVar = g.Add(g.Mul(runningVar, keep), g.Mul(unbiased, m))
	return y, nextMean, nextVar
}

// BatchNormEval is nn.BatchNorm2d in evaluation mode: x [N, C, H, W]
// normalised with the running statistics, as one per-channel scale and shift.
func BatchNormEval(g *graph.Graph, x, weight, bias, runningMean, runningVar *graph.Value) *graph.Value {
	c, _, err := batchNormDims(x)
	if err != nil {
		g.Fail(err)
		return x
	}
	return normalize(g, x, c, g.Reshape(runningMean, c, 1, 1), g.Reshape(runningVar, c, 1, 1), weight, bias)
}

// normalize returns x·scale + shift with scale = γ/√(var + eps) and
// shift = β − mean·scale; mean and variance broadcast against [C 1 1].
func normalize(g *graph.Graph, x *graph.Value, c int64, mean, variance, weight, bias *graph.Value) *graph.Value {
	scale := g.Div(g.Reshape(weight, c, 1, 1), g.Sqrt(g.Add(variance, g.ConstFloat(BatchNormEps))))
	shift := g.Sub(g.Reshape(bias, c, 1, 1), g.Mul(mean, scale))
	return g.Add(g.Mul(x, scale), shift)
}

// batchNormDims checks x is [N, C, H, W] and returns C and N·H·W.
func batchNormDims(x *graph.Value) (c, n int64, err error) {
	s := x.Shape()
	if s.Rank() != 4 {
		return 0, 0, fmt.Errorf("batch norm: input %s is %v, want [N, C, H, W]", x.Name(), s)
	}
	return s[1], s[0] * s[2] * s[3], nil
}

// BatchNorm2dLayout is nn.BatchNorm2d(channels) under prefix ("…bn1."):
// weight and bias, initialised as BalanceBenchmark's ResNet does (weight
// N(1, 0.02), bias 0), and the running statistics (mean 0, variance 1).
func BatchNorm2dLayout(prefix string, channels int64) ([]Param, []Buffer) {
	shape := graph.Shape{channels}
	return []Param{
			{Name: prefix + "weight", Shape: shape, Init: Init{Kind: InitNormal, Mean: 1, Std: 0.02}},
			{Name: prefix + "bias", Shape: shape, Init: Init{Kind: InitConstant}},
		}, []Buffer{
			{Name: prefix + "running_mean", Shape: shape, Init: Init{Kind: InitConstant}},
			{Name: prefix + "running_var", Shape: shape, Init: Init{Kind: InitConstant, Value: 1}},
		}
}

// BatchNorm2d applies the nn.BatchNorm2d laid out by BatchNorm2dLayout under
// prefix to x [N, C, H, W]: with batch statistics in training mode (the new
// running statistics go to c.UpdateBuffer when this forward updates
// buffers), with the running statistics otherwise.
func BatchNorm2d(c *Ctx, prefix string, x *graph.Value) *graph.Value {
	w, b := c.Param(prefix+"weight"), c.Param(prefix+"bias")
	mean, variance := c.Buffer(prefix+"running_mean"), c.Buffer(prefix+"running_var")
	if c.Mode != Train {
		return BatchNormEval(c.G, x, w, b, mean, variance)
	}
	y, nextMean, nextVar := BatchNormTrain(c.G, x, w, b, mean, variance)
	if c.UpdatesBuffers() {
		c.UpdateBuffer(prefix+"running_mean", nextMean)
		c.UpdateBuffer(prefix+"running_var", nextVar)
	}
	return y
}
