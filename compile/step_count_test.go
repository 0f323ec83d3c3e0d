package compile_test

import (
	"math"
	"testing"

	"bmc/compile"
	"bmc/graph"
	"bmc/runtime"
)

// ulps is the distance of two float32 values in units in the last place.
func ulps(a, b float32) int64 {
	ia, ib := int64(math.Float32bits(a)), int64(math.Float32bits(b))
	if ia > ib {
		return ia - ib
	}
	return ib - ia
}

// The step inputs computed in the graph from a step count equal the ones
// the trainer computes in Go (Inputs) for the learning rate the graph
// reads, and differ from those of the float64 learning rate by at most one
// unit in the last place.
func TestStepInputsInTheGraphMatchInputs(t *testing.T) {
	o := compile.OptimizerConfig{Name: compile.AdamW, LR: 1e-3, WeightDecay: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	g := graph.New("steps")
	lr := g.Input("lr", graph.Float32, graph.Shape{1})
	step := g.Input("t", graph.Float32, graph.Shape{1})
	in := o.StepInputs(g, lr, step)
	outs := []string{compile.AdamStepSizeInput, compile.AdamBias2SqrtInput}
	for _, name := range outs {
		g.Output(name, in[name])
	}
	data, err := graph.Marshal(&graph.Model{Graph: g})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := runtime.NewSession(data, []string{"lr", "t"}, outs, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	tensors := make([]*runtime.Tensor, 4)
	for i := range tensors {
		if tensors[i], err = runtime.NewFloat32([]int64{1}); err != nil {
			t.Fatal(err)
		}
		defer tensors[i].Close()
	}
	exact := 0
	cases := 0
	for _, rate := range []float64{1e-3, 1e-3 * 0.1, 0.05, 3e-4} {
		for _, step := range []int64{1, 2, 3, 10, 77, 1000, 4096, 123457, 1 << 22} {
			tensors[0].F32[0], tensors[1].F32[0] = float32(rate), float32(step)
			if err := sess.Run(tensors[:2], tensors[2:]); err != nil {
				t.Fatal(err)
			}
			read := o.Inputs(float64(float32(rate)), step)
			double := o.Inputs(rate, step)
			for i, name := range outs {
				got := tensors[2+i].F32[0]
				if d := ulps(got, read[name]); d > 1 {
					t.Errorf("lr %g step %d: %s = %v in the graph, %v from Inputs (%d ulps)", rate, step, name, got, read[name], d)
				}
				if d := ulps(got, double[name]); d > 1 {
					t.Errorf("lr %g step %d: %s = %v in the graph, %v with the float64 rate (%d ulps)", rate, step, name, got, double[name], d)
				}
				if got == read[name] {
					exact++
				}
				cases++
			}
		}
	}
	if exact < cases*9/10 {
		t.Errorf("only %d of %d step inputs equal Inputs' bit for bit", exact, cases)
	}
}
