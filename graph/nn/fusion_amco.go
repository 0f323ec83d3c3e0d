package nn

import (
	"bmc/graph"
)

// FusionAMCo is AMCo's head (Zhou et al. 2023; spec §4.5): the concat head's
// unimodal logits z_m = φ_m·W_mᵀ + b/n, their sum s = Σ_m z_m, and the fused
// logits z = linear_star(s) with linear_star = Linear(C → C). In training
// forwards the features of the modalities the runtime input AMCoDependent
// flags are multiplied by the mask AMCoMask (one [Σd_m] vector, each
// modality's block broadcast over the batch) before the head, so their z_m
// and z see the masked features.
//
// Options (the reference's literal model, which AMCo's compat restores):
// logit_mask=1 masks the dependent modalities' class logits z_m with a [C]
// mask instead of their features; eval_skip_star=1 makes evaluation output
// s, bypassing linear_star, as the reference's validation does.
const FusionAMCo = "amco"

// The runtime inputs of the AMCo head's training forwards; evaluation reads
// the defaults (nothing masked).
const (
	// AMCoDependent is [n]: 1 for a dependent modality, whose features (or
	// logits) are masked.
	AMCoDependent = "amco.dependent"
	// AMCoMask is the mask: [Σd_m] over the features, or [C] over the
	// class logits with logit_mask=1.
	AMCoMask = "amco.mask"
)

// amcoFusion is the reference's BaseClassifierAMCoModel head.
type amcoFusion struct {
	logitMask, evalSkipStar bool
}

func newAMCoFusion(opt Options) (Fusion, error) {
	if err := opt.Check("fusion "+FusionAMCo, []string{"eval_skip_star", "logit_mask"}, nil); err != nil {
		return nil, err
	}
	return amcoFusion{logitMask: opt.Float("logit_mask", 0) != 0, evalSkipStar: opt.Float("eval_skip_star", 0) != 0}, nil
}

func (amcoFusion) Params(widths []int64, classes int64) ([]Param, error) {
	head, err := concatFusion{}.Params(widths, classes)
	if err != nil {
		return nil, err
	}
	// Named as the reference's model attribute, outside fusion_module.
	return append(head, LinearParams("linear_star.", classes, classes)...), nil
}

func (f amcoFusion) Forward(c *Ctx, feats []*graph.Value) (*graph.Value, []*graph.Value, error) {
	g := c.G
	n := len(feats)
	w, bias := c.Param("fusion_module.fc_out.weight"), c.Param("fusion_module.fc_out.bias")
	classes := w.Shape()[0]
	widths := featureWidths(feats)
	var dependent []*graph.Value
	masked := func(x, mask *graph.Value, i int) *graph.Value {
		// x ⊙ (1 + dep_i·(mask − 1)): the mask where modality i is dependent.
		return g.Mul(x, g.Add(g.ConstFloat(1), g.Mul(dependent[i], g.Sub(mask, g.ConstFloat(1)))))
	}
	train := c.Mode == Train
	if train {
		dep := c.Input(AMCoDependent, graph.Shape{int64(n)}, make([]float32, n), "1 for each dependent modality (masked), from the last step's probability masses")
		dependent = []*graph.Value{dep}
		if n > 1 {
			dependent = g.Split(dep, 0, onesOf(n)...)
		}
	}
	if train && !f.logitMask {
		var total int64
		for _, d := range widths {
			total += d
		}
		mask := c.Input(AMCoMask, graph.Shape{total}, ones(total), "the feature mask of dependent modalities, each modality's block of Σd_m (0 masks a unit; kept units carry the rescaling)")
		blocks := []*graph.Value{mask}
		if n > 1 {
			blocks = g.Split(mask, 0, widths...)
		}
		out := make([]*graph.Value, n)
		for i := range feats {
			out[i] = masked(feats[i], blocks[i], i)
		}
		feats = out
	}
	share := g.Div(bias, g.ConstFloat(float32(n)))
	blocks := []*graph.Value{w}
	if n > 1 {
		blocks = g.Split(w, 1, widths...)
	}
	uni := make([]*graph.Value, n)
	for i := range feats {
		uni[i] = Linear(g, feats[i], blocks[i], share)
	}
	if train && f.logitMask {
		mask := c.Input(AMCoMask, graph.Shape{classes}, ones(classes), "the class-logit mask of dependent modalities (0 masks a class)")
		for i := range uni {
			uni[i] = masked(uni[i], mask, i)
		}
	}
	sum := uni[0]
	if n > 1 {
		sum = g.Sum(uni...)
	}
	if !train && f.evalSkipStar {
		return sum, uni, nil
	}
	return Linear(g, sum, c.Param("linear_star.weight"), c.Param("linear_star.bias")), uni, nil
}

func onesOf(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

func ones(n int64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = 1
	}
	return out
}
