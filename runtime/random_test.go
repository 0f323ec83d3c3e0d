package runtime_test

import (
	"math"
	"slices"
	"testing"

	"bmc/compile"
	"bmc/experiment"
	"bmc/runtime"
)

// Dropout masks are random inputs of the training graph only, drawn from
// the seed and the step: the same step draws the same mask, another step
// another one, and the kept fraction is the keep probability.
func TestDropoutMasksAreSeededRandomInputs(t *testing.T) {
	const p = 0.25
	plan, _, err := experiment.Compile(experiment.Request{Method: "baseline", Dataset: "synth-av", DataParams: small,
		Encoder: "mlp:64,32,dropout=0.25", Train: experiment.Overrides{Epochs: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	m := &plan.Manifest
	for _, g := range m.Graphs {
		var random []compile.IO
		for _, io := range g.Inputs {
			if io.Kind == compile.IORandom {
				random = append(random, io)
			}
		}
		switch {
		case g.Role == "train" && len(random) != 4:
			t.Errorf("graph %s has %d random inputs, want one mask per MLP layer per modality (4)", g.Name, len(random))
		case g.Role != "train" && len(random) != 0:
			t.Errorf("graph %s (%s) has random inputs %v", g.Name, g.Role, random)
		}
		for _, r := range g.Random {
			if r.Dist.Kind != "bernoulli" || r.Dist.P != 1-p || math.Abs(r.Dist.Scale-1/(1-p)) > 1e-12 {
				t.Errorf("graph %s: random %s is %+v", g.Name, r.Key, r.Dist)
			}
		}
	}
	pr, err := runtime.Load(plan, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	step := m.StepGraphs[0]
	run := func(s uint64) []float32 {
		pr.SetStep(s)
		if err := pr.Run(step); err != nil {
			t.Fatal(err)
		}
		mask, err := pr.RandomInput(step, m.Graphs[0].Random[0].Key)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Clone(mask)
	}
	a, b, a2 := run(3), run(4), run(3)
	if !slices.Equal(a, a2) {
		t.Error("step 3 drew two different masks")
	}
	if slices.Equal(a, b) {
		t.Error("steps 3 and 4 drew the same mask")
	}
	kept := 0
	for _, v := range a {
		switch v {
		case 0:
		case float32(1 / (1 - p)):
			kept++
		default:
			t.Fatalf("mask value %v is neither 0 nor 1/(1−p)", v)
		}
	}
	if frac := float64(kept) / float64(len(a)); math.Abs(frac-(1-p)) > 0.03 {
		t.Errorf("kept fraction %.3f over %d elements, want %.2f", frac, len(a), 1-p)
	}
}
