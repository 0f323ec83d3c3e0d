package methods

import (
	"bmc/compile"
	"bmc/graph/nn"
)

// baseline trains the multimodal model jointly with CE(z, y) (spec §4.0).
type baseline struct{}

func baselineInfo() Info {
	return Info{Name: "baseline", Display: "Baseline", Category: CategoryReference, Indicator: "N/A", MaxModalities: 3,
		Domains: "CV, NLP, Audio", Citation: "joint training, concat fusion", Cost: "1F + 1BW"}
}

func (baseline) Info() Info { return baselineInfo() }

func (baseline) Model(spec nn.ModelSpec, _ Hyper) (nn.ModelSpec, error) { return spec, nil }

func (baseline) Build(b *compile.Builder, _ Hyper) error {
	return buildCE(b)
}

// buildCE adds the plain supervised step: CE(z, y), backward, optimizer.
func buildCE(b *compile.Builder) error {
	s := b.NewStep(TrainGraph, "train", b.Config().BatchSize)
	out, err := s.Forward(nn.Train, nil)
	if err != nil {
		return err
	}
	loss := compile.CrossEntropy(s.G, out.Logits, s.Labels)
	grads, err := s.Gradients(loss)
	if err != nil {
		return err
	}
	s.Optimize(grads)
	reportForward(s, out, loss)
	return b.Add(s, 1)
}

func (baseline) Schedule(*compile.Manifest, Hyper) (Schedule, error) { return noSchedule{}, nil }
