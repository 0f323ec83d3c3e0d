package methods

import (
	"encoding/json"
	"fmt"
	"math"

	"bmc/compile"
	"bmc/datasets"
	"bmc/graph"
	"bmc/graph/nn"
)

// lfm is LFM (Yang et al. 2024; spec §4.12): the classification loss and an
// alignment loss between the modalities' predictions, mixed by learnt
// weights a = (a0, a1) with a0 + a1 = 1,
//
//	per step  L = 2·(a0·CE(z, y) + a1·L_al),  L_al = mean over modality pairs of JS(z_i, z_j),
//
// and once per epoch, before training, a1 takes one gradient step on a fixed
// batch (the first ⌊B/4⌋ samples of the validation split), clipped to
// [0.05, 0.95], with a learning rate halved at epochs 20, 40, ….
//
// The α-gradient is the paper's: a1 is learnt by bilevel optimisation (the
// classification loss after a training step on L_tot = a0·L_cls + a1·L_al),
// whose hypergradient through one unrolled step θ' = θ − ξ·∇L_tot is
// ξ·∇L_cls·(∇L_cls − ∇L_al); the inner step ξ is folded into lr_alpha. The
// mixed second derivative ∂²L_tot/∂a1∂θ is ∇L_al − ∇L_cls because L_tot is
// linear in a, so this needs two gradients and no double backward.
// compat=true computes what the reference computes instead: the mean, over
// the first parameter tensor only, of the Hessian-vector product
// ∂(∇L_tot·∇L_cls)/∂θ (∇L_cls held fixed), a double backward of the
// gradient graph; and its "JS" as ½[KL(m‖p) + KL(m‖q)] rather than the
// Jensen–Shannon divergence ½[KL(p‖m) + KL(q‖m)].
type lfm struct{}

// lfmEntry is the registry row of the method.
func lfmEntry() entry { return entry{info: lfmInfo(), method: lfm{}} }

func lfmInfo() Info {
	return Info{Name: "lfm", Display: "LFM", Category: CategoryObjective, Indicator: "N/A", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, NLP, Audio", Citation: "Yang et al. 2024", Cost: "1F + 1BW; per epoch the α-gradient on B/4 samples (2BW, or with compat an HVP)",
		Params: []Param{
			float("lr_alpha", "0.0001", "mixing-weight learning rate (halved at epochs 20, 40, …)").atLeast(0),
			float("a1_init", "0.05", "initial alignment weight a1, a0 = 1 − a1 (the original LFM code starts at 0.95)").in(lfmMinA1, lfmMaxA1),
			{Name: "compat", Default: "false", Kind: "bool", Doc: "the reference's literal LFM: \"JS\" as KL(m‖p) terms, α-gradient = mean of the Hessian-vector product over the first parameter tensor"},
		}}
}

func (lfm) Info() Info { return lfmInfo() }

func (lfm) Model(spec nn.ModelSpec, _ Hyper) (nn.ModelSpec, error) {
	if err := requireModalities("lfm", spec, 2, 3); err != nil {
		return spec, err
	}
	return spec, nil
}

// Names of LFM's graph, runtime input and metrics.
const (
	// LFMAlphaGraph is the per-epoch graph that computes the α-gradient on
	// the fixed validation batch.
	LFMAlphaGraph = "lfm.alpha_grad"
	lfmAlpha      = "lfm.alpha"
	lfmAlphaGrad  = "lfm.alpha_grad"
	lfmCE         = "lfm.ce"
	lfmAlign      = "lfm.align"
	lfmA1         = "lfm.a1"
	lfmMinA1      = 0.05
	lfmMaxA1      = 0.95
	// lfmHalvingPeriod: lr_alpha halves at every epoch that is a positive
	// multiple of it.
	lfmHalvingPeriod = 20
)

// LFMAlignment is LFM's alignment loss: the mean over modality pairs (i < j,
// in the given order) of the divergence between the softmaxes of their
// unimodal logits, each batch-averaged (sum over classes, divided by the
// batch). It is the Jensen–Shannon divergence ½[KL(p‖m) + KL(q‖m)] with
// m = (p + q)/2, or, literal, the reference's ½[KL(m‖p) + KL(m‖q)].
func LFMAlignment(g *graph.Graph, logits map[string]*graph.Value, names []string, literal bool) *graph.Value {
	pop := g.Scope("lfm_alignment")
	defer pop()
	logp := make([]*graph.Value, len(names))
	for i, m := range names {
		logp[i] = g.LogSoftmax(logits[m], -1)
	}
	var sum *graph.Value
	pairs := 0
	for i := range names {
		for j := i + 1; j < len(names); j++ {
			d := jsDivergence(g, logp[i], logp[j], literal)
			if sum == nil {
				sum = d
			} else {
				sum = g.Add(sum, d)
			}
			pairs++
		}
	}
	return g.Div(sum, g.ConstFloat(float32(pairs)))
}

