package gradcheck

import (
	"fmt"
	"math"

	"bmc/runtime"
)

// Agreement is how closely two targets agree on a case, each difference
// relative to max(1, ‖b‖∞) of the tensor it is in.
type Agreement struct {
	// Forward is the largest difference of f(x).
	Forward float64
	// Gradient is the largest difference of the gradients of Σ R⊙f(x).
	Gradient float64
}

// CompareTargets runs the case's function and its gradient graph on two
// targets (say the CUDA provider and the CPU) with the same inputs and
// projection as Check(c, seed) draws, and reports their largest
// differences.
func CompareTargets(c Case, seed uint64, a, b runtime.Target) (Agreement, error) {
	pr, err := newProblem(c, seed)
	defer pr.close()
	if err != nil {
		return Agreement{}, err
	}
	values, fwd, ana, outShape, proj := pr.values, pr.fwd, pr.ana, pr.outShape, pr.proj
	gradShapes := make([][]int64, len(ana.floatInputs))
	for k, i := range ana.floatInputs {
		gradShapes[k] = c.Inputs[i].Shape
	}
	var agree Agreement
	for _, g := range []struct {
		b      *built
		in     []*runtime.Tensor
		shapes [][]int64
		worst  *float64
	}{
		{fwd, values, [][]int64{outShape}, &agree.Forward},
		{ana, append(append([]*runtime.Tensor{}, values...), proj), gradShapes, &agree.Gradient},
	} {
		outA, err := runOn(c.Name, g.b, a, g.in, g.shapes)
		if err != nil {
			return agree, err
		}
		outB, err := runOn(c.Name, g.b, b, g.in, g.shapes)
		if err != nil {
			return agree, err
		}
		for k := range outA {
			*g.worst = max(*g.worst, relativeDifference(outA[k], outB[k]))
		}
	}
	return agree, nil
}

// runOn runs a built graph once on a target and returns copies of its
// outputs.
func runOn(name string, b *built, target runtime.Target, in []*runtime.Tensor, shapes [][]int64) ([][]float32, error) {
	s, err := runtime.NewSession(b.bytes, b.inputs, b.outputs, runtime.Options{Threads: 1, Target: target})
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", name, target, err)
	}
	defer s.Close()
	var outs []*runtime.Tensor
	defer func() { closeAll(outs) }()
	for _, shape := range shapes {
		t, err := runtime.NewFloat32(shape)
		if err != nil {
			return nil, err
		}
		outs = append(outs, t)
	}
	if err := s.Run(in, outs); err != nil {
		return nil, fmt.Errorf("%s on %s: run: %w", name, target, err)
	}
	res := make([][]float32, len(outs))
	for k, t := range outs {
		res[k] = append([]float32(nil), t.F32...)
	}
	return res, nil
}

// relativeDifference is max |a−b| / max(1, ‖b‖∞) (+Inf for a NaN).
func relativeDifference(a, b []float32) float64 {
	scale := 1.0
	for _, v := range b {
		scale = max(scale, math.Abs(float64(v)))
	}
	worst := 0.0
	for i := range b {
		d := math.Abs(float64(a[i])-float64(b[i])) / scale
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		worst = max(worst, d)
	}
	return worst
}
