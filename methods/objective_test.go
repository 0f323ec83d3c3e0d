package methods_test

import (
	"fmt"
	"slices"
	"testing"

	"bmc/compile"
	"bmc/flops"
	"bmc/graph"
	"bmc/methods"
)

// The Go side and the plan shape of MMCosine, MBSD, CML and MMPareto.

// MBSD and CML switch their regularisers with the modulation window.
func TestObjectiveSchedulesSwitchTheWindow(t *testing.T) {
	for _, tc := range []struct{ method, input string }{{"mbsd", "mbsd.active"}, {"cml", "cml.active"}} {
		p := compilePlan(t, tc.method, "synth-av", map[string]string{"modulation_starts": "1", "modulation_ends": "2"})
		in, ok := inputInfo(&p.Manifest, tc.input)
		if !ok || !in.Shape.Equal(graph.Shape{1}) || in.SetBy != "method" || !slices.Contains(graphInputNames(&p.Manifest, methods.TrainGraph), "input/"+tc.input) {
			t.Fatalf("%s: input %s = %+v (declared %v), want a [1] method input of the train graph", tc.method, tc.input, in, ok)
		}
		s := schedule(t, p)
		r := newFakeRun(&p.Manifest)
		for epoch, want := range []float32{0, 1, 1, 0} {
			r.epoch = epoch
			if err := s.BeginEpoch(r); err != nil {
				t.Fatal(err)
			}
			if got := r.inputs[tc.input][0]; got != want {
				t.Errorf("%s epoch %d: %s = %g, want %g", tc.method, epoch, tc.input, got, want)
			}
		}
	}
}

// CML's removal order is a fresh shuffle of the modalities each epoch,
// drawn from the run's stream "cml.order" at the epoch's first step as
// Fisher–Yates (Python's random.shuffle) draws it, and written as one-hot
// rows in pop order (the end of the list first).
func TestCMLScheduleShufflesTheOrderEachEpoch(t *testing.T) {
	for _, ds := range []string{"synth-av", "synth-avt"} {
		p := compilePlan(t, "cml", ds, nil)
		names := p.Manifest.ModalityNames()
		n := len(names)
		in, ok := inputInfo(&p.Manifest, "cml.order")
		if !ok || !in.Shape.Equal(graph.Shape{int64(n - 1), int64(n)}) {
			t.Fatalf("%s: cml.order input %+v (declared %v), want shape [%d %d]", ds, in, ok, n-1, n)
		}
		// The default pops the unshuffled list: the last modality first.
		for i := range n - 1 {
			for k := range n {
				want := float32(0)
				if k == n-1-i {
					want = 1
				}
				if in.Default[i*n+k] != want {
					t.Fatalf("%s: default order %v", ds, in.Default)
				}
			}
		}
		s := schedule(t, p)
		r := newFakeRun(&p.Manifest)
		seen := map[string]bool{}
		for epoch := range 12 {
			r.epoch = epoch
			if err := s.BeginEpoch(r); err != nil {
				t.Fatal(err)
			}
			order := slices.Clone(names)
			rng := r.Rand("cml.order")
			for i := n - 1; i > 0; i-- {
				j := rng.IntN(i + 1)
				order[i], order[j] = order[j], order[i]
			}
			got := r.inputs["cml.order"]
			for i := range n - 1 {
				for k, m := range names {
					want := float32(0)
					if m == order[n-1-i] {
						want = 1
					}
					if got[i*n+k] != want {
						t.Fatalf("%s epoch %d: order rows %v, want pops of %v", ds, epoch, got, order)
					}
				}
			}
			seen[fmt.Sprint(order)] = true
			// Steps leave the order alone.
			r.step = 3
			if err := s.BeforeStep(r); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.inputs["cml.order"], got) {
				t.Fatalf("%s: a step changed the order", ds)
			}
			r.step = 0
		}
		if len(seen) < 2 {
			t.Errorf("%s: 12 epochs drew only the orders %v", ds, seen)
		}
	}
}

