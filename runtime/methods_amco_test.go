package runtime_test

import (
	"math"
	"testing"

	"bmc/compile"
	"bmc/experiment"
	"bmc/graph/nn"
	"bmc/runtime"
)

// amcoModel holds what the Go side of the AMCo checks reads: the linear
// encoders' features of the batch and the head's weights.
type amcoModel struct {
	names       []string
	classes     int
	feats       [][]float64 // [m][B·d_m]
	widths      []int
	w, b        []float64 // fusion_module.fc_out
	star, starB []float64 // linear_star
}

// amcoSetup reads the features φ_m = x_m·Wᵀ + b of the batch's linear
// encoders and the head from a program's state.
func amcoSetup(t *testing.T, p *compile.Plan, pr *runtime.Program, graphName string, state map[string][]float32) amcoModel {
	t.Helper()
	b, err := pr.BatchOf(graphName)
	if err != nil {
		t.Fatal(err)
	}
	am := amcoModel{names: modalities(p), classes: int(p.Manifest.Model.Classes),
		w: floats(state["fusion_module.fc_out.weight"]), b: floats(state["fusion_module.fc_out.bias"]),
		star: floats(state["linear_star.weight"]), starB: floats(state["linear_star.bias"])}
	for _, m := range am.names {
		x := b.Data[m].F32
		w, bias := state[nn.EncoderPrefix(m)+"0.weight"], state[nn.EncoderPrefix(m)+"0.bias"]
		d := len(bias)
		in := len(x) / b.Size
		f := make([]float64, b.Size*d)
		for i := range b.Size {
			for o := range d {
				v := float64(bias[o])
				for k := range in {
					v += float64(w[o*in+k]) * float64(x[i*in+k])
				}
				f[i*d+o] = v
			}
		}
		am.feats = append(am.feats, f)
		am.widths = append(am.widths, d)
	}
	return am
}

// logits evaluates the AMCo head (spec §4.5) in Go: each modality's logits
// from its (masked) features with its column block of W and b/n, masked
// class logits where logitMask, their sum s and linear_star(s).
func (am amcoModel) logits(rows int, dep []bool, mask []float32, logitMask bool) (uni [][]float64, sum, fused []float64) {
	n, c := len(am.names), am.classes
	total := 0
	for _, d := range am.widths {
		total += d
	}
	sum = make([]float64, rows*c)
	off := 0
	for m, d := range am.widths {
		z := make([]float64, rows*c)
		for i := range rows {
			for k := range c {
				v := am.b[k] / float64(n)
				for u := range d {
					f := am.feats[m][i*d+u]
					if dep[m] && !logitMask {
						f *= float64(mask[off+u])
					}
					v += am.w[k*total+off+u] * f
				}
				if dep[m] && logitMask {
					v *= float64(mask[k])
				}
				z[i*c+k] = v
				sum[i*c+k] += v
			}
		}
		uni = append(uni, z)
		off += d
	}
	fused = make([]float64, rows*c)
	for i := range rows {
		for k := range c {
			v := am.starB[k]
			for j := range c {
				v += am.star[k*c+j] * sum[i*c+j]
			}
			fused[i*c+k] = v
		}
	}
	return uni, sum, fused
}

func ce(z []float64, labels []int64, classes int) float64 {
	var l float64
	for i, y := range labels {
		l -= math.Log(softmaxRow(z[i*classes : (i+1)*classes])[y])
	}
	return l / float64(len(labels))
}

func checkNear(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !near(got[i], want[i], tol) {
			t.Fatalf("%s[%d] = %v, the spec gives %v", what, i, got[i], want[i])
		}
	}
}

