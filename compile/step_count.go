package compile

import (
	"errors"

	"bmc/graph"
	"bmc/graph/nn"
)

// CountStepsPerParameter makes every optimizer update of the plan count
// its steps per parameter, as PyTorch's optimizers do (state["step"]): each
// parameter keeps its count as optimizer state (StepCountKey), and a graph
// that updates it advances the count and computes AdamW's bias corrections
// from it. By default the trainer sets one count for all parameters, the
// global step + 1 (or, in Run.Pass, the batch index + 1), which equals
// PyTorch's count when every step updates every parameter once; methods
// that update some parameters several times per step or only in some
// phases (MLA's n steps per batch, ReconBoost's phases) call this before
// building their graphs. A pass that updates parameters continues their
// counts. SGD does not depend on the count and keeps none.
func (b *Builder) CountStepsPerParameter() error {
	if b.optimized {
		return errors.New("CountStepsPerParameter must come before the first graph's optimizer update")
	}
	b.countSteps = true
	return nil
}

// countStep advances parameter p's step count in this graph and returns
// the optimizer inputs for the new count at learning rate lr.
func (s *Step) countStep(p nn.Param, lr *graph.Value) map[string]*graph.Value {
	key := StepCountKey(p.Name)
	s.b.addState(StateInfo{Key: key, Shape: graph.Shape{1}, Kind: StateSlot, Modality: p.Modality, Init: "zeros"})
	t := s.G.Add(s.stateInput(key, graph.Shape{1}), s.G.ConstFloat(1))
	s.Update(key, t)
	return s.b.cfg.Optimizer.StepInputs(s.G, lr, t)
}
