package runtime_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/datasets"
	"bmc/experiment"
	"bmc/internal/randstream"
	"bmc/methods"
	"bmc/runtime"
)

// These tests run one training step of OGM and AGM and check the numbers the
// step graph computes (scores, coefficients, scaled updates) against the
// spec's formulas evaluated in Go on the same logits.

const batch = 16

func plainSGD() experiment.Overrides {
	return experiment.Overrides{Epochs: 1, BatchSize: batch, EvalBatchSize: batch, LR: 0.1, MomentumSet: true, WeightDecaySet: true}
}

// stepProgram loads a plan and fills its training batch with the first
// samples of the training split.
func stepProgram(t *testing.T, p *compile.Plan, d datasets.Dataset) (*runtime.Program, map[string][]float32, []int64) {
	t.Helper()
	pr, err := runtime.Load(p, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	train, _ := d.Split(datasets.Train)
	idx := make([]int, batch)
	for i := range idx {
		idx[i] = i
	}
	for _, g := range []string{"train", compile.EvalGraph} {
		b, err := pr.BatchOf(g)
		if err != nil {
			t.Fatal(err)
		}
		fillRows(t, train, d.Spec(), b, idx)
	}
	b, _ := pr.BatchOf("train")
	return pr, snapshot(t, pr), append([]int64{}, b.Labels.I64...)
}

func snapshot(t *testing.T, pr *runtime.Program) map[string][]float32 {
	out := map[string][]float32{}
	for _, k := range pr.StateKeys() {
		v, err := pr.State(k)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = append([]float32{}, v...)
	}
	return out
}

func setInput(t *testing.T, pr *runtime.Program, name string, v ...float32) {
	t.Helper()
	buf, err := pr.Input(name)
	if err != nil {
		t.Fatal(err)
	}
	copy(buf, v)
}

func metric(t *testing.T, pr *runtime.Program, name string) []float64 {
	t.Helper()
	v, err := pr.Metric("train", name)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func softmaxRow(z []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, v)
	}
	var s float64
	out := make([]float64, len(z))
	for i, v := range z {
		out[i] = math.Exp(v - m)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

// delta is the change of every state tensor over a step.
func delta(before, after map[string][]float32) map[string][]float64 {
	out := map[string][]float64{}
	for k, b := range before {
		d := make([]float64, len(b))
		for i := range b {
			d[i] = float64(after[k][i]) - float64(b[i])
		}
		out[k] = d
	}
	return out
}

// checkScaled asserts that each parameter's update under modulation equals
// its plain update times the coefficient of its modality (matrices only).
func checkScaled(t *testing.T, p *compile.Plan, plain, modulated map[string][]float64, coef map[string]float64) {
	t.Helper()
	for _, par := range p.Manifest.Params {
		k, ok := coef[par.Modality]
		if !ok || !compile.IsMatrix(par) {
			k = 1
		}
		for i, d := range plain[par.Name] {
			if !near(modulated[par.Name][i], k*d, 1e-4) {
				t.Fatalf("%s[%d]: update %.6g, want %.4f × %.6g", par.Name, i, modulated[par.Name][i], k, d)
			}
		}
	}
}

func TestOGMStepMatchesSpec(t *testing.T) {
	p, d := compilePlan(t, "ogm", map[string]string{"method": "OGM", "alpha": "0.8"}, small, plainSGD())
	pr, init, labels := stepProgram(t, p, d)
	run := func(active float32) map[string][]float64 {
		if err := pr.SetState(init); err != nil {
			t.Fatal(err)
		}
		setInput(t, pr, "ogm.active", active)
		if err := pr.Run("train"); err != nil {
			t.Fatal(err)
		}
		return delta(init, snapshot(t, pr))
	}
	plain := run(0)
	modulated := run(1)

	// s_m = Σ_i softmax(z_m)_i[y_i]; ρ_m = s_m/(s_other + 1e-5);
	// k_m = 1 − tanh(α·relu(ρ_m)) where ρ_m > 1, else 1.
	classes := int(p.Manifest.Model.Classes)
	score := map[string]float64{}
	for _, m := range []string{"audio", "visual"} {
		z := metric(t, pr, "logits/"+m)
		for i, y := range labels {
			score[m] += softmaxRow(z[i*classes : (i+1)*classes])[y]
		}
	}
	coef := map[string]float64{}
	for m, o := range map[string]string{"audio": "visual", "visual": "audio"} {
		rho := score[m] / (score[o] + 1e-5)
		coef[m] = 1
		if rho > 1 {
			coef[m] = 1 - math.Tanh(0.8*math.Max(rho, 0))
		}
		if got := metric(t, pr, "ogm.coef/"+m)[0]; !near(got, coef[m], 1e-5) {
			t.Errorf("ogm.coef/%s = %v, the spec gives %v (scores %v)", m, got, coef[m], score)
		}
	}
	if coef["audio"] == 1 && coef["visual"] == 1 {
		t.Fatal("no modality dominates on this batch; the test checks nothing")
	}
	checkScaled(t, p, plain, modulated, coef)
}

// OGM-GE adds noise·(std(grad) + 1e-8) to every encoder matrix's gradient;
// with the noise fixed to 1 the added update is −lr·(std + 1e-8).
func TestOGMGENoiseUsesTheGradientStd(t *testing.T) {
	p, d := compilePlan(t, "ogm", map[string]string{"method": "OGM_GE", "alpha": "0"}, small, plainSGD())
	pr, init, _ := stepProgram(t, p, d)
	const w = "modality_encoder.visual.0.weight"
	run := func(active, noise float32) map[string][]float64 {
		if err := pr.SetState(init); err != nil {
			t.Fatal(err)
		}
		setInput(t, pr, "ogm.active", active)
		buf, err := pr.Input("ogm.noise/" + w)
		if err != nil {
			t.Fatal(err)
		}
		for i := range buf {
			buf[i] = noise
		}
		if err := pr.Run("train"); err != nil {
			t.Fatal(err)
		}
		return delta(init, snapshot(t, pr))
	}
	plain := run(0, 1)
	noisy := run(1, 1)
	g := plain[w] // = −lr·grad
	var mean, ss float64
	for _, v := range g {
		mean += v / -0.1
	}
	mean /= float64(len(g))
	for _, v := range g {
		ss += (v/-0.1 - mean) * (v/-0.1 - mean)
	}
	std := math.Sqrt(ss / float64(len(g)-1))
	for i := range g {
		if want := g[i] - 0.1*(std+1e-8); !near(noisy[w][i], want, 1e-4) {
			t.Fatalf("%s[%d]: update %.6g, want %.6g (std %.4g)", w, i, noisy[w][i], want, std)
		}
	}
	if outside := run(0, 1); !near(outside[w][0], g[0], 1e-6) {
		t.Error("noise applied outside the modulation window")
	}
}

// agmExpected evaluates the spec's AGM on f(S) logits (keyed by mask: 1
// audio, 2 visual, 3 both) for two modalities, running mean t.
func agmExpected(f map[int][]float64, labels []int64, classes int, alpha float64, t []float64, compat bool) (score, coef []float64) {
	psi := [2][]float64{}
	n := len(f[3])
	for m := range 2 {
		other := 3 &^ (1 << m)
		psi[m] = make([]float64, n)
		for i := range n {
			v := f[3][i] - f[other][i]
			if !compat {
				v += f[1<<m][i] // the empty coalition: f({m}) − f(∅), f(∅) = 0
			}
			psi[m][i] = v / 2
		}
	}
	score = make([]float64, 2)
	for m := range 2 {
		for i, y := range labels {
			p := softmaxRow(psi[m][i*classes : (i+1)*classes])[y]
			score[m] -= math.Log(math.Max(p, 1e-8))
		}
		score[m] /= float64(len(labels))
	}
	sign := 1.0
	if compat {
		sign = -1
	}
	rel := func(x []float64, m int) float64 { return math.Exp(sign * 2 * ((x[0]+x[1])/2 - x[m])) }
	coef = make([]float64, 2)
	for m := range 2 {
		coef[m] = math.Exp(alpha * math.Min(rel(t, m)-rel(score, m), 7))
	}
	return score, coef
}

// coalitionLogits runs the evaluation graph on the batch for each non-empty
// modality subset (mask 1 audio, 2 visual, 3 both).
func coalitionLogits(t *testing.T, pr *runtime.Program) map[int][]float64 {
	t.Helper()
	f := map[int][]float64{}
	for mask, keep := range map[int][]float32{1: {1, 0}, 2: {0, 1}, 3: {1, 1}} {
		if err := pr.SetKeep(compile.EvalGraph, keep); err != nil {
			t.Fatal(err)
		}
		if err := pr.Run(compile.EvalGraph); err != nil {
			t.Fatal(err)
		}
		v, _ := pr.Metric(compile.EvalGraph, "logits")
		for _, x := range v {
			f[mask] = append(f[mask], float64(x))
		}
	}
	return f
}

func TestAGMStepMatchesSpec(t *testing.T) {
	for _, compat := range []string{"false", "true"} {
		hp := map[string]string{"alpha": "2", "compat": compat}
		p, d := compilePlan(t, "agm", hp, small, plainSGD())
		pr, _, labels := stepProgram(t, p, d)
		classes := int(p.Manifest.Model.Classes)
		f := coalitionLogits(t, pr)
		// Two steps: the second uses the running mean the first left.
		running := []float64{0, 0}
		for it := 1; it <= 2; it++ {
			setInput(t, pr, "agm.iteration", float32(it))
			score, coef := agmExpected(f, labels, classes, 2, running, compat == "true")
			before := snapshot(t, pr)
			if err := pr.Run("train"); err != nil {
				t.Fatal(err)
			}
			for m, name := range []string{"audio", "visual"} {
				if got := metric(t, pr, "agm.score/"+name)[0]; !near(got, score[m], 1e-4) {
					t.Errorf("compat=%s step %d: agm.score/%s = %v, the spec gives %v", compat, it, name, got, score[m])
				}
				if got := metric(t, pr, "agm.coef/"+name)[0]; !near(got, coef[m], 1e-4) {
					t.Errorf("compat=%s step %d: agm.coef/%s = %v, the spec gives %v", compat, it, name, got, coef[m])
				}
			}
			state, _ := pr.State("agm.running_score")
			for m := range 2 {
				running[m] = running[m]*float64(it-1)/float64(it) + score[m]/float64(it)
				if !near(float64(state[m]), running[m], 1e-4) {
					t.Errorf("compat=%s step %d: running score %v, want %v", compat, it, state, running)
				}
			}
			if it == 1 {
				// The update itself: the same step with alpha 0 (k = 1) is the plain update.
				after := snapshot(t, pr)
				p0, _ := compilePlan(t, "agm", map[string]string{"alpha": "0", "compat": compat}, small, plainSGD())
				pr0, init0, _ := stepProgram(t, p0, d)
				setInput(t, pr0, "agm.iteration", 1)
				if err := pr0.Run("train"); err != nil {
					t.Fatal(err)
				}
				checkScaled(t, p, delta(init0, snapshot(t, pr0)), delta(before, after), map[string]float64{"audio": coef[0], "visual": coef[1]})
			}
			// Later steps see the updated model: refresh f(S) for step 2.
			f = coalitionLogits(t, pr)
		}
	}
}

func TestUnimodalNeedsAKnownModality(t *testing.T) {
	_, _, err := experiment.Compile(experiment.Request{Method: "unimodal", Dataset: "synth-av", Hyper: map[string]string{"modality": "sound"}})
	if err == nil || !strings.Contains(err.Error(), "audio, visual") {
		t.Errorf("unimodal with an unknown modality: %v", err)
	}
}

// scheduleRun is a methods.Run for driving a schedule step by step outside
// the trainer: its runtime inputs (a Program's, or buffers of its own when
// pr is nil), the train graph's metrics and the run's random streams
// (derived as the trainer derives them).
type scheduleRun struct {
	methods.Run // what these tests do not call
	pr          *runtime.Program
	seed        uint64
	epoch, step int
	steps       int
	global      int64
	inputs      map[string][]float32
}

func (r *scheduleRun) Epoch() int         { return r.epoch }
func (r *scheduleRun) Step() int          { return r.step }
func (r *scheduleRun) StepsPerEpoch() int { return r.steps }
func (r *scheduleRun) GlobalStep() int64  { return r.global }
func (r *scheduleRun) Input(name string) ([]float32, error) {
	if r.pr != nil {
		return r.pr.Input(name)
	}
	if r.inputs[name] == nil {
		r.inputs[name] = make([]float32, 1)
	}
	return r.inputs[name], nil
}
func (r *scheduleRun) Metric(name string) ([]float32, error) {
	return r.pr.Metric("train", name)
}
func (r *scheduleRun) Rand(purpose string) *rand.Rand {
	return randstream.New(r.seed, "method/"+purpose, uint64(r.global))
}

// next moves to the following step of an epoch of steps steps.
func (r *scheduleRun) next(steps int) {
	r.global++
	r.step++
	if r.step == steps {
		r.epoch, r.step = r.epoch+1, 0
	}
}
