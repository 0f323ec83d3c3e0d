package methods

import (
	"fmt"
	"slices"

	"bmc/compile"
	"bmc/datasets"
	"bmc/graph"
	"bmc/graph/nn"
)

// reconboost is ReconBoost (Hua et al. 2024; spec §4.17). The modalities
// share one head, f_m = head(φ_m), and the ensemble is boost_rate·Σ_m f_m
// with a learnable boost rate. Each epoch boosts the modalities in turn:
// for modality m, T_epochs passes over the training set of the boosting
// step (phase 1), whose loss, with P = f_m, Q = boost_rate·Σ_{k≠m} f_k held
// constant and t the one-hot labels, is
//
//	mean_i [−w1·mean_c(t·log softmax(P)) + w2·mean_c(t·softmax(Q)·log softmax(P))]
//	  + alpha·MSE(softmax(P), softmax(f_pre))   (from the second epoch on)
//
// with f_pre the previous modality's (cyclic) logits held constant; only
// encoder m and the head learn. T_epochs passes of global rectification
// (phase 2, CE of the ensemble, every parameter including the boost rate)
// follow. Every pass is a phase of the epoch's plan with its own shuffle.
// Outside the modulation window an epoch is one pass of phase 2.
//
// compat=true detaches softmax(P) in the GA term as the reference does,
// which leaves the term without gradient.
type reconboost struct{}

// reconboostEntry is the registry row of the method.
func reconboostEntry() entry { return entry{info: reconboostInfo(), method: reconboost{}} }

func reconboostInfo() Info {
	return Info{Name: "reconboost", Display: "ReconBoost", Category: CategoryOptimization, Indicator: "classification loss", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, NLP, Audio", Citation: "Hua et al. 2024", Cost: "per epoch 2·n·T passes (boosting and rectification)",
		Params: append([]Param{
			float("alpha", "0.5", "GA weight").atLeast(0),
			integer("T_epochs", "1", "passes per phase").atLeast(1),
			float("weight1", "5", "boosting weight").atLeast(0),
			float("weight2", "1", "reconcilement weight").atLeast(0),
			{Name: "compat", Default: "false", Kind: "bool", Doc: "the reference's GA term, detached on both sides (no gradient)"},
		}, window("0")...)}
}

func (reconboost) Info() Info { return reconboostInfo() }

// reconboostInitialRate is the boost rate's initial value (spec §2.4).
const reconboostInitialRate = 0.01

func (reconboost) Model(spec nn.ModelSpec, _ Hyper) (nn.ModelSpec, error) {
	if err := requireModalities("reconboost", spec, 2, 3); err != nil {
		return spec, err
	}
	spec.Fusion = nn.FusionShared
	spec.FusionOptions = nn.Options{nn.SharedBoostRate: reconboostInitialRate}
	return spec, nil
}

const (
	// reconboostRectify is the global rectification step (phase 2).
	reconboostRectify = "rectify"
	// reconboostGA is 1 from the second epoch on, when the GA term counts.
	reconboostGA = "reconboost.ga"
)

// reconboostBoost is the boosting step of modality m (phase 1).
func reconboostBoost(m string) string { return "boost." + m }

func (reconboost) Build(b *compile.Builder, hp Hyper) error {
	if err := b.CountStepsPerParameter(); err != nil {
		return err
	}
	names := b.Model().ModalityNames()
	n := int64(len(names))
	passes := int64(hp.Int("T_epochs"))
	steps := compile.Batches(b.Dataset().Sizes[datasets.Train], b.Config().BatchSize, true)
	inside := int64(hpWindow(hp, "").epochsIn(b.Config().Epochs))
	outside := int64(b.Config().Epochs) - inside
	// The passes an epoch makes: per epoch when every epoch is inside the
	// window, else totals over the run.
	runs := func(graph string, perEpoch, outsideEpoch int64, note string) compile.Run {
		if outside == 0 {
			return compile.Run{Graph: graph, Per: compile.PerEpoch, Count: perEpoch * steps, Note: note, Extra: true}
		}
		return compile.Run{Graph: graph, Per: compile.PerRun, Count: (inside*perEpoch + outside*outsideEpoch) * steps, Note: note, Extra: true}
	}
	for i, m := range names {
		pre := names[(i+len(names)-1)%len(names)]
		s, err := reconboostBoostStep(b, m, pre, hp)
		if err != nil {
			return err
		}
		if err := b.AddGraph(s, runs("", passes, 0, fmt.Sprintf("boosting passes of modality %s (T_epochs=%d per epoch)", m, passes))); err != nil {
			return err
		}
	}
	s, out, loss, grads, err := ceStepNamed(b, reconboostRectify)
	if err != nil {
		return err
	}
	s.Optimize(grads)
	reportForward(s, out, loss)
	// Its runs all follow the epoch plans, none the default per-step count.
	if err := b.Add(s, 0); err != nil {
		return err
	}
	note := fmt.Sprintf("rectification passes (n·T_epochs=%d per epoch)", n*passes)
	if outside > 0 {
		note = fmt.Sprintf("rectification passes (n·T_epochs=%d per epoch inside the modulation window, 1 outside)", n*passes)
	}
	b.AddRuns(runs(reconboostRectify, n*passes, 1, note))
	return nil
}

