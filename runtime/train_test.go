package runtime_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/datasets"
	"bmc/experiment"
	"bmc/internal/onnxcheck"
	"bmc/runtime"
	"bmc/tensorboard"
)

// small is a quick synth-av setting for tests.
var small = map[string]string{"train": "512", "val": "128", "test": "200"}

func compilePlan(t *testing.T, method string, hp map[string]string, data map[string]string, o experiment.Overrides) (*compile.Plan, datasets.Dataset) {
	t.Helper()
	if o.Threads == 0 {
		o.Threads = 1
	}
	p, d, err := experiment.Compile(experiment.Request{Method: method, Hyper: hp, Dataset: "synth-av", DataParams: data, Train: o})
	if err != nil {
		t.Fatal(err)
	}
	return p, d
}

func train(t *testing.T, p *compile.Plan, d datasets.Dataset, dir string) *runtime.Result {
	t.Helper()
	sched, err := experiment.Schedule(p)
	if err != nil {
		t.Fatal(err)
	}
	res, err := runtime.Train(p, d, sched, runtime.TrainOptions{OutDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestTrainWritesARunDirectory(t *testing.T) {
	p, d := compilePlan(t, "baseline", nil, small, experiment.Overrides{Epochs: 3})
	dir := t.TempDir()
	res := train(t, p, d, dir)
	for _, f := range []string{runtime.LogFile, runtime.BestCheckpoint, runtime.LastCheckpoint, runtime.RunStateFile, runtime.ResultsFile, runtime.ModelFile, filepath.Join(runtime.PlanDir, compile.ManifestFile)} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("run directory lacks %s: %v", f, err)
		}
	}
	logf, err := os.Open(filepath.Join(dir, runtime.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	var lines []runtime.EpochLog
	sc := bufio.NewScanner(logf)
	for sc.Scan() {
		var l runtime.EpochLog
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	if len(lines) != 3 {
		t.Fatalf("log has %d lines, want one per epoch (3)", len(lines))
	}
	for i, l := range lines {
		if l.Epoch != i || l.Val.Samples != 128 || l.Train.Loss <= 0 || l.FLOPs <= 0 {
			t.Errorf("epoch line %d is incomplete: %+v", i, l)
		}
		if l.Val.ModalityAcc["audio"] == 0 && l.Val.ModalityAcc["visual"] == 0 {
			t.Errorf("epoch %d logs no per-modality accuracy", i)
		}
	}
	// TensorBoard events mirror the log: one event per epoch with the same numbers.
	evFiles, _ := filepath.Glob(filepath.Join(dir, runtime.TensorBoardDir, "events.out.tfevents.*"))
	if len(evFiles) != 1 {
		t.Fatalf("event files: %v", evFiles)
	}
	events, err := tensorboard.ReadFile(evFiles[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1+len(lines) {
		t.Fatalf("%d events for %d epochs", len(events), len(lines))
	}
	for i, l := range lines {
		ev := events[i+1]
		if ev.Step != int64(i) || ev.Scalars["val/acc"] != float32(l.Val.Acc) || ev.Scalars["train/loss"] != float32(l.Train.Loss) ||
			ev.Scalars["val/acc_visual"] != float32(l.Val.ModalityAcc["visual"]) || ev.Scalars["lr"] != float32(l.LR) {
			t.Errorf("event %d %v does not match log line %+v", i, ev.Scalars, l)
		}
	}
	if lines[2].FLOPs != 3*lines[0].FLOPs {
		t.Errorf("FLOPs so far: %d after 3 epochs, %d after one", lines[2].FLOPs, lines[0].FLOPs)
	}
	// Ten classes: chance is 0.1.
	if res.Test.Samples != 200 || res.Test.Acc < 0.2 {
		t.Errorf("test metrics: %+v", res.Test)
	}
	if res.Imbalance.Degree == nil || len(res.Imbalance.Coalitions) != 4 {
		t.Errorf("imbalance: %+v", res.Imbalance)
	}
	files, _ := filepath.Glob(filepath.Join(dir, runtime.PlanDir, "*.onnx"))
	if err := onnxcheck.Files(append(files, filepath.Join(dir, runtime.ModelFile))...); err != nil {
		t.Fatal(err)
	}
	// A second run into the same directory is refused before training.
	sched, _ := experiment.Schedule(p)
	if _, err := runtime.Train(p, d, sched, runtime.TrainOptions{OutDir: dir}); err == nil || !strings.Contains(err.Error(), "already holds a run") {
		t.Errorf("reusing a run directory: %v", err)
	}
}

// The exported model must predict what the trainer's own evaluation
// predicted: same logits on every test sample, at another batch size.
func TestExportedModelMatchesTrainerEvaluation(t *testing.T) {
	p, d := compilePlan(t, "agm", nil, small, experiment.Overrides{Epochs: 2})
	dir := t.TempDir()
	res := train(t, p, d, dir)
	m, err := runtime.OpenModel(filepath.Join(dir, runtime.ModelFile), 7, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	test, _ := d.Split(datasets.Test)
	got, err := runtime.Evaluate(m, test, d.Spec(), []float32{1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if got.Acc != res.Test.Acc || got.F1 != res.Test.F1 || math.Abs(got.Loss-res.Test.Loss) > 1e-5 {
		t.Errorf("model.onnx: acc %v F1 %v loss %v; trainer: acc %v F1 %v loss %v", got.Acc, got.F1, got.Loss, res.Test.Acc, res.Test.F1, res.Test.Loss)
	}
	for mod, acc := range res.Test.ModalityAcc {
		if got.ModalityAcc[mod] != acc {
			t.Errorf("%s accuracy: model.onnx %v, trainer %v", mod, got.ModalityAcc[mod], acc)
		}
	}
	all, imb, err := runtime.MeasureImbalance(m, test, d.Spec(), runtime.EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if all.Acc != got.Acc || all.F1 != got.F1 || all.Loss != got.Loss {
		t.Errorf("the all-modalities pass of MeasureImbalance (acc %v F1 %v loss %v) differs from Evaluate's (acc %v F1 %v loss %v)", all.Acc, all.F1, all.Loss, got.Acc, got.F1, got.Loss)
	}
	for k, v := range res.Imbalance.Coalitions {
		if imb.Coalitions[k] != v {
			t.Errorf("coalition %q: model.onnx %v, trainer %v", k, imb.Coalitions[k], v)
		}
	}

	// Logits, sample by sample, against the plan's evaluation graph loaded
	// with the best checkpoint.
	state, err := runtime.ReadCheckpoint(filepath.Join(dir, runtime.BestCheckpoint))
	if err != nil {
		t.Fatal(err)
	}
	pr, err := runtime.Load(p, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	if err := pr.SetState(state); err != nil {
		t.Fatal(err)
	}
	compareLogits(t, pr.Predictor(), m, test, d.Spec())
}

func compareLogits(t *testing.T, a, b runtime.Predictor, split datasets.Split, spec datasets.Spec) {
	t.Helper()
	ba, bb := a.Batch(), b.Batch()
	n := min(ba.Size, bb.Size, split.Len())
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	for _, pair := range []struct {
		p runtime.Predictor
		b *runtime.Batch
	}{{a, ba}, {b, bb}} {
		fillRows(t, split, spec, pair.b, idx)
	}
	la, ua, err := a.Predict([]float32{1, 0})
	if err != nil {
		t.Fatal(err)
	}
	lb, ub, err := b.Predict([]float32{1, 0})
	if err != nil {
		t.Fatal(err)
	}
	c := a.Classes()
	for i := range n * c {
		if math.Abs(float64(la[i]-lb[i])) > 1e-5 || math.Abs(float64(ua["visual"][i]-ub["visual"][i])) > 1e-5 {
			t.Fatalf("logit %d differs: %v vs %v (visual %v vs %v)", i, la[i], lb[i], ua["visual"][i], ub["visual"][i])
		}
	}
}

func TestSameSeedSameRun(t *testing.T) {
	run := func(seed uint64) []byte {
		p, d := compilePlan(t, "ogm", map[string]string{"modulation_starts": "0"}, small, experiment.Overrides{Epochs: 2, Seed: &seed})
		dir := t.TempDir()
		train(t, p, d, dir)
		b, err := os.ReadFile(filepath.Join(dir, runtime.LastCheckpoint))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := run(3), run(3), run(4)
	if !bytes.Equal(a, b) {
		t.Error("two runs with the same seed ended with different parameters")
	}
	if bytes.Equal(a, c) {
		t.Error("runs with different seeds ended with identical parameters")
	}
}

// The paper's Figure 2 on the built-in data: inside the jointly trained
// model the weak modality (visual) is clearly worse than the same modality
// trained alone.
func TestSynthShowsFigure2Imbalance(t *testing.T) {
	for _, seed := range []uint64{0, 1} {
		joint, d := compilePlan(t, "baseline", nil, map[string]string{"seed": "0"}, experiment.Overrides{Seed: &seed})
		alone, _ := compilePlan(t, "unimodal", map[string]string{"modality": "visual"}, map[string]string{"seed": "0"}, experiment.Overrides{Seed: &seed})
		rj := train(t, joint, d, t.TempDir())
		ra := train(t, alone, d, t.TempDir())
		inside, single := rj.Test.ModalityAcc["visual"], ra.Test.Acc
		t.Logf("seed %d: visual inside the joint model %.3f, alone %.3f; audio inside %.3f; fused %.3f", seed, inside, single, rj.Test.ModalityAcc["audio"], rj.Test.Acc)
		if inside > single-0.15 {
			t.Errorf("seed %d: visual inside the joint model %.3f is not clearly below visual alone %.3f", seed, inside, single)
		}
		if rj.Test.Acc <= rj.Test.ModalityAcc["audio"] {
			t.Errorf("seed %d: the fused model (%.3f) does not beat its own audio logits (%.3f)", seed, rj.Test.Acc, rj.Test.ModalityAcc["audio"])
		}
	}
}

func TestBadLabelIsReported(t *testing.T) {
	p, d := compilePlan(t, "baseline", nil, small, experiment.Overrides{Epochs: 1})
	sched, _ := experiment.Schedule(p)
	_, err := runtime.Train(p, badLabels{d}, sched, runtime.TrainOptions{OutDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "label 99") || !strings.Contains(err.Error(), "sample") {
		t.Fatalf("a label outside the classes gave %v", err)
	}
}

// badLabels wraps a dataset and reports an impossible label.
type badLabels struct{ datasets.Dataset }

func (b badLabels) Split(name string) (datasets.Split, error) {
	s, err := b.Dataset.Split(name)
	return badSplit{s}, err
}

type badSplit struct{ datasets.Split }

func (b badSplit) Read(i int, dst []datasets.Buffer) (int64, error) {
	if _, err := b.Split.Read(i, dst); err != nil {
		return 0, err
	}
	return 99, nil
}

// A training sample that fails to read stops the run naming it, or, with
// SkipBad, is dropped and listed in that epoch's log line.
func TestUnreadableSampleStopsOrIsSkipped(t *testing.T) {
	p, d := compilePlan(t, "baseline", nil, small, experiment.Overrides{Epochs: 2})
	sched, _ := experiment.Schedule(p)
	broken := brokenSample{Dataset: d, index: 17}
	_, err := runtime.Train(p, broken, sched, runtime.TrainOptions{OutDir: t.TempDir(), Workers: 3})
	if err == nil || !strings.Contains(err.Error(), "sample 17") || !strings.Contains(err.Error(), "clip_17.npy is truncated") {
		t.Fatalf("an unreadable sample gave %v", err)
	}
	dir := t.TempDir()
	if _, err := runtime.Train(p, broken, sched, runtime.TrainOptions{OutDir: dir, Workers: 3, SkipBad: true}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, runtime.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2", len(lines))
	}
	for i, line := range lines {
		var l runtime.EpochLog
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if len(l.Train.Skipped) != 1 || l.Train.Skipped[0].Index != 17 || !strings.Contains(l.Train.Skipped[0].Error, "clip_17.npy is truncated") {
			t.Errorf("epoch %d: skipped %+v, want sample 17", i, l.Train.Skipped)
		}
	}
}

// brokenSample fails to read one training sample.
type brokenSample struct {
	datasets.Dataset
	index int
}

func (b brokenSample) Split(name string) (datasets.Split, error) {
	s, err := b.Dataset.Split(name)
	if name != datasets.Train {
		return s, err
	}
	return brokenSplit{s, b.index}, err
}

type brokenSplit struct {
	datasets.Split
	index int
}

func (b brokenSplit) Read(i int, dst []datasets.Buffer) (int64, error) {
	if i == b.index {
		return 0, fmt.Errorf("audio/clip_%d.npy is truncated", i)
	}
	return b.Split.Read(i, dst)
}

func TestDivergenceStopsWithAClearError(t *testing.T) {
	p, d := compilePlan(t, "baseline", nil, small, experiment.Overrides{Epochs: 2, LR: 1e30})
	sched, _ := experiment.Schedule(p)
	_, err := runtime.Train(p, d, sched, runtime.TrainOptions{OutDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "epoch 0 step") || !strings.Contains(err.Error(), "loss") ||
		!strings.Contains(err.Error(), "tensor ") || !strings.Contains(err.Error(), "last good checkpoint is kept") {
		t.Fatalf("a diverging run gave %v", err)
	}
}

// Three modalities through the whole path: 8 coalitions, I over 3 pairs.
func TestThreeModalityMethodsTrain(t *testing.T) {
	for _, method := range []string{"baseline", "ogm", "agm"} {
		p, d, err := experiment.Compile(experiment.Request{Method: method, Dataset: "synth-avt", DataParams: small,
			Hyper: map[string]string{}, Train: experiment.Overrides{Epochs: 2, Threads: 1}})
		if err != nil {
			t.Fatal(err)
		}
		res := train(t, p, d, t.TempDir())
		if len(res.Imbalance.Coalitions) != 8 || len(res.Imbalance.Shapley) != 3 || res.Imbalance.Degree == nil {
			t.Errorf("%s: imbalance %+v", method, res.Imbalance)
		}
		var sum float64
		for _, v := range res.Imbalance.Shapley {
			sum += v
		}
		// Efficiency: Σφ = v(M) − v(∅).
		if want := res.Imbalance.Coalitions["audio+visual+text"] - res.Imbalance.Coalitions[""]; math.Abs(sum-want) > 1e-9 {
			t.Errorf("%s: Σφ = %v, v(M) − v(∅) = %v", method, sum, want)
		}
	}
}

func TestStepLRIsAppliedPerEpoch(t *testing.T) {
	p, d := compilePlan(t, "baseline", nil, small, experiment.Overrides{Epochs: 3, LR: 0.08, StepSize: 1, Gamma: 0.5})
	dir := t.TempDir()
	train(t, p, d, dir)
	data, err := os.ReadFile(filepath.Join(dir, runtime.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	var lrs []float64
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var l runtime.EpochLog
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		lrs = append(lrs, l.LR)
	}
	want := []float64{0.08, 0.04, 0.02}
	for i := range want {
		if i >= len(lrs) || math.Abs(lrs[i]-want[i]) > 1e-12 {
			t.Fatalf("learning rates %v, want %v", lrs, want)
		}
	}
}

// Every plan bmc can compile today loads in ONNX Runtime and passes the
// independent ONNX checker, for two and three modalities.
func TestEveryPlanLoadsAndPassesTheChecker(t *testing.T) {
	var files []string
	for _, ds := range []string{"synth-av", "synth-avt"} {
		for _, c := range []struct {
			method string
			hp     map[string]string
		}{
			{"baseline", nil}, {"unimodal", map[string]string{"modality": "visual"}},
			{"ogm", map[string]string{"method": "OGM_GE"}}, {"ogm", map[string]string{"method": "OGM_GE3"}},
			{"agm", nil}, {"agm", map[string]string{"compat": "true"}},
		} {
			p, _, err := experiment.Compile(experiment.Request{Method: c.method, Hyper: c.hp, Dataset: ds, DataParams: small})
			if err != nil {
				t.Fatalf("%s on %s: %v", c.method, ds, err)
			}
			pr, err := runtime.Load(p, runtime.Options{Threads: 1})
			if err != nil {
				t.Fatalf("%s on %s: %v", c.method, ds, err)
			}
			pr.Close()
			dir := t.TempDir()
			if err := p.Save(dir); err != nil {
				t.Fatal(err)
			}
			fs, _ := filepath.Glob(filepath.Join(dir, "*.onnx"))
			files = append(files, fs...)
		}
	}
	if err := onnxcheck.Files(files...); err != nil {
		t.Fatal(err)
	}
}

// A run that diverges after good epochs stops and keeps their checkpoints:
// StepLR multiplies the rate by 1e30 at epoch 2.
func TestDivergenceKeepsTheLastGoodCheckpoint(t *testing.T) {
	p, d := compilePlan(t, "baseline", nil, small, experiment.Overrides{Epochs: 4, StepSize: 2, Gamma: 1e30})
	sched, _ := experiment.Schedule(p)
	dir := t.TempDir()
	if _, err := runtime.Train(p, d, sched, runtime.TrainOptions{OutDir: dir}); err == nil || !strings.Contains(err.Error(), "epoch 2 step") {
		t.Fatalf("the run did not stop in epoch 2: %v", err)
	}
	for _, f := range []string{runtime.BestCheckpoint, runtime.LastCheckpoint} {
		state, err := runtime.ReadCheckpoint(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range state {
			for _, x := range v {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					t.Fatalf("%s: tensor %s holds %v", f, k, x)
				}
			}
		}
	}
	var st runtime.RunState
	data, _ := os.ReadFile(filepath.Join(dir, runtime.RunStateFile))
	if err := json.Unmarshal(data, &st); err != nil || st.Epoch != 1 {
		t.Errorf("checkpoint.json: %+v, %v; want the last good epoch 1", st, err)
	}
}
