package methods

import (
	"fmt"
	"math"

	"bmc/compile"
	"bmc/graph"
	"bmc/graph/nn"
)

// amco is AMCo (Zhou et al. 2023; spec §4.5). The model is the concat head
// followed by linear_star = Linear(C → C) on the sum of the unimodal logits
// (nn.FusionAMCo). Inside the modulation window every step trains on
// CE(z) + Σ_m CE(z_m), and the features of the modalities found dependent on
// the previous step are masked: a random mask with ⌊p·d_m⌋ of the d_m units
// zeroed and the rest scaled by 1/(1 − p) (10 once p is within 0.1 of 1),
// one vector for the whole batch, with p = sin(π/2·min(eps, l)/eps) and l
// growing by epoch/10 per step from 0 at every epoch's start. A modality is
// dependent for the next step when its share of the joint softmax over the
// concatenated unimodal logits [B, n·C], summed and divided by B, exceeds
// sigma.
//
// The reference runs n+1 backward passes (CE(z) with the graph retained,
// then each CE(z_m)); their gradients accumulate to the gradient of the
// sum, which bmc takes in one backward pass, and the FLOPs count that pass.
//
// AMCo masks the features of the dependent modality (the paper; the
// reference's earlier model masked its 512 feature units, U); the
// reference's current model masks its class logits z_m with ⌊p·C⌋ zeros
// and no rescaling, and its evaluation outputs Σ_m z_m, bypassing
// linear_star, which bmc keeps in the evaluated model as it was trained.
// compat=true restores both.
type amco struct{}

// amcoEntry is the registry row of the method.
func amcoEntry() entry { return entry{info: amcoInfo(), method: amco{}} }

func amcoInfo() Info {
	return Info{Name: "amco", Display: "AMCo", Category: CategoryFeedForward, Indicator: "performance score", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, NLP, Audio", Citation: "Zhou et al. 2023", Cost: "1F + (n+1)BW (bmc: 1F + 1BW of the summed loss)",
		Params: append([]Param{
			float("sigma", "0.5", "dependence threshold on a modality's probability mass").probability(),
			float("eps", "0.3", "mask ramp length").positive(),
			integer("U", "512", "the reference's feature-unit count (not read: the mask covers each dependent modality's d_m features)").atLeast(1),
			float("alpha", "0.1", "unused, as in the reference"),
			{Name: "compat", Default: "false", Kind: "bool", Doc: "the reference's literal AMCo: mask the class logits of dependent modalities, and evaluate without linear_star"},
		}, window("0")...)}
}

func (amco) Info() Info { return amcoInfo() }

func (amco) Model(spec nn.ModelSpec, hp Hyper) (nn.ModelSpec, error) {
	if err := requireModalities("amco", spec, 2, 3); err != nil {
		return spec, err
	}
	if spec.Fusion != nn.FusionConcat {
		return spec, fmt.Errorf("method amco builds on the concat head, the model has fusion %s", spec.Fusion)
	}
	spec.Fusion = nn.FusionAMCo
	spec.FusionOptions = nil
	if hp.Bool("compat") {
		spec.FusionOptions = nn.Options{"logit_mask": 1, "eval_skip_star": 1}
	}
	return spec, nil
}

const (
	amcoActive = "amco.active"
	amcoMass   = "amco.mass"
)

