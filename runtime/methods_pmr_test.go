package runtime_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/datasets"
	"bmc/experiment"
	"bmc/internal/randstream"
	"bmc/methods"
	"bmc/runtime"
)

// These tests check PMR against spec §4.15 evaluated in Go: the prototype
// scores, the 2-modality prototype loss and its gradient (by central
// differences through the feature graph), the 3-modality coefficients and
// noise, and the prototypes the schedule forms each epoch.

func compileOn(t *testing.T, dataset, method string, hp, data map[string]string, o experiment.Overrides) (*compile.Plan, datasets.Dataset) {
	t.Helper()
	if o.Threads == 0 {
		o.Threads = 1
	}
	p, d, err := experiment.Compile(experiment.Request{Method: method, Hyper: hp, Dataset: dataset, DataParams: data, Train: o})
	if err != nil {
		t.Fatal(err)
	}
	return p, d
}

// batchFeatures runs a feature graph on the filled batch: modality →
// [rows][d] in float64.
func batchFeatures(t *testing.T, pr *runtime.Program, graphName string, names []string) map[string][][]float64 {
	t.Helper()
	if err := pr.Run(graphName); err != nil {
		t.Fatal(err)
	}
	out := map[string][][]float64{}
	for _, m := range names {
		v, err := pr.Metric(graphName, "features/"+m)
		if err != nil {
			t.Fatal(err)
		}
		d := len(v) / batch
		for i := range batch {
			row := make([]float64, d)
			for j := range d {
				row[j] = float64(v[i*d+j])
			}
			out[m] = append(out[m], row)
		}
	}
	return out
}

// negDist is −‖φ_i − proto_c‖ for every row and class, [B][C].
func negDist(phi [][]float64, proto []float32, classes int) [][]float64 {
	d := len(phi[0])
	out := make([][]float64, len(phi))
	for i, x := range phi {
		out[i] = make([]float64, classes)
		for c := range classes {
			var s float64
			for j := range d {
				diff := x[j] - float64(proto[c*d+j])
				s += diff * diff
			}
			out[i][c] = -math.Sqrt(s)
		}
	}
	return out
}

// protoScore is Σ_i softmax(sim_i)[y_i]; meanCE is mean_i −log softmax(sim_i)[y_i].
func protoScore(sim [][]float64, labels []int64) (score, meanCE float64) {
	for i, y := range labels {
		p := softmaxRow(sim[i])[y]
		score += p
		meanCE -= math.Log(p) / float64(len(labels))
	}
	return score, meanCE
}

// setPrototypes fills every modality's prototype input with the class
// means of the batch features plus noise (the mean over the batch for a
// class the batch lacks).
func setPrototypes(t *testing.T, pr *runtime.Program, feats map[string][][]float64, labels []int64, classes int) map[string][]float32 {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	out := map[string][]float32{}
	for m, rows := range feats {
		d := len(rows[0])
		proto := make([]float32, classes*d)
		for c := range classes {
			var members [][]float64
			for i, y := range labels {
				if int(y) == c {
					members = append(members, rows[i])
				}
			}
			if len(members) == 0 {
				members = rows
			}
			for j := range d {
				var s float64
				for _, r := range members {
					s += r[j]
				}
				proto[c*d+j] = float32(s/float64(len(members)) + 0.3*rng.NormFloat64())
			}
		}
		buf, err := pr.Input("pmr.prototype/" + m)
		if err != nil {
			t.Fatal(err)
		}
		copy(buf, proto)
		out[m] = proto
	}
	return out
}

func meanCE(z []float64, labels []int64, classes int) float64 {
	var s float64
	for i, y := range labels {
		s -= math.Log(softmaxRow(z[i*classes : (i+1)*classes])[y])
	}
	return s / float64(len(labels))
}

// pmrStep is a PMR plan loaded with its training batch filled, the
// batch's features and the prototypes set for the step.
type pmrStep struct {
	p       *compile.Plan
	pr      *runtime.Program
	init    map[string][]float32
	labels  []int64
	names   []string
	classes int
	feats   map[string][][]float64
	protos  map[string][]float32
}