// One AMCo step with fixed dependent flags and mask, 2 and 3 modalities,
// in both compat settings: the masked unimodal logits, the fused logits
// linear_star(Σ_m z_m), the loss CE(z) + Σ_m CE(z_m) (CE(z) alone outside
// the window), the probability masses of the joint softmax, the updates of
// both biases (the gradient of the summed loss), and the evaluation graph's
// logits (linear_star kept, or bypassed with compat).
func TestAMCoStepMatchesSpec(t *testing.T) {
	for _, dataset := range []string{"synth-av", "synth-avt"} {
		for _, compat := range []bool{false, true} {
			name := dataset + "/intended"
			if compat {
				name = dataset + "/compat"
			}
			t.Run(name, func(t *testing.T) {
				hp := map[string]string{"compat": "false"}
				if compat {
					hp["compat"] = "true"
				}
				p, d := compileOn(t, "amco", dataset, "linear:6", hp, small, plainSGD())
				pr, init, labels := stepProgram(t, p, d)
				am := amcoSetup(t, p, pr, "train", init)
				n, c := len(am.names), am.classes
				dep := make([]bool, n)
				dep[0] = true
				flags := make([]float32, n)
				flags[0] = 1
				size := 6 * n
				if compat {
					size = c
				}
				mask := make([]float32, size)
				for i := range mask {
					if i%3 != 1 {
						mask[i] = 1.7
						if compat {
							mask[i] = 1
						}
					}
				}
				for _, active := range []float32{1, 0} {
					if err := pr.SetState(init); err != nil {
						t.Fatal(err)
					}
					setInput(t, pr, "amco.active", active)
					setInput(t, pr, nn.AMCoDependent, flags...)
					setInput(t, pr, nn.AMCoMask, mask...)
					if err := pr.Run("train"); err != nil {
						t.Fatal(err)
					}
					uni, sum, fused := am.logits(batch, dep, mask, compat)
					for m, name := range am.names {
						checkNear(t, "logits/"+name, metric(t, pr, "logits/"+name), uni[m], 1e-4)
					}
					report := fused
					if compat {
						report = sum
					}
					checkNear(t, "logits", metric(t, pr, "logits"), report, 1e-4)
					loss := ce(fused, labels, c)
					if active == 1 {
						for m := range n {
							loss += ce(uni[m], labels, c)
						}
					}
					checkNear(t, "loss", metric(t, pr, "loss"), []float64{loss}, 1e-4)
					mass := make([]float64, n)
					for i := range batch {
						var row []float64
						for m := range n {
							row = append(row, uni[m][i*c:(i+1)*c]...)
						}
						for k, v := range softmaxRow(row) {
							mass[k/c] += v / batch
						}
					}
					checkNear(t, "amco.mass", metric(t, pr, "amco.mass"), mass, 1e-5)
					if active == 0 {
						continue
					}
					// Bias gradients of CE(z) + Σ_m CE(z_m): through linear_star for
					// the fused term, and b/n (masked for a dependent modality's
					// class logits) in every z_m.
					update := delta(init, snapshot(t, pr))
					gStar, gBias := make([]float64, c), make([]float64, c)
					for i, y := range labels {
						dz := softmaxRow(fused[i*c : (i+1)*c])
						dz[y]--
						ds := make([]float64, c)
						for k := range c {
							gStar[k] += dz[k] / batch
							for j := range c {
								ds[j] += dz[k] * am.star[k*c+j]
							}
						}
						for m := range n {
							dm := softmaxRow(uni[m][i*c : (i+1)*c])
							dm[y]--
							for k := range c {
								f := 1 / float64(n)
								if compat && dep[m] {
									f *= float64(mask[k])
								}
								gBias[k] += f * (ds[k] + dm[k]) / batch
							}
						}
					}
					for k := range c {
						gStar[k] *= -0.1
						gBias[k] *= -0.1
					}
					checkNear(t, "linear_star.bias update", update["linear_star.bias"], gStar, 1e-4)
					checkNear(t, "fusion_module.fc_out.bias update", update["fusion_module.fc_out.bias"], gBias, 1e-4)
				}
				// Evaluation: no mask, linear_star unless compat.
				evalModel := amcoSetup(t, p, pr, compile.EvalGraph, init)
				if err := pr.SetState(init); err != nil {
					t.Fatal(err)
				}
				if err := pr.Run(compile.EvalGraph); err != nil {
					t.Fatal(err)
				}
				_, sum, fused := evalModel.logits(batch, make([]bool, n), nil, compat)
				want := fused
				if compat {
					want = sum
				}
				got, err := pr.Metric(compile.EvalGraph, "logits")
				if err != nil {
					t.Fatal(err)
				}
				checkNear(t, "eval logits", floats(got), want, 1e-4)
			})
		}
	}
}

