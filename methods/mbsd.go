package methods

import (
	"bmc/compile"
	"bmc/graph"
	"bmc/graph/nn"
)

// mbsd is MBSD (Liu et al. 2023; spec §4.8): inside the modulation window
// the loss is CE(z) + Σ_m CE(z_m) + L_RS + L_KL. For each pair of modalities
// (a, b) and sample i, with p_m = softmax(z_m) at the label: ps_i and pw_i
// are the larger and the smaller of p_a and p_b, w_i = ps_i − pw_i when
// either modality predicts the label (else 0), and
//
//	L_KL = mean_i w_i·pw_i·(log pw_i − log ps_i),
//	L_RS = mean_i w_i·(1/C)·Σ_c (z_a,i,c − z_b,i,c)²,
//
// each averaged over the pairs (one pair for 2 modalities, three for 3).
// Gradients flow through w, ps and pw, as in the reference. Outside the
// window the loss is CE(z).
//
// Two departures from the reference, both spec §7.3 (compat=true restores
// them): the reference hands the probability ps to PyTorch's kl_div, whose
// input is a log-probability, so its term is pw·(log pw − ps); and it
// measures RS on logits for 2 modalities but on probabilities for 3, where
// bmc uses logits for every pair, as the reference does for 2.
type mbsd struct{}

// mbsdEntry is the registry row of the method.
func mbsdEntry() entry { return entry{info: mbsdInfo(), method: mbsd{}} }

func mbsdInfo() Info {
	return Info{Name: "mbsd", Display: "MBSD", Category: CategoryObjective, Indicator: "performance score", PaperModalities: 2, MaxModalities: 3,
		Domains: "CV, NLP", Citation: "Liu et al. 2023", Cost: "1F + 1BW",
		Params: append([]Param{
			{Name: "compat", Default: "false", Kind: "bool", Doc: "the reference's literal MBSD: kl_div fed the probability ps, and RS on probabilities for 3 modalities"},
		}, window("0")...)}
}

func (mbsd) Info() Info { return mbsdInfo() }

func (mbsd) Model(spec nn.ModelSpec, _ Hyper) (nn.ModelSpec, error) {
	return spec, requireModalities("mbsd", spec, 2, 3)
}

const mbsdActive = "mbsd.active"

// mbsdModality is what the regularisers read of one modality's logits.
type mbsdModality struct {
	logits, probs *graph.Value // [B, C]
	// py and logPy are p_m and log p_m at the label, [B]; correct says
	// whether the modality predicts the label.
	py, logPy *graph.Value
	correct   *graph.Value // bool [B]
}

func (mbsd) Build(b *compile.Builder, hp Hyper) error {
	return buildLossStep(b, "mbsd", func(s *compile.Step, out nn.Outputs, ce *graph.Value) (*graph.Value, error) {
		return mbsdLoss(s, out, ce, hp.Bool("compat")), nil
	})
}

// mbsdLoss is CE(z) + active·(Σ_m CE(z_m) + L_RS + L_KL).
func mbsdLoss(s *compile.Step, out nn.Outputs, ce *graph.Value, compat bool) *graph.Value {
	g := s.G
	names := s.Model().ModalityNames()
	onehot := g.OneHot(s.Labels, s.Model().Spec.Classes)
	atLabel := func(x *graph.Value) *graph.Value { return g.ReduceSum(g.Mul(x, onehot), false, 1) }
	mods := make([]mbsdModality, len(names))
	var terms []*graph.Value
	for i, m := range names {
		z := out.Unimodal[m]
		p := g.Softmax(z, 1)
		mods[i] = mbsdModality{logits: z, probs: p, py: atLabel(p), logPy: atLabel(g.LogSoftmax(z, 1)),
			correct: g.Equal(g.ArgMax(z, 1, false), s.Labels)}
		terms = append(terms, compile.CrossEntropy(g, z, s.Labels))
	}
	var kls, rss []*graph.Value
	for i := range mods {
		for j := i + 1; j < len(mods); j++ {
			a, c := mods[i], mods[j]
			// Python's max(p_a, p_b) and min(p_a, p_b): p_a unless p_b is
			// strictly larger (smaller).
			cStrong, cWeak := g.Greater(c.py, a.py), g.Less(c.py, a.py)
			ps, logPs := g.Where(cStrong, c.py, a.py), g.Where(cStrong, c.logPy, a.logPy)
			pw, logPw := g.Where(cWeak, c.py, a.py), g.Where(cWeak, c.logPy, a.logPy)
			w := g.Mul(g.Cast(g.Or(a.correct, c.correct), graph.Float32), g.Sub(ps, pw))
			// kl_div(input, target) = target·(log target − input).
			input := logPs
			if compat {
				input = ps
			}
			kl := g.Mul(pw, g.Sub(logPw, input))
			x, y := a.logits, c.logits
			if compat && len(mods) == 3 {
				x, y = a.probs, c.probs
			}
			d := g.Sub(x, y)
			rs := g.ReduceMean(g.Mul(d, d), false, 1)
			kls = append(kls, g.ReduceMean(g.Mul(w, kl), false))
			rss = append(rss, g.ReduceMean(g.Mul(w, rs), false))
		}
	}
	pairs := g.ConstFloat(float32(len(kls)))
	kl, rs := g.Div(g.Sum(kls...), pairs), g.Div(g.Sum(rss...), pairs)
	s.Metric("mbsd.kl", g.Reshape(kl, 1))
	s.Metric("mbsd.rs", g.Reshape(rs, 1))
	active := s.Input(mbsdActive, graph.Shape{1}, []float32{1}, "1 inside the modulation window, else 0")
	return g.Add(ce, g.Mul(active, g.Sum(append(terms, kl, rs)...)))
}

func (mbsd) Schedule(_ *compile.Manifest, hp Hyper) (Schedule, error) {
	return windowSchedule{modulationWindow{input: mbsdActive, starts: hp.Int("modulation_starts"), ends: hp.Int("modulation_ends")}}, nil
}
