package runtime_test

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/datasets"
	"bmc/experiment"
	"bmc/flops"
	"bmc/methods"
	"bmc/runtime"
)

// These tests check LFM's numbers against spec §4.12 evaluated in Go on real
// graph runs: the step's loss 2·(a0·CE + a1·L_al) and its update, the
// α-gradient of the per-epoch graph (the hypergradient ∇L_cls·(∇L_cls −
// ∇L_al) and, with compat, the mean over the first parameter tensor of the
// Hessian-vector product, both from gradients the step graph computes), the
// schedule's a1 and lr_alpha over 42 epochs, and the FLOPs of a whole run.

// lfmData is a small synthetic dataset: 16 training and 16 validation samples.
func lfmData(dataset string) map[string]string {
	p := map[string]string{"train": "16", "val": "16", "test": "8", "classes": "3", "dim.audio": "5", "dim.visual": "4"}
	if dataset == "synth-avt" {
		p["dim.text"] = "3"
	}
	return p
}

// lfmPlan compiles LFM with 2-layer MLP encoders and plain SGD (lr 1, no
// momentum or weight decay), so a step's update is −∇L exactly.
func lfmPlan(t *testing.T, dataset string, hp map[string]string, batch, epochs int) (*compile.Plan, datasets.Dataset) {
	t.Helper()
	p, d, err := experiment.Compile(experiment.Request{Method: "lfm", Hyper: hp, Dataset: dataset, DataParams: lfmData(dataset),
		Encoder: "mlp:6,4", Train: experiment.Overrides{Epochs: epochs, BatchSize: batch, EvalBatchSize: 8, Threads: 1, LR: 1, MomentumSet: true, WeightDecaySet: true}})
	if err != nil {
		t.Fatal(err)
	}
	return p, d
}

// lfmProgram loads a plan with the batches of the given graphs filled with
// the first samples of a split.
func lfmProgram(t *testing.T, p *compile.Plan, d datasets.Dataset, split string, graphs ...string) *runtime.Program {
	t.Helper()
	pr, err := runtime.Load(p, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	s, err := d.Split(split)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range graphs {
		b, err := pr.BatchOf(g)
		if err != nil {
			t.Fatal(err)
		}
		idx := make([]int, b.Size)
		for i := range idx {
			idx[i] = i
		}
		fillRows(t, s, d.Spec(), b, idx)
	}
	return pr
}

// gradient runs the train graph once from state θ with mixing weights a
// and returns −Δθ = ∇(2·(a0·CE + a1·L_al)) per parameter, restoring θ.
func gradient(t *testing.T, pr *runtime.Program, p *compile.Plan, theta map[string][]float32, a0, a1 float32) map[string][]float64 {
	t.Helper()
	if err := pr.SetState(theta); err != nil {
		t.Fatal(err)
	}
	setInput(t, pr, "lfm.alpha", a0, a1)
	if err := pr.Run(methods.TrainGraph); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, pr)
	out := map[string][]float64{}
	for _, par := range p.Manifest.Params {
		d := make([]float64, len(theta[par.Name]))
		for i := range d {
			d[i] = float64(theta[par.Name][i]) - float64(after[par.Name][i])
		}
		out[par.Name] = d
	}
	if err := pr.SetState(theta); err != nil {
		t.Fatal(err)
	}
	return out
}

// js is the divergence between the softmaxes of two logit rows: the
// Jensen–Shannon ½[KL(p‖m) + KL(q‖m)], or literal ½[KL(m‖p) + KL(m‖q)].
func js(zp, zq []float64, literal bool) float64 {
	p, q := softmaxRow(zp), softmaxRow(zq)
	kl := func(a, b []float64) float64 {
		var s float64
		for i := range a {
			s += a[i] * math.Log(a[i]/b[i])
		}
		return s
	}
	m := make([]float64, len(p))
	for i := range p {
		m[i] = (p[i] + q[i]) / 2
	}
	if literal {
		return (kl(m, p) + kl(m, q)) / 2
	}
	return (kl(p, m) + kl(q, m)) / 2
}

