package methods

import (
	"bmc/compile"
	"bmc/graph"
	"bmc/graph/nn"
)

// opm is OPM (Wei et al. 2025; spec §4.3). Each step scores every modality
// on the batch, s_m = Σ_i softmax(z_m)_i[y_i], forms the ratio
// ρ_m = tanh(relu(s_m/(Σ_{k≠m} s_k + 1e-5) − 1)) and the drop probability
// q_m = clip(q_base·(1 + α·ρ_m), 0, 1) where ρ_m > 0, else 0. With
// probability p_exe the step drops features: per sample and modality a
// Bernoulli(1 − q_m) keep mask, φ_m ← mask·φ_m/(1 − θ + 1e-5) with
// θ = Σ d_m q_m/Σ d_m, and samples whose every modality is dropped leave the
// loss. The fused logits are recomputed from the dropped features with the
// model's head, and the loss is their cross-entropy over the kept samples.
//
// Shapes are static: the Bernoulli masks come from uniform noise [B, n] and
// the p_exe coin from a flag, both inputs the schedule draws from the run's
// random stream, and a removed sample gets weight 0 in the mean (a batch
// with no sample left has loss 0; the reference's mean over nothing is
// NaN). The drop probabilities are detached: the reference lets the loss
// differentiate θ through the scores, which compat=true restores.
type opm struct{}

// opmEntry is the registry row of the method.
func opmEntry() entry { return entry{info: opmInfo(), method: opm{}} }

func opmInfo() Info {
	return Info{Name: "opm", Display: "OPM", Category: CategoryFeedForward, Indicator: "performance score", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, NLP, Audio", Citation: "Wei et al. 2025", Cost: "1F + 1BW",
		Params: append([]Param{
			float("alpha", "0.5", "drop-rate scale").atLeast(0),
			float("p_exe", "0.7", "probability of dropping in a step").probability(),
			float("q_base", "0.4", "base drop probability").probability(),
			{Name: "compat", Default: "false", Kind: "bool", Doc: "the reference's literal OPM: the loss differentiates θ (the rescaling) through the scores"},
		}, window("0")...)}
}

func (opm) Info() Info { return opmInfo() }

func (opm) Model(spec nn.ModelSpec, _ Hyper) (nn.ModelSpec, error) {
	if err := requireModalities("opm", spec, 2, 3); err != nil {
		return spec, err
	}
	return spec, nil
}

// The runtime inputs the schedule sets before every step.
const (
	opmExecute = "opm.execute"
	opmNoise   = "opm.noise"
)

func (opm) Build(b *compile.Builder, hp Hyper) error {
	batch := b.Config().BatchSize
	s := b.NewStep(TrainGraph, compile.RoleTrain, batch)
	out, err := s.Forward(nn.Train, nil)
	if err != nil {
		return err
	}
	g := s.G
	model := s.Model()
	names := model.ModalityNames()
	n := len(names)
	old := g.SetPhase(graph.PhaseMethod)
	pop := g.Scope("opm")
	onehot := g.OneHot(s.Labels, model.Spec.Classes)
	scores := make([]*graph.Value, n)
	for i, m := range names {
		scores[i] = g.ReduceSum(g.Mul(g.Softmax(out.Unimodal[m], 1), onehot), false)
		s.Metric("opm.score/"+m, g.Reshape(scores[i], 1))
	}
	zero, one := g.ConstFloat(0), g.ConstFloat(1)
	qBase, alpha := g.ConstFloat(float32(hp.Float("q_base"))), g.ConstFloat(float32(hp.Float("alpha")))
	widths := model.FeatureWidths()
	var dSum int64
	for _, d := range widths {
		dSum += d
	}
	q := make([]*graph.Value, n)
	var weighted []*graph.Value
	for i, m := range names {
		var others []*graph.Value
		for k := range names {
			if k != i {
				others = append(others, scores[k])
			}
		}
		rho := g.Tanh(g.Relu(g.Sub(g.Div(scores[i], g.Add(g.Sum(others...), g.ConstFloat(1e-5))), one)))
		q[i] = g.Where(g.Greater(rho, zero), g.Clip(g.Mul(qBase, g.Add(one, g.Mul(alpha, rho))), zero, one), zero)
		if !hp.Bool("compat") {
			q[i] = g.StopGradient(q[i])
		}
		s.Metric("opm.q/"+m, g.Reshape(q[i], 1))
		weighted = append(weighted, g.Mul(q[i], g.ConstFloat(float32(widths[i]))))
	}
	theta := g.Div(g.Sum(weighted...), g.ConstFloat(float32(dSum)))
	s.Metric("opm.theta", g.Reshape(theta, 1))
	scale := g.Reciprocal(g.Add(g.Sub(one, theta), g.ConstFloat(1e-5)))
	exec := s.Input(opmExecute, graph.Shape{1}, []float32{0}, "1 when the step drops features (the p_exe coin, inside the modulation window), else 0")
	noise := s.Input(opmNoise, graph.Shape{int64(batch), int64(n)}, nil, "uniform [0, 1) noise per sample and modality: a feature is kept where it is below 1 − q_m")
	columns := g.Split(noise, 1, onesOf(n)...)
	dropped := map[string]*graph.Value{}
	kept := make([]*graph.Value, n)
	for i, m := range names {
		kept[i] = g.Cast(g.Less(columns[i], g.Sub(one, q[i])), graph.Float32) // [B, 1]
		// 1 + exec·(keep·scale − 1): the dropped and rescaled feature when
		// the step drops, the feature itself when it does not.
		factor := g.Add(one, g.Mul(exec, g.Sub(g.Mul(kept[i], scale), one)))
		dropped[m] = g.Mul(out.Features[m], factor)
	}
	// A sample stays unless the step drops and every modality is masked.
	anyKept := g.ReduceMax(g.Concat(1, kept...), false, 1) // [B]
	weight := g.Sub(one, g.Mul(exec, g.Sub(one, anyKept)))
	total := g.ReduceSum(weight, false)
	s.Metric("opm.kept", g.Reshape(total, 1))
	fused, err := model.Fuse(g, nn.Bindings{Params: s.Params, Buffers: s.Buffers}, dropped, nn.Train)
	if err != nil {
		return err
	}
	ce := compile.CrossEntropyPerSample(g, fused.Logits, s.Labels)
	loss := g.Div(g.ReduceSum(g.Mul(weight, ce), false), g.Max(total, one))
	pop()
	g.SetPhase(old)
	// The training accuracy is the undropped model's, as in the reference.
	return addLossStep(b, s, out, loss)
}

func (opm) Schedule(_ *compile.Manifest, hp Hyper) (Schedule, error) {
	return opmSchedule{win: modulationWindow{starts: hp.Int("modulation_starts"), ends: hp.Int("modulation_ends")}, pExe: hp.Float("p_exe")}, nil
}

// opmSchedule draws, before every step, the p_exe coin (dropping only
// inside the modulation window) and the uniform noise of the Bernoulli
// masks, each from its own stream of the run.
type opmSchedule struct {
	noSchedule
	win  modulationWindow
	pExe float64
}

func (o opmSchedule) BeforeStep(r Run) error {
	exec, err := r.Input(opmExecute)
	if err != nil {
		return err
	}
	exec[0] = 0
	if o.win.active(r.Epoch()) && r.Rand(opmExecute).Float64() >= 1-o.pExe {
		exec[0] = 1
	}
	noise, err := r.Input(opmNoise)
	if err != nil {
		return err
	}
	rng := r.Rand(opmNoise)
	for i := range noise {
		noise[i] = rng.Float32()
	}
	return nil
}
