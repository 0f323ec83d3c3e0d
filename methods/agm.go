package methods

import (
	"fmt"
	"math/bits"

	"bmc/compile"
	"bmc/graph"
	"bmc/graph/nn"
)

// agm is AGM (Li et al. 2023; spec §4.14). Each step runs the model in
// evaluation mode on every non-empty modality subset (the others
// zero-filled), forms Shapley modality logits ψ_m, scores each modality by
// its cross-entropy s_m, and scales the gradients of each encoder's weights
// by k_m = exp(α·min(o_m − r_m, 7)), with r_m = exp(n/(n−1)·(s̄ − s_m)) from
// the current scores and o_m the same from the running means of the scores.
// A modality that falls further behind than usual (higher loss, r_m < o_m)
// gets k_m > 1. When the fusion weight's gradient leaves [−5, 5] the global
// gradient norm is clipped to 5. All of it runs inside the one step graph;
// the running means are method state.
//
// Two departures of the reference from the AGM paper and code are fixed
// (compat=true restores both): the reference drops the empty-coalition term
// of ψ_m, and it computes r_m and o_m from s_m − s̄, the opposite sign of the
// original AGM code, which slows the weak modality down instead of speeding
// it up.
type agm struct{}

// agmEntry is the registry row of the method.
func agmEntry() entry { return entry{info: agmInfo(), method: agm{}} }

func agmInfo() Info {
	return Info{Name: "agm", Display: "AGM", Category: CategoryOptimization, Indicator: "performance score", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, NLP, Audio", Citation: "Li et al. 2023", Cost: "1F + (2ⁿ−1)Fe + 1BW",
		Params: []Param{
			float("alpha", "0.1", "modulation strength α").atLeast(0),
			{Name: "compat", Default: "false", Kind: "bool", Doc: "the reference's literal AGM: no empty-coalition term in ψ_m and ratios from s_m − s̄"},
		}}
}

func (agm) Info() Info { return agmInfo() }

func (agm) Model(spec nn.ModelSpec, _ Hyper) (nn.ModelSpec, error) {
	if err := requireModalities("agm", spec, 2, 3); err != nil {
		return spec, err
	}
	return spec, nil
}

const (
	agmRunningMean = "agm.running_score"
	agmIteration   = "agm.iteration"
	agmClipNorm    = 5
	agmClipTrigger = 5
)

// shapleyWeight is |S|!(n−|S|−1)!/n!.
func shapleyWeight(size, n int) float64 {
	fact := func(k int) float64 {
		f := 1.0
		for i := 2; i <= k; i++ {
			f *= float64(i)
		}
		return f
	}
	return fact(size) * fact(n-size-1) / fact(n)
}