// MMCosine's model has the cosine head with the scaling as its scale.
func TestMMCosineModelUsesTheCosineHead(t *testing.T) {
	p := compilePlan(t, "mmcosine", "synth-avt", map[string]string{"scaling": "4.5"})
	if m := p.Manifest.Model; m.Fusion != "cosine" || m.FusionOptions["scale"] != 4.5 {
		t.Errorf("model fusion %q with options %v, want cosine with scale 4.5", m.Fusion, m.FusionOptions)
	}
	if _, err := methods.Resolve(info(t, "mmcosine"), map[string]string{"scaling": "0"}); err == nil {
		t.Error("scaling 0 resolved")
	}
}

// CML needs the concat head's bias.
func TestCMLNeedsTheConcatHead(t *testing.T) {
	m, err := methods.Lookup("cml")
	if err != nil {
		t.Fatal(err)
	}
	hp, err := methods.Resolve(m.Info(), nil)
	if err != nil {
		t.Fatal(err)
	}
	spec := modelSpec("audio", "visual")
	spec.Fusion = "cosine"
	if _, err := m.Model(spec, hp); err == nil {
		t.Error("cml accepted the cosine head")
	}
}

// The objective methods keep their regularisers in the method phase and
// declare no runs besides the training step: their cost is in the step
// graph. MMPareto differentiates n+1 losses, each a separate backward.
func TestObjectivePlansCountTheirWork(t *testing.T) {
	for _, method := range []string{"mmcosine", "mbsd", "cml", "mmpareto"} {
		for _, ds := range []string{"synth-av", "synth-avt"} {
			p := compilePlan(t, method, ds, nil)
			if !slices.Equal(p.Manifest.StepGraphs, []string{methods.TrainGraph}) {
				t.Errorf("%s on %s: step graphs %v", method, ds, p.Manifest.StepGraphs)
			}
			for _, r := range p.Manifest.Runs {
				if r.Extra {
					t.Errorf("%s on %s declares an extra run %+v", method, ds, r)
				}
			}
			var phaseNodes int
			for _, n := range p.Graphs[methods.TrainGraph].Nodes() {
				if n.Phase == graph.PhaseMethod {
					phaseNodes++
				}
			}
			if want := method != "mmcosine"; (phaseNodes > 0) != want {
				t.Errorf("%s on %s: %d method-phase nodes", method, ds, phaseNodes)
			}
		}
	}
}

// mmparetoCounts is the hand count of an MMPareto step on an MLP model
// (mlp:6,3 encoders): the backward products of one backward of CE(z)
// through the whole model plus one of each CE(z_m) through encoder m and
// its head block, and the method phase's FLOPs (docs/flops.md
// conventions). Per encoder m with N_m gradient elements in its 4 tensors:
// three dot products of the flattened gradients (2N_m − 1 each), 16 scalar
// FLOPs (the cosine 5, γ 7, w_F and the two doubled weights 4), and per
// tensor of N elements 9N + 3: the sum g_F + g_m (N), the combination
// 2w_F·g_F + 2w_m·g_m (3N), two squared norms (2N − 1 each), the ratio
// (2), its two tests (2), α·factor (1) and the scaled gradient (N). The
// head's gradient adds the n unimodal losses' to CE(z)'s (n·N_head). compat
// replaces an encoder's work by 2α·(g_F + g_m): 2N_m.
func mmparetoCounts(p *compile.Plan, compat bool) (fullMACs, unimodalMACs, method int64) {
	m := p.Manifest
	b, c := int64(m.Train.BatchSize), m.Model.Classes
	var dTotal int64
	encoder := func(in int64) int64 {
		// Layer in→6: dW only (the data needs no gradient); 6→3: dW and dx.
		return b*6*in + 2*b*6*3
	}
	var perModality []int64
	for _, mod := range m.Model.Modalities {
		dTotal += mod.Encoder.Out
		enc := encoder(mod.Shape.Size())
		fullMACs += enc                             // in the backward of CE(z)
		unimodalMACs += 2*b*c*mod.Encoder.Out + enc // the backward of CE(z_m)
		perModality = append(perModality, mod.Shape.Size()*6+6+6*3+3)
	}
	fullMACs += 2 * b * c * dTotal // the head
	n := int64(len(m.Model.Modalities))
	method = n * (c*dTotal + c)
	for _, nm := range perModality {
		if compat {
			method += 2 * nm
		} else {
			method += 3*(2*nm-1) + 16 + 9*nm + 4*3
		}
	}
	return fullMACs, unimodalMACs, method
}