// lfmLoss evaluates CE(z, y) and L_al (batch means, L_al the mean over
// modality pairs) on the train graph's logits.
func lfmLoss(t *testing.T, pr *runtime.Program, names []string, labels []int64, classes int, literal bool) (ce, align float64) {
	t.Helper()
	z := metric(t, pr, "logits")
	row := func(v []float64, i int) []float64 { return v[i*classes : (i+1)*classes] }
	for i, y := range labels {
		ce -= math.Log(softmaxRow(row(z, i))[y])
	}
	ce /= float64(len(labels))
	pairs := 0
	for i := range names {
		for j := i + 1; j < len(names); j++ {
			zi, zj := metric(t, pr, "logits/"+names[i]), metric(t, pr, "logits/"+names[j])
			var s float64
			for k := range labels {
				s += js(row(zi, k), row(zj, k), literal)
			}
			align += s / float64(len(labels))
			pairs++
		}
	}
	return ce, align / float64(pairs)
}

func TestLFMStepMatchesSpec(t *testing.T) {
	for _, dataset := range []string{"synth-av", "synth-avt"} {
		for _, compat := range []bool{false, true} {
			t.Run(dataset+"/compat="+strconv.FormatBool(compat), func(t *testing.T) {
				p, d := lfmPlan(t, dataset, map[string]string{"compat": strconv.FormatBool(compat)}, 8, 1)
				pr := lfmProgram(t, p, d, datasets.Train, methods.TrainGraph)
				b, _ := pr.BatchOf(methods.TrainGraph)
				labels := append([]int64{}, b.Labels.I64...)
				theta := snapshot(t, pr)
				const a0, a1 = 0.7, 0.3
				mixed := gradient(t, pr, p, theta, a0, a1)
				ce, align := lfmLoss(t, pr, p.Manifest.ModalityNames(), labels, int(p.Manifest.Model.Classes), compat)
				if align <= 1e-6 {
					t.Fatalf("alignment loss %g: the modalities agree already, the test checks nothing", align)
				}
				for name, want := range map[string]float64{"lfm.ce": ce, "lfm.align": align, "loss": 2 * (a0*ce + a1*align), "lfm.a1": a1} {
					if got := metric(t, pr, name)[0]; !near(got, want, 1e-5) {
						t.Errorf("%s = %.7g, the spec gives %.7g", name, got, want)
					}
				}
				// The update is −lr·∇L with ∇L = 2·(a0·∇CE + a1·∇L_al): the
				// same step with a = (½, 0) gives ∇CE, with (0, ½) ∇L_al.
				gce := gradient(t, pr, p, theta, 0.5, 0)
				gal := gradient(t, pr, p, theta, 0, 0.5)
				for _, par := range p.Manifest.Params {
					for i, g := range mixed[par.Name] {
						if want := 2 * (a0*gce[par.Name][i] + a1*gal[par.Name][i]); !near(g, want, 1e-4) {
							t.Fatalf("%s[%d]: update %.6g, want 2·(a0·%.6g + a1·%.6g) = %.6g", par.Name, i, -g, gce[par.Name][i], gal[par.Name][i], -want)
						}
					}
				}
			})
		}
	}
}

