package runtime_test

import (
	"math"
	"slices"
	"testing"

	"bmc/compile"
	"bmc/datasets"
	"bmc/experiment"
	"bmc/graph/nn"
	"bmc/methods"
	"bmc/runtime"
)

// These tests run MLA's and ReconBoost's graphs on one batch and check what
// they compute (the GSPlugin projection and its state, the projected
// update, the entropy gate, the boosting and GA losses and their updates,
// the optimizer's step counts) against the spec's formulas evaluated in Go.

// sharedPlan compiles a method of the shared head on a small synthetic
// dataset with linear encoders (features Go can compute) of widths 6 and 8
// (and 5 for text), so that the narrower features are padded.
func sharedPlan(t *testing.T, method, dataset string, hp map[string]string, o experiment.Overrides) (*compile.Plan, datasets.Dataset) {
	t.Helper()
	if o.Threads == 0 {
		o.Threads = 1
	}
	enc := map[string]string{"audio": "linear:6", "visual": "linear:8"}
	if dataset == "synth-avt" {
		enc["text"] = "linear:5"
	}
	p, d, err := experiment.Compile(experiment.Request{Method: method, Hyper: hp, Dataset: dataset, DataParams: small, Encoders: enc, Train: o})
	if err != nil {
		t.Fatal(err)
	}
	return p, d
}

