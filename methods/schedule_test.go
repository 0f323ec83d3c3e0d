package methods_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"bmc/compile"
	"bmc/experiment"
	"bmc/methods"
)

// fakeRun is the runtime side of a schedule: the plan's runtime inputs as
// buffers, and the position in training.
type fakeRun struct {
	methods.Run        // what these tests do not call
	epoch, step, steps int
	inputs             map[string][]float32
}

func newFakeRun(m *compile.Manifest) *fakeRun {
	r := &fakeRun{steps: int(m.StepsPerEpoch()), inputs: map[string][]float32{}}
	for _, in := range m.Inputs {
		buf := make([]float32, in.Shape.Size())
		copy(buf, in.Default)
		r.inputs[in.Name] = buf
	}
	return r
}

func (r *fakeRun) Epoch() int         { return r.epoch }
func (r *fakeRun) Step() int          { return r.step }
func (r *fakeRun) Phase() int         { return 0 }
func (r *fakeRun) GlobalStep() int64  { return int64(r.epoch*r.steps + r.step) }
func (r *fakeRun) StepsPerEpoch() int { return r.steps }
func (r *fakeRun) Rand(purpose string) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(len(purpose)), uint64(r.GlobalStep())))
}
func (r *fakeRun) Input(name string) ([]float32, error) {
	buf, ok := r.inputs[name]
	if !ok {
		return nil, fmt.Errorf("no input %s", name)
	}
	return buf, nil
}
func (r *fakeRun) Metric(name string) ([]float32, error) {
	return nil, fmt.Errorf("no metric %s", name)
}

func schedule(t *testing.T, p *compile.Plan) methods.Schedule {
	t.Helper()
	s, err := experiment.Schedule(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOGMScheduleWindowAndNoise(t *testing.T) {
	hyper := map[string]string{"modulation_starts": "1", "modulation_ends": "2"}
	p := compilePlan(t, "ogm", "synth-av", hyper)
	s := schedule(t, p)
	r := newFakeRun(&p.Manifest)
	noise := "ogm.noise/modality_encoder.audio.0.weight"
	if _, ok := r.inputs[noise]; !ok {
		t.Fatalf("the plan has no %s input", noise)
	}
	for epoch, active := range []bool{false, true, true, false} {
		r.epoch, r.step = epoch, 0
		clear(r.inputs[noise])
		if err := s.BeginEpoch(r); err != nil {
			t.Fatal(err)
		}
		want := float32(0)
		if active {
			want = 1
		}
		if got := r.inputs["ogm.active"][0]; got != want {
			t.Errorf("epoch %d: ogm.active = %g, want %g", epoch, got, want)
		}
		if err := s.BeforeStep(r); err != nil {
			t.Fatal(err)
		}
		nonZero := 0
		for _, v := range r.inputs[noise] {
			if v != 0 {
				nonZero++
			}
		}
		if active && nonZero == 0 {
			t.Errorf("epoch %d: no noise drawn inside the window", epoch)
		}
		if !active && nonZero != 0 {
			t.Errorf("epoch %d: noise drawn outside the window", epoch)
		}
		if err := s.AfterStep(r); err != nil {
			t.Fatal(err)
		}
	}

	// Plain OGM draws no noise and declares none.
	p = compilePlan(t, "ogm", "synth-av", map[string]string{"method": "OGM", "modulation_starts": "0"})
	s = schedule(t, p)
	r = newFakeRun(&p.Manifest)
	if err := s.BeginEpoch(r); err != nil {
		t.Fatal(err)
	}
	if err := s.BeforeStep(r); err != nil {
		t.Fatalf("OGM BeforeStep: %v", err)
	}
	if r.inputs["ogm.active"][0] != 1 {
		t.Error("OGM: window from epoch 0 not active in epoch 0")
	}
}

func TestAGMScheduleFeedsIteration(t *testing.T) {
	p := compilePlan(t, "agm", "synth-av", nil)
	s := schedule(t, p)
	r := newFakeRun(&p.Manifest)
	for _, pos := range []struct{ epoch, step int }{{0, 0}, {0, 3}, {1, 0}, {2, 5}} {
		r.epoch, r.step = pos.epoch, pos.step
		if err := s.BeforeStep(r); err != nil {
			t.Fatal(err)
		}
		want := float32(pos.epoch*r.steps + pos.step + 1)
		if got := r.inputs["agm.iteration"][0]; got != want {
			t.Errorf("epoch %d step %d: agm.iteration = %g, want %g", pos.epoch, pos.step, got, want)
		}
	}
}

func TestPlainSchedulesDoNothing(t *testing.T) {
	p := compilePlan(t, "baseline", "synth-av", nil)
	s := schedule(t, p)
	r := newFakeRun(&p.Manifest)
	for _, f := range []func(methods.Run) error{s.BeginEpoch, s.BeforeStep, s.AfterStep} {
		if err := f(r); err != nil {
			t.Error(err)
		}
	}
	if r.inputs[compile.LRInput][0] != float32(p.Manifest.Train.Optimizer.LR) {
		t.Error("the baseline schedule touched the learning rate")
	}
}
