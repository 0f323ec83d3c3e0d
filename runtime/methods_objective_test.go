package runtime_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/datasets"
	"bmc/experiment"
	"bmc/runtime"
)

// These tests run one training step of MMCosine, MBSD, CML and MMPareto and
// check what the step graph computes (logits, regularisers, weights,
// cosines and the parameter updates) against the spec's formulas evaluated
// in Go in float64 on the same batch and parameters. The model is small
// enough for Go: linear encoders (6 inputs → 3 features), 4 classes, batch
// 16, plain SGD (lr 0.1, no momentum or weight decay), so a parameter's
// update is −0.1 × its gradient; Go differentiates its own loss by central
// differences.

const objectiveLR = 0.1

// objectivePlan compiles a method on synth-av (2 modalities) or synth-avt (3).
func objectivePlan(t *testing.T, method, dataset string, hp map[string]string) (*compile.Plan, datasets.Dataset) {
	t.Helper()
	data := map[string]string{"train": "64", "val": "16", "test": "16", "classes": "4", "dim.audio": "6", "dim.visual": "6"}
	if dataset == "synth-avt" {
		data["dim.text"] = "6"
	}
	o := plainSGD()
	o.Threads = 1
	p, d, err := experiment.Compile(experiment.Request{Method: method, Hyper: hp, Dataset: dataset, DataParams: data, Encoder: "linear:3", Train: o})
	if err != nil {
		t.Fatal(err)
	}
	return p, d
}

// refNet is the plan's model in Go: linear encoders, then the concat head
// (z_m = φ_m·W_mᵀ + b/n) or the cosine head (z_m = s·cos(φ_m, W_m[c])),
// z = Σ_m z_m, on one batch.
type refNet struct {
	names   []string
	in      map[string]int
	width   int
	classes int
	// scale is the cosine head's s; 0 selects the concat head.
	scale float64
	x     map[string][]float64
	y     []int64
	batch int
}

func newRefNet(t *testing.T, p *compile.Plan, pr *runtime.Program, labels []int64) refNet {
	t.Helper()
	b, err := pr.BatchOf("train")
	if err != nil {
		t.Fatal(err)
	}
	r := refNet{names: p.Manifest.ModalityNames(), in: map[string]int{}, width: 3, classes: int(p.Manifest.Model.Classes),
		x: map[string][]float64{}, y: labels, batch: b.Size}
	if p.Manifest.Model.Fusion == "cosine" {
		r.scale = p.Manifest.Model.FusionOptions["scale"]
	}
	for _, m := range r.names {
		r.in[m] = len(b.Data[m].F32) / b.Size
		r.x[m] = float64s(b.Data[m].F32)
	}
	return r
}

func float64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// params are a program's parameters in float64.
func params(t *testing.T, p *compile.Plan, pr *runtime.Program) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	for _, par := range p.Manifest.Params {
		v, err := pr.State(par.Name)
		if err != nil {
			t.Fatal(err)
		}
		out[par.Name] = float64s(v)
	}
	return out
}

// unitRows divides every row of x [rows, d] by max(‖row‖, 1e-12).
func unitRows(x []float64, d int) []float64 {
	out := slices.Clone(x)
	for i := 0; i < len(x); i += d {
		var n float64
		for _, v := range x[i : i+d] {
			n += v * v
		}
		n = math.Max(math.Sqrt(n), 1e-12)
		for k := range d {
			out[i+k] /= n
		}
	}
	return out
}

// forward returns z and the z_m, each [B·C].
func (r refNet) forward(th map[string][]float64) ([]float64, map[string][]float64) {
	n, c, d := len(r.names), r.classes, r.width
	head := th["fusion_module.fc_out.weight"]
	total := n * d
	z := make([]float64, r.batch*c)
	uni := map[string][]float64{}
	for mi, m := range r.names {
		w, bias := th["modality_encoder."+m+".0.weight"], th["modality_encoder."+m+".0.bias"]
		in := r.in[m]
		phi := make([]float64, r.batch*d)
		for i := range r.batch {
			for k := range d {
				phi[i*d+k] = bias[k]
				for j := range in {
					phi[i*d+k] += w[k*in+j] * r.x[m][i*in+j]
				}
			}
		}
		block := make([]float64, c*d)
		for cl := range c {
			copy(block[cl*d:(cl+1)*d], head[cl*total+mi*d:cl*total+(mi+1)*d])
		}
		if r.scale > 0 {
			phi, block = unitRows(phi, d), unitRows(block, d)
		}
		zm := make([]float64, r.batch*c)
		for i := range r.batch {
			for cl := range c {
				var v float64
				for k := range d {
					v += phi[i*d+k] * block[cl*d+k]
				}
				if r.scale > 0 {
					v *= r.scale
				} else {
					v += th["fusion_module.fc_out.bias"][cl] / float64(n)
				}
				zm[i*c+cl] = v
				z[i*c+cl] += v
			}
		}
		uni[m] = zm
	}
	return z, uni
}