// jsDivergence of two distributions given as log-probabilities [B, C].
// log m is formed in the log domain, log m = hi + log(exp(lp − hi) +
// exp(lq − hi)) − log 2 with hi = max(lp, lq), so that it stays finite
// where both probabilities underflow.
func jsDivergence(g *graph.Graph, lp, lq *graph.Value, literal bool) *graph.Value {
	hi := g.Where(g.Greater(lp, lq), lp, lq)
	lm := g.Sub(g.Add(hi, g.Log(g.Add(g.Exp(g.Sub(lp, hi)), g.Exp(g.Sub(lq, hi))))), g.ConstFloat(math.Ln2))
	// KL(a‖b) summed over the batch and classes: Σ exp(la)·(la − lb).
	kl := func(la, lb *graph.Value) *graph.Value { return g.ReduceSum(g.Mul(g.Exp(la), g.Sub(la, lb)), false) }
	var terms *graph.Value
	if literal {
		terms = g.Add(kl(lm, lp), kl(lm, lq))
	} else {
		terms = g.Add(kl(lp, lm), kl(lq, lm))
	}
	return g.Div(terms, g.ConstFloat(float32(2*lp.Shape()[0])))
}

// lfmLosses adds CE(z, y) (in the forward phase, as every method's), and
// in the method phase the alignment loss and L_tot = a0·CE + a1·L_al with a
// the [2] runtime input.
func lfmLosses(s *compile.Step, out nn.Outputs, hp Hyper) (ce, align, total *graph.Value) {
	g := s.G
	ce = compile.CrossEntropy(g, out.Logits, s.Labels)
	old := g.SetPhase(graph.PhaseMethod)
	defer g.SetPhase(old)
	align = LFMAlignment(g, out.Unimodal, s.Model().ModalityNames(), hp.Bool("compat"))
	a1 := hp.Float("a1_init")
	a := s.Input(lfmAlpha, graph.Shape{2}, []float32{float32(1 - a1), float32(a1)}, "mixing weights (a0, a1) of CE and the alignment loss, set by the schedule each epoch")
	parts := g.Split(a, 0, 1, 1)
	total = g.Add(g.Mul(parts[0], g.Reshape(ce, 1)), g.Mul(parts[1], g.Reshape(align, 1)))
	s.Metric(lfmCE, g.Reshape(ce, 1))
	s.Metric(lfmAlign, g.Reshape(align, 1))
	s.Metric(lfmA1, g.Identity(parts[1]))
	return ce, align, total
}

func (lfm) Build(b *compile.Builder, hp Hyper) error {
	literal := hp.Bool("compat")
	s := b.NewStep(TrainGraph, compile.RoleTrain, b.Config().BatchSize)
	out, err := s.Forward(nn.Train, nil)
	if err != nil {
		return err
	}
	_, _, total := lfmLosses(s, out, hp)
	loss := s.G.Mul(total, s.G.ConstFloat(2))
	if err := addLossStep(b, s, out, loss); err != nil {
		return err
	}

	batch, err := lfmBatch(b)
	if err != nil {
		return err
	}
	a, err := lfmAlphaStep(b, batch, hp)
	if err != nil {
		return err
	}
	what := "the α-gradient (∇L_cls and ∇L_al)"
	if literal {
		what = "the Hessian-vector product of the α-gradient"
	}
	return b.AddGraph(a, compile.Run{Per: compile.PerEpoch, Count: 1, Extra: true,
		Note: fmt.Sprintf("LFM: %s on the first %d validation samples", what, batch)})
}

// lfmBatch is the size of the fixed batch: a quarter of the first
// validation batch (the training batch size, or the whole validation split
// when it is smaller), rounded down.
func lfmBatch(b *compile.Builder) (int, error) {
	split := datasets.Val
	if b.Config().Protocol == "balancemm" {
		split = datasets.Test
	}
	n := b.Dataset().Sizes[split]
	first := min(b.Config().BatchSize, n)
	if first/4 < 1 {
		return 0, fmt.Errorf("method lfm: its α-gradient batch is a quarter of the first validation batch, ⌊min(batch size %d, %d %s samples)/4⌋ = 0; use a batch size and a %s split of at least 4", b.Config().BatchSize, n, split, split)
	}
	return first / 4, nil
}

