package methods

import (
	"fmt"
	"strings"

	"bmc/compile"
	"bmc/graph/nn"
)

// featurePrefix names the feature outputs of a feature graph: one metric
// "features/<modality>", [B, d_m], per modality.
const featurePrefix = "features/"

// addFeatureGraph adds an auxiliary graph that runs the model in evaluation
// mode on a batch of the evaluation batch size and outputs every modality's
// encoder features φ_m, with the runs the method makes of it.
func addFeatureGraph(b *compile.Builder, name string, runs ...compile.Run) error {
	s := b.NewStep(name, compile.RoleAux, b.Config().EvalBatchSize)
	out, err := s.Forward(nn.Eval, nil)
	if err != nil {
		return err
	}
	for _, m := range s.Model().ModalityNames() {
		s.Metric(featurePrefix+m, out.Features[m])
	}
	return b.AddGraph(s, runs...)
}

// features are the encoder features of some samples of a split.
type features struct {
	// Samples are the split indices in pass order, Labels their labels.
	Samples []int
	Labels  []int64
	// Rows maps a modality to its features, [len(Samples), Width[m]]
	// row-major.
	Rows  map[string][]float32
	Width map[string]int
}

// collectFeatures runs a feature graph over samples of a split (nil: all,
// in order) and gathers the features of the real rows.
func collectFeatures(r Run, graphName, split string, samples []int, purpose string) (features, error) {
	gi, ok := r.Manifest().Graph(graphName)
	if !ok {
		return features{}, fmt.Errorf("the plan has no graph %s", graphName)
	}
	f := features{Rows: map[string][]float32{}, Width: map[string]int{}}
	for _, io := range gi.Outputs {
		if m, ok := strings.CutPrefix(io.Key, featurePrefix); ok && io.Kind == compile.IOMetric {
			f.Width[m] = int(io.Shape[1])
		}
	}
	names := r.Manifest().ModalityNames()
	err := r.Pass(PassOptions{Graphs: []string{graphName}, Split: split, Samples: samples, Purpose: purpose}, func(b PassBatch) error {
		f.Samples = append(f.Samples, b.Samples...)
		f.Labels = append(f.Labels, b.Labels...)
		for _, m := range names {
			v, err := b.Metric(graphName, featurePrefix+m)
			if err != nil {
				return err
			}
			f.Rows[m] = append(f.Rows[m], v[:b.N*f.Width[m]]...)
		}
		return nil
	})
	return f, err
}