// row is sample i's logits.
func (r refNet) row(z []float64, i int) []float64 { return z[i*r.classes : (i+1)*r.classes] }

// ce is the batch mean of −log softmax(z_i)[y_i].
func (r refNet) ce(z []float64) float64 {
	var s float64
	for i, y := range r.y {
		s -= math.Log(softmaxRow(r.row(z, i))[y])
	}
	return s / float64(len(r.y))
}

// argmaxRow is the first index of the largest entry (torch.argmax).
func argmaxRow(v []float64) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// numGrad differentiates f at th by central differences in float64.
func numGrad(f func(map[string][]float64) float64, th map[string][]float64) map[string][]float64 {
	const h = 1e-5
	out := map[string][]float64{}
	for k, v := range th {
		g := make([]float64, len(v))
		for i := range v {
			orig := v[i]
			v[i] = orig + h
			plus := f(th)
			v[i] = orig - h
			minus := f(th)
			v[i] = orig
			g[i] = (plus - minus) / (2 * h)
		}
		out[k] = g
	}
	return out
}

// checkUpdates asserts that every parameter's update over the step is
// −lr × its expected gradient, within float32 precision of the tensor's
// scale.
func checkUpdates(t *testing.T, what string, before, after map[string][]float64, grads map[string][]float64) {
	t.Helper()
	for k, g := range grads {
		var scale float64
		for _, v := range g {
			scale = math.Max(scale, math.Abs(v))
		}
		for i, v := range g {
			got, want := after[k][i]-before[k][i], -objectiveLR*v
			if math.Abs(got-want) > 1e-3*objectiveLR*scale+2e-3*math.Abs(want)+1e-7 {
				t.Fatalf("%s: %s[%d] moved by %.6g, the spec's gradient gives %.6g", what, k, i, got, want)
			}
		}
	}
}

// differ asserts that two gradient sets differ beyond checkUpdates'
// tolerance somewhere, so that a check against one cannot pass for the
// other.
func differ(t *testing.T, what string, a, b map[string][]float64) {
	t.Helper()
	for k, g := range a {
		var scale float64
		for _, v := range g {
			scale = math.Max(scale, math.Abs(v))
		}
		for i := range g {
			if math.Abs(g[i]-b[k][i]) > 2e-2*scale {
				return
			}
		}
	}
	t.Fatalf("%s: the two forms' gradients agree on this batch; the test cannot tell them apart", what)
}

// stepOnce sets the state, runs the train graph once and returns the
// parameters before and after.
func stepOnce(t *testing.T, p *compile.Plan, pr *runtime.Program, init map[string][]float32) (before, after map[string][]float64) {
	t.Helper()
	if err := pr.SetState(init); err != nil {
		t.Fatal(err)
	}
	before = params(t, p, pr)
	if err := pr.Run("train"); err != nil {
		t.Fatal(err)
	}
	return before, params(t, p, pr)
}

func checkClose(t *testing.T, what string, got []float64, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !near(got[i], want[i], tol) {
			t.Fatalf("%s[%d] = %.7g, the spec gives %.7g", what, i, got[i], want[i])
		}
	}
}

var objectiveDatasets = []string{"synth-av", "synth-avt"}

