package compile

import (
	"fmt"
	"slices"
	"strings"

	"bmc/graph"
	"bmc/graph/nn"
)

// ForwardModality adds one modality's encoder and the fusion's unimodal
// head (fusion kinds that have one: shared) and nothing of the other
// modalities: φ_m [B, d_m] and z_m [B, C]. In training mode it updates
// that encoder's buffers, unless an earlier forward of the graph updated
// buffers.
func (s *Step) ForwardModality(mode nn.Mode, modality string) (feat, logits *graph.Value, err error) {
	x, ok := s.Data[modality]
	if !ok {
		return nil, nil, fmt.Errorf("graph %s: no modality %s (modalities: %s)", s.info.Name, modality, strings.Join(s.b.model.ModalityNames(), ", "))
	}
	feat, logits, err = s.b.model.ForwardModality(s.G, s.bindings(mode, true), modality, x, mode)
	if err != nil {
		return nil, nil, fmt.Errorf("graph %s: %w", s.info.Name, err)
	}
	return feat, logits, nil
}

// StateInit declares a method-state tensor that starts from init (shape's
// size, row-major; an identity matrix, say) instead of zeros; the value is
// stored with the plan's initial values and the state is checkpointed like
// any other. Graphs sharing the state must declare the same init. Update
// gives its next value.
func (s *Step) StateInit(key string, shape graph.Shape, init []float32) *graph.Value {
	if int64(len(init)) != shape.Size() {
		s.G.Fail(fmt.Errorf("state %s: %d initial values for shape %v", key, len(init), shape))
		return s.G.ConstFloat(0)
	}
	if st, ok := s.b.state[key]; ok {
		if st.Kind != StateMethod || st.Init != "params" || !st.Shape.Equal(shape) || !slices.Equal(s.b.plan.Init[key], init) {
			s.G.Fail(fmt.Errorf("state %s is declared twice with different shapes or initial values", key))
			return s.G.ConstFloat(0)
		}
	} else {
		s.b.addState(StateInfo{Key: key, Shape: shape.Clone(), Kind: StateMethod, Init: "params"})
		s.b.plan.Init[key] = slices.Clone(init)
	}
	return s.stateInput(key, shape)
}