// reconboostBoostStep is modality m's boosting step; pre is the previous
// modality, whose logits the GA term follows.
func reconboostBoostStep(b *compile.Builder, m, pre string, hp Hyper) (*compile.Step, error) {
	s := b.NewStep(reconboostBoost(m), compile.RoleTrain, b.Config().BatchSize)
	g := s.G
	out, err := s.Forward(nn.Train, nil)
	if err != nil {
		return nil, err
	}
	old := g.SetPhase(graph.PhaseMethod)
	pop := g.Scope("reconboost")
	classes := s.Model().Spec.Classes
	c := func(v float64) *graph.Value { return g.ConstFloat(float32(v)) }
	var others []*graph.Value
	for _, k := range s.Model().ModalityNames() {
		if k != m {
			others = append(others, out.Unimodal[k])
		}
	}
	q := g.StopGradient(g.Mul(s.Params[nn.BoostRateParam], g.Sum(others...)))
	logp := g.LogSoftmax(out.Unimodal[m], 1)
	t := g.OneHot(s.Labels, classes)
	// mean_c(t·log p) and mean_c(t·softmax(Q)·log p), per sample.
	fit := g.ReduceMean(g.Mul(t, logp), false, 1)
	rec := g.ReduceMean(g.Mul(g.Mul(t, g.Softmax(q, 1)), logp), false, 1)
	boosting := g.ReduceMean(g.Add(g.Mul(c(-hp.Float("weight1")), fit), g.Mul(c(hp.Float("weight2")), rec)), false)
	p := g.Softmax(out.Unimodal[m], 1)
	if hp.Bool("compat") {
		p = g.StopGradient(p)
	}
	diff := g.Sub(p, g.StopGradient(g.Softmax(out.Unimodal[pre], 1)))
	ga := g.ReduceMean(g.Mul(diff, diff), false)
	on := g.ReduceSum(s.Input(reconboostGA, graph.Shape{1}, []float32{0}, "1 from the second epoch on, when the GA term counts"), false)
	loss := g.Add(boosting, g.Mul(g.Mul(c(hp.Float("alpha")), on), ga))
	pop()
	g.SetPhase(old)
	var params []nn.Param
	for _, p := range s.Model().Params() {
		if p.Modality == m || p.Name == nn.HeadWeight || p.Name == nn.HeadBias {
			params = append(params, p)
		}
	}
	grads, err := s.GradientsOf(loss, params)
	if err != nil {
		return nil, err
	}
	s.Optimize(grads)
	// The boosting loss is not the CE the other steps report as "loss".
	s.Metric("reconboost.boost_loss", g.Reshape(loss, 1))
	s.Metric("reconboost.ga_loss", g.Reshape(ga, 1))
	s.Metric("logits/"+m, out.Unimodal[m])
	return s, nil
}

func (reconboost) Schedule(m *compile.Manifest, hp Hyper) (Schedule, error) {
	sch := &reconboostSchedule{win: hpWindow(hp, ""), passes: hp.Int("T_epochs")}
	for _, name := range m.ModalityNames() {
		sch.boost = append(sch.boost, reconboostBoost(name))
	}
	if !slices.Contains(m.StepGraphs, reconboostRectify) {
		return nil, fmt.Errorf("plan %s has no %s graph", m.Method, reconboostRectify)
	}
	return sch, nil
}

// reconboostSchedule plans each epoch's passes and switches the GA term on
// from the second epoch.
type reconboostSchedule struct {
	noSchedule
	win    modulationWindow
	passes int
	boost  []string
}

func (s *reconboostSchedule) BeginEpoch(r Run) error {
	buf, err := r.Input(reconboostGA)
	if err != nil {
		return err
	}
	buf[0] = 0
	if r.Epoch() >= 1 {
		buf[0] = 1
	}
	return nil
}

// PlanEpoch lists the epoch's passes: for every modality, T_epochs of its
// boosting step, then T_epochs of rectification; each pass is a phase with
// a fresh shuffle of the training split.
func (s *reconboostSchedule) PlanEpoch(r Run) (EpochPlan, error) {
	rectify := Phase{Graphs: []string{reconboostRectify}}
	if !s.win.active(r.Epoch()) {
		return EpochPlan{rectify}, nil
	}
	var plan EpochPlan
	for _, g := range s.boost {
		for range s.passes {
			plan = append(plan, Phase{Graphs: []string{g}})
		}
		for range s.passes {
			plan = append(plan, rectify)
		}
	}
	return plan, nil
}
