package nn

import (
	"fmt"
	"math"

	"bmc/graph"
)

// FusionShared is one Linear(D → C) head, D = max_m d_m, applied to every
// modality's features on its own: z_m = head(φ_m) (the reference's
// SharedHead, which MLA and ReconBoost use). Features narrower than D are
// zero-padded to D, which is the same as reading only the first d_m columns
// of the weight, so encoders of any widths can share the head. The fused
// logits are Σ_m z_m by default; the options (SharedMean,
// SharedEntropyGate, SharedGateEntropies, SharedBoostRate) select the
// other fusions the methods use.
const FusionShared = "shared"

// Options of the shared head, numbers as every fusion option is.
const (
	// SharedMean = 1 makes the fused logits the mean of the z_m instead of
	// their sum.
	SharedMean = "mean"
	// SharedEntropyGate = 1 fuses as MLA does at test time: z = Σ_m g_m ⊙ z_m
	// with, per sample, g_m = exp(H_max − H_m) / Σ_k exp(H_max − H_k), H_m
	// the entropy of softmax(z_m) and H_max the largest H_m.
	SharedEntropyGate = "entropy_gate"
	// SharedGateEntropies = k takes H_max over the first k modalities only,
	// as the reference's MLA does with k = 2 for any n (absent: all). The
	// shift cancels in g_m, so k changes only the rounding.
	SharedGateEntropies = "gate_entropies"
	// SharedBoostRate = v > 0 adds ReconBoost's learnable scalar
	// BoostRateParam, initialised to v, by which the fused logits are
	// multiplied.
	SharedBoostRate = "boost_rate"
)

// Parameter names of the shared head, the reference's state_dict keys.
const (
	HeadWeight = "fusion_module.fc_out.weight"
	HeadBias   = "fusion_module.fc_out.bias"
	// BoostRateParam is a model attribute in the reference, hence the key
	// without the fusion_module prefix. It has shape [1] (the reference's
	// is a 0-d tensor): bmc's runtime keeps no rank-0 tensors.
	BoostRateParam = "boost_rate"
)

// sharedFusion is FusionShared with its options resolved.
type sharedFusion struct {
	mean, gate bool
	// gateFirst is the number of leading modalities whose entropies give
	// H_max; 0 takes all.
	gateFirst int
	// boost is the initial boost rate; 0 means the model has none.
	boost float64
}

func newSharedFusion(opt Options) (Fusion, error) {
	kind := "fusion " + FusionShared
	if err := opt.Check(kind, []string{SharedMean, SharedEntropyGate, SharedGateEntropies, SharedBoostRate}, []string{SharedGateEntropies}); err != nil {
		return nil, err
	}
	flag := func(key string) (bool, error) {
		switch v := opt.Float(key, 0); v {
		case 0, 1:
			return v == 1, nil
		default:
			return false, fmt.Errorf("%s: option %s is %v, want 0 or 1", kind, key, v)
		}
	}
	var f sharedFusion
	var err error
	if f.mean, err = flag(SharedMean); err != nil {
		return nil, err
	}
	if f.gate, err = flag(SharedEntropyGate); err != nil {
		return nil, err
	}
	if f.mean && f.gate {
		return nil, fmt.Errorf("%s: options %s and %s exclude each other (the gate weights already sum to 1)", kind, SharedMean, SharedEntropyGate)
	}
	if _, ok := opt[SharedGateEntropies]; ok && !f.gate {
		return nil, fmt.Errorf("%s: option %s needs %s=1", kind, SharedGateEntropies, SharedEntropyGate)
	}
	f.gateFirst = int(opt.Int(SharedGateEntropies, 0))
	if v, ok := opt[SharedBoostRate]; ok {
		if !(v > 0) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s: option %s is %v, want a finite initial value > 0", kind, SharedBoostRate, v)
		}
		f.boost = v
	}
	return f, nil
}

func (f sharedFusion) Params(widths []int64, classes int64) ([]Param, error) {
	if f.gateFirst > len(widths) {
		return nil, fmt.Errorf("option %s is %d, the model has %d modalities", SharedGateEntropies, f.gateFirst, len(widths))
	}
	var d int64
	for _, w := range widths {
		d = max(d, w)
	}
	params := LinearParams("fusion_module.fc_out.", d, classes)
	if f.boost > 0 {
		params = append(params, Param{Name: BoostRateParam, Shape: graph.Shape{1}, Init: Init{Kind: InitConstant, Value: f.boost}})
	}
	return params, nil
}

// Unimodal is z_m = head(φ_m) for features [B, d_m].
func (sharedFusion) Unimodal(c *Ctx, feat *graph.Value) (*graph.Value, error) {
	g := c.G
	w := c.Param(HeadWeight)
	d, width := feat.Shape()[1], w.Shape()[1]
	switch {
	case d > width:
		return nil, fmt.Errorf("features of width %d are wider than the shared head's %d", d, width)
	case d < width:
		// Zero-padding φ_m to the head's width: only the first d_m columns
		// of W meet non-zero features.
		w = g.Slice(w, []int64{0}, []int64{d}, []int64{1}, nil)
	}
	return Linear(g, feat, w, c.Param(HeadBias)), nil
}

func (f sharedFusion) Forward(c *Ctx, feats []*graph.Value) (*graph.Value, []*graph.Value, error) {
	g := c.G
	uni := make([]*graph.Value, len(feats))
	for i, h := range feats {
		z, err := f.Unimodal(c, h)
		if err != nil {
			return nil, nil, err
		}
		uni[i] = z
	}
	var fused *graph.Value
	switch {
	case f.gate:
		fused = entropyGate(g, uni, f.gateFirst)
	case f.mean:
		fused = g.Div(g.Sum(uni...), g.ConstFloat(float32(len(uni))))
	default:
		fused = g.Sum(uni...)
	}
	if f.boost > 0 {
		fused = g.Mul(fused, c.Param(BoostRateParam))
	}
	return fused, uni, nil
}

// entropyGate is Σ_m g_m ⊙ z_m with g_m = exp(H_max − H_m)/Σ_k exp(H_max − H_k)
// per sample, H_max over the first `first` modalities (0: all). H_max
// shifts every exponent alike, so g does not depend on it: its gradient is
// exactly zero and it is held constant.
func entropyGate(g *graph.Graph, logits []*graph.Value, first int) *graph.Value {
	if first == 0 {
		first = len(logits)
	}
	h := make([]*graph.Value, len(logits))
	for i, z := range logits {
		// −Σ_c p_c log p_c with log p from log_softmax, which stays finite
		// where p underflows to 0.
		h[i] = g.Neg(g.ReduceSum(g.Mul(g.Softmax(z, 1), g.LogSoftmax(z, 1)), true, 1)) // [B, 1]
	}
	hmax := g.StopGradient(g.Max(h[:first]...))
	w := make([]*graph.Value, len(h))
	for i := range h {
		w[i] = g.Exp(g.Sub(hmax, h[i]))
	}
	total := g.Sum(w...)
	terms := make([]*graph.Value, len(logits))
	for i, z := range logits {
		terms[i] = g.Mul(g.Div(w[i], total), z)
	}
	return g.Sum(terms...)
}