// lfmAlphaStep builds the graph that outputs the α-gradient on one batch of
// the given size: the train-mode forward (which, like the reference's, also
// updates the batch-norm statistics), the losses and ∇L_cls, then the
// hypergradient ∇L_cls·(∇L_cls − ∇L_al) from ∇L_al's own backward, or,
// literally, ∇L_tot and the mean over the first parameter tensor of
// ∂(∇L_tot·∇L_cls)/∂θ with ∇L_cls held fixed (the gradient graph
// differentiated again).
func lfmAlphaStep(b *compile.Builder, batch int, hp Hyper) (*compile.Step, error) {
	s := b.NewStep(LFMAlphaGraph, compile.RoleAux, batch)
	g := s.G
	out, err := s.Forward(nn.Train, nil)
	if err != nil {
		return nil, err
	}
	ce, align, total := lfmLosses(s, out, hp)
	params := s.Model().Params()
	gradCls, err := s.Gradients(ce)
	if err != nil {
		return nil, err
	}
	old := g.SetPhase(graph.PhaseMethod)
	defer g.SetPhase(old)
	dot := func(x, y map[string]*graph.Value) *graph.Value {
		var sum *graph.Value
		for _, p := range params {
			d := g.ReduceSum(g.Mul(x[p.Name], y[p.Name]), false)
			if sum == nil {
				sum = d
			} else {
				sum = g.Add(sum, d)
			}
		}
		return sum
	}
	var alphaGrad *graph.Value
	if hp.Bool("compat") {
		gradTot, err := s.Gradients(total)
		if err != nil {
			return nil, err
		}
		fixed := map[string]*graph.Value{}
		for name, v := range gradCls {
			fixed[name] = g.StopGradient(v)
		}
		first := params[0]
		h, err := s.GradientsOf(dot(gradTot, fixed), params[:1])
		if err != nil {
			return nil, fmt.Errorf("method lfm: the Hessian-vector product (a second derivative of the model): %w", err)
		}
		alphaGrad = g.ReduceMean(h[first.Name], false)
	} else {
		gradAlign, err := s.GradientsOf(align, params)
		if err != nil {
			return nil, err
		}
		diff := map[string]*graph.Value{}
		for _, p := range params {
			diff[p.Name] = g.Sub(gradCls[p.Name], gradAlign[p.Name])
		}
		alphaGrad = dot(gradCls, diff)
	}
	s.Metric(lfmAlphaGrad, g.Reshape(alphaGrad, 1))
	return s, nil
}

func (lfm) Schedule(_ *compile.Manifest, hp Hyper) (Schedule, error) {
	return &lfmSchedule{A1: hp.Float("a1_init"), LRAlpha: hp.Float("lr_alpha")}, nil
}

// lfmSchedule holds the mixing weight and its learning rate across epochs.
type lfmSchedule struct {
	noSchedule
	// A1 is the alignment weight a1 (a0 = 1 − a1); LRAlpha the current
	// learning rate of a1.
	A1, LRAlpha float64
	// Grad is the last α-gradient, for the log.
	Grad float64
}

// BeginEpoch updates a1 before the epoch trains: lr_alpha halves at epochs
// 20, 40, …; the α-gradient graph runs on the fixed batch (the first
// samples of the validation split, the same every epoch) at the current a;
// a1 ← clip(a1 − lr_alpha·gradient, 0.05, 0.95). The epoch's steps then read
// the new a.
func (l *lfmSchedule) BeginEpoch(r Run) error {
	if e := r.Epoch(); e != 0 && e%lfmHalvingPeriod == 0 {
		l.LRAlpha /= 2
	}
	gi, ok := r.Manifest().Graph(LFMAlphaGraph)
	if !ok {
		return fmt.Errorf("method lfm: the plan has no %s graph", LFMAlphaGraph)
	}
	var batch int
	for _, io := range gi.Inputs {
		if io.Kind == compile.IOLabel {
			batch = int(io.Shape[0])
		}
	}
	samples := make([]int, batch)
	for i := range samples {
		samples[i] = i
	}
	if err := l.setAlpha(r); err != nil {
		return err
	}
	runs := 0
	err := r.Pass(PassOptions{Graphs: []string{LFMAlphaGraph}, Split: datasets.Val, Samples: samples, DropLast: true, Purpose: "lfm.alpha"},
		func(b PassBatch) error {
			v, err := b.Metric(LFMAlphaGraph, lfmAlphaGrad)
			if err != nil {
				return err
			}
			l.Grad = float64(v[0])
			runs++
			return nil
		})
	if err != nil {
		return fmt.Errorf("method lfm: α-gradient: %w", err)
	}
	if runs != 1 {
		return fmt.Errorf("method lfm: the α-gradient pass ran %d batches, want 1 (of %d validation samples)", runs, batch)
	}
	l.A1 = min(max(l.A1-l.LRAlpha*l.Grad, lfmMinA1), lfmMaxA1)
	return l.setAlpha(r)
}

// setAlpha writes (a0, a1) into the runtime input both graphs read.
func (l *lfmSchedule) setAlpha(r Run) error {
	buf, err := r.Input(lfmAlpha)
	if err != nil {
		return err
	}
	buf[0], buf[1] = float32(1-l.A1), float32(l.A1)
	return nil
}

// MarshalState stores a1, lr_alpha and the last gradient; JSON writes
// float64s so that they parse back to the same bits.
func (l *lfmSchedule) MarshalState() ([]byte, error) { return json.Marshal(l) }

// UnmarshalState restores what MarshalState stored.
func (l *lfmSchedule) UnmarshalState(data []byte) error {
	var s lfmSchedule
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("method lfm: schedule state: %w", err)
	}
	*l = s
	return nil
}
