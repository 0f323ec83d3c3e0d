package nn

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"bmc/graph"
)

// Coupling is one kind of block that joins the modalities' encoders between
// their stages (Greedy's MMTM): after every stage each modality's
// activations pass through the coupling, which sees all of them. Its
// parameters and buffers carry no modality tag (they are no encoder's).
type Coupling interface {
	// Layout lists the coupling's parameters and buffers for the modalities
	// (fusion order) whose stages give the channel widths widths[m][stage].
	Layout(names []string, widths [][]int64) ([]Param, []Buffer, error)
	// Forward couples the activations h[m] after stage `stage` (0-based):
	// images [B·T_m, C, H, W] of frames[m] frames per sample. It returns
	// them in the same shapes.
	Forward(c *Ctx, stage int, names []string, h []*graph.Value, frames []int64) ([]*graph.Value, error)
}

// stagedEncoder is an encoder whose trunk runs stage by stage, so that a
// coupling can sit between its stages. Forward is enter, every stage, then
// leave.
type stagedEncoder interface {
	Encoder
	// stageWidths are the channels after each stage.
	stageWidths() []int64
	// enter maps x [B, in...] to the first stage's input [B·T, C, H, W]
	// and gives T, the frames per sample.
	enter(c *Ctx, x *graph.Value) (*graph.Value, int64, error)
	// stage runs stage i.
	stage(c *Ctx, prefix string, i int, h *graph.Value) *graph.Value
	// leave pools the last stage's output to features [B, d].
	leave(c *Ctx, h *graph.Value, frames int64) *graph.Value
}

// couplingKinds maps each coupling kind to its constructor, which checks
// the kind's options.
func couplingKinds() map[string]func(Options) (Coupling, error) {
	return map[string]func(Options) (Coupling, error){
		CouplingMMTM: newMMTM,
	}
}

// CouplingKinds lists the available coupling kinds, sorted.
func CouplingKinds() []string {
	return slices.Sorted(maps.Keys(couplingKinds()))
}

// NewCoupling makes a coupling of a kind with its options.
func NewCoupling(kind string, opt Options) (Coupling, error) {
	f, ok := couplingKinds()[kind]
	if !ok {
		return nil, fmt.Errorf("coupling %q is not available (available: %s)", kind, strings.Join(CouplingKinds(), ", "))
	}
	return f(opt)
}

// addCoupling sets up the spec's coupling: every encoder must run in
// stages, all with as many stages; the coupling's tensors follow the
// fusion head's in the parameter table, as the reference's mmtm_layers
// follow its fusion_module.
func (m *Model) addCoupling() error {
	cp, err := NewCoupling(m.Spec.Coupling, m.Spec.CouplingOptions)
	if err != nil {
		return err
	}
	widths := make([][]int64, len(m.encoders))
	for i, enc := range m.encoders {
		mod := m.Spec.Modalities[i]
		st, ok := enc.(stagedEncoder)
		if !ok {
			return fmt.Errorf("coupling %s joins the encoders between their stages, but modality %s's encoder %s runs in one piece (encoders with stages: resnet18)", m.Spec.Coupling, mod.Name, mod.Encoder.Kind)
		}
		widths[i] = st.stageWidths()
	}
	params, buffers, err := cp.Layout(m.ModalityNames(), widths)
	if err != nil {
		return fmt.Errorf("coupling %s: %w", m.Spec.Coupling, err)
	}
	m.coupling = cp
	m.params = append(m.params, params...)
	m.buffers = append(m.buffers, buffers...)
	return nil
}

