package methods

import (
	"fmt"
	"math"

	"bmc/compile"
	"bmc/datasets"
	"bmc/graph"
	"bmc/graph/nn"
)

// mla is MLA (Zhang et al. 2024; spec §4.2): the modalities share one head,
// and each batch trains them in turn, one optimizer step per modality, on
// the modality's own loss CE(head(φ_m), y). Before each step the head
// weight's gradient is projected (GSPlugin): with r the batch mean of φ_m,
// k = P·rᵀ, P ← P − k·kᵀ/(α + r·k), P ← P/‖P‖_F and grad_W ← grad_W +
// grad_W·Pᵀ, where α = 0.1^{batch/batches + 1}. P (D × D, D the head's
// input width) and the count of steps taken are method state shared by the
// modalities' graphs; the first step of the run is not projected. Test-time
// fusion is the entropy gate of the shared head. Outside the modulation
// window an epoch trains jointly on CE of the fused logits instead.
//
// compat=true restores the reference's literal GSPlugin and gate: the
// denominator α + k·r is the outer product (D × D, elementwise) where the
// original OWM update has the scalar α + r·k, and H_max comes from the
// first two modalities only.
type mla struct{}

// mlaEntry is the registry row of the method.
func mlaEntry() entry { return entry{info: mlaInfo(), method: mla{}} }

func mlaInfo() Info {
	return Info{Name: "mla", Display: "MLA", Category: CategoryFeedForward, Indicator: "N/A", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, NLP, Audio", Citation: "Zhang et al. 2024", Cost: "n × (U + BW_m), n optimizer steps per batch",
		Params: append([]Param{
			{Name: "compat", Default: "false", Kind: "bool", Doc: "the reference's literal GSPlugin denominator α + k·r (outer product) and H_max from the first two modalities"},
		}, window("0")...)}
}

func (mla) Info() Info { return mlaInfo() }

func (mla) Model(spec nn.ModelSpec, hp Hyper) (nn.ModelSpec, error) {
	if err := requireModalities("mla", spec, 2, 3); err != nil {
		return spec, err
	}
	spec.Fusion = nn.FusionShared
	spec.FusionOptions = nn.Options{nn.SharedEntropyGate: 1}
	if hp.Bool("compat") {
		spec.FusionOptions[nn.SharedGateEntropies] = 2
	}
	return spec, nil
}

const (
	mlaProjection = "mla.projection"
	mlaExpCount   = "mla.exp_count"
	mlaAlpha      = "mla.alpha"
	// mlaJointGraph trains the epochs outside the modulation window.
	mlaJointGraph = TrainGraph
)

// mlaGraph is the step graph that trains modality m.
func mlaGraph(m string) string { return TrainGraph + "." + m }

func (mla) Build(b *compile.Builder, hp Hyper) error {
	if err := b.CountStepsPerParameter(); err != nil {
		return err
	}
	win := hpWindow(hp, "")
	inside := win.epochsIn(b.Config().Epochs)
	outside := b.Config().Epochs - inside
	steps := compile.Batches(b.Dataset().Sizes[datasets.Train], b.Config().BatchSize, true)
	for _, m := range b.Model().ModalityNames() {
		s, err := mlaStep(b, m, hp.Bool("compat"))
		if err != nil {
			return err
		}
		if outside == 0 {
			if err := b.Add(s, 1); err != nil {
				return err
			}
			continue
		}
		if err := b.Add(s, 0); err != nil {
			return err
		}
		b.AddRuns(compile.Run{Graph: s.G.Name, Per: compile.PerRun, Count: int64(inside) * steps, Extra: true,
			Note: fmt.Sprintf("step of modality %s in each batch of the %d epochs inside the modulation window", m, inside)})
	}
	if outside == 0 {
		return nil
	}
	s, out, loss, grads, err := ceStep(b)
	if err != nil {
		return err
	}
	s.Optimize(grads)
	reportForward(s, out, loss)
	return b.AddGraph(s, compile.Run{Per: compile.PerRun, Count: int64(outside) * steps, Extra: true,
		Note: fmt.Sprintf("joint step on the fused logits in each batch of the %d epochs outside the modulation window", outside)})
}

