package runtime_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"bmc/compile"
	"bmc/datasets"
	"bmc/experiment"
	"bmc/flops"
	"bmc/graph/nn"
	"bmc/runtime"
)

// These tests run training steps of the Feed-forward methods OPM, AMCo and
// Greedy and check what the step graphs compute against the spec's
// formulas evaluated in Go on the same logits and state.

// modalities are the plan's modality names in fusion order.
func modalities(p *compile.Plan) []string { return p.Manifest.ModalityNames() }

// opmExpected evaluates spec §4.3 on the step's unimodal logits z[m]
// (row-major [B, C]), the fusion bias b, the feature widths d, the noise
// [B, n] and the execute flag: the scores, q, θ, the sample weights, the
// recomputed fused logits and the loss.
type opmExpected struct {
	score, q []float64
	theta    float64
	weight   []float64
	fused    [][]float64
	loss     float64
}

func opmFormula(z [][]float64, labels []int64, classes int, bias []float64, d []int64, noise []float32, exec bool, qBase, alpha float64) opmExpected {
	n, batch := len(z), len(labels)
	e := opmExpected{score: make([]float64, n), q: make([]float64, n), weight: make([]float64, batch)}
	for m := range n {
		for i, y := range labels {
			e.score[m] += softmaxRow(z[m][i*classes : (i+1)*classes])[y]
		}
	}
	var dq, dsum float64
	for m := range n {
		var others float64
		for k := range n {
			if k != m {
				others += e.score[k]
			}
		}
		rho := math.Tanh(math.Max(e.score[m]/(others+1e-5)-1, 0))
		if rho > 0 {
			e.q[m] = math.Min(math.Max(qBase*(1+alpha*rho), 0), 1)
		}
		dq += float64(d[m]) * e.q[m]
		dsum += float64(d[m])
	}
	e.theta = dq / dsum
	var total float64
	for i, y := range labels {
		row := make([]float64, classes)
		anyKept := false
		for c := range classes {
			row[c] = bias[c]
		}
		for m := range n {
			f := 1.0
			if exec {
				f = 0
				if float64(noise[i*n+m]) < 1-e.q[m] {
					f, anyKept = 1/(1-e.theta+1e-5), true
				}
			}
			// φ_m·W_mᵀ = z_m − b/n, scaled by the drop factor.
			for c := range classes {
				row[c] += f * (z[m][i*classes+c] - bias[c]/float64(n))
			}
		}
		e.weight[i] = 1
		if exec && !anyKept {
			e.weight[i] = 0
		}
		e.fused = append(e.fused, row)
		total += e.weight[i]
		e.loss -= e.weight[i] * math.Log(softmaxRow(row)[y])
	}
	e.loss /= math.Max(total, 1)
	return e
}