func (amco) Build(b *compile.Builder, hp Hyper) error {
	s := b.NewStep(TrainGraph, compile.RoleTrain, b.Config().BatchSize)
	out, err := s.Forward(nn.Train, nil)
	if err != nil {
		return err
	}
	g := s.G
	names := s.Model().ModalityNames()
	n := int64(len(names))
	classes := s.Model().Spec.Classes
	loss := compile.CrossEntropy(g, out.Logits, s.Labels)
	old := g.SetPhase(graph.PhaseMethod)
	pop := g.Scope("amco")
	active := s.Input(amcoActive, graph.Shape{1}, []float32{0}, "1 inside the modulation window (unimodal losses, masks), else 0")
	uni := make([]*graph.Value, n)
	terms := make([]*graph.Value, n)
	for i, m := range names {
		uni[i] = out.Unimodal[m]
		terms[i] = compile.CrossEntropy(g, uni[i], s.Labels)
	}
	total := g.Add(loss, g.Mul(g.ReduceSum(active, false), g.Sum(terms...)))
	// mass_m = Σ_i Σ_c softmax([z_1 … z_n]_i)[m·C + c] / B.
	joint := g.Reshape(g.Softmax(g.Concat(1, uni...), 1), -1, n, classes)
	batch := float32(b.Config().BatchSize)
	s.Metric(amcoMass, g.Div(g.ReduceSum(joint, false, 0, 2), g.ConstFloat(batch)))
	report := out
	if hp.Bool("compat") {
		// The reference's training predictions are Σ_m z_m, as its evaluation.
		report.Logits = g.Sum(uni...)
	}
	pop()
	g.SetPhase(old)
	grads, err := s.Gradients(total)
	if err != nil {
		return err
	}
	s.Optimize(grads)
	reportForward(s, report, total)
	return b.Add(s, 1)
}

func (amco) Schedule(m *compile.Manifest, hp Hyper) (Schedule, error) {
	model, err := nn.New(m.Model)
	if err != nil {
		return nil, err
	}
	sch := &amcoSchedule{
		win:   modulationWindow{input: amcoActive, starts: hp.Int("modulation_starts"), ends: hp.Int("modulation_ends")},
		sigma: hp.Float("sigma"), eps: hp.Float("eps"),
		dependent: make([]bool, len(model.ModalityNames())),
		blocks:    model.FeatureWidths(),
	}
	if hp.Bool("compat") {
		sch.blocks, sch.logitMask = []int64{model.Spec.Classes}, true
	}
	return sch, nil
}

// amcoSchedule sets the window, the dependent flags and the mask of every
// step. Its state (the dependent flags, l) restarts with every epoch, so a
// resumed run needs none of it.
type amcoSchedule struct {
	win        modulationWindow
	sigma, eps float64
	// blocks are the mask's parts: each modality's feature width, or the
	// class count for a class-logit mask.
	blocks    []int64
	logitMask bool
	dependent []bool
}

func (a *amcoSchedule) BeginEpoch(r Run) error {
	clear(a.dependent)
	return a.win.set(r)
}

// amcoRatio is p = sin(π/2·min(eps, l)/eps) at a step of an epoch, with
// l = step·epoch/10 (l grows by epoch/10 per step from 0).
func amcoRatio(eps float64, epoch, step int) float64 {
	l := float64(step) * float64(epoch) / 10
	return math.Sin(math.Pi / 2 * math.Min(eps, l) / eps)
}

func (a *amcoSchedule) BeforeStep(r Run) error {
	dep, err := r.Input(nn.AMCoDependent)
	if err != nil {
		return err
	}
	active := a.win.active(r.Epoch())
	for i, d := range a.dependent {
		dep[i] = 0
		if active && d {
			dep[i] = 1
		}
	}
	mask, err := r.Input(nn.AMCoMask)
	if err != nil {
		return err
	}
	p := amcoRatio(a.eps, r.Epoch(), r.Step())
	keep := float32(1)
	if !a.logitMask {
		// Kept feature units are rescaled, 10 when p is within 0.1 of 1 (the
		// reference's feature mask).
		keep = 10
		if math.Abs(p-1) > 0.1 {
			keep = float32(1 / (1 - p))
		}
	}
	rng := r.Rand(nn.AMCoMask)
	at := 0
	for _, k := range a.blocks {
		part := mask[at : at+int(k)]
		zeros := int(p * float64(k))
		for i := range part {
			part[i] = keep
			if i >= len(part)-zeros {
				part[i] = 0
			}
		}
		rng.Shuffle(len(part), func(i, j int) { part[i], part[j] = part[j], part[i] })
		at += int(k)
	}
	return nil
}

func (a *amcoSchedule) AfterStep(r Run) error {
	if !a.win.active(r.Epoch()) {
		return nil
	}
	mass, err := r.Metric(amcoMass)
	if err != nil {
		return err
	}
	for i := range a.dependent {
		a.dependent[i] = float64(mass[i]) > a.sigma
	}
	return nil
}