// mlaStep is modality m's step graph: its encoder and the shared head on
// CE(head(φ_m), y), the head weight's gradient projected.
func mlaStep(b *compile.Builder, m string, compat bool) (*compile.Step, error) {
	s := b.NewStep(mlaGraph(m), compile.RoleTrain, b.Config().BatchSize)
	g := s.G
	feat, z, err := s.ForwardModality(nn.Train, m)
	if err != nil {
		return nil, err
	}
	loss := compile.CrossEntropy(g, z, s.Labels)
	var params []nn.Param
	var width int64
	for _, p := range s.Model().Params() {
		if p.Modality == m || p.Name == nn.HeadWeight || p.Name == nn.HeadBias {
			params = append(params, p)
		}
		if p.Name == nn.HeadWeight {
			width = p.Shape[1]
		}
	}
	grads, err := s.GradientsOf(loss, params)
	if err != nil {
		return nil, err
	}
	old := g.SetPhase(graph.PhaseMethod)
	pop := g.Scope("mla")
	p := s.StateInit(mlaProjection, graph.Shape{width, width}, identity(width))
	count := s.State(mlaExpCount, graph.Shape{1})
	alpha := s.Input(mlaAlpha, graph.Shape{1}, []float32{0.1}, "0.1^(batch/batches + 1), set by the schedule before every step")
	// r: the batch mean of the detached features, zero-padded to the head's width.
	r := g.ReduceMean(g.StopGradient(feat), true, 0)
	if d := feat.Shape()[1]; d < width {
		r = g.Pad(r, 0, 0, 0, width-d)
	}
	k := g.MatMul(p, g.Transpose(r, 1, 0)) // [D, 1]
	denom := g.MatMul(r, k)                // [1, 1]
	if compat {
		denom = g.MatMul(k, r) // [D, D], divided elementwise
	}
	next := g.Sub(p, g.Div(g.MatMul(k, g.Transpose(k, 1, 0)), g.Add(alpha, denom)))
	next = g.Div(next, g.Sqrt(g.ReduceSum(g.Mul(next, next), false)))
	// The run's first step (count 0) is not projected and leaves P as it is.
	projected := g.Greater(count, g.ConstFloat(0))
	next = g.Where(projected, next, p)
	gw := grads[nn.HeadWeight]
	grads[nn.HeadWeight] = g.Where(projected, g.Add(gw, g.MatMul(gw, g.Transpose(next, 1, 0))), gw)
	s.Update(mlaProjection, next)
	s.Update(mlaExpCount, g.Add(count, g.ConstFloat(1)))
	pop()
	g.SetPhase(old)
	s.Optimize(grads)
	s.Metric("loss", g.Reshape(loss, 1))
	s.Metric("logits/"+m, z)
	return s, nil
}

// identity is the n × n identity matrix, row-major.
func identity(n int64) []float32 {
	out := make([]float32, n*n)
	for i := range n {
		out[i*n+i] = 1
	}
	return out
}

func (mla) Schedule(m *compile.Manifest, hp Hyper) (Schedule, error) {
	sch := &mlaSchedule{win: hpWindow(hp, ""), joint: []string{mlaJointGraph}}
	for _, name := range m.ModalityNames() {
		sch.modal = append(sch.modal, mlaGraph(name))
	}
	return sch, nil
}

// mlaSchedule picks each epoch's graphs (the modalities' steps inside the
// window, the joint step outside) and sets α before every step.
type mlaSchedule struct {
	noSchedule
	win          modulationWindow
	modal, joint []string
}

func (s *mlaSchedule) PlanEpoch(r Run) (EpochPlan, error) {
	if s.win.active(r.Epoch()) {
		return EpochPlan{{Graphs: s.modal}}, nil
	}
	return EpochPlan{{Graphs: s.joint}}, nil
}

// BeforeStep sets α = 0.1^{batch/batches + 1}, computed in float64 as the
// reference does in Python.
func (s *mlaSchedule) BeforeStep(r Run) error {
	if !s.win.active(r.Epoch()) {
		return nil
	}
	buf, err := r.Input(mlaAlpha)
	if err != nil {
		return err
	}
	buf[0] = float32(mlaAlphaAt(r.Step(), r.StepsPerEpoch()))
	return nil
}

// mlaAlphaAt is GSPlugin's α at batch b of an epoch of n batches.
func mlaAlphaAt(b, n int) float64 { return math.Pow(0.1, float64(b)/float64(n)+1) }

// hpWindow is the modulation window of the hyperparameters; its input (the
// 0/1 flag of methods that take one) may be empty.
func hpWindow(hp Hyper, input string) modulationWindow {
	return modulationWindow{input: input, starts: hp.Int("modulation_starts"), ends: hp.Int("modulation_ends")}
}

// epochsIn is the number of the first total epochs inside the window.
func (w modulationWindow) epochsIn(total int) int {
	n := 0
	for e := range total {
		if w.active(e) {
			n++
		}
	}
	return n
}
