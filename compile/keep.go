package compile

import (
	"bmc/datasets"
	"bmc/graph"
	"bmc/graph/nn"
)

// Keep declares the graph's modality keep mask input, [n] in the model's
// fusion order: 1 keeps a modality, 0 zero-fills its raw input. Evaluation
// graphs take one; the runtime sets it for each pass.
func (s *Step) Keep() *graph.Value {
	if s.keep != nil {
		return s.keep
	}
	s.keep = s.G.Input("keep", graph.Float32, graph.Shape{int64(len(s.b.model.Spec.Modalities))})
	s.info.Inputs = append(s.info.Inputs, ioOf(s.keep, IOKeep, "keep"))
	return s.keep
}

// keptInputs are the data inputs multiplied by their entry of the keep
// mask (token ids become 0, [PAD], where a modality is dropped).
func (s *Step) keptInputs() map[string]*graph.Value {
	keep := s.Keep()
	in := map[string]*graph.Value{}
	for i, name := range s.b.model.ModalityNames() {
		k := s.G.Slice(keep, []int64{int64(i)}, []int64{int64(i + 1)}, nil, nil)
		x := s.Data[name]
		if x.DType() != graph.Float32 {
			k = s.G.Cast(k, x.DType())
		}
		in[name] = s.G.Mul(x, k)
	}
	return in
}

// ForwardKept adds the model's forward pass on the data masked by the keep
// mask input (Keep), so that one graph trains or evaluates any modality
// subset chosen at run time. In training mode the first such forward
// updates the buffers, as Forward's with every modality kept does.
func (s *Step) ForwardKept(mode nn.Mode) (nn.Outputs, error) {
	return s.forward(s.keptInputs(), mode, true)
}

// ValidationSplit is the split each epoch validates on: the validation
// split, or the test split under the reference's protocol.
func (c TrainConfig) ValidationSplit() string {
	if c.Protocol == "balancemm" {
		return datasets.Test
	}
	return datasets.Val
}
