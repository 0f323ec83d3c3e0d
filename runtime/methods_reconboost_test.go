package runtime_test

import (
	"math"
	"slices"
	"testing"

	"bmc/experiment"
	"bmc/graph/nn"
	"bmc/methods"
	"bmc/runtime"
)

// reconboostGrad is the gradient of the boosting step's loss with respect
// to the logits P = f_m of one sample (the head bias's gradient is its sum
// over the batch): the boosting term (1/(B·C))·(−w1 + w2·softmax(Q)_y)·(t −
// p) and, when ga, the GA term alpha·MSE(p, s) over the B×C elements,
// 2·alpha/(B·C)·Σ_j (p_j − s_j)·p_j·(δ_jc − p_c), with p = softmax(P) and s
// = softmax(f_pre).
func reconboostGrad(p, q, s []float64, y int64, batch int, w1, w2, alpha float64, ga bool) []float64 {
	classes := len(p)
	bc := float64(batch * classes)
	out := make([]float64, classes)
	for c := range classes {
		t := 0.0
		if int64(c) == y {
			t = 1
		}
		out[c] = (-w1 + w2*q[y]) * (t - p[c]) / bc
		if ga {
			for j := range classes {
				d := 0.0
				if j == c {
					d = 1
				}
				out[c] += 2 * alpha / bc * (p[j] - s[j]) * p[j] * (d - p[c])
			}
		}
	}
	return out
}

// graphMetric is a metric output of one graph of the program.
func graphMetric(t *testing.T, pr *runtime.Program, graph, name string) []float64 {
	t.Helper()
	v, err := pr.Metric(graph, name)
	if err != nil {
		t.Fatal(err)
	}
	return widen(v)
}

func scaled(v []float64, k float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = k * x
	}
	return out
}

func TestReconBoostBoostingStepMatchesSpec(t *testing.T) {
	const lr, alpha, w1, w2 = 0.1, 2.0, 5.0, 1.0
	for _, compat := range []string{"false", "true"} {
		hp := map[string]string{"alpha": "2", "weight1": "5", "weight2": "1", "compat": compat}
		p, d := sharedPlan(t, "reconboost", "synth-av", hp, plainSGD())
		pr, b := sharedProgram(t, p, d)
		setInput(t, pr, "lr", lr)
		init := snapshot(t, pr)
		// A boost rate far from its initial 0.01 makes Q matter.
		init[nn.BoostRateParam][0] = 1.5
		classes := int(p.Manifest.Model.Classes)
		f := map[string][][]float64{}
		for _, m := range []string{"audio", "visual"} {
			f[m] = headLogits(init, linearFeatures(init, b, m))
		}
		boost := float64(init[nn.BoostRateParam][0])
		updates := map[bool]map[string][]float64{}
		for _, m := range []string{"audio", "visual"} {
			pre := map[string]string{"audio": "visual", "visual": "audio"}[m]
			for _, ga := range []bool{false, true} {
				if err := pr.SetState(init); err != nil {
					t.Fatal(err)
				}
				setInput(t, pr, "reconboost.ga", map[bool]float32{false: 0, true: 1}[ga])
				runGraphs(t, pr, "boost."+m)
				after := snapshot(t, pr)
				dlt := delta(init, after)
				updates[ga] = dlt
				var boosting, mse float64
				grad := make([]float64, classes)
				for i, y := range b.Labels.I64 {
					pm := softmaxRow(f[m][i])
					q := softmaxRow(scaled(f[pre][i], boost))
					s := softmaxRow(f[pre][i])
					boosting += (-w1 + w2*q[y]) * math.Log(pm[y]) / float64(classes) / batch
					for c := range classes {
						mse += (pm[c] - s[c]) * (pm[c] - s[c]) / float64(batch*classes)
					}
					for c, v := range reconboostGrad(pm, q, s, y, batch, w1, w2, alpha, ga && compat == "false") {
						grad[c] += v
					}
				}
				loss := boosting
				if ga {
					loss += alpha * mse
				}
				if got := graphMetric(t, pr, "boost."+m, "reconboost.boost_loss")[0]; !near(got, loss, 1e-5) {
					t.Errorf("compat=%s ga=%v %s: loss %v, the spec gives %v", compat, ga, m, got, loss)
				}
				if got := graphMetric(t, pr, "boost."+m, "reconboost.ga_loss")[0]; !near(got, mse, 1e-5) {
					t.Errorf("compat=%s %s: GA term %v, MSE(softmax(P), softmax(f_pre)) = %v", compat, m, got, mse)
				}
				for c, g := range grad {
					if got := dlt[nn.HeadBias][c]; !near(got, -lr*g, 1e-4) {
						t.Fatalf("compat=%s ga=%v %s: head bias update [%d] = %v, −lr·∂loss/∂b = %v", compat, ga, m, c, got, -lr*g)
					}
				}
				// Only encoder m and the head learn; boost_rate does not.
				for _, par := range p.Manifest.Params {
					moved := slices.ContainsFunc(dlt[par.Name], func(x float64) bool { return x != 0 })
					if want := par.Modality == m || par.Name == nn.HeadWeight || par.Name == nn.HeadBias; moved != want {
						t.Errorf("compat=%s %s's boosting step: %s moved %v, want %v", compat, m, par.Name, moved, want)
					}
				}
			}
			same := slices.Equal(updates[false][nn.HeadWeight], updates[true][nn.HeadWeight])
			if same != (compat == "true") {
				t.Errorf("compat=%s %s: the GA term changes the update: %v (it has a gradient only without compat)", compat, m, !same)
			}
		}
	}
}