func TestMMCosineStepMatchesSpec(t *testing.T) {
	for _, ds := range objectiveDatasets {
		t.Run(ds, func(t *testing.T) {
			p, d := objectivePlan(t, "mmcosine", ds, map[string]string{"scaling": "7"})
			for _, par := range p.Manifest.Params {
				if strings.HasPrefix(par.Name, "fusion_module.") && par.Name != "fusion_module.fc_out.weight" {
					t.Errorf("MMCosine's head has a parameter %s; the cosine logits take no bias", par.Name)
				}
			}
			pr, init, labels := stepProgram(t, p, d)
			r := newRefNet(t, p, pr, labels)
			if r.scale != 7 {
				t.Fatalf("the plan's head scale is %v, want the hyperparameter's 7", r.scale)
			}
			th := params(t, p, pr)
			z, uni := r.forward(th)
			// The evaluation graph (and so model.onnx) has the same logits.
			if err := pr.Run(compile.EvalGraph); err != nil {
				t.Fatal(err)
			}
			for _, name := range append([]string{""}, r.names...) {
				key, want := "logits", z
				if name != "" {
					key, want = "logits/"+name, uni[name]
				}
				v, err := pr.Metric(compile.EvalGraph, key)
				if err != nil {
					t.Fatal(err)
				}
				checkClose(t, "eval "+key, float64s(v)[:len(want)], want, 1e-5)
			}
			before, after := stepOnce(t, p, pr, init)
			checkClose(t, "train logits", metric(t, pr, "logits"), z, 1e-5)
			for _, m := range r.names {
				checkClose(t, "train logits/"+m, metric(t, pr, "logits/"+m), uni[m], 1e-5)
				for _, v := range uni[m] {
					if math.Abs(v) > 7 {
						t.Fatalf("z_%s has %v beyond the scale 7", m, v)
					}
				}
			}
			checkClose(t, "loss", metric(t, pr, "loss"), []float64{r.ce(z)}, 1e-5)
			loss := func(th map[string][]float64) float64 { z, _ := r.forward(th); return r.ce(z) }
			checkUpdates(t, "MMCosine", before, after, numGrad(loss, before))
		})
	}
}

// mbsdLoss is spec §4.8's loss on the logits, with its KL and RS terms.
func (r refNet) mbsdLoss(z []float64, uni map[string][]float64, compat bool, active float64) (loss, kl, rs float64) {
	n := len(r.names)
	pairs := 0
	for a := range n {
		for b := a + 1; b < n; b++ {
			pairs++
			za, zb := uni[r.names[a]], uni[r.names[b]]
			var klSum, rsSum float64
			for i, y := range r.y {
				pa, pb := softmaxRow(r.row(za, i)), softmaxRow(r.row(zb, i))
				ps, pw := pa[y], pa[y] // Python's max and min: p_a unless p_b is strictly beyond it
				if pb[y] > pa[y] {
					ps = pb[y]
				}
				if pb[y] < pa[y] {
					pw = pb[y]
				}
				var w float64
				if argmaxRow(r.row(za, i)) == int(y) || argmaxRow(r.row(zb, i)) == int(y) {
					w = ps - pw
				}
				k := pw * (math.Log(pw) - math.Log(ps))
				if compat {
					k = pw * (math.Log(pw) - ps)
				}
				x, xb := r.row(za, i), r.row(zb, i)
				if compat && n == 3 {
					x, xb = pa, pb
				}
				var sq float64
				for c := range x {
					sq += (x[c] - xb[c]) * (x[c] - xb[c])
				}
				klSum += w * k
				rsSum += w * sq / float64(r.classes)
			}
			kl += klSum / float64(r.batch)
			rs += rsSum / float64(r.batch)
		}
	}
	kl /= float64(pairs)
	rs /= float64(pairs)
	loss = r.ce(z)
	if active != 0 {
		for _, m := range r.names {
			loss += r.ce(uni[m])
		}
		loss += kl + rs
	}
	return loss, kl, rs
}

