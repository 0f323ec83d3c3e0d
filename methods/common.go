package methods

import (
	"fmt"

	"bmc/compile"
	"bmc/graph"
	"bmc/graph/nn"
)

// TrainGraph is the name of the single step graph of most methods.
const TrainGraph = "train"

// reportForward outputs what the runtime logs of every training step: the
// loss and the fused and unimodal logits (for train accuracy).
func reportForward(s *compile.Step, out nn.Outputs, loss *graph.Value) {
	s.Metric("loss", s.G.Reshape(loss, 1))
	s.Metric("logits", out.Logits)
	for _, m := range s.Model().ModalityNames() {
		s.Metric("logits/"+m, out.Unimodal[m])
	}
}

// noSchedule is the schedule of methods without Go-side logic.
type noSchedule struct{}

func (noSchedule) BeginEpoch(Run) error { return nil }
func (noSchedule) BeforeStep(Run) error { return nil }
func (noSchedule) AfterStep(Run) error  { return nil }

// scaleModalityGrads multiplies the gradient of every matrix parameter of
// each modality's encoder by that modality's coefficient (a [1] or scalar
// value); vectors (biases) are left alone, as in the reference.
func scaleModalityGrads(g *graph.Graph, params []nn.Param, grads map[string]*graph.Value, coef map[string]*graph.Value) {
	for _, p := range params {
		k, ok := coef[p.Modality]
		if !ok || !compile.IsMatrix(p) {
			continue
		}
		grads[p.Name] = g.Mul(grads[p.Name], k)
	}
}

// modulationWindow is the Go side of a modulation window: it sets a [1] input
// to 1 inside [starts, ends] (0-based epochs) and 0 outside.
type modulationWindow struct {
	input        string
	starts, ends int
}

func (w modulationWindow) active(epoch int) bool { return epoch >= w.starts && epoch <= w.ends }

func (w modulationWindow) set(r Run) error {
	buf, err := r.Input(w.input)
	if err != nil {
		return err
	}
	buf[0] = 0
	if w.active(r.Epoch()) {
		buf[0] = 1
	}
	return nil
}

// requireModalities rejects a model with fewer than lo or more than hi
// modalities.
func requireModalities(method string, spec nn.ModelSpec, lo, hi int) error {
	if n := len(spec.Modalities); n < lo || n > hi {
		return fmt.Errorf("method %s supports %d or %d modalities, the model has %d", method, lo, hi, n)
	}
	return nil
}

// windowSchedule switches a modulation window each epoch and does nothing
// else.
type windowSchedule struct{ win modulationWindow }

func (w windowSchedule) BeginEpoch(r Run) error { return w.win.set(r) }
func (windowSchedule) BeforeStep(Run) error     { return nil }
func (windowSchedule) AfterStep(Run) error      { return nil }

// buildLossStep adds the step of a method that changes only the loss: loss
// builds it from the train-mode forward and CE(z, y) (its nodes in the
// method phase, under scope); the step differentiates it with respect to
// every parameter and optimizes.
func buildLossStep(b *compile.Builder, scope string, loss func(s *compile.Step, out nn.Outputs, ce *graph.Value) *graph.Value) error {
	s := b.NewStep(TrainGraph, "train", b.Config().BatchSize)
	out, err := s.Forward(nn.Train, nil)
	if err != nil {
		return err
	}
	g := s.G
	ce := compile.CrossEntropy(g, out.Logits, s.Labels)
	old := g.SetPhase(graph.PhaseMethod)
	pop := g.Scope(scope)
	l := loss(s, out, ce)
	pop()
	g.SetPhase(old)
	grads, err := s.Gradients(l)
	if err != nil {
		return err
	}
	s.Optimize(grads)
	reportForward(s, out, l)
	return b.Add(s, 1)
}
