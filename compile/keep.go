package compile

import (
	"fmt"

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
		in[name] = keepInput(s.G, s.Data[name], s.G.Slice(keep, []int64{int64(i)}, []int64{int64(i + 1)}, nil, nil))
	}
	return in
}

// ForwardKept adds the model's forward pass on the data masked by the keep
// mask input (Keep), so that one graph trains or evaluates any modality
// subset chosen at run time. In training mode the first such forward
// updates the buffers, as Forward's with every modality kept does.
func (s *Step) ForwardKept(mode nn.Mode) (nn.Outputs, error) {
	return s.forward(mode, s.keptInputs(), true)
}

// ForwardRows adds the model's forward pass with a per-sample modality keep
// mask: keep is a [B, n] float value (n modalities in fusion order) whose
// row i zero-fills, where 0, each modality input of sample i, as the
// evaluation graph's keep mask does for the whole batch. It counts as the
// forward over the whole batch, so in training mode it is the one that
// updates the buffers.
func (s *Step) ForwardRows(mode nn.Mode, keep *graph.Value) (nn.Outputs, error) {
	names := s.b.model.ModalityNames()
	var batch int64
	for _, v := range s.Data {
		batch = v.Shape()[0]
	}
	if want := (graph.Shape{batch, int64(len(names))}); !keep.Shape().Equal(want) {
		return nn.Outputs{}, fmt.Errorf("graph %s: per-sample keep mask has shape %v, want %v", s.info.Name, keep.Shape(), want)
	}
	in := map[string]*graph.Value{}
	for i, name := range names {
		x := s.Data[name]
		// Column i as [B, 1, …, 1], broadcasting over one sample's input.
		k := s.G.Slice(keep, []int64{int64(i)}, []int64{int64(i + 1)}, []int64{1}, nil)
		shape := make([]int64, x.Shape().Rank())
		for j := range shape {
			shape[j] = 1
		}
		shape[0] = batch
		in[name] = keepInput(s.G, x, s.G.Reshape(k, shape...))
	}
	return s.forward(mode, in, true)
}

// keepInput multiplies a modality's input by a keep factor that broadcasts
// over it (1 keeps, 0 zero-fills); token ids of a dropped modality become
// id 0 ([PAD]).
func keepInput(g *graph.Graph, x, k *graph.Value) *graph.Value {
	if x.DType() != graph.Float32 {
		k = g.Cast(k, x.DType())
	}
	return g.Mul(x, k)
}

// ValidationSplit is the split each epoch validates on: the validation
// split, or the test split under the reference's protocol.
func (c TrainConfig) ValidationSplit() string {
	if c.Protocol == "balancemm" {
		return datasets.Test
	}
	return datasets.Val
}