func TestMBSDStepMatchesSpec(t *testing.T) {
	for _, ds := range objectiveDatasets {
		t.Run(ds, func(t *testing.T) {
			want := map[bool]map[string][]float64{}
			for _, compat := range []bool{false, true} {
				p, d := objectivePlan(t, "mbsd", ds, map[string]string{"compat": fmt.Sprint(compat)})
				pr, init, labels := stepProgram(t, p, d)
				r := newRefNet(t, p, pr, labels)
				th := params(t, p, pr)
				z, uni := r.forward(th)
				for _, active := range []float64{1, 0} {
					setInput(t, pr, "mbsd.active", float32(active))
					before, after := stepOnce(t, p, pr, init)
					loss, kl, rs := r.mbsdLoss(z, uni, compat, active)
					what := fmt.Sprintf("compat=%v active=%v", compat, active)
					checkClose(t, what+" mbsd.kl", metric(t, pr, "mbsd.kl"), []float64{kl}, 1e-4)
					checkClose(t, what+" mbsd.rs", metric(t, pr, "mbsd.rs"), []float64{rs}, 1e-4)
					checkClose(t, what+" loss", metric(t, pr, "loss"), []float64{loss}, 1e-5)
					if kl == 0 || rs == 0 {
						t.Fatalf("%s: KL %v, RS %v on this batch; the check is empty", what, kl, rs)
					}
					grads := numGrad(func(th map[string][]float64) float64 {
						z, uni := r.forward(th)
						l, _, _ := r.mbsdLoss(z, uni, compat, active)
						return l
					}, before)
					checkUpdates(t, "MBSD "+what, before, after, grads)
					if active == 1 {
						want[compat] = grads
					} else {
						differ(t, "MBSD inside vs outside the window", want[compat], grads)
					}
				}
			}
			differ(t, "MBSD compat=false vs true", want[false], want[true])
		})
	}
}

// cmlLoss is spec §4.9's loss: removed lists the popped modalities in
// order; the hinge is per sample, or of the batch sum with compat.
func (r refNet) cmlLoss(th map[string][]float64, removed []string, lam float64, compat bool, active float64) (loss, conf float64) {
	z, uni := r.forward(th)
	if active == 0 {
		return r.ce(z), 0
	}
	n := float64(len(r.names))
	prev := z
	total := r.ce(z)
	bias := th["fusion_module.fc_out.bias"]
	top := func(v []float64) float64 { s := softmaxRow(v); return s[argmaxRow(s)] }
	for _, m := range removed {
		next := make([]float64, len(prev))
		for i := range next {
			next[i] = prev[i] - uni[m][i] + bias[i%r.classes]/n
		}
		total += r.ce(next)
		var sum, hinges float64
		for i := range r.batch {
			rise := top(r.row(next, i)) - top(r.row(prev, i))
			sum += rise
			hinges += math.Max(0, rise)
		}
		if compat {
			conf += math.Max(0, sum)
		} else {
			conf += hinges
		}
		prev = next
	}
	return total/n + lam*conf, conf
}

func TestCMLStepMatchesSpec(t *testing.T) {
	for _, ds := range objectiveDatasets {
		t.Run(ds, func(t *testing.T) {
			want := map[bool]map[string][]float64{}
			for _, compat := range []bool{false, true} {
				p, d := objectivePlan(t, "cml", ds, map[string]string{"compat": fmt.Sprint(compat), "lam": "0.7"})
				pr, init, labels := stepProgram(t, p, d)
				r := newRefNet(t, p, pr, labels)
				n := len(r.names)
				// Remove the first modality first (not the default order,
				// which pops from the end of the unshuffled list).
				removed := r.names[:n-1]
				order := make([]float32, (n-1)*n)
				for i, m := range removed {
					order[i*n+slices.Index(r.names, m)] = 1
				}
				setInput(t, pr, "cml.order", order...)
				for _, active := range []float64{1, 0} {
					setInput(t, pr, "cml.active", float32(active))
					before, after := stepOnce(t, p, pr, init)
					loss, conf := r.cmlLoss(before, removed, 0.7, compat, active)
					what := fmt.Sprintf("compat=%v active=%v", compat, active)
					checkClose(t, what+" loss", metric(t, pr, "loss"), []float64{loss}, 1e-5)
					if active == 1 {
						checkClose(t, what+" cml.conf_loss", metric(t, pr, "cml.conf_loss"), []float64{conf}, 1e-4)
					}
					grads := numGrad(func(th map[string][]float64) float64 {
						l, _ := r.cmlLoss(th, removed, 0.7, compat, active)
						return l
					}, before)
					checkUpdates(t, "CML "+what, before, after, grads)
					if active == 1 {
						want[compat] = grads
						// Per sample some confidence rises; the batch sum of
						// the changes may not (then the literal hinge is 0).
						if conf == 0 && !compat {
							t.Fatalf("%s: no confidence rises on this batch; the hinge is not checked", what)
						}
					}
				}
			}
			// The per-sample hinge and the batch-sum hinge differ here
			// (some samples' confidence falls while others' rises).
			differ(t, "CML per-sample vs batch-sum hinge", want[false], want[true])
		})
	}
}

