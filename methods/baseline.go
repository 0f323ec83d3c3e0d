package methods

import (
	"bmc/compile"
	"bmc/graph"
	"bmc/graph/nn"
)

// baseline trains the multimodal model jointly with CE(z, y) (spec §4.0).
type baseline struct{}

// baselineEntry is the registry row of the method.
func baselineEntry() entry { return entry{info: baselineInfo(), method: baseline{}} }

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
	s, out, loss, grads, err := ceStep(b)
	if err != nil {
		return err
	}
	s.Optimize(grads)
	reportForward(s, out, loss)
	return b.Add(s, 1)
}

// ceStep starts the training step most methods share: the train-mode
// forward, CE(z, y) and its gradients with respect to every parameter. The
// caller may edit the gradients before Optimize.
func ceStep(b *compile.Builder) (*compile.Step, nn.Outputs, *graph.Value, map[string]*graph.Value, error) {
	return ceStepNamed(b, TrainGraph)
}

// ceStepNamed is ceStep for a train graph of another name.
func ceStepNamed(b *compile.Builder, name string) (*compile.Step, nn.Outputs, *graph.Value, map[string]*graph.Value, error) {
	s := b.NewStep(name, compile.RoleTrain, b.Config().BatchSize)
	out, err := s.Forward(nn.Train, nil)
	if err != nil {
		return nil, out, nil, nil, err
	}
	loss := compile.CrossEntropy(s.G, out.Logits, s.Labels)
	grads, err := s.Gradients(loss)
	return s, out, loss, grads, err
}

func (baseline) Schedule(*compile.Manifest, Hyper) (Schedule, error) { return noSchedule{}, nil }
