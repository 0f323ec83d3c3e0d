package methods

import (
	"bmc/compile"
	"bmc/graph"
	"bmc/graph/nn"
)

// ogm is OGM / OGM-GE (Peng et al. 2022; spec §4.13): after the backward
// pass, the gradients of the dominant modality's encoder weights are scaled
// down by k_m = 1 − tanh(α·relu(ρ_m)) where its score ratio ρ_m exceeds 1,
// and OGM-GE adds Gaussian noise with the gradient's own standard deviation
// to every modality's encoder weights. Both act only inside the modulation
// window. Everything but the noise is computed inside the step graph; the
// schedule switches the window and draws the noise.
type ogm struct{}

// ogmEntry is the registry row of the method.
func ogmEntry() entry { return entry{info: ogmInfo(), method: ogm{}} }

func ogmInfo() Info {
	return Info{Name: "ogm", Display: "OGM", Category: CategoryOptimization, Indicator: "performance score", PaperModalities: 2, MaxModalities: 3,
		Domains: "CV, Audio", Citation: "Peng et al. 2022b", Cost: "1F + 1BW (+ noise)",
		Params: append([]Param{
			float("alpha", "0.3", "modulation strength α").atLeast(0),
			{Name: "method", Default: "OGM_GE", Kind: "choice", Choices: []string{"OGM_GE", "OGM", "OGM_GE3"}, Doc: "OGM_GE adds noise; OGM_GE3 uses the mean pairwise ratio for 3 modalities"},
			{Name: "compat", Default: "false", Kind: "bool", Doc: "3 modalities: apply cos() to the logits before the score, as the reference does"},
		}, window("10")...)}
}

func (ogm) Info() Info { return ogmInfo() }

func (ogm) Model(spec nn.ModelSpec, _ Hyper) (nn.ModelSpec, error) {
	if err := requireModalities("ogm", spec, 2, 3); err != nil {
		return spec, err
	}
	return spec, nil
}

const (
	ogmActive     = "ogm.active"
	ogmNoisePrefx = "ogm.noise/"
)

func (ogm) Build(b *compile.Builder, hp Hyper) error {
	s, out, loss, grads, err := ceStep(b)
	if err != nil {
		return err
	}
	g := s.G
	old := g.SetPhase(graph.PhaseMethod)
	pop := g.Scope("ogm")
	names := s.Model().ModalityNames()
	onehot := g.OneHot(s.Labels, s.Model().Spec.Classes)
	n := len(names)
	method := hp.String("method")
	scores := map[string]*graph.Value{}
	for _, m := range names {
		z := out.Unimodal[m]
		if n == 3 && method != "OGM_GE3" && hp.Bool("compat") {
			z = g.Cos(z)
		}
		p := g.Mul(g.Softmax(z, 1), onehot)
		if n == 3 && method != "OGM_GE3" {
			// Only the samples modality m classifies correctly count.
			correct := g.Cast(g.Equal(g.ArgMax(out.Unimodal[m], 1, true), g.Unsqueeze(s.Labels, 1)), graph.Float32)
			p = g.Mul(p, correct)
		}
		scores[m] = g.ReduceSum(p, false)
	}
	eps := g.ConstFloat(1e-5)
	ratio := map[string]*graph.Value{}
	for _, m := range names {
		switch {
		case n == 2:
			other := names[0]
			if other == m {
				other = names[1]
			}
			ratio[m] = g.Div(scores[m], g.Add(scores[other], eps))
		case method == "OGM_GE3":
			var terms []*graph.Value
			for _, o := range names {
				if o != m {
					terms = append(terms, g.Div(scores[m], g.Add(scores[o], eps)))
				}
			}
			ratio[m] = g.Div(g.Sum(terms...), g.ConstFloat(float32(len(terms))))
		default:
			all := make([]*graph.Value, 0, n)
			for _, o := range names {
				all = append(all, scores[o])
			}
			ratio[m] = g.Div(scores[m], g.Add(g.Min(all...), eps))
		}
	}
	active := s.Input(ogmActive, graph.Shape{1}, []float32{0}, "1 inside the modulation window, else 0")
	one := g.ConstFloat(1)
	alpha := g.ConstFloat(float32(hp.Float("alpha")))
	coef := map[string]*graph.Value{}
	for _, m := range names {
		k := g.Where(g.Greater(ratio[m], one), g.Sub(one, g.Tanh(g.Mul(alpha, g.Relu(ratio[m])))), one)
		s.Metric("ogm.coef/"+m, g.Reshape(k, 1))
		s.Metric("ogm.score/"+m, g.Reshape(scores[m], 1))
		// Outside the window the coefficient is 1: k_eff = 1 + active·(k − 1).
		coef[m] = g.Add(one, g.Mul(active, g.Sub(k, one)))
	}
	params := s.Model().Params()
	original := map[string]*graph.Value{}
	for name, v := range grads {
		original[name] = v
	}
	scaleModalityGrads(g, params, grads, coef)
	if method != "OGM" {
		addGradientNoise(s, original, grads, active, ogmNoisePrefx, false)
	}
	pop()
	g.SetPhase(old)
	s.Optimize(grads)
	reportForward(s, out, loss)
	return b.Add(s, 1)
}

func (ogm) Schedule(m *compile.Manifest, hp Hyper) (Schedule, error) {
	sch := &ogmSchedule{win: modulationWindow{input: ogmActive, starts: hp.Int("modulation_starts"), ends: hp.Int("modulation_ends")}}
	if hp.String("method") != "OGM" {
		sch.noise = inputsWithPrefix(m, ogmNoisePrefx)
	}
	return sch, nil
}

type ogmSchedule struct {
	win   modulationWindow
	noise []string
}

func (o *ogmSchedule) BeginEpoch(r Run) error { return o.win.set(r) }

// BeforeStep draws the OGM-GE noise for the step (inside the window only;
// outside, the graph multiplies it by 0).
func (o *ogmSchedule) BeforeStep(r Run) error {
	if !o.win.active(r.Epoch()) {
		return nil
	}
	return drawNormals(r, o.noise)
}

func (o *ogmSchedule) AfterStep(Run) error { return nil }