// paretoExpected is spec §4.10's intended MMPareto (or the reference's
// literal one with compat) on gradients g_F = ∇CE(z) and g_m = ∇CE(z_m):
// the cosine and w_F per modality, and every parameter's gradient. The
// min-norm weight comes from a brute-force search over w ∈ [0, 1].
func paretoExpected(p *compile.Plan, r refNet, th map[string][]float64, alpha float64, compat bool) (cos, weight map[string]float64, grads map[string][]float64) {
	gF := numGrad(func(th map[string][]float64) float64 { z, _ := r.forward(th); return r.ce(z) }, th)
	gradTotal := numGrad(func(th map[string][]float64) float64 {
		z, uni := r.forward(th)
		l := r.ce(z)
		for _, m := range r.names {
			l += r.ce(uni[m])
		}
		return l
	}, th)
	cos, weight, grads = map[string]float64{}, map[string]float64{}, map[string][]float64{}
	for _, par := range p.Manifest.Params {
		if par.Modality == "" {
			grads[par.Name] = gradTotal[par.Name] // the head: the plain ∇L
		}
	}
	for _, m := range r.names {
		// Perturbing the encoder's slices perturbs th, which f reads.
		gM := numGrad(func(map[string][]float64) float64 { _, uni := r.forward(th); return r.ce(uni[m]) }, encoderOf(p, th, m))
		var keys []string
		var a, b []float64 // flattened g_F and g_m on m's encoder
		for _, par := range p.Manifest.Params {
			if par.Modality == m {
				keys = append(keys, par.Name)
				a = append(a, gF[par.Name]...)
				b = append(b, gM[par.Name]...)
			}
		}
		var ab, aa, bb float64
		for i := range a {
			ab += a[i] * b[i]
			aa += a[i] * a[i]
			bb += b[i] * b[i]
		}
		cos[m] = ab / math.Sqrt(aa*bb)
		w := 0.5
		if cos[m] <= 0 {
			w = minNormBruteForce(a, b)
		}
		weight[m] = w
		for _, k := range keys {
			g := make([]float64, len(gF[k]))
			var plainSq, nextSq float64
			for i := range g {
				plain := gF[k][i] + gM[k][i]
				g[i] = 2*w*gF[k][i] + 2*(1-w)*gM[k][i]
				if compat {
					g[i] = 2 * plain
				}
				plainSq += plain * plain
				nextSq += g[i] * g[i]
			}
			factor := 1.0
			if ratio := math.Sqrt(plainSq / nextSq); !compat && ratio > 1 {
				factor = ratio
			}
			for i := range g {
				g[i] *= factor * alpha
			}
			grads[k] = g
		}
	}
	return cos, weight, grads
}

// encoderOf is the part of th that is modality m's encoder (the same
// slices).
func encoderOf(p *compile.Plan, th map[string][]float64, m string) map[string][]float64 {
	out := map[string][]float64{}
	for _, par := range p.Manifest.Params {
		if par.Modality == m {
			out[par.Name] = th[par.Name]
		}
	}
	return out
}

// linearCosine is cos(∇CE(z), ∇CE(z_m)) on modality m's linear encoder
// (concat head), by the chain rule: dz_i = (softmax(z_i) − e_y)/B reaches
// φ_m through the head block, dφ_i = W_mᵀ·dz_i, and then the encoder's
// weight (dφ_i·x_iᵀ) and bias (dφ_i).
func (r refNet) linearCosine(th map[string][]float64, m string) float64 {
	z, uni := r.forward(th)
	mi, d, c := slices.Index(r.names, m), r.width, r.classes
	head, total, in := th["fusion_module.fc_out.weight"], len(r.names)*r.width, r.in[m]
	grad := func(logits []float64) []float64 {
		g := make([]float64, d*in+d)
		for i, y := range r.y {
			dz := softmaxRow(r.row(logits, i))
			dz[y]--
			for k := range d {
				var dphi float64
				for cl := range c {
					dphi += head[cl*total+mi*d+k] * dz[cl] / float64(r.batch)
				}
				for j := range in {
					g[k*in+j] += dphi * r.x[m][i*in+j]
				}
				g[d*in+k] += dphi
			}
		}
		return g
	}
	a, b := grad(z), grad(uni[m])
	var ab, aa, bb float64
	for i := range a {
		ab, aa, bb = ab+a[i]*b[i], aa+a[i]*a[i], bb+b[i]*b[i]
	}
	return ab / math.Sqrt(aa*bb)
}