// The schedule's mask has ⌊p·K⌋ zeros in each block of K units (each
// modality's features, or the C classes with compat), the kept units scaled
// by 1/(1 − p) (10 near p = 1) for features, with p = sin(π/2·min(eps,
// l)/eps), l = step·epoch/10; the dependent flags of a step are the masses
// of the step before above sigma, and every epoch starts with none.
func TestAMCoScheduleMaskAndDependence(t *testing.T) {
	for _, compat := range []string{"false", "true"} {
		p, d := compileOn(t, "amco", "synth-av", "", map[string]string{"compat": compat, "sigma": "0.5"}, small, plainSGD())
		pr, _, _ := stepProgram(t, p, d)
		sched, err := experiment.Schedule(p)
		if err != nil {
			t.Fatal(err)
		}
		model, err := nn.New(p.Manifest.Model)
		if err != nil {
			t.Fatal(err)
		}
		blocks := model.FeatureWidths()
		if compat == "true" {
			blocks = []int64{p.Manifest.Model.Classes}
		}
		const steps = 5
		r := &scheduleRun{pr: pr, seed: p.Manifest.Train.Seed}
		var masses []float32
		sawDependent, sawPartial := false, false
		for range 3 * steps {
			if r.step == 0 {
				if err := sched.BeginEpoch(r); err != nil {
					t.Fatal(err)
				}
				masses = nil
			}
			if err := sched.BeforeStep(r); err != nil {
				t.Fatal(err)
			}
			dep, _ := pr.Input(nn.AMCoDependent)
			for m := range dep {
				want := float32(0)
				if masses != nil && masses[m] > 0.5 {
					want = 1
				}
				if dep[m] != want {
					t.Errorf("compat %s, epoch %d step %d: dependent %v, the last masses %v", compat, r.epoch, r.step, dep, masses)
				}
				sawDependent = sawDependent || dep[m] == 1
			}
			ratio := math.Sin(math.Pi / 2 * math.Min(0.3, float64(r.step)*float64(r.epoch)/10) / 0.3)
			keep := float32(1)
			if compat == "false" {
				keep = 10
				if math.Abs(ratio-1) > 0.1 {
					keep = float32(1 / (1 - ratio))
				}
			}
			mask, _ := pr.Input(nn.AMCoMask)
			at := 0
			for _, k := range blocks {
				zeros := 0
				for _, v := range mask[at : at+int(k)] {
					switch v {
					case 0:
						zeros++
					case keep:
					default:
						t.Fatalf("compat %s: mask value %v, want 0 or %v", compat, v, keep)
					}
				}
				if want := int(ratio * float64(k)); zeros != want {
					t.Errorf("compat %s, epoch %d step %d: %d of %d units masked, want ⌊%.3f·%d⌋ = %d", compat, r.epoch, r.step, zeros, k, ratio, k, want)
				}
				sawPartial = sawPartial || (zeros > 0 && zeros < int(k))
				at += int(k)
			}
			if err := pr.Run("train"); err != nil {
				t.Fatal(err)
			}
			if err := sched.AfterStep(r); err != nil {
				t.Fatal(err)
			}
			m, _ := pr.Metric("train", "amco.mass")
			masses = append([]float32{}, m...)
			r.next(steps)
		}
		if !sawDependent || !sawPartial {
			t.Errorf("compat %s: dependent flags seen %v, a partial mask seen %v: the test checks too little", compat, sawDependent, sawPartial)
		}
	}
}
