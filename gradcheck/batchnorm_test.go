package gradcheck

import (
	"testing"

	"bmc/graph"
	"bmc/graph/nn"
)

// The batch-norm decomposition has no gradient rule of its own: its
// gradient is what autodiff builds from the ops it is made of. These cases
// check that gradient, including the paths through the batch mean and
// variance, against central differences, alone and inside a ResNet block.
func TestBatchNormGradient(t *testing.T) {
	for i, c := range batchNormCases() {
		t.Run(c.Name, func(t *testing.T) {
			res, err := Check(c, uint64(100+i))
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != len(c.Inputs) {
				t.Fatalf("%d inputs compared, want %d", len(res), len(c.Inputs))
			}
		})
	}
}

// batchNormCases are batch norm in training and evaluation mode and a
// downsampling ResNet block.
func batchNormCases() []Case {
	// Running statistics are constants in training mode (their update is
	// outside the gradient); the loss depends only on y.
	train := Case{
		Name:   "BatchNormTrain",
		Inputs: []Input{f32(3, 2, 2, 3), away(2), f32(2)},
		Build: func(g *graph.Graph, in []*graph.Value) *graph.Value {
			rm := g.ConstFloats(graph.Shape{2}, []float32{0.3, -0.2})
			rv := g.ConstFloats(graph.Shape{2}, []float32{1.5, 0.7})
			y, _, _ := nn.BatchNormTrain(g, in[0], in[1], in[2], rm, rv)
			return y
		},
	}
	// Inputs far from zero mean: the variance is E[x²] − μ², which must
	// stay accurate (and its gradient too) when μ² dominates E[x²].
	offset := away(2, 3, 2, 2)
	for i := range offset.Floats {
		offset.Floats[i] += 3
	}
	shifted := Case{
		Name:   "BatchNormTrain/offset",
		Inputs: []Input{offset, away(3), f32(3)},
		Build: func(g *graph.Graph, in []*graph.Value) *graph.Value {
			zero := g.ConstFloats(graph.Shape{3}, []float32{0, 0, 0})
			one := g.ConstFloats(graph.Shape{3}, []float32{1, 1, 1})
			y, _, _ := nn.BatchNormTrain(g, in[0], in[1], in[2], zero, one)
			return y
		},
	}
	eval := Case{
		Name:   "BatchNormEval",
		Inputs: []Input{f32(2, 3, 2, 2), away(3), f32(3), f32(3), positive(3)},
		Build: func(g *graph.Graph, in []*graph.Value) *graph.Value {
			return nn.BatchNormEval(g, in[0], in[1], in[2], in[3], in[4])
		},
	}
	// A downsampling ResNet BasicBlock in training mode: conv(s2) → BN →
	// ReLU → conv → BN, plus the 1×1 conv(s2) → BN shortcut, then ReLU.
	block := Case{
		Name: "BasicBlock/downsample",
		Inputs: []Input{f32(2, 2, 5, 5), f32(3, 2, 3, 3), f32(3, 3, 3, 3), f32(3, 2, 1, 1),
			away(3), f32(3), away(3), f32(3), away(3), f32(3)},
		Build: func(g *graph.Graph, in []*graph.Value) *graph.Value {
			zero := g.ConstFloats(graph.Shape{3}, []float32{0, 0, 0})
			one := g.ConstFloats(graph.Shape{3}, []float32{1, 1, 1})
			bn := func(x, gamma, beta *graph.Value) *graph.Value {
				y, _, _ := nn.BatchNormTrain(g, x, gamma, beta, zero, one)
				return y
			}
			s2 := graph.ConvOpts{Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}}
			h := g.Relu(bn(g.Conv(in[0], in[1], nil, s2), in[4], in[5]))
			h = bn(g.Conv(h, in[2], nil, graph.ConvOpts{Pads: []int64{1, 1, 1, 1}}), in[6], in[7])
			skip := bn(g.Conv(in[0], in[3], nil, graph.ConvOpts{Strides: []int64{2, 2}}), in[8], in[9])
			return g.Relu(g.Add(h, skip))
		},
		// A smaller step than the default keeps the differences off the
		// ReLUs' kinks (pre-activations here come within 0.02 of zero).
		Eps: 1e-3,
	}
	return []Case{train, shifted, eval, block}
}
