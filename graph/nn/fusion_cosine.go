package nn

import (
	"fmt"
	"math"

	"bmc/graph"
)

// FusionCosine is MMCosine's head (Xu et al. 2023): modality m's logits are
// s·cos(φ_m, W_m[c]), the cosine between the sample's feature and class c's
// block of the weight, scaled by s (option "scale", default 15); the fused
// logits are their sum. The head has no bias, so z = Σ_m z_m holds as for
// the concat head.
const FusionCosine = "cosine"

// cosineDefaultScale is MMCosine's default s.
const cosineDefaultScale = 15

// cosineFusion is the cosine head with scale s.
type cosineFusion struct{ scale float32 }

func newCosineFusion(opt Options) (Fusion, error) {
	if err := opt.Check("fusion "+FusionCosine, []string{"scale"}, nil); err != nil {
		return nil, err
	}
	s := opt.Float("scale", cosineDefaultScale)
	if f := float32(s); !(s > 0) || f == 0 || math.IsInf(float64(f), 0) {
		return nil, fmt.Errorf("fusion %s: option scale is %v, want a finite number > 0", FusionCosine, s)
	}
	return cosineFusion{scale: float32(s)}, nil
}

// Params is the weight of the reference's Linear(Σd_m → C), initialised as
// nn.Linear draws it; the cosine logits never read a bias.
func (cosineFusion) Params(widths []int64, classes int64) ([]Param, error) {
	var total int64
	for _, w := range widths {
		total += w
	}
	return LinearParams("fusion_module.fc_out.", total, classes)[:1], nil
}

func (f cosineFusion) Forward(c *Ctx, feats []*graph.Value) (*graph.Value, []*graph.Value, error) {
	g := c.G
	w := c.Param("fusion_module.fc_out.weight")
	blocks := []*graph.Value{w}
	if len(feats) > 1 {
		blocks = g.Split(w, 1, featureWidths(feats)...)
	}
	uni := make([]*graph.Value, len(feats))
	for i, x := range feats {
		// [B, d_m]·[C, d_m]ᵀ, both with unit rows, times s.
		uni[i] = g.Gemm(normalizeRows(g, x), normalizeRows(g, blocks[i]), nil, false, true, f.scale, 1)
	}
	return g.Sum(uni...), uni, nil
}

// normalizeRows is F.normalize(x, dim=1) for a matrix: every row divided by
// max(‖row‖₂, 1e-12). The bound is applied to the squared norm (1e-24), the
// same number, so that an all-zero row gets PyTorch's gradient (the row's
// gradient divided by 1e-12) instead of 0/0.
func normalizeRows(g *graph.Graph, x *graph.Value) *graph.Value {
	sq := g.ReduceSum(g.Mul(x, x), true, 1)
	return g.Div(x, g.Sqrt(g.Clip(sq, g.ConstFloat(1e-24), nil)))
}