func (agm) Build(b *compile.Builder, hp Hyper) error {
	s, out, loss, grads, err := ceStep(b)
	if err != nil {
		return err
	}
	g := s.G
	names := s.Model().ModalityNames()
	n := len(names)

	// f(S) for every non-empty subset S (bit i keeps modality i), in
	// evaluation mode; autodiff has already run, so these passes only score.
	old := g.SetPhase(graph.PhaseMethod)
	f := map[int]*graph.Value{}
	for mask := 1; mask < 1<<n; mask++ {
		var keep []string
		for i, m := range names {
			if mask&(1<<i) != 0 {
				keep = append(keep, m)
			}
		}
		pop := g.Scope(fmt.Sprintf("agm/subset%d", mask))
		o, err := s.Forward(nn.Eval, keep)
		pop()
		if err != nil {
			return err
		}
		f[mask] = o.Logits
	}
	pop := g.Scope("agm")
	// ψ_m = Σ_{S ⊆ M\{m}} w(|S|)·(f(S∪{m}) − f(S)), with f(∅) = 0 as in
	// the original AGM; compat drops the S = ∅ term as the reference does.
	onehot := g.OneHot(s.Labels, s.Model().Spec.Classes)
	scores := make([]*graph.Value, n)
	for i, m := range names {
		var terms []*graph.Value
		for sub := 0; sub < 1<<n; sub++ {
			if sub&(1<<i) != 0 || (sub == 0 && hp.Bool("compat")) {
				continue
			}
			diff := f[sub|1<<i]
			if sub != 0 {
				diff = g.Sub(diff, f[sub])
			}
			terms = append(terms, g.Mul(diff, g.ConstFloat(float32(shapleyWeight(bits.OnesCount(uint(sub)), n)))))
		}
		psi := g.Sum(terms...)
		// s_m = mean_i −log max(softmax(ψ_m)_i[y_i], 1e-8).
		p := g.ReduceSum(g.Mul(g.Softmax(psi, 1), onehot), false, 1)
		scores[i] = g.Neg(g.ReduceMean(g.Log(g.Max(p, g.ConstFloat(1e-8))), true))
		s.Metric("agm.score/"+m, g.Reshape(scores[i], 1))
	}
	score := g.Concat(0, scores...) // [n]
	gain := float32(n) / float32(n-1)
	if hp.Bool("compat") {
		gain = -gain
	}
	// exp(n/(n−1)·(mean − x)) elementwise.
	relative := func(x *graph.Value) *graph.Value {
		return g.Exp(g.Mul(g.ConstFloat(gain), g.Sub(g.ReduceMean(x, true), x)))
	}
	ratio := relative(score)
	running := s.State(agmRunningMean, graph.Shape{int64(n)})
	optimal := relative(running)
	coef := g.Exp(g.Mul(g.ConstFloat(float32(hp.Float("alpha"))), g.Min(g.Sub(optimal, ratio), g.ConstFloat(7))))
	it := s.Input(agmIteration, graph.Shape{1}, []float32{1}, "1-based iteration count (epoch·steps + step + 1)")
	// t ← t·(it−1)/it + s/it.
	s.Update(agmRunningMean, g.Add(g.Mul(running, g.Div(g.Sub(it, g.ConstFloat(1)), it)), g.Div(score, it)))
	perModality := map[string]*graph.Value{}
	parts := g.Split(coef, 0, onesOf(n)...)
	for i, m := range names {
		perModality[m] = parts[i]
		s.Metric("agm.coef/"+m, parts[i])
	}
	params := s.Model().Params()
	scaleModalityGrads(g, params, grads, perModality)
	clipWhenHeadExplodes(g, params, grads)
	pop()
	g.SetPhase(old)
	s.Optimize(grads)
	reportForward(s, out, loss)
	return b.Add(s, 1)
}

func onesOf(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

// clipWhenHeadExplodes is the reference's guard: if any element of the
// fusion weight's gradient lies outside [−5, 5], clip the global norm of all
// gradients to 5 (clip_grad_norm_: coefficient 5/(‖g‖ + 1e-6), capped at 1).
func clipWhenHeadExplodes(g *graph.Graph, params []nn.Param, grads map[string]*graph.Value) {
	head := grads["fusion_module.fc_out.weight"]
	trigger := g.ConstFloat(agmClipTrigger)
	explode := g.Or(g.Greater(g.ReduceMax(head, false), trigger), g.Less(g.ReduceMin(head, false), g.Neg(trigger)))
	var squares []*graph.Value
	for _, p := range params {
		d := grads[p.Name]
		squares = append(squares, g.ReduceSum(g.Mul(d, d), false))
	}
	norm := g.Sqrt(g.Sum(squares...))
	clip := g.Min(g.Div(g.ConstFloat(agmClipNorm), g.Add(norm, g.ConstFloat(1e-6))), g.ConstFloat(1))
	factor := g.Where(explode, clip, g.ConstFloat(1))
	for _, p := range params {
		grads[p.Name] = g.Mul(grads[p.Name], factor)
	}
}

func (agm) Schedule(*compile.Manifest, Hyper) (Schedule, error) { return agmSchedule{}, nil }

// agmSchedule feeds the iteration count of the running mean.
type agmSchedule struct{ noSchedule }

func (agmSchedule) BeforeStep(r Run) error {
	buf, err := r.Input(agmIteration)
	if err != nil {
		return err
	}
	buf[0] = float32(r.GlobalStep() + 1)
	return nil
}
