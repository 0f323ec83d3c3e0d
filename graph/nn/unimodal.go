package nn

import (
	"fmt"
	"slices"
	"strings"

	"bmc/graph"
)

// UnimodalHead is a fusion kind whose unimodal logits z_m depend on φ_m
// alone (the shared head), so that a graph can train one modality without
// running the other encoders.
type UnimodalHead interface {
	// Unimodal maps one modality's features [B, d_m] to its logits [B, C].
	Unimodal(c *Ctx, feat *graph.Value) (*graph.Value, error)
}

// ForwardModality runs one modality's encoder on x [B, shape...] and the
// fusion's unimodal head on its features, and nothing else: φ_m and z_m.
// It needs a fusion kind with a unimodal head.
func (m *Model) ForwardModality(g *graph.Graph, b Bindings, modality string, x *graph.Value, mode Mode) (feat, logits *graph.Value, err error) {
	i := slices.Index(m.ModalityNames(), modality)
	if i < 0 {
		return nil, nil, fmt.Errorf("model forward: no modality %s (modalities: %s)", modality, strings.Join(m.ModalityNames(), ", "))
	}
	head, ok := m.fusion.(UnimodalHead)
	if !ok {
		return nil, nil, fmt.Errorf("model forward: fusion %s has no unimodal head (its z_m need every modality's features); fusion %s has one", m.Spec.Fusion, FusionShared)
	}
	c := NewCtx(g, b, mode)
	if feat, err = m.encode(c, i, x); err != nil {
		return nil, nil, err
	}
	pop := g.Scope("fusion_module")
	logits, err = head.Unimodal(c, feat)
	pop()
	if err != nil {
		return nil, nil, fmt.Errorf("model forward: fusion %s: modality %s: %w", m.Spec.Fusion, modality, err)
	}
	return feat, logits, g.Err()
}