func newPMRStep(t *testing.T, dataset string, hp map[string]string) pmrStep {
	t.Helper()
	p, d := compileOn(t, dataset, "pmr", hp, small, plainSGD())
	st := pmrStep{p: p, names: p.Manifest.ModalityNames(), classes: int(p.Manifest.Model.Classes)}
	st.pr, st.init, st.labels = stepProgram(t, p, d)
	st.feats = batchFeatures(t, st.pr, "pmr.features", st.names)
	st.protos = setPrototypes(t, st.pr, st.feats, st.labels, st.classes)
	return st
}

func TestPMRTwoModalityStepMatchesSpec(t *testing.T) {
	const alpha = 0.6
	st := newPMRStep(t, "synth-av", map[string]string{"alpha": "0.6"})
	p, pr, init, labels, names, classes, feats, protos := st.p, st.pr, st.init, st.labels, st.names, st.classes, st.feats, st.protos

	score, protoCE := map[string]float64{}, map[string]float64{}
	for _, m := range names {
		score[m], protoCE[m] = protoScore(negDist(feats[m], protos[m], classes), labels)
	}
	rho := score[names[0]] / score[names[1]]
	coef := map[string]float64{names[0]: 0, names[1]: 0}
	weak := names[0]
	switch {
	case rho < 1:
		coef[names[0]] = alpha
	case rho > 1:
		coef[names[1]], weak = alpha, names[1]
	default:
		t.Fatal("ρ = 1 on this batch; the test checks nothing")
	}
	run := stepUnder(t, pr, init, "pmr.active")
	plain := run(0)
	ce := meanCE(metric(t, pr, "logits"), labels, classes)
	if got := metric(t, pr, "loss")[0]; !near(got, ce, 1e-5) {
		t.Errorf("outside the window the loss is %v, want CE(z) = %v", got, ce)
	}
	modulated := run(1)
	for _, m := range names {
		if got := metric(t, pr, "pmr.score/"+m)[0]; !near(got, score[m], 1e-4) {
			t.Errorf("pmr.score/%s = %v, the spec gives %v", m, got, score[m])
		}
		if got := metric(t, pr, "pmr.coef/"+m)[0]; !near(got, coef[m], 1e-6) {
			t.Errorf("pmr.coef/%s = %v, want %v (ρ = %v)", m, got, coef[m], rho)
		}
	}
	if got := metric(t, pr, "pmr.ratio")[0]; !near(got, rho, 1e-4) {
		t.Errorf("pmr.ratio = %v, the spec gives %v", got, rho)
	}
	if got, want := metric(t, pr, "loss")[0], ce+alpha*protoCE[weak]; !near(got, want, 1e-4) {
		t.Errorf("loss %v, want CE(z) + α·CE(sim_%s) = %v", got, weak, want)
	}
	// The prototype CE changes only the weak encoder's update, by
	// −lr·α·∇CE(sim_weak); its gradient is checked by central differences.
	const lr = 0.1
	var checked int
	for _, par := range p.Manifest.Params {
		diff := make([]float64, len(plain[par.Name]))
		for i := range diff {
			diff[i] = modulated[par.Name][i] - plain[par.Name][i]
		}
		if par.Modality != weak {
			for i, v := range diff {
				if math.Abs(v) > 1e-7 {
					t.Fatalf("%s[%d]: the prototype loss of %s changed the update by %v", par.Name, i, weak, v)
				}
			}
			continue
		}
		// The 3 largest gradient elements of each weak-encoder tensor.
		order := make([]int, len(diff))
		for i := range order {
			order[i] = i
		}
		sort.Slice(order, func(a, b int) bool { return math.Abs(diff[order[a]]) > math.Abs(diff[order[b]]) })
		for _, i := range order[:min(3, len(order))] {
			analytic := diff[i] / (-lr * alpha)
			numeric := centralDiff(t, pr, init, par.Name, i, func() float64 {
				_, c := protoScore(negDist(batchFeatures(t, pr, "pmr.features", names)[weak], protos[weak], classes), labels)
				return c
			})
			if math.Abs(analytic-numeric) > 2e-3+0.02*math.Abs(numeric) {
				t.Errorf("%s[%d]: ∂CE(sim)/∂θ = %.6g from the step, %.6g by central differences", par.Name, i, analytic, numeric)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no weak-encoder parameter checked")
	}
}

// stepUnder returns a function that runs the train graph from the state
// init with a window input set, and gives each state tensor's change.
func stepUnder(t *testing.T, pr *runtime.Program, init map[string][]float32, window string) func(active float32) map[string][]float64 {
	return func(active float32) map[string][]float64 {
		t.Helper()
		if err := pr.SetState(init); err != nil {
			t.Fatal(err)
		}
		setInput(t, pr, window, active)
		if err := pr.Run("train"); err != nil {
			t.Fatal(err)
		}
		return delta(init, snapshot(t, pr))
	}
}

// centralDiff is (f(θ + h) − f(θ − h))/2h in element i of one state tensor,
// the rest of the state at init.
func centralDiff(t *testing.T, pr *runtime.Program, init map[string][]float32, key string, i int, f func() float64) float64 {
	t.Helper()
	const h = 1e-2
	eval := func(step float32) float64 {
		v := slices.Clone(init[key])
		v[i] += step
		if err := pr.SetState(init); err != nil {
			t.Fatal(err)
		}
		if err := pr.SetState(map[string][]float32{key: v}); err != nil {
			t.Fatal(err)
		}
		return f()
	}
	return (eval(h) - eval(-h)) / (2 * h)
}

// With three modalities the prototype scores give OGM-like coefficients
// k_m = 1 − tanh(η·ρ_m) for ρ_m = p_m/min p > 1, and the update becomes
// −lr·(k_m·g − ε·(std(g) + 1e-8)) on every encoder matrix.
func TestPMRThreeModalityStepMatchesSpec(t *testing.T) {
	const eta, lr = 0.5, 0.1
	st := newPMRStep(t, "synth-avt", map[string]string{"eta": "0.5"})
	p, pr, init, labels, names, classes, feats, protos := st.p, st.pr, st.init, st.labels, st.names, st.classes, st.feats, st.protos
	score := map[string]float64{}
	lowest := math.Inf(1)
	for _, m := range names {
		score[m], _ = protoScore(negDist(feats[m], protos[m], classes), labels)
		lowest = math.Min(lowest, score[m])
	}
	coef := map[string]float64{}
	for _, m := range names {
		coef[m] = 1
		if rho := score[m] / lowest; rho > 1 {
			coef[m] = 1 - math.Tanh(eta*rho)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	noise := map[string][]float32{}
	for _, in := range p.Manifest.Inputs {
		if name, ok := strings.CutPrefix(in.Name, "pmr.noise/"); ok {
			buf, _ := pr.Input(in.Name)
			for i := range buf {
				buf[i] = float32(rng.NormFloat64())
			}
			noise[name] = slices.Clone(buf)
		}
	}
	run := stepUnder(t, pr, init, "pmr.active")
	plain := run(0)
	modulated := run(1)
	for _, m := range names {
		if got := metric(t, pr, "pmr.coef/"+m)[0]; !near(got, coef[m], 1e-5) {
			t.Errorf("pmr.coef/%s = %v, the spec gives %v (scores %v)", m, got, coef[m], score)
		}
	}
	if ce := meanCE(metric(t, pr, "logits"), labels, classes); !near(metric(t, pr, "loss")[0], ce, 1e-5) {
		t.Errorf("3-modality loss %v, want CE(z) = %v", metric(t, pr, "loss")[0], ce)
	}
	noisy := 0
	for _, par := range p.Manifest.Params {
		eps, ok := noise[par.Name]
		if !ok {
			if par.Modality != "" && compile.IsMatrix(par) {
				t.Fatalf("encoder matrix %s has no noise input", par.Name)
			}
			for i, v := range plain[par.Name] {
				if !near(modulated[par.Name][i], v, 1e-5) {
					t.Fatalf("%s[%d]: update %v, want the plain %v", par.Name, i, modulated[par.Name][i], v)
				}
			}
			continue
		}
		noisy++
		g := plain[par.Name]
		var mean, ss float64
		for _, v := range g {
			mean += -v / lr
		}
		mean /= float64(len(g))
		for _, v := range g {
			ss += (-v/lr - mean) * (-v/lr - mean)
		}
		sd := math.Sqrt(ss/float64(len(g)-1)) + 1e-8
		for i, v := range g {
			want := coef[par.Modality]*v + lr*float64(eps[i])*sd
			if math.Abs(modulated[par.Name][i]-want) > 1e-5*math.Max(1, math.Abs(want))+1e-7 {
				t.Fatalf("%s[%d]: update %.7g, want k·Δ + lr·ε·sd = %.7g", par.Name, i, modulated[par.Name][i], want)
			}
		}
	}
	if noisy == 0 {
		t.Fatal("no encoder matrix got noise")
	}
}

// protoProbe wraps the PMR schedule: before its BeginEpoch it reads the
// features of every training sample, after it the prototypes it set.
type protoProbe struct {
	methods.Schedule
	feats  []map[int]map[string][]float32 // per epoch: sample → modality → φ
	labels map[int]int64
	protos []map[string][]float32
	global []int64
}

func (p *protoProbe) BeginEpoch(r methods.Run) error {
	feats := map[int]map[string][]float32{}
	names := r.Manifest().ModalityNames()
	err := r.Pass(methods.PassOptions{Graphs: []string{"pmr.features"}, Split: datasets.Train, Purpose: "probe"}, func(b methods.PassBatch) error {
		for row, i := range b.Samples {
			feats[i] = map[string][]float32{}
			p.labels[i] = b.Labels[row]
			for _, m := range names {
				v, err := b.Metric("pmr.features", "features/"+m)
				if err != nil {
					return err
				}
				d := len(v) / r.Manifest().Train.EvalBatchSize
				feats[i][m] = slices.Clone(v[row*d : (row+1)*d])
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := p.Schedule.BeginEpoch(r); err != nil {
		return err
	}
	protos := map[string][]float32{}
	for _, m := range names {
		buf, err := r.Input("pmr.prototype/" + m)
		if err != nil {
			return err
		}
		protos[m] = slices.Clone(buf)
	}
	p.feats = append(p.feats, feats)
	p.protos = append(p.protos, protos)
	p.global = append(p.global, r.GlobalStep())
	return nil
}

// The schedule's prototypes are the class means over a seeded random 10%
// of the training samples, momentum-averaged from epoch 1; with 12 classes
// and 7 samples some classes are missing: in epoch 0 they take the mean
// over the 7, later they keep their prototype.
func TestPMRPrototypesFollowTheSpec(t *testing.T) {
	const momentum = 0.3
	o := experiment.Overrides{Epochs: 3, BatchSize: 16, EvalBatchSize: 16}
	p, d := compileOn(t, "synth-av", "pmr", map[string]string{"momentum_coef": "0.3"},
		map[string]string{"train": "64", "val": "32", "test": "32", "classes": "12"}, o)
	sched, err := experiment.Schedule(p)
	if err != nil {
		t.Fatal(err)
	}
	probe := &protoProbe{Schedule: sched, labels: map[int]int64{}}
	if _, err := runtime.Train(p, d, probe, runtime.TrainOptions{OutDir: t.TempDir(), Workers: 2}); err != nil {
		t.Fatal(err)
	}
	const n, k, classes = 64, 7, 12
	var prev map[string][]float32
	missing := 0
	for e := range 3 {
		chosen := randstream.New(p.Manifest.Train.Seed, "method/pmr.prototypes", uint64(probe.global[e])).Perm(n)[:k]
		for _, m := range p.Manifest.ModalityNames() {
			dim := len(probe.feats[e][0][m])
			want := make([]float64, classes*dim)
			for c := range classes {
				var members []int
				for _, i := range chosen {
					if int(probe.labels[i]) == c {
						members = append(members, i)
					}
				}
				if len(members) == 0 {
					missing++
				}
				for j := range dim {
					var s float64
					switch {
					case len(members) == 0 && prev != nil:
						want[c*dim+j] = float64(prev[m][c*dim+j])
						continue
					case len(members) == 0:
						members = chosen
					}
					for _, i := range members {
						s += float64(probe.feats[e][i][m][j])
					}
					mean := s / float64(len(members))
					if prev != nil {
						mean = (1-momentum)*mean + momentum*float64(prev[m][c*dim+j])
					}
					want[c*dim+j] = mean
				}
			}
			for i, w := range want {
				if !near(float64(probe.protos[e][m][i]), w, 1e-5) {
					t.Fatalf("epoch %d: %s prototype element %d = %v, the spec gives %v", e, m, i, probe.protos[e][m][i], w)
				}
			}
		}
		prev = probe.protos[e]
	}
	if missing == 0 {
		t.Fatal("no class was missing from the 10%; the missing-class rule went unchecked")
	}
}
