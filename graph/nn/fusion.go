package nn

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"bmc/graph"
)

// Fusion is one kind of fusion head: how the encoders' features become the
// fused logits z and the unimodal logits z_m that methods and metrics read.
// Its parameters are named "fusion_module.…" (or as the reference's model
// attribute, AMCo's linear_star) and carry no modality tag.
type Fusion interface {
	// Params lays out the head's parameters for features of the given
	// widths (fusion order) and a class count.
	Params(widths []int64, classes int64) ([]Param, error)
	// Forward maps the features (fusion order, [B, d_m] each) to the fused
	// logits [B, C] and each modality's logits [B, C], in fusion order.
	Forward(c *Ctx, feats []*graph.Value) (fused *graph.Value, unimodal []*graph.Value, err error)
}

// fusionKinds maps each fusion kind to its constructor, which checks the
// kind's options.
func fusionKinds() map[string]func(Options) (Fusion, error) {
	return map[string]func(Options) (Fusion, error){
		FusionAMCo:   newAMCoFusion,
		FusionConcat: newConcatFusion,
		FusionCosine: newCosineFusion,
		FusionShared: newSharedFusion,
	}
}

// FusionKinds lists the available fusion kinds, sorted.
func FusionKinds() []string {
	return slices.Sorted(maps.Keys(fusionKinds()))
}

func newFusion(kind string, opt Options) (Fusion, error) {
	f, ok := fusionKinds()[kind]
	if !ok {
		return nil, fmt.Errorf("fusion %q is not available (available: %s)", kind, strings.Join(FusionKinds(), ", "))
	}
	return f(opt)
}

// FusionConcat is Linear(Σd_m → C) over the concatenated features, with
// unimodal logits z_m = φ_m·W_mᵀ + b/n (spec §2.3), so that Σ_m z_m = z.
const FusionConcat = "concat"

// concatFusion is the reference's ConcatFusion_N.
type concatFusion struct{}

func newConcatFusion(opt Options) (Fusion, error) {
	if err := opt.Check("fusion "+FusionConcat, nil, nil); err != nil {
		return nil, err
	}
	return concatFusion{}, nil
}

func (concatFusion) Params(widths []int64, classes int64) ([]Param, error) {
	var total int64
	for _, w := range widths {
		total += w
	}
	return LinearParams("fusion_module.fc_out.", total, classes), nil
}

func (concatFusion) Forward(c *Ctx, feats []*graph.Value) (*graph.Value, []*graph.Value, error) {
	g := c.G
	w, bias := c.Param("fusion_module.fc_out.weight"), c.Param("fusion_module.fc_out.bias")
	fused := Linear(g, g.Concat(1, feats...), w, bias)
	share := g.Div(bias, g.ConstFloat(float32(len(feats))))
	blocks := []*graph.Value{w}
	if len(feats) > 1 {
		blocks = g.Split(w, 1, featureWidths(feats)...)
	}
	uni := make([]*graph.Value, len(feats))
	for i := range feats {
		uni[i] = Linear(g, feats[i], blocks[i], share)
	}
	return fused, uni, nil
}

// featureWidths are the widths d_m of [B, d_m] features.
func featureWidths(feats []*graph.Value) []int64 {
	out := make([]int64, len(feats))
	for i, f := range feats {
		out[i] = f.Shape()[1]
	}
	return out
}