// coupledFeatures runs the staged encoders side by side with the coupling
// after every stage, and pools each modality's last stage to its features.
func (m *Model) coupledFeatures(c *Ctx, xs []*graph.Value) ([]*graph.Value, error) {
	g := c.G
	names := m.ModalityNames()
	n := len(xs)
	h := make([]*graph.Value, n)
	frames := make([]int64, n)
	encs := make([]stagedEncoder, n)
	scope := func(i int) func() { return g.Scope(strings.TrimSuffix(EncoderPrefix(names[i]), ".")) }
	for i := range xs {
		encs[i] = m.encoders[i].(stagedEncoder)
		pop := scope(i)
		var err error
		h[i], frames[i], err = encs[i].enter(c, xs[i])
		pop()
		if err != nil {
			return nil, fmt.Errorf("model forward: modality %s: %w", names[i], err)
		}
	}
	for stage := range len(encs[0].stageWidths()) {
		for i := range h {
			pop := scope(i)
			h[i] = encs[i].stage(c, EncoderPrefix(names[i]), stage, h[i])
			pop()
		}
		var err error
		if h, err = m.coupling.Forward(c, stage, names, h, frames); err != nil {
			return nil, fmt.Errorf("model forward: coupling %s after stage %d: %w", m.Spec.Coupling, stage+1, err)
		}
	}
	feats := make([]*graph.Value, n)
	for i := range h {
		pop := scope(i)
		feats[i] = encs[i].leave(c, h[i], frames[i])
		pop()
	}
	return feats, g.Err()
}

// CouplingMMTM is the multimodal transfer module (Joze et al. 2020) after
// every encoder stage, as Greedy (Wu et al. 2022; spec §4.4) uses it.
const CouplingMMTM = "mmtm"

// MMTMPrefix starts the names of the MMTM blocks' tensors; block k (1-based)
// is MMTMPrefix + "mmtm<k>.".
const MMTMPrefix = "mmtm_layers."

// MMTMCuration is the runtime input of training forwards that switches the
// blocks to curation mode: a [n] vector with 1 for the caring modality,
// whose gate is replaced by its running average, and 0 elsewhere; all zeros
// (the default) is the normal mode.
const MMTMCuration = "mmtm.curation"

// mmtm is one MMTM block per stage. For activations x_m [B, C_m, …]:
//
//	squeeze  s = [mean(x_1); …; mean(x_n)]     means over every non-channel
//	                                            axis (frames included), [B, ΣC_m]
//	excite   e = ReLU(fc_squeeze(s))           Linear(D → ⌊2D/ratio⌋)
//	gates    g_m = sigmoid(fc_excites.m(e))    Linear(· → C_m)
//	output   x_m ⊙ g_m, broadcast over the non-channel axes
//
// In training forwards the running average of each gate over the calls,
// r_m ← (mean_batch(g_m) + r_m·t)/(t + 1) with t the call count, is kept in
// buffers (running_avg_weight.m, step), and curation mode replaces the
// caring modality's gate by r_m, the updated average, for the whole batch.
// The reference's module has two modalities; with n the squeeze is over
// all n (D = ΣC_m) and each modality has its excitation.
type mmtm struct{ ratio int64 }

func newMMTM(opt Options) (Coupling, error) {
	if err := opt.Check("coupling "+CouplingMMTM, []string{"ratio"}, []string{"ratio"}); err != nil {
		return nil, err
	}
	return mmtm{ratio: opt.Int("ratio", 4)}, nil
}

// mmtmPrefix is block k's name prefix (stage 0-based).
func mmtmPrefix(stage int) string { return fmt.Sprintf("%smmtm%d.", MMTMPrefix, stage+1) }

// hidden is the excitation width ⌊2D/ratio⌋, int(2·D/ratio) in the reference.
func (b mmtm) hidden(d int64) int64 { return 2 * d / b.ratio }