// The α-gradient graph on the first ⌊B/4⌋ validation samples, checked
// against gradients of the same losses on the same samples from the step
// graph of a plan compiled at that batch (same seed, same initial θ).
func TestLFMAlphaGradientMatchesSpec(t *testing.T) {
	for _, dataset := range []string{"synth-av", "synth-avt"} {
		for _, compat := range []bool{false, true} {
			t.Run(dataset+"/compat="+strconv.FormatBool(compat), func(t *testing.T) {
				hp := map[string]string{"compat": strconv.FormatBool(compat)}
				p, d := lfmPlan(t, dataset, hp, 16, 1)
				quarter, _ := lfmPlan(t, dataset, hp, 4, 1)
				pr := lfmProgram(t, p, d, datasets.Val, methods.LFMAlphaGraph)
				ref := lfmProgram(t, quarter, d, datasets.Val, methods.TrainGraph)
				if b, _ := pr.BatchOf(methods.LFMAlphaGraph); b.Size != 4 {
					t.Fatalf("the α-gradient graph reads batches of %d, want ⌊16/4⌋ = 4", b.Size)
				}
				const a0, a1 = 0.8, 0.2
				setInput(t, pr, "lfm.alpha", a0, a1)
				if err := pr.Run(methods.LFMAlphaGraph); err != nil {
					t.Fatal(err)
				}
				got, err := pr.Metric(methods.LFMAlphaGraph, "lfm.alpha_grad")
				if err != nil {
					t.Fatal(err)
				}

				theta := snapshot(t, ref)
				gce := gradient(t, ref, quarter, theta, 0.5, 0) // ∇L_cls
				for _, name := range []string{"lfm.ce", "lfm.align"} {
					aux, _ := pr.Metric(methods.LFMAlphaGraph, name)
					if want := metric(t, ref, name)[0]; !near(float64(aux[0]), want, 1e-5) {
						t.Errorf("%s of the α-gradient graph %.7g, of the step graph on the same samples %.7g", name, aux[0], want)
					}
				}
				var want float64
				if !compat {
					// ∇L_cls·(∇L_cls − ∇L_al) over every parameter.
					gal := gradient(t, ref, quarter, theta, 0, 0.5)
					for _, par := range quarter.Manifest.Params {
						for i, c := range gce[par.Name] {
							want += c * (c - gal[par.Name][i])
						}
					}
				} else {
					// mean over the first parameter of H_tot·∇L_cls, by central
					// differences of ∇L_tot = ∇(a0·CE + a1·L_al) along ∇L_cls.
					var norm float64
					for _, g := range gce {
						for _, v := range g {
							norm = math.Max(norm, math.Abs(v))
						}
					}
					eps := 1e-3 / norm
					at := func(sign float64) map[string][]float64 {
						moved := map[string][]float32{}
						for k, v := range theta {
							moved[k] = append([]float32{}, v...)
						}
						for _, par := range quarter.Manifest.Params {
							for i := range moved[par.Name] {
								moved[par.Name][i] += float32(sign * eps * gce[par.Name][i])
							}
						}
						return gradient(t, ref, quarter, moved, a0/2, a1/2)
					}
					plus, minus := at(1), at(-1)
					first := quarter.Manifest.Params[0].Name
					for i := range plus[first] {
						want += (plus[first][i] - minus[first][i]) / (2 * eps)
					}
					want /= float64(len(plus[first]))
				}
				if !near(float64(got[0]), want, 2e-3) {
					t.Errorf("α-gradient %.7g, the spec gives %.7g", got[0], want)
				}
				if math.Abs(want) < 1e-6 {
					t.Errorf("α-gradient %g: too small to check anything", want)
				}
			})
		}
	}
}

// lfmRecorder wraps LFM's schedule and records, after every BeginEpoch,
// the schedule's state and the mixing weights the steps will read.
type lfmRecorder struct {
	methods.Schedule
	states []lfmState
	alpha  [][2]float32
}

type lfmState struct{ A1, LRAlpha, Grad float64 }

func (l *lfmRecorder) BeginEpoch(r methods.Run) error {
	if err := l.Schedule.BeginEpoch(r); err != nil {
		return err
	}
	data, err := l.MarshalState()
	if err != nil {
		return err
	}
	var s lfmState
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	l.states = append(l.states, s)
	buf, err := r.Input("lfm.alpha")
	if err != nil {
		return err
	}
	l.alpha = append(l.alpha, [2]float32{buf[0], buf[1]})
	return nil
}

