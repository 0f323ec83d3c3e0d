package methods

import (
	"fmt"
	"math/rand/v2"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"

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
func buildLossStep(b *compile.Builder, scope string, loss func(s *compile.Step, out nn.Outputs, ce *graph.Value) (*graph.Value, error)) error {
	s := b.NewStep(TrainGraph, "train", b.Config().BatchSize)
	out, err := s.Forward(nn.Train, nil)
	if err != nil {
		return err
	}
	g := s.G
	ce := compile.CrossEntropy(g, out.Logits, s.Labels)
	old := g.SetPhase(graph.PhaseMethod)
	pop := g.Scope(scope)
	l, err := loss(s, out, ce)
	pop()
	g.SetPhase(old)
	if err != nil {
		return err
	}
	return addLossStep(b, s, out, l)
}

// addGradientNoise adds (or, with subtract, takes away)
// active·ε·(std(g₀) + 1e-8) to the gradient of
// every encoder matrix, where g₀ is its gradient before modulation
// (original), std the unbiased standard deviation (torch.std) and ε a
// standard-normal runtime input named prefix + the parameter's name, which
// the schedule draws with drawNormals.
func addGradientNoise(s *compile.Step, original, grads map[string]*graph.Value, active *graph.Value, prefix string, subtract bool) {
	g := s.G
	for _, p := range s.Model().Params() {
		if p.Modality == "" || !compile.IsMatrix(p) {
			continue
		}
		noise := s.Input(prefix+p.Name, p.Shape, nil, "standard normal noise for "+p.Name+" (drawn by the schedule)")
		sd := g.Add(unbiasedStd(g, original[p.Name]), g.ConstFloat(1e-8))
		term := g.Mul(active, g.Mul(noise, sd))
		if subtract {
			grads[p.Name] = g.Sub(grads[p.Name], term)
		} else {
			grads[p.Name] = g.Add(grads[p.Name], term)
		}
	}
}

// unbiasedStd is torch.std: the square root of Σ(x − mean)²/(N − 1).
func unbiasedStd(g *graph.Graph, x *graph.Value) *graph.Value {
	d := g.Sub(x, g.ReduceMean(x, false))
	n := float32(x.Shape().Size() - 1)
	return g.Sqrt(g.Div(g.ReduceSum(g.Mul(d, d), false), g.ConstFloat(n)))
}

// inputsWithPrefix lists the plan's runtime inputs whose names start with
// prefix, in manifest order.
func inputsWithPrefix(m *compile.Manifest, prefix string) []string {
	var out []string
	for _, in := range m.Inputs {
		if strings.HasPrefix(in.Name, prefix) {
			out = append(out, in.Name)
		}
	}
	return out
}

// drawNormals fills the named runtime inputs with standard normal draws
// from the step's random streams. At ResNet size that is tens of millions
// of draws per step, so the tensors are cut into chunks, each with its own
// stream (input name and chunk number), drawn by one goroutine per CPU.
func drawNormals(r Run, inputs []string) error {
	const chunk = 1 << 18
	type job struct {
		buf []float32
		rng *rand.Rand
	}
	var jobs []job
	for _, name := range inputs {
		buf, err := r.Input(name)
		if err != nil {
			return err
		}
		for k := 0; k*chunk < len(buf); k++ {
			jobs = append(jobs, job{buf[k*chunk : min((k+1)*chunk, len(buf))], r.Rand(name + "#" + strconv.Itoa(k))})
		}
	}
	next := make(chan job)
	var wg sync.WaitGroup
	for range min(goruntime.NumCPU(), len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				for i := range j.buf {
					j.buf[i] = float32(j.rng.NormFloat64())
				}
			}
		}()
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
	return nil
}

// addLossStep finishes a default step graph whose loss is built: its
// gradients with respect to every parameter, the optimizer, the logged
// loss and logits, and the graph as the plan's step.
func addLossStep(b *compile.Builder, s *compile.Step, out nn.Outputs, loss *graph.Value) error {
	grads, err := s.Gradients(loss)
	if err != nil {
		return err
	}
	s.Optimize(grads)
	reportForward(s, out, loss)
	return b.Add(s, 1)
}