func (b mmtm) Layout(names []string, widths [][]int64) ([]Param, []Buffer, error) {
	if len(names) < 2 {
		return nil, nil, fmt.Errorf("MMTM couples two or more modalities, the model has %d", len(names))
	}
	stages := len(widths[0])
	for i, w := range widths {
		if len(w) != stages {
			return nil, nil, fmt.Errorf("modality %s's encoder has %d stages, %s's has %d", names[i], len(w), names[0], stages)
		}
	}
	var params []Param
	var buffers []Buffer
	zero := Init{Kind: InitConstant}
	for k := range stages {
		var d int64
		for _, w := range widths {
			d += w[k]
		}
		h := b.hidden(d)
		if h < 1 {
			return nil, nil, fmt.Errorf("block %d: the excitation width ⌊2·%d/%d⌋ is 0", k+1, d, b.ratio)
		}
		p := mmtmPrefix(k)
		params = append(params, LinearParams(p+"fc_squeeze.", d, h)...)
		for i, m := range names {
			params = append(params, LinearParams(p+"fc_excites."+m+".", h, widths[i][k])...)
		}
		for i, m := range names {
			buffers = append(buffers, Buffer{Name: p + "running_avg_weight." + m, Shape: graph.Shape{widths[i][k]}, Init: zero})
		}
		buffers = append(buffers, Buffer{Name: p + "step", Shape: graph.Shape{1}, Init: zero})
	}
	return params, buffers, nil
}

func (b mmtm) Forward(c *Ctx, stage int, names []string, h []*graph.Value, frames []int64) ([]*graph.Value, error) {
	g := c.G
	p := mmtmPrefix(stage)
	pop := g.Scope(strings.TrimSuffix(p, "."))
	defer pop()
	n := len(h)
	squeezed := make([]*graph.Value, n)
	for i, x := range h {
		s := x.Shape()
		if s.Rank() != 4 {
			return nil, fmt.Errorf("modality %s: activations %v, want [B·T, C, H, W]", names[i], s)
		}
		if t := frames[i]; t == 1 {
			squeezed[i] = g.ReduceMean(x, false, 2, 3)
		} else {
			// Regroup the frames per sample: [B, T, C, H, W], mean over T, H, W.
			squeezed[i] = g.ReduceMean(g.Reshape(x, -1, t, s[1], s[2], s[3]), false, 1, 3, 4)
		}
	}
	excite := g.Relu(Linear(g, g.Concat(1, squeezed...), c.Param(p+"fc_squeeze.weight"), c.Param(p+"fc_squeeze.bias")))
	var curation, step, nextStep *graph.Value
	if c.Mode == Train {
		curation = c.Input(MMTMCuration, graph.Shape{int64(n)}, make([]float32, n), "MMTM curation mode: 1 for the caring modality, whose gates become their running averages; all 0 is the normal mode")
		step = c.Buffer(p + "step")
		nextStep = g.Add(step, g.ConstFloat(1))
	}
	out := make([]*graph.Value, n)
	for i, m := range names {
		gate := g.Sigmoid(Linear(g, excite, c.Param(p+"fc_excites."+m+".weight"), c.Param(p+"fc_excites."+m+".bias")))
		if c.Mode == Train {
			// r ← (mean_batch(g) + r·t)/(t + 1), never differentiated.
			key := p + "running_avg_weight." + m
			avg := g.StopGradient(g.Div(g.Add(g.ReduceMean(gate, false, 0), g.Mul(c.Buffer(key), step)), nextStep))
			c.UpdateBuffer(key, avg)
			// k·r + (1 − k)·g: the running average for the caring modality
			// (k = 1), the live gate otherwise (k = 0).
			k := g.Slice(curation, []int64{int64(i)}, []int64{int64(i + 1)}, nil, nil)
			gate = g.Add(g.Mul(k, avg), g.Mul(g.Sub(g.ConstFloat(1), k), gate))
		}
		x := h[i]
		s := x.Shape()
		if t := frames[i]; t == 1 {
			out[i] = g.Mul(x, g.Reshape(gate, -1, s[1], 1, 1))
		} else {
			grouped := g.Reshape(x, -1, t, s[1], s[2], s[3])
			out[i] = g.Reshape(g.Mul(grouped, g.Reshape(gate, -1, 1, s[1], 1, 1)), -1, s[1], s[2], s[3])
		}
	}
	if c.Mode == Train {
		c.UpdateBuffer(p+"step", nextStep)
	}
	return out, g.Err()
}
