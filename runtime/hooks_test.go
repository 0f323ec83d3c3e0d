package runtime_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/datasets"
	"bmc/flops"
	"bmc/graph"
	"bmc/graph/nn"
	"bmc/methods"
	"bmc/runtime"
	"bmc/safetensors"
)

// These tests drive the trainer's schedule hooks (epoch plans, passes,
// forked state, Go-side schedule state across a resume) with a plan built
// here: a default step graph whose loss a runtime input scales, a second
// train graph that sees the audio only, and an auxiliary feature graph.

const hookBatch = 32

func hookPlan(t *testing.T, epochs int) (*compile.Plan, datasets.Dataset) {
	t.Helper()
	d, err := datasets.Open("synth-av", datasets.Options{Params: small})
	if err != nil {
		t.Fatal(err)
	}
	spec := d.Spec()
	ms := nn.ModelSpec{Classes: int64(spec.Classes), Fusion: nn.FusionConcat}
	for _, m := range spec.Modalities {
		ms.Modalities = append(ms.Modalities, nn.ModalitySpec{Name: m.Name, Shape: graph.Shape(m.Shape),
			Encoder: nn.EncoderSpec{Kind: "mlp", Hidden: []int64{16}, Out: 8}})
	}
	model, err := nn.New(ms)
	if err != nil {
		t.Fatal(err)
	}
	cfg := compile.TrainConfig{Epochs: epochs, BatchSize: hookBatch, EvalBatchSize: 64, Threads: 1, Protocol: "bmc",
		Optimizer: compile.OptimizerConfig{Name: compile.SGD, LR: 0.05, Momentum: 0.9}, Scheduler: compile.StepLR{StepSize: 30, Gamma: 0.1}}
	b, err := compile.NewBuilder(model, compile.DatasetRef{Name: "synth-av", Params: small, Spec: spec}, cfg, "hooks", nil)
	if err != nil {
		t.Fatal(err)
	}
	step := func(name string, keep []string, scaled bool) *compile.Step {
		s := b.NewStep(name, compile.RoleTrain, hookBatch)
		out, err := s.Forward(nn.Train, keep)
		if err != nil {
			t.Fatal(err)
		}
		g := s.G
		loss := compile.CrossEntropy(g, out.Logits, s.Labels)
		if scaled {
			loss = g.Mul(loss, g.ReduceSum(s.Input("hooks.scale", graph.Shape{1}, []float32{1}, "loss scale"), false))
		}
		grads, err := s.Gradients(loss)
		if err != nil {
			t.Fatal(err)
		}
		s.Optimize(grads)
		s.Metric("loss", g.Reshape(loss, 1))
		s.Metric("logits", out.Logits)
		return s
	}
	if err := b.Add(step("train", nil, true), 1); err != nil {
		t.Fatal(err)
	}
	if err := b.AddGraph(step("train.audio", []string{"audio"}, false), compile.Run{Per: compile.PerEpoch, Count: 1, Note: "one audio-only step", Extra: true}); err != nil {
		t.Fatal(err)
	}
	f := b.NewStep("features", compile.RoleAux, 64)
	out, err := f.Forward(nn.Eval, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Metric("features/audio", out.Features["audio"])
	f.Metric("logits", out.Logits)
	valBatches := compile.Batches(spec.Sizes[datasets.Val], 64, false)
	if err := b.AddGraph(f, compile.Run{Per: compile.PerEpoch, Count: valBatches, Note: "feature pass over the validation split", Extra: true}); err != nil {
		t.Fatal(err)
	}
	p, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return p, d
}

// hookSchedule records what the trainer asks of it and keeps Go-side
// state (the sum of the step losses) that shapes training: the loss scale
// of every step is 1/(1 + LossSum/100).
type hookSchedule struct {
	LossSum float64
	calls   []string
	// plan, begin and end run in PlanEpoch, BeginEpoch and EndEpoch.
	plan       func(r methods.Run) (methods.EpochPlan, error)
	begin, end func(r methods.Run) error
	// failAt makes BeginEpoch of that epoch fail (a run stopped there).
	failAt int
}

func newHookSchedule() *hookSchedule { return &hookSchedule{failAt: -1} }

func (h *hookSchedule) BeginEpoch(r methods.Run) error {
	if r.Epoch() == h.failAt {
		return errors.New("stopped on purpose")
	}
	if h.begin != nil {
		return h.begin(r)
	}
	return nil
}

func (h *hookSchedule) PlanEpoch(r methods.Run) (methods.EpochPlan, error) {
	if h.plan != nil {
		return h.plan(r)
	}
	return methods.EpochPlan{{}}, nil
}

func (h *hookSchedule) EndEpoch(r methods.Run) error {
	h.calls = append(h.calls, fmt.Sprintf("end e%d steps=%d", r.Epoch(), r.Step()))
	if h.end != nil {
		return h.end(r)
	}
	return nil
}

func (h *hookSchedule) BeforeStep(r methods.Run) error {
	h.calls = append(h.calls, fmt.Sprintf("e%d p%d s%d g%d", r.Epoch(), r.Phase(), r.Step(), r.GlobalStep()))
	buf, err := r.Input("hooks.scale")
	if err != nil {
		return err
	}
	buf[0] = float32(1 / (1 + h.LossSum/100))
	return nil
}

func (h *hookSchedule) AfterStep(r methods.Run) error {
	loss, err := r.Metric("loss")
	if err != nil {
		return err
	}
	h.LossSum += float64(loss[0])
	return nil
}

func (h *hookSchedule) MarshalState() ([]byte, error) { return json.Marshal(h.LossSum) }
func (h *hookSchedule) UnmarshalState(data []byte) error {
	return json.Unmarshal(data, &h.LossSum)
}

func trainHooks(t *testing.T, p *compile.Plan, d datasets.Dataset, sched methods.Schedule, dir string, resume bool) (*runtime.Result, error) {
	t.Helper()
	return runtime.Train(p, d, sched, runtime.TrainOptions{OutDir: dir, Resume: resume, Workers: 2})
}

// An epoch plan's phases run their graphs on their samples in order, with
// the step counters the schedule sees running across phases.
func TestEpochPlanRunsItsPhases(t *testing.T) {
	p, d := hookPlan(t, 2)
	steps := 512 / hookBatch
	sched := newHookSchedule()
	sched.plan = func(r methods.Run) (methods.EpochPlan, error) {
		if r.StepsPerEpoch() != steps {
			return nil, fmt.Errorf("before the plan StepsPerEpoch is %d, want the default %d", r.StepsPerEpoch(), steps)
		}
		first := make([]int, hookBatch+5) // one step; the partial batch is dropped
		for i := range first {
			first[i] = 3 * i
		}
		return methods.EpochPlan{{}, {Graphs: []string{"train.audio"}, Samples: first}}, nil
	}
	res, err := trainHooks(t, p, d, sched, t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	g := 0
	for e := range 2 {
		for s := range steps + 1 {
			phase := 0
			if s == steps {
				phase = 1
			}
			want = append(want, fmt.Sprintf("e%d p%d s%d g%d", e, phase, s, g))
			g++
		}
		want = append(want, fmt.Sprintf("end e%d steps=%d", e, steps+1))
	}
	if !slices.Equal(sched.calls, want) {
		t.Errorf("schedule calls:\n%s\nwant:\n%s", strings.Join(sched.calls, "\n"), strings.Join(want, "\n"))
	}
	rep, err := flops.PlanReport(p)
	if err != nil {
		t.Fatal(err)
	}
	// The run made the default steps, one audio step per epoch and the
	// validation passes; the declared feature pass was never run.
	valBatches := compile.Batches(128, 64, false)
	wantFLOPs := 2 * (int64(steps)*rep.PerGraph["train"] + rep.PerGraph["train.audio"] + valBatches*rep.PerGraph["eval"])
	if res.TrainingFLOPs != wantFLOPs {
		t.Errorf("training FLOPs %d, want the tally of the runs made %d", res.TrainingFLOPs, wantFLOPs)
	}
	if res.PlannedFLOPs != wantFLOPs+2*valBatches*rep.PerGraph["features"] {
		t.Errorf("planned FLOPs %d, want the steps, audio steps, validation and feature passes the plan declares", res.PlannedFLOPs)
	}
	if len(rep.Extras) != 2 || rep.Extras[0].Training.Total != 2*rep.PerGraph["train.audio"] {
		t.Errorf("extras %+v: want the audio step and the feature pass, each over 2 epochs", rep.Extras)
	}
}

func TestEpochPlanErrors(t *testing.T) {
	p, d := hookPlan(t, 1)
	cases := []struct {
		plan methods.EpochPlan
		want string
	}{
		{methods.EpochPlan{{Graphs: []string{"features"}}}, `"features", which is not a train graph`},
		{methods.EpochPlan{{Graphs: []string{"nope"}}}, `"nope", which is not a train graph`},
		{methods.EpochPlan{{Samples: []int{0, 512}}}, "sample 512 at position 1 is outside the training split's 512 samples"},
		{methods.EpochPlan{{Samples: []int{1, 2}}}, "epoch 0 trained no step"},
	}
	for _, tc := range cases {
		sched := newHookSchedule()
		sched.plan = func(methods.Run) (methods.EpochPlan, error) { return tc.plan, nil }
		_, err := trainHooks(t, p, d, sched, t.TempDir(), false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("plan %+v: error %v, want one containing %q", tc.plan, err, tc.want)
		}
	}
}

// A pass reads the samples it is given, in order, with the last batch
// padded, and its features do not depend on the batch a sample is in.
func TestPassReadsTheGivenSamples(t *testing.T) {
	p, d := hookPlan(t, 1)
	val, _ := d.Split(datasets.Val)
	features := func(r methods.Run, samples []int) (map[int][]float32, error) {
		out := map[int][]float32{}
		err := r.Pass(methods.PassOptions{Graphs: []string{"features"}, Split: datasets.Val, Samples: samples, Purpose: "test"},
			func(b methods.PassBatch) error {
				f, err := b.Metric("features", "features/audio")
				if err != nil {
					return err
				}
				if len(b.Samples) != b.N || len(b.Labels) != b.N {
					return fmt.Errorf("batch %d: %d samples and %d labels for %d rows", b.Index, len(b.Samples), len(b.Labels), b.N)
				}
				for row, i := range b.Samples {
					label, err := val.Read(i, bufsOf(d.Spec()))
					if err != nil {
						return err
					}
					if label != b.Labels[row] {
						return fmt.Errorf("sample %d: label %d, the split says %d", i, b.Labels[row], label)
					}
					out[i] = slices.Clone(f[row*8 : (row+1)*8])
				}
				return nil
			})
		return out, err
	}
	var whole, picked map[int][]float32
	sched := newHookSchedule()
	sched.begin = func(r methods.Run) error {
		var err error
		if whole, err = features(r, nil); err != nil {
			return err
		}
		picked, err = features(r, []int{127, 5, 5, 64})
		return err
	}
	if _, err := trainHooks(t, p, d, sched, t.TempDir(), false); err != nil {
		t.Fatal(err)
	}
	if len(whole) != 128 {
		t.Fatalf("the pass over the validation split gave %d samples, want 128", len(whole))
	}
	for i, f := range picked {
		if !slices.Equal(f, whole[i]) {
			t.Errorf("sample %d: features %v in a small batch, %v in the whole pass", i, f, whole[i])
		}
	}
	if len(picked) != 3 {
		t.Errorf("picked pass gave %d distinct samples, want 3", len(picked))
	}
}

func bufsOf(spec datasets.Spec) []datasets.Buffer {
	var out []datasets.Buffer
	for _, m := range spec.Modalities {
		out = append(out, datasets.Buffer{F32: make([]float32, m.Size())})
	}
	return out
}

// Training a forked copy of the state and restoring the snapshot leaves
// the run exactly as it would be without the fork, and a pass cannot run
// inside a step.
func TestForkedTrainingLeavesTheRunAlone(t *testing.T) {
	p, d := hookPlan(t, 2)
	plainDir, forkDir := t.TempDir(), t.TempDir()
	if _, err := trainHooks(t, p, d, newHookSchedule(), plainDir, false); err != nil {
		t.Fatal(err)
	}
	sched := newHookSchedule()
	changed := false
	sched.begin = func(r methods.Run) error {
		if r.Epoch() != 1 {
			return nil
		}
		snap := r.Snapshot()
		err := r.Pass(methods.PassOptions{Graphs: []string{"train"}, Split: datasets.Train, DropLast: true, LR: 0.5, Purpose: "fork"},
			func(methods.PassBatch) error { return nil })
		if err != nil {
			return err
		}
		w, err := r.State("fusion_module.fc_out.weight")
		if err != nil {
			return err
		}
		changed = !slices.Equal(w, snap["fusion_module.fc_out.weight"])
		return r.Restore(snap)
	}
	if _, err := trainHooks(t, p, d, sched, forkDir, false); err != nil {
		t.Fatal(err)
	}
	if !changed {
		t.Fatal("training the fork changed nothing; the test checks nothing")
	}
	sameCheckpoints(t, plainDir, forkDir)

	inStep := newHookSchedule()
	inStep.begin = nil
	_, err := runtime.Train(p, d, passInStep{inStep}, runtime.TrainOptions{OutDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "cannot run inside a step") {
		t.Errorf("a pass in BeforeStep: %v", err)
	}
}

type passInStep struct{ *hookSchedule }

func (s passInStep) BeforeStep(r methods.Run) error {
	return r.Pass(methods.PassOptions{Graphs: []string{"features"}, Split: datasets.Val}, func(methods.PassBatch) error { return nil })
}

// A run stopped after an epoch resumes with the schedule's Go-side state
// and reaches the uninterrupted run's parameters bit for bit.
func TestScheduleStateSurvivesAResume(t *testing.T) {
	p, d := hookPlan(t, 4)
	whole, stopped := t.TempDir(), t.TempDir()
	a := newHookSchedule()
	resA, err := trainHooks(t, p, d, a, whole, false)
	if err != nil {
		t.Fatal(err)
	}
	b := newHookSchedule()
	b.failAt = 2
	if _, err := trainHooks(t, p, d, b, stopped, false); err == nil || !strings.Contains(err.Error(), "stopped on purpose") {
		t.Fatalf("the stopped run: %v", err)
	}
	c := newHookSchedule()
	resC, err := trainHooks(t, p, d, c, stopped, true)
	if err != nil {
		t.Fatal(err)
	}
	if a.LossSum == 0 || math.Float64bits(a.LossSum) != math.Float64bits(c.LossSum) {
		t.Errorf("schedule state: %v uninterrupted, %v resumed", a.LossSum, c.LossSum)
	}
	sameCheckpoints(t, whole, stopped)
	if resA.TrainingFLOPs != resC.TrainingFLOPs || resA.TrainingFLOPs != resA.PlannedFLOPs-4*compile.Batches(128, 64, false)*mustReport(t, p).PerGraph["features"]-4*mustReport(t, p).PerGraph["train.audio"] {
		t.Errorf("training FLOPs %d uninterrupted, %d resumed (planned %d)", resA.TrainingFLOPs, resC.TrainingFLOPs, resA.PlannedFLOPs)
	}
}

func mustReport(t *testing.T, p *compile.Plan) flops.Report {
	t.Helper()
	r, err := flops.PlanReport(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sameCheckpoints(t *testing.T, a, b string) {
	t.Helper()
	for _, f := range []string{runtime.LastCheckpoint, runtime.BestCheckpoint} {
		x, err := safetensors.ReadFile(filepath.Join(a, f))
		if err != nil {
			t.Fatal(err)
		}
		y, err := safetensors.ReadFile(filepath.Join(b, f))
		if err != nil {
			t.Fatal(err)
		}
		if len(x.Tensors) != len(y.Tensors) {
			t.Fatalf("%s: %d vs %d tensors", f, len(x.Tensors), len(y.Tensors))
		}
		for k, tx := range x.Tensors {
			if !bytes.Equal(tx.Data, y.Tensors[k].Data) {
				t.Errorf("%s: tensor %s differs", f, k)
			}
		}
	}
}

// positionSchedule records the batch positions of every step.
type positionSchedule struct {
	*hookSchedule
	positions [][]int
}

func (s *positionSchedule) BeforeStep(r methods.Run) error {
	s.positions = append(s.positions, slices.Clone(r.BatchPositions()))
	return s.hookSchedule.BeforeStep(r)
}

// A schedule learns where each row of a step sits in its phase's samples,
// also when --skip-bad dropped one of them.
func TestBatchPositionsFollowSkippedSamples(t *testing.T) {
	p, d := hookPlan(t, 1)
	samples := make([]int, 2*hookBatch+1)
	for i := range samples {
		samples[i] = 2 * i
	}
	sched := &positionSchedule{hookSchedule: newHookSchedule()}
	sched.plan = func(methods.Run) (methods.EpochPlan, error) { return methods.EpochPlan{{Samples: samples}}, nil }
	bad := unreadable{d, map[string]func(int) bool{datasets.Train: func(i int) bool { return i == 6 }}}
	if _, err := runtime.Train(p, bad, sched, runtime.TrainOptions{OutDir: filepath.Join(t.TempDir(), "run"), SkipBad: true}); err != nil {
		t.Fatal(err)
	}
	var want [][]int
	var row []int
	for pos := range samples {
		if samples[pos] == 6 {
			continue
		}
		if row = append(row, pos); len(row) == hookBatch {
			want = append(want, row)
			row = nil
		}
	}
	if len(sched.positions) != 2 || !slices.Equal(sched.positions[0], want[0]) || !slices.Equal(sched.positions[1], want[1]) {
		t.Errorf("batch positions %v, want %v", sched.positions, want)
	}
}

// With the plan's initial values released after loading, Run.Initial reads
// them back from the run directory.
func TestInitialValuesAfterRelease(t *testing.T) {
	p, d := hookPlan(t, 2)
	want := map[string][]float32{}
	for k, v := range p.Init {
		want[k] = slices.Clone(v)
	}
	sched := newHookSchedule()
	checked := 0
	sched.begin = func(r methods.Run) error {
		for _, st := range r.Manifest().State {
			got, err := r.Initial(st.Key)
			if err != nil {
				return err
			}
			w, ok := want[st.Key]
			if !ok {
				w = make([]float32, st.Shape.Size())
			}
			if !slices.Equal(got, w) {
				return fmt.Errorf("Initial(%s) differs from the plan's initial value", st.Key)
			}
			checked++
		}
		return nil
	}
	if _, err := runtime.Train(p, d, sched, runtime.TrainOptions{OutDir: t.TempDir(), ReleaseInitialValues: true}); err != nil {
		t.Fatal(err)
	}
	if p.Init != nil || checked == 0 {
		t.Errorf("plan initial values kept (%v) or nothing checked (%d)", p.Init != nil, checked)
	}
}