// MMPareto's step graph holds its n+1 backward passes and its method work,
// counted exactly: the products against the hand count, the forward against
// the baseline's (one forward), the method phase to the FLOP.
func TestMMParetoFLOPsMatchHandCount(t *testing.T) {
	for _, ds := range []string{"synth-av", "synth-avt"} {
		base := compilePlan(t, "baseline", ds, nil)
		baseFwdNodes, baseFwd := phaseProducts(t, base.Graphs[methods.TrainGraph], graph.PhaseForward)
		for _, compat := range []bool{false, true} {
			p := compilePlan(t, "mmpareto", ds, map[string]string{"compat": fmt.Sprint(compat)})
			g := p.Graphs[methods.TrainGraph]
			full, unimodal, wantMethod := mmparetoCounts(p, compat)
			wantBW := full + unimodal
			if nodes, fwd := phaseProducts(t, g, graph.PhaseForward); nodes != baseFwdNodes || fwd != baseFwd {
				t.Errorf("%s compat=%v: forward products %d nodes %d MACs, the baseline's one forward %d, %d", ds, compat, nodes, fwd, baseFwdNodes, baseFwd)
			}
			if _, bw := phaseProducts(t, g, graph.PhaseBackward); bw != wantBW {
				t.Errorf("%s compat=%v: backward MACs %d, the hand count of 1 full + n unimodal backward passes %d", ds, compat, bw, wantBW)
			}
			if n, _ := phaseProducts(t, g, graph.PhaseMethod); n != 0 {
				t.Errorf("%s compat=%v: %d products in the method phase", ds, compat, n)
			}
			counts, err := flops.Count(g)
			if err != nil {
				t.Fatal(err)
			}
			if got := counts.Phase[graph.PhaseMethod]; got != wantMethod {
				t.Errorf("%s compat=%v: method-phase FLOPs %d, the hand count %d", ds, compat, got, wantMethod)
			}
			// The whole run: 2 epochs of 64/8 steps and a validation pass
			// of 16/8 evaluation batches each; MMPareto declares no extras.
			rep, err := flops.PlanReport(p)
			if err != nil {
				t.Fatal(err)
			}
			eval, err := flops.Count(p.Graphs[compile.EvalGraph])
			if err != nil {
				t.Fatal(err)
			}
			if want := 2 * (8*counts.Total + 2*eval.Total); rep.Training.Total != want || len(rep.Extras) != 0 {
				t.Errorf("%s compat=%v: whole-run FLOPs %d with extras %v, want 2·(8 steps·%d + 2·%d) = %d", ds, compat, rep.Training.Total, rep.Extras, counts.Total, eval.Total, want)
			}
			if rep.PerStep.Phase[graph.PhaseMethod] != wantMethod {
				t.Errorf("%s compat=%v: the report's per-step method FLOPs %d, want %d", ds, compat, rep.PerStep.Phase[graph.PhaseMethod], wantMethod)
			}
			// The baseline's one backward is the full pass of the count.
			if _, bw := phaseProducts(t, base.Graphs[methods.TrainGraph], graph.PhaseBackward); bw != full {
				t.Errorf("%s: the baseline's backward has %d MACs, the hand count of a full backward %d", ds, bw, full)
			}
		}
	}
}