// minNormBruteForce minimises ‖w·a + (1−w)·b‖² over a grid of [0, 1], then
// refines around the best point.
func minNormBruteForce(a, b []float64) float64 {
	f := func(w float64) float64 {
		var s float64
		for i := range a {
			v := w*a[i] + (1-w)*b[i]
			s += v * v
		}
		return s
	}
	best, lo, hi := 0.0, 0.0, 1.0
	for range 4 {
		step := (hi - lo) / 1000
		for k := 0; k <= 1000; k++ {
			if w := lo + float64(k)*step; f(w) < f(best) {
				best = w
			}
		}
		lo, hi = math.Max(0, best-step), math.Min(1, best+step)
	}
	return best
}

func TestMMParetoStepMatchesSpec(t *testing.T) {
	for _, ds := range objectiveDatasets {
		t.Run(ds, func(t *testing.T) {
			for _, compat := range []bool{false, true} {
				p, d := objectivePlan(t, "mmpareto", ds, map[string]string{"alpha": "1.3", "compat": fmt.Sprint(compat)})
				pr, init, _ := stepProgram(t, p, d)
				b, err := pr.BatchOf("train")
				if err != nil {
					t.Fatal(err)
				}
				// Draw parameters and labels until some modality's two
				// gradients conflict (cos < 0, the min-norm branch) and
				// another's agree (the (½, ½) branch); the draws are judged
				// by the analytic cosine, the check below differentiates
				// numerically.
				var r refNet
				var th map[string][]float64
				found := false
				rng := rand.New(rand.NewPCG(3, 4))
				for range 2000 {
					scale := 0.5 + 2*rng.Float64()
					th = map[string][]float64{}
					for _, par := range p.Manifest.Params {
						for i := range init[par.Name] {
							init[par.Name][i] = float32(scale * rng.NormFloat64())
						}
						th[par.Name] = float64s(init[par.Name])
					}
					for i := range b.Labels.I64 {
						b.Labels.I64[i] = int64(rng.IntN(int(p.Manifest.Model.Classes)))
					}
					r = newRefNet(t, p, pr, slices.Clone(b.Labels.I64))
					lo, hi := 1.0, -1.0
					for _, m := range r.names {
						c := r.linearCosine(th, m)
						lo, hi = math.Min(lo, c), math.Max(hi, c)
					}
					if lo < -0.05 && hi > 0.05 {
						found = true
						break
					}
				}
				if !found {
					t.Fatal("no draw gave both conflicting and agreeing gradients")
				}
				cos, weight, grads := paretoExpected(p, r, th, 1.3, compat)
				before, after := stepOnce(t, p, pr, init)
				what := fmt.Sprintf("compat=%v", compat)
				if !compat {
					for _, m := range r.names {
						checkClose(t, what+" mmpareto.cos/"+m, metric(t, pr, "mmpareto.cos/"+m), []float64{cos[m]}, 1e-3)
						// The graph's closed form against the brute-force minimiser.
						checkClose(t, what+" mmpareto.weight/"+m, metric(t, pr, "mmpareto.weight/"+m), []float64{weight[m]}, 2e-3)
					}
				}
				z, uni := r.forward(before)
				total := r.ce(z)
				for _, m := range r.names {
					total += r.ce(uni[m])
				}
				checkClose(t, what+" loss", metric(t, pr, "loss"), []float64{total}, 1e-5)
				checkUpdates(t, "MMPareto "+what, before, after, grads)
				if !compat {
					_, _, literal := paretoExpected(p, r, before, 1.3, true)
					differ(t, "MMPareto intended vs literal", grads, literal)
				}
			}
		})
	}
}