// Rectification is CE(boost_rate·Σ_m f_m, y) on every parameter, the boost
// rate included: its update is −lr·mean_i Σ_c (softmax(β·S_i)_c − t_ic)·S_ic.
func TestReconBoostRectificationTrainsTheBoostRate(t *testing.T) {
	const lr = 0.1
	p, d := sharedPlan(t, "reconboost", "synth-avt", nil, plainSGD())
	pr, b := sharedProgram(t, p, d)
	setInput(t, pr, "lr", lr)
	init := snapshot(t, pr)
	classes := int(p.Manifest.Model.Classes)
	sum := make([][]float64, batch)
	for i := range sum {
		sum[i] = make([]float64, classes)
	}
	for _, m := range p.Manifest.ModalityNames() {
		for i, z := range headLogits(init, linearFeatures(init, b, m)) {
			for c, v := range z {
				sum[i][c] += v
			}
		}
	}
	beta := float64(init[nn.BoostRateParam][0])
	var grad, ce float64
	for i, y := range b.Labels.I64 {
		q := softmaxRow(scaled(sum[i], beta))
		ce -= math.Log(q[y]) / batch
		for c := range classes {
			tc := 0.0
			if int64(c) == y {
				tc = 1
			}
			grad += (q[c] - tc) * sum[i][c] / batch
		}
	}
	runGraphs(t, pr, "rectify")
	if got := graphMetric(t, pr, "rectify", "loss")[0]; !near(got, ce, 1e-5) {
		t.Errorf("rectification loss %v, CE of the ensemble %v", got, ce)
	}
	dlt := delta(init, snapshot(t, pr))
	if got := dlt[nn.BoostRateParam][0]; !near(got, -lr*grad, 1e-4) || got == 0 {
		t.Errorf("boost_rate update %v, −lr·∂CE/∂β = %v", got, -lr*grad)
	}
	for _, par := range p.Manifest.Params {
		if !slices.ContainsFunc(dlt[par.Name], func(x float64) bool { return x != 0 }) {
			t.Errorf("rectification left %s as it was", par.Name)
		}
	}
}

// Each epoch inside the window is, for every modality, T_epochs boosting
// passes and T_epochs rectification passes, each on a fresh shuffle; one
// outside the window is one rectification pass. The GA term counts from
// the second epoch.
func TestReconBoostPlansItsPasses(t *testing.T) {
	p, _ := sharedPlan(t, "reconboost", "synth-avt", map[string]string{"T_epochs": "2", "modulation_ends": "1"}, experiment.Overrides{Epochs: 3, BatchSize: 64})
	sch, err := experiment.Schedule(p)
	if err != nil {
		t.Fatal(err)
	}
	r := &scheduleRun{inputs: map[string][]float32{}}
	inside := []string{"boost.audio", "boost.audio", "rectify", "rectify", "boost.visual", "boost.visual", "rectify", "rectify",
		"boost.text", "boost.text", "rectify", "rectify"}
	for epoch, want := range [][]string{inside, inside, {"rectify"}} {
		r.epoch = epoch
		if err := sch.BeginEpoch(r); err != nil {
			t.Fatal(err)
		}
		if got, want := r.inputs["reconboost.ga"][0], float32(min(epoch, 1)); got != want {
			t.Errorf("epoch %d: GA flag %v, want %v", epoch, got, want)
		}
		plan, err := sch.(methods.EpochPlanner).PlanEpoch(r)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ph := range plan {
			if len(ph.Graphs) != 1 || ph.Samples != nil {
				t.Fatalf("epoch %d: phase %+v, want one graph on a fresh shuffle", epoch, ph)
			}
			got = append(got, ph.Graphs[0])
		}
		if !slices.Equal(got, want) {
			t.Errorf("epoch %d: passes %v, want %v", epoch, got, want)
		}
	}
}