func (l *lfmRecorder) MarshalState() ([]byte, error) {
	return l.Schedule.(methods.StatefulSchedule).MarshalState()
}

func (l *lfmRecorder) UnmarshalState(data []byte) error {
	return l.Schedule.(methods.StatefulSchedule).UnmarshalState(data)
}

// 42 epochs of one step each: lr_alpha halves at epochs 20 and 40, a1 takes
// one clipped step per epoch from a1_init, the steps read (1 − a1, a1), and the
// first epoch's gradient is the α-gradient graph's at θ₀ on the first ⌊B/4⌋
// validation samples.
func TestLFMScheduleMatchesSpec(t *testing.T) {
	const lrAlpha = 0.005
	p, d := lfmPlan(t, "synth-av", map[string]string{"lr_alpha": strconv.FormatFloat(lrAlpha, 'g', -1, 64), "a1_init": "0.9"}, 16, 42)
	sched, err := experiment.Schedule(p)
	if err != nil {
		t.Fatal(err)
	}
	rec := &lfmRecorder{Schedule: sched}
	if _, err := runtime.Train(p, d, rec, runtime.TrainOptions{OutDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if len(rec.states) != 42 {
		t.Fatalf("%d epochs began, want 42", len(rec.states))
	}
	a1, lr := 0.9, lrAlpha
	movedLate := false
	for e, s := range rec.states {
		if e == 20 || e == 40 {
			lr /= 2
		}
		next := math.Min(math.Max(a1-lr*s.Grad, 0.05), 0.95)
		if s.LRAlpha != lr || s.A1 != next {
			t.Fatalf("epoch %d: a1 %v, lr_alpha %v; the spec gives a1 = clip(%v − %v·%v) = %v, lr_alpha %v", e, s.A1, s.LRAlpha, a1, lr, s.Grad, next, lr)
		}
		if rec.alpha[e] != [2]float32{float32(1 - next), float32(next)} {
			t.Fatalf("epoch %d: the steps read a = %v, want (1 − a1, a1) for a1 = %v", e, rec.alpha[e], next)
		}
		if next != a1 && e > 20 {
			movedLate = true
		}
		a1 = next
	}
	if !movedLate {
		t.Error("a1 did not move after lr_alpha first halved: the test checks no halved update")
	}

	// Epoch 0's gradient: the graph at θ₀ on validation samples 0..3.
	pr := lfmProgram(t, p, d, datasets.Val, methods.LFMAlphaGraph)
	setInput(t, pr, "lfm.alpha", 0.1, 0.9)
	if err := pr.Run(methods.LFMAlphaGraph); err != nil {
		t.Fatal(err)
	}
	g, _ := pr.Metric(methods.LFMAlphaGraph, "lfm.alpha_grad")
	if float64(g[0]) != rec.states[0].Grad {
		t.Errorf("epoch 0 α-gradient %v, the graph on the first 4 validation samples at θ₀ gives %v", rec.states[0].Grad, g[0])
	}
}

// productMACs sums the MACs of a graph's Gemm and MatMul nodes by phase.
func productMACs(t *testing.T, p *compile.Plan, graphName string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, n := range p.Graphs[graphName].Nodes() {
		if n.Op != "Gemm" && n.Op != "MatMul" {
			continue
		}
		c, err := flops.NodeCost(n)
		if err != nil {
			t.Fatal(err)
		}
		out[n.Phase] += c.MACs
	}
	return out
}

// The FLOPs of a whole LFM run against spec §4.19, "1F + 1BW, plus the
// per-epoch α-gradient on B/4 samples", counted by hand for the MLP model:
// per sample, the forward F multiplies through every modality's two layers,
// the fused head and the unimodal heads; the step's backward through the
// heads (data and weight gradients) and the encoders (weight gradients, and
// data gradients below the first layer); the per-epoch graph runs the
// forward and two backward passes (∇L_cls through the fused head, ∇L_al
// through the unimodal heads) on ⌊B/4⌋ samples, once per epoch, and the
// whole run is epochs × (steps·step + α-graph + validation).
func TestLFMFLOPsMatchSpec(t *testing.T) {
	for _, dataset := range []string{"synth-av", "synth-avt"} {
		t.Run(dataset, func(t *testing.T) {
			const batch, epochs, hidden, feat = 8, 3, 6, 4
			p, _ := lfmPlan(t, dataset, nil, batch, epochs)
			m := &p.Manifest
			classes := m.Model.Classes
			var fwd, stepBW, alphaBW int64
			n := int64(len(m.Model.Modalities))
			for _, mod := range m.Model.Modalities {
				in := mod.Shape.Size()
				fwd += in*hidden + hidden*feat + classes*feat // layers + unimodal head
				enc := in*hidden + 2*hidden*feat              // W1; W2 and the data gradient into layer 2
				stepBW += enc + 2*classes*feat
				alphaBW += 2*enc + 2*classes*feat
			}
			fwd += classes * feat * n        // fused head
			stepBW += 2 * classes * feat * n // fused head: weight and data gradients
			alphaBW += 2 * classes * feat * n
			q := int64(batch / 4)

			step := productMACs(t, p, methods.TrainGraph)
			alpha := productMACs(t, p, methods.LFMAlphaGraph)
			for _, c := range []struct {
				what      string
				got, want int64
			}{
				{"step forward", step["forward"], batch * fwd},
				{"step backward", step["backward"], batch * stepBW},
				{"step method work", step["method"], 0},
				{"α-gradient forward", alpha["forward"], q * fwd},
				{"α-gradient backward", alpha["backward"], q * alphaBW},
			} {
				if c.got != c.want {
					t.Errorf("%s: %d MACs, the hand count gives %d", c.what, c.got, c.want)
				}
			}

			rep, err := flops.PlanReport(p)
			if err != nil {
				t.Fatal(err)
			}
			if rep.ForwardMACsPerSample != fwd {
				t.Errorf("forward MACs per sample %d, the hand count gives %d", rep.ForwardMACsPerSample, fwd)
			}
			steps := int64(16 / batch)
			val := compile.Batches(16, 8, false)
			want := epochs * (steps*rep.PerGraph[methods.TrainGraph] + rep.PerGraph[methods.LFMAlphaGraph] + val*rep.PerGraph[compile.EvalGraph])
			if rep.Training.Total != want {
				t.Errorf("whole-run FLOPs %d, want %d epochs × (%d steps + the α-gradient graph + %d validation batches) = %d", rep.Training.Total, epochs, steps, val, want)
			}
			if len(rep.Extras) != 1 || rep.Extras[0].Graph != methods.LFMAlphaGraph || rep.Extras[0].Per != compile.PerEpoch || rep.Extras[0].Runs != 1 ||
				rep.MethodExtra.Total != epochs*rep.PerGraph[methods.LFMAlphaGraph] {
				t.Errorf("method extras %+v (total %d): want the α-gradient graph once per epoch", rep.Extras, rep.MethodExtra.Total)
			}
		})
	}
}

// The α-gradient batch is a quarter of the first validation batch; below
// 4 samples it would be empty, which is an error naming the sizes.
func TestLFMNeedsFourSamples(t *testing.T) {
	_, _, err := experiment.Compile(experiment.Request{Method: "lfm", Dataset: "synth-av", DataParams: lfmData("synth-av"),
		Encoder: "mlp:6,4", Train: experiment.Overrides{Epochs: 1, BatchSize: 3, EvalBatchSize: 8}})
	if err == nil || !strings.Contains(err.Error(), "batch size 3") || !strings.Contains(err.Error(), "at least 4") {
		t.Errorf("LFM with batch size 3: %v", err)
	}
}