func floats(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// One OPM step with a fixed coin and noise, 2 and 3 modalities: the scores,
// drop probabilities, θ, kept samples and the loss of the recomputed fused
// logits are the spec's; the fusion bias moves by −lr·Σ_i w_i·(softmax(z'_i)
// − e_{y_i})/Σw; without dropping the step is Baseline's step.
func TestOPMStepMatchesSpec(t *testing.T) {
	for _, dataset := range []string{"synth-av", "synth-avt"} {
		t.Run(dataset, func(t *testing.T) {
			hp := map[string]string{"q_base": "0.5", "alpha": "0.8"}
			// Weak visual and text signals, so that the audio dominates.
			data := map[string]string{"train": "512", "val": "128", "test": "200", "signal.visual": "0.1"}
			if dataset == "synth-avt" {
				data["signal.text"] = "0.1"
			}
			p, d := compileOn(t, "opm", dataset, "", hp, data, plainSGD())
			pr, _, labels := stepProgram(t, p, d)
			init := warmUp(t, pr, 40)
			names := modalities(p)
			n, classes := len(names), int(p.Manifest.Model.Classes)
			noise := make([]float32, batch*n)
			rng := rand.New(rand.NewPCG(5, 6))
			for i := range noise {
				noise[i] = rng.Float32()
			}
			model, err := nn.New(p.Manifest.Model)
			if err != nil {
				t.Fatal(err)
			}
			widths := model.FeatureWidths()
			bias := floats(init["fusion_module.fc_out.bias"])
			run := func(exec float32) (map[string][]float64, opmExpected) {
				if err := pr.SetState(init); err != nil {
					t.Fatal(err)
				}
				setInput(t, pr, "opm.execute", exec)
				setInput(t, pr, "opm.noise", noise...)
				if err := pr.Run("train"); err != nil {
					t.Fatal(err)
				}
				z := make([][]float64, n)
				for m, name := range names {
					z[m] = metric(t, pr, "logits/"+name)
				}
				return delta(init, snapshot(t, pr)), opmFormula(z, labels, classes, bias, widths, noise, exec == 1, 0.5, 0.8)
			}
			for _, exec := range []float32{1, 0} {
				update, want := run(exec)
				for m, name := range names {
					if got := metric(t, pr, "opm.score/"+name)[0]; !near(got, want.score[m], 1e-4) {
						t.Errorf("exec %v: opm.score/%s = %v, the spec gives %v", exec, name, got, want.score[m])
					}
					if got := metric(t, pr, "opm.q/"+name)[0]; !near(got, want.q[m], 1e-5) {
						t.Errorf("exec %v: opm.q/%s = %v, the spec gives %v", exec, name, got, want.q[m])
					}
				}
				if slicesMax(want.q) == 0 {
					t.Fatalf("no modality dominates this batch (scores %v); the test checks no dropping", want.score)
				}
				if got := metric(t, pr, "opm.theta")[0]; !near(got, want.theta, 1e-5) {
					t.Errorf("exec %v: opm.theta = %v, want %v", exec, got, want.theta)
				}
				var kept float64
				for _, w := range want.weight {
					kept += w
				}
				if got := metric(t, pr, "opm.kept")[0]; got != kept {
					t.Errorf("exec %v: opm.kept = %v, want %v", exec, got, kept)
				}
				if got := metric(t, pr, "loss")[0]; !near(got, want.loss, 1e-4) {
					t.Errorf("exec %v: loss %v, the spec gives %v", exec, got, want.loss)
				}
				for c := range classes {
					var g float64
					for i, y := range labels {
						s := softmaxRow(want.fused[i])[c]
						if int(y) == c {
							s--
						}
						g += want.weight[i] * s
					}
					g /= math.Max(kept, 1)
					if got := update["fusion_module.fc_out.bias"][c]; !near(got, -0.1*g, 1e-4) {
						t.Errorf("exec %v: fusion bias[%d] moves by %v, want %v", exec, c, got, -0.1*g)
					}
				}
				if exec == 0 {
					// Nothing dropped: the update is Baseline's.
					pb, _ := compileOn(t, "baseline", dataset, "", nil, small, plainSGD())
					prb, _, _ := stepProgram(t, pb, d)
					if err := prb.SetState(init); err != nil {
						t.Fatal(err)
					}
					if err := prb.Run("train"); err != nil {
						t.Fatal(err)
					}
					checkScaled(t, p, delta(init, snapshot(t, prb)), update, nil)
				}
			}
		})
	}
}

// warmUp trains on the program's batch without dropping (exec 0) for a
// few steps, so that one modality dominates (with three modalities its
// score must exceed the other two together), and returns that state.
func warmUp(t *testing.T, pr *runtime.Program, steps int) map[string][]float32 {
	t.Helper()
	setInput(t, pr, "opm.execute", 0)
	for range steps {
		if err := pr.Run("train"); err != nil {
			t.Fatal(err)
		}
	}
	return snapshot(t, pr)
}

func slicesMax(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, x)
	}
	return m
}