// batchProgram loads a plan and fills the batch of the training batch size
// with the first samples of the training split.
func sharedProgram(t *testing.T, p *compile.Plan, d datasets.Dataset) (*runtime.Program, *runtime.Batch) {
	t.Helper()
	pr, err := runtime.Load(p, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	b, err := pr.BatchOf(p.Manifest.StepGraphs[0])
	if err != nil {
		t.Fatal(err)
	}
	train, _ := d.Split(datasets.Train)
	idx := make([]int, b.Size)
	for i := range idx {
		idx[i] = i
	}
	fillRows(t, train, d.Spec(), b, idx)
	return pr, b
}

func runGraphs(t *testing.T, pr *runtime.Program, graphs ...string) {
	t.Helper()
	for _, g := range graphs {
		if err := pr.Run(g); err != nil {
			t.Fatal(err)
		}
	}
}

// linearFeatures is φ = x·Wᵀ + b of modality m's linear encoder, [B][d].
func linearFeatures(state map[string][]float32, b *runtime.Batch, m string) [][]float64 {
	w, bias := state[nn.EncoderPrefix(m)+"0.weight"], state[nn.EncoderPrefix(m)+"0.bias"]
	x := b.Data[m].F32
	d, in := len(bias), len(w)/len(bias)
	out := make([][]float64, b.Size)
	for i := range out {
		out[i] = make([]float64, d)
		for j := range d {
			s := float64(bias[j])
			for k := range in {
				s += float64(x[i*in+k]) * float64(w[j*in+k])
			}
			out[i][j] = s
		}
	}
	return out
}

// headLogits is z = φ·W[:, :d]ᵀ + b of the shared head, [B][C].
func headLogits(state map[string][]float32, feats [][]float64) [][]float64 {
	w, bias := state[nn.HeadWeight], state[nn.HeadBias]
	classes := len(bias)
	width := len(w) / classes
	out := make([][]float64, len(feats))
	for i, f := range feats {
		out[i] = make([]float64, classes)
		for c := range classes {
			s := float64(bias[c])
			for j, v := range f {
				s += v * float64(w[c*width+j])
			}
			out[i][c] = s
		}
	}
	return out
}

// gsProjection is GSPlugin's update of P (D × D, row-major) by the batch
// mean r of features [B][d ≤ D]: k = P·rᵀ, P ← P − k·kᵀ/(α + r·k) (the
// literal form divides by α + k·r elementwise), P ← P/‖P‖_F.
func gsProjection(p []float64, feats [][]float64, alpha float64, literal bool) []float64 {
	n := int(math.Sqrt(float64(len(p))))
	r := make([]float64, n)
	for _, f := range feats {
		for j, v := range f {
			r[j] += v / float64(len(feats))
		}
	}
	k := make([]float64, n)
	var rk float64
	for i := range n {
		for j := range n {
			k[i] += p[i*n+j] * r[j]
		}
		rk += r[i] * k[i]
	}
	next := make([]float64, n*n)
	var norm float64
	for i := range n {
		for j := range n {
			denom := alpha + rk
			if literal {
				denom = alpha + k[i]*r[j]
			}
			next[i*n+j] = p[i*n+j] - k[i]*k[j]/denom
			norm += next[i*n+j] * next[i*n+j]
		}
	}
	for i := range next {
		next[i] /= math.Sqrt(norm)
	}
	return next
}

func widen(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func TestMLAProjectionMatchesSpec(t *testing.T) {
	const lr, alpha = 0.1, 0.05
	for _, compat := range []bool{false, true} {
		hp := map[string]string{"compat": map[bool]string{false: "false", true: "true"}[compat]}
		p, d := sharedPlan(t, "mla", "synth-av", hp, plainSGD())
		if !slices.Equal(p.Manifest.StepGraphs, []string{"train.audio", "train.visual"}) {
			t.Fatalf("step graphs %v", p.Manifest.StepGraphs)
		}
		pr, b := sharedProgram(t, p, d)
		setInput(t, pr, "lr", lr)
		setInput(t, pr, "mla.alpha", alpha)
		init := snapshot(t, pr)
		if !slices.Equal(init["mla.projection"], narrow(identityMatrix(8))) {
			t.Fatal("P does not start as the 8 × 8 identity (the head's width)")
		}
		// step runs modality m's graph from state with the step count set,
		// and returns the state after it.
		step := func(from map[string][]float32, m string, count float32) map[string][]float32 {
			state := copyState(from)
			state["mla.exp_count"] = []float32{count}
			if err := pr.SetState(state); err != nil {
				t.Fatal(err)
			}
			runGraphs(t, pr, "train."+m)
			return snapshot(t, pr)
		}
		state := init
		for i, m := range []string{"audio", "visual"} {
			other := map[string]string{"audio": "visual", "visual": "audio"}[m]
			// The run's very first step is not projected and keeps P.
			plain := step(state, m, 0)
			if !slices.Equal(plain["mla.projection"], state["mla.projection"]) || plain["mla.exp_count"][0] != 1 {
				t.Fatalf("compat=%v: the unprojected step changed P or counted %v", compat, plain["mla.exp_count"])
			}
			count := float32(1 + i)
			after := step(state, m, count)
			if after["mla.exp_count"][0] != count+1 {
				t.Errorf("exp_count %v after a step from %v", after["mla.exp_count"], count)
			}
			want := gsProjection(widen(state["mla.projection"]), linearFeatures(state, b, m), alpha, compat)
			for j, v := range after["mla.projection"] {
				if !near(float64(v), want[j], 1e-5) {
					t.Fatalf("compat=%v %s: P[%d] = %v, GSPlugin gives %v", compat, m, j, v, want[j])
				}
			}
			// The head weight's update is −lr·(g + g·Pᵀ), g the plain gradient.
			dPlain, dProj := delta(state, plain), delta(state, after)
			gw := dPlain[nn.HeadWeight]
			n := 8
			for c := range len(gw) / n {
				for j := range n {
					var gp float64
					for k := range n {
						gp += gw[c*n+k] * want[j*n+k]
					}
					if w := gw[c*n+j] + gp; !near(dProj[nn.HeadWeight][c*n+j], w, 1e-4) {
						t.Fatalf("compat=%v %s: head weight update [%d,%d] = %v, −lr·(g + g·Pᵀ) = %v", compat, m, c, j, dProj[nn.HeadWeight][c*n+j], w)
					}
				}
			}
			for _, par := range p.Manifest.Params {
				if par.Name == nn.HeadWeight {
					continue
				}
				for j := range dPlain[par.Name] {
					if dProj[par.Name][j] != dPlain[par.Name][j] {
						t.Fatalf("compat=%v %s: the projection changed the update of %s", compat, m, par.Name)
					}
				}
				if par.Modality == other && slices.ContainsFunc(dProj[par.Name], func(x float64) bool { return x != 0 }) {
					t.Fatalf("compat=%v: modality %s's step updated %s", compat, m, par.Name)
				}
				if (par.Modality == m || par.Modality == "") && !slices.ContainsFunc(dProj[par.Name], func(x float64) bool { return x != 0 }) {
					t.Fatalf("compat=%v: modality %s's step left %s as it was", compat, m, par.Name)
				}
			}
			state = after
		}
	}
}

func identityMatrix(n int) []float64 {
	out := make([]float64, n*n)
	for i := range n {
		out[i*n+i] = 1
	}
	return out
}

func narrow(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func copyState(state map[string][]float32) map[string][]float32 {
	out := map[string][]float32{}
	for k, v := range state {
		out[k] = slices.Clone(v)
	}
	return out
}

// The schedule sets α = 0.1^{batch/batches + 1} and runs the modalities'
// steps inside the modulation window, the joint step outside.
func TestMLAScheduleSetsAlphaAndPicksTheGraphs(t *testing.T) {
	p, _ := sharedPlan(t, "mla", "synth-av", map[string]string{"modulation_ends": "0"}, experiment.Overrides{Epochs: 2, BatchSize: 64})
	sch, err := experiment.Schedule(p)
	if err != nil {
		t.Fatal(err)
	}
	r := &scheduleRun{steps: 8, inputs: map[string][]float32{}}
	for _, tc := range []struct {
		step int
		want float64
	}{{0, 0.1}, {4, 0.031622776601683794}, {7, math.Pow(10, -1.875)}} {
		r.step = tc.step
		if err := sch.BeforeStep(r); err != nil {
			t.Fatal(err)
		}
		if got := r.inputs["mla.alpha"][0]; got != float32(tc.want) {
			t.Errorf("batch %d of 8: α = %v, want %v", tc.step, got, tc.want)
		}
	}
	planner := sch.(methods.EpochPlanner)
	for epoch, want := range [][]string{{"train.audio", "train.visual"}, {methods.TrainGraph}} {
		r.epoch = epoch
		plan, err := planner.PlanEpoch(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan) != 1 || !slices.Equal(plan[0].Graphs, want) || plan[0].Samples != nil {
			t.Errorf("epoch %d: plan %+v, want one fresh pass of %v", epoch, plan, want)
		}
	}
}

// adamwStepped checks one AdamW update of a parameter against PyTorch's
// rule at step t, from the state before the step and the moments after it:
// p ← p·(1 − lr·wd) − lr/(1 − β1ᵗ)·m/(√v/√(1 − β2ᵗ) + ε).
func adamwStepped(o compile.OptimizerConfig, lr float64, t int, before, after map[string][]float32, name string) (maxErr float64) {
	bc1, bc2 := 1-math.Pow(o.Beta1, float64(t)), 1-math.Pow(o.Beta2, float64(t))
	m, v := after["exp_avg/"+name], after["exp_avg_sq/"+name]
	for i, p := range before[name] {
		want := float64(p)*(1-lr*o.WeightDecay) - lr/bc1*float64(m[i])/(math.Sqrt(float64(v[i]))/math.Sqrt(bc2)+o.Eps)
		maxErr = max(maxErr, math.Abs(float64(after[name][i])-want)/math.Max(1e-3, math.Abs(want)))
	}
	return maxErr
}

// With AdamW, MLA's head takes n optimizer steps per batch and each
// encoder one: each parameter's bias correction uses its own count, as
// PyTorch's per-parameter state["step"] does.
func TestMLAAdamWCountsStepsPerParameter(t *testing.T) {
	const lr = 0.01
	p, d := sharedPlan(t, "mla", "synth-avt", nil, experiment.Overrides{Epochs: 1, BatchSize: batch, EvalBatchSize: batch, Optimizer: compile.AdamW, LR: lr, WeightDecaySet: true, WeightDecay: 0.01})
	o := p.Manifest.Train.Optimizer
	pr, _ := sharedProgram(t, p, d)
	setInput(t, pr, "lr", lr)
	graphs := p.Manifest.StepGraphs
	const batches = 2
	for k := range batches {
		for j, g := range graphs {
			before := snapshot(t, pr)
			runGraphs(t, pr, g)
			after := snapshot(t, pr)
			m := g[len("train."):]
			head := k*len(graphs) + j + 1
			for _, par := range p.Manifest.Params {
				var count int
				switch par.Modality {
				case "":
					count = head
				case m:
					count = k + 1
				default:
					continue
				}
				if got := after[compile.StepCountKey(par.Name)]; !slices.Equal(got, []float32{float32(count)}) {
					t.Fatalf("batch %d %s: %s counts %v steps, want %d", k, g, par.Name, got, count)
				}
				if e := adamwStepped(o, lr, count, before, after, par.Name); e > 1e-5 {
					t.Errorf("batch %d %s: %s's update is off PyTorch's AdamW at step %d by %.3g", k, g, par.Name, count, e)
				}
				if par.Modality == "" && head > k+1 {
					// The trainer's one count (the batch) would be visibly wrong.
					if e := adamwStepped(o, lr, k+1, before, after, par.Name); e < 1e-3 {
						t.Fatalf("batch %d %s: the update of %s fits step %d as well (%.3g): the test checks nothing", k, g, par.Name, k+1, e)
					}
				}
			}
		}
	}
}

// The evaluation graph fuses with the entropy gate, H_max over every
// modality (compat: the first two).
func TestMLAEvaluationIsTheEntropyGate(t *testing.T) {
	for _, compat := range []string{"false", "true"} {
		p, d := sharedPlan(t, "mla", "synth-avt", map[string]string{"compat": compat}, plainSGD())
		pr, _ := sharedProgram(t, p, d)
		if err := pr.SetKeep(compile.EvalGraph, []float32{1, 1, 1}); err != nil {
			t.Fatal(err)
		}
		runGraphs(t, pr, compile.EvalGraph)
		names := p.Manifest.ModalityNames()
		classes := int(p.Manifest.Model.Classes)
		z := map[string][]float32{}
		for _, m := range append([]string{""}, names...) {
			key := "logits"
			if m != "" {
				key += "/" + m
			}
			z[m], _ = pr.Metric(compile.EvalGraph, key)
		}
		first := 3
		if compat == "true" {
			first = 2
		}
		var spread float64
		for i := range batch {
			h := make([]float64, len(names))
			for k, m := range names {
				for _, q := range softmaxRow(widen(z[m][i*classes : (i+1)*classes])) {
					h[k] -= q * math.Log(q)
				}
			}
			hmax := slices.Max(h[:first])
			gate := make([]float64, len(names))
			var total float64
			for k := range names {
				gate[k] = math.Exp(hmax - h[k])
				total += gate[k]
			}
			for k := range gate {
				gate[k] /= total
				spread = max(spread, math.Abs(gate[k]-1.0/3))
			}
			for c := range classes {
				var want float64
				for k, m := range names {
					want += gate[k] * float64(z[m][i*classes+c])
				}
				if got := float64(z[""][i*classes+c]); !near(got, want, 1e-5) {
					t.Fatalf("compat=%s: fused logit [%d,%d] = %v, the gate gives %v", compat, i, c, got, want)
				}
			}
		}
		if spread < 1e-3 {
			t.Errorf("compat=%s: every gate weight is within %g of 1/3; the test checks nothing", compat, spread)
		}
	}
}
