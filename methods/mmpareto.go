package methods

import (
	"slices"

	"bmc/compile"
	"bmc/graph"
	"bmc/graph/nn"
)

// mmpareto is MMPareto (Wei & Hu 2024; spec §4.10): the loss is
// L = CE(z) + Σ_m CE(z_m). For each modality m, g_F = ∇CE(z) and
// g_m = ∇CE(z_m) on m's encoder parameters (flattened together) get
// weights (½, ½) when cos(g_F, g_m) > 0, and otherwise the min-norm
// weights of MGDA's two-task problem, min_γ ‖γ·g_F + (1−γ)·g_m‖², whose
// closed form MinNormSolver uses for two tasks:
//
//	γ = (g_m·g_m − g_F·g_m) / ‖g_F − g_m‖²,
//
// (0.999 or 0.001 where g_F·g_m reaches g_F·g_F or g_m·g_m). Every encoder
// parameter of m then gets new = 2w_F·g_F + 2w_m·g_m, rescaled to the norm
// of its plain gradient g_F + g_m where that is larger, times alpha; the
// fusion head gets the plain ∇L. Everything runs in the one step graph:
// one backward pass of CE(z) through the whole model and one of each CE(z_m)
// through encoder m and the head; ∇L is their sum, so no backward of L is
// needed.
//
// The reference accumulates the per-loss backward passes without zeroing in
// between, so both of its "gradients" are g_F + g_m, the cosine is 1 and the
// method reduces to 2·alpha·(g_F + g_m) on every encoder (×3 at alpha 1.5,
// spec §7.3); compat=true reproduces that.
type mmpareto struct{}

// mmparetoEntry is the registry row of the method.
func mmparetoEntry() entry { return entry{info: mmparetoInfo(), method: mmpareto{}} }

func mmparetoInfo() Info {
	return Info{Name: "mmpareto", Display: "MMPareto", Category: CategoryObjective, Indicator: "performance score", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, NLP, Audio", Citation: "Wei & Hu 2024", Cost: "1F + 1BW + n unimodal BW",
		Params: []Param{
			float("alpha", "1.5", "gradient scale").positive(),
			{Name: "compat", Default: "false", Kind: "bool", Doc: "the reference's literal MMPareto: every encoder gradient 2·alpha·(g_F + g_m)"},
		}}
}

func (mmpareto) Info() Info { return mmparetoInfo() }

func (mmpareto) Model(spec nn.ModelSpec, _ Hyper) (nn.ModelSpec, error) {
	return spec, requireModalities("mmpareto", spec, 2, 3)
}

// MinNormSolver's weights at the boundary of [0, 1].
const (
	paretoHigh = 0.999
	paretoLow  = 0.001
)

func (mmpareto) Build(b *compile.Builder, hp Hyper) error {
	s := b.NewStep(TrainGraph, "train", b.Config().BatchSize)
	out, err := s.Forward(nn.Train, nil)
	if err != nil {
		return err
	}
	g := s.G
	names := s.Model().ModalityNames()
	params := s.Model().Params()
	fused := compile.CrossEntropy(g, out.Logits, s.Labels)
	gradF, err := s.GradientsOf(fused, params)
	if err != nil {
		return err
	}
	var head []nn.Param
	encoder := map[string][]nn.Param{}
	for _, p := range params {
		if p.Modality == "" {
			head = append(head, p)
		} else {
			encoder[p.Modality] = append(encoder[p.Modality], p)
		}
	}
	grads := map[string]*graph.Value{}
	for _, p := range head {
		grads[p.Name] = gradF[p.Name]
	}
	alpha := float32(hp.Float("alpha"))
	losses := []*graph.Value{fused}
	for _, m := range names {
		uni := compile.CrossEntropy(g, out.Unimodal[m], s.Labels)
		losses = append(losses, uni)
		gradM, err := s.GradientsOf(uni, slices.Concat(encoder[m], head))
		if err != nil {
			return err
		}
		old := g.SetPhase(graph.PhaseMethod)
		pop := g.Scope("mmpareto/" + m)
		for _, p := range head {
			grads[p.Name] = g.Add(grads[p.Name], gradM[p.Name])
		}
		if hp.Bool("compat") {
			for _, p := range encoder[m] {
				grads[p.Name] = g.Mul(g.Add(gradF[p.Name], gradM[p.Name]), g.ConstFloat(2*alpha))
			}
		} else {
			cos, weight := paretoCombine(g, encoder[m], gradF, gradM, alpha, grads)
			s.Metric("mmpareto.cos/"+m, g.Reshape(cos, 1))
			s.Metric("mmpareto.weight/"+m, g.Reshape(weight, 1))
		}
		pop()
		g.SetPhase(old)
	}
	s.Optimize(grads)
	reportForward(s, out, g.Sum(losses...))
	return b.Add(s, 1)
}

// paretoCombine sets the gradients of one encoder's parameters from g_F
// and g_m and returns cos(g_F, g_m) and w_F.
func paretoCombine(g *graph.Graph, params []nn.Param, gradF, gradM map[string]*graph.Value, alpha float32, grads map[string]*graph.Value) (cos, wF *graph.Value) {
	dot := func(a, b map[string]*graph.Value) *graph.Value {
		terms := make([]*graph.Value, len(params))
		for i, p := range params {
			terms[i] = g.ReduceSum(g.Mul(a[p.Name], b[p.Name]), false)
		}
		return g.Sum(terms...)
	}
	ff, fm, mm := dot(gradF, gradF), dot(gradF, gradM), dot(gradM, gradM)
	// F.cosine_similarity: the dot product over max(‖g_F‖·‖g_m‖, 1e-8).
	cos = g.Div(fm, g.Max(g.Mul(g.Sqrt(ff), g.Sqrt(mm)), g.ConstFloat(1e-8)))
	interior := g.Div(g.Sub(mm, fm), g.Sub(g.Add(ff, mm), g.Mul(g.ConstFloat(2), fm)))
	gamma := g.Where(g.GreaterOrEqual(fm, ff), g.ConstFloat(paretoHigh),
		g.Where(g.GreaterOrEqual(fm, mm), g.ConstFloat(paretoLow), interior))
	// cos > 0 exactly when the dot product is (a zero gradient gives cos 0).
	wF = g.Where(g.Greater(fm, g.ConstFloat(0)), g.ConstFloat(0.5), gamma)
	one := g.ConstFloat(1)
	twoF, twoM := g.Mul(g.ConstFloat(2), wF), g.Mul(g.ConstFloat(2), g.Sub(one, wF))
	zero := g.ConstFloat(0)
	for _, p := range params {
		plain := g.Add(gradF[p.Name], gradM[p.Name])
		next := g.Add(g.Mul(gradF[p.Name], twoF), g.Mul(gradM[p.Name], twoM))
		plainSq := g.ReduceSum(g.Mul(plain, plain), false)
		nextSq := g.ReduceSum(g.Mul(next, next), false)
		// ‖plain‖/‖new‖ where it exceeds 1, else 1; a zero new gradient
		// stays zero (the reference's inf·0 would be NaN).
		ratio := g.Sqrt(g.Div(plainSq, nextSq))
		factor := g.Where(g.And(g.Greater(nextSq, zero), g.Greater(ratio, one)), ratio, one)
		grads[p.Name] = g.Mul(next, g.Mul(factor, g.ConstFloat(alpha)))
	}
	return cos, wF
}

func (mmpareto) Schedule(*compile.Manifest, Hyper) (Schedule, error) { return noSchedule{}, nil }