// The drop probabilities are detached: compat=true, the reference's
// literal step, differentiates θ through the scores, which changes the
// update of a dropping step and leaves a step without dropping as it is.
func TestOPMCompatDifferentiatesTheta(t *testing.T) {
	step := func(compat string, exec float32) (*compile.Plan, map[string][]float64) {
		p, d := compileOn(t, "opm", "synth-av", "", map[string]string{"compat": compat}, small, plainSGD())
		pr, init, _ := stepProgram(t, p, d)
		setInput(t, pr, "opm.execute", exec)
		buf, err := pr.Input("opm.noise")
		if err != nil {
			t.Fatal(err)
		}
		for i := range buf {
			buf[i] = float32(i%7) / 7
		}
		if err := pr.Run("train"); err != nil {
			t.Fatal(err)
		}
		if metric(t, pr, "opm.theta")[0] == 0 {
			t.Fatal("θ = 0 on this batch: nothing to differentiate")
		}
		return p, delta(init, snapshot(t, pr))
	}
	for _, exec := range []float32{0, 1} {
		p, detached := step("false", exec)
		_, literal := step("true", exec)
		differs := false
		for _, par := range p.Manifest.Params {
			for i, v := range detached[par.Name] {
				if !near(literal[par.Name][i], v, 1e-5) {
					differs = true
				}
			}
		}
		if differs != (exec == 1) {
			t.Errorf("execute %v: compat changes the update: %v, want %v", exec, differs, exec == 1)
		}
	}
}

// The schedule drops only inside the modulation window, always with
// p_exe = 1 and never with p_exe = 0, and draws fresh uniform noise in
// [0, 1) every step.
func TestOPMScheduleCoinAndNoise(t *testing.T) {
	for _, tc := range []struct {
		pExe string
		want func(epoch int) float32
	}{
		{"1", func(epoch int) float32 {
			if epoch >= 1 && epoch <= 2 {
				return 1
			}
			return 0
		}},
		{"0", func(int) float32 { return 0 }},
	} {
		p, d := compileOn(t, "opm", "synth-av", "", map[string]string{"p_exe": tc.pExe, "modulation_starts": "1", "modulation_ends": "2"}, small, plainSGD())
		pr, _, _ := stepProgram(t, p, d)
		sched, err := experiment.Schedule(p)
		if err != nil {
			t.Fatal(err)
		}
		r := &scheduleRun{pr: pr, seed: p.Manifest.Train.Seed}
		var last []float32
		for range 4 * 3 {
			if err := sched.BeforeStep(r); err != nil {
				t.Fatal(err)
			}
			exec, _ := pr.Input("opm.execute")
			if exec[0] != tc.want(r.epoch) {
				t.Errorf("p_exe %s, epoch %d: execute %v, want %v", tc.pExe, r.epoch, exec[0], tc.want(r.epoch))
			}
			noise, _ := pr.Input("opm.noise")
			for _, u := range noise {
				if u < 0 || u >= 1 {
					t.Fatalf("noise %v outside [0, 1)", u)
				}
			}
			if fmt.Sprint(noise) == fmt.Sprint(last) {
				t.Error("the noise repeats from one step to the next")
			}
			last = append(last[:0], noise...)
			r.next(3)
		}
	}
}

// Feed-forward methods without extra passes: the whole run is the steps and
// the validation passes (spec §4.19: 1F + 1BW per step for OPM and Greedy,
// AMCo's n+1 backward passes being one backward of the summed loss).
func TestFeedForwardMethodsCostStepsAndValidation(t *testing.T) {
	for _, method := range []string{"opm", "amco", "greedy"} {
		encoder := ""
		data := small
		if method == "greedy" {
			encoder = "resnet18"
			data = map[string]string{"train": "16", "val": "8", "test": "8", "classes": "3", "shape.audio": "1x16x12", "shape.visual": "3x2x16x16"}
		}
		p, _ := compileOn(t, method, "synth-av", encoder, nil, data, experiment.Overrides{Epochs: 3, BatchSize: 8, EvalBatchSize: 8})
		rep, err := flops.PlanReport(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Extras) != 0 {
			t.Errorf("%s declares extra work %+v", method, rep.Extras)
		}
		steps, val := p.Manifest.StepsPerEpoch(), compile.Batches(p.Manifest.Dataset.Spec.Sizes[datasets.Val], 8, false)
		want := 3 * (steps*rep.PerGraph["train"] + val*rep.PerGraph[compile.EvalGraph])
		if rep.Training.Total != want {
			t.Errorf("%s: whole-run FLOPs %d, want 3 epochs × (%d steps × %d + %d validation batches × %d) = %d",
				method, rep.Training.Total, steps, rep.PerGraph["train"], val, rep.PerGraph[compile.EvalGraph], want)
		}
		if rep.PerStep.Phase["method"] == 0 {
			t.Errorf("%s: no FLOPs of the method's own work in the step", method)
		}
	}
}
