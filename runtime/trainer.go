package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"time"

	"bmc/compile"
	"bmc/datasets"
	"bmc/flops"
	"bmc/internal/atomicfile"
	"bmc/internal/randstream"
	"bmc/methods"
	"bmc/tensorboard"
)

// Files of a run directory.
const (
	LogFile        = "log.jsonl"
	BestCheckpoint = "best.safetensors"
	LastCheckpoint = "last.safetensors"
	RunStateFile   = "checkpoint.json"
	ResultsFile    = "results.json"
	ModelFile      = "model.onnx"
	PlanDir        = "plan"
	TensorBoardDir = "tensorboard"
)

// TrainOptions configure a training run.
type TrainOptions struct {
	// OutDir is the run directory. A new run needs one that holds no run;
	// Resume continues the run in it.
	OutDir string
	// Resume continues a run from its last checkpoint (written at the end of
	// every epoch): a run killed at any moment continues from the last
	// finished epoch and reaches the parameters it would have reached.
	Resume bool
	// Threads overrides the plan's ONNX Runtime thread count when > 0.
	Threads int
	// Target is the device and precision every graph runs on (zero: the
	// CPU in fp32); Train checks it before it writes anything.
	Target
	// Progress receives one human-readable line per epoch (nil: silent).
	Progress io.Writer
	// Files are written into a new run directory before training starts
	// (name → content), such as the effective configuration.
	Files map[string][]byte
	// Workers is the number of goroutines reading training samples
	// (0: one per CPU).
	Workers int
	// SkipBad drops samples that fail to read instead of stopping the run:
	// each epoch's log line lists the training and validation samples it
	// dropped, results.json the test samples.
	SkipBad bool
	// ReleaseInitialValues drops the plan's initial values (p.Init) once
	// they are loaded into the training state, so a training process does
	// not hold the parameters twice; a schedule's Run.Initial then reads
	// them from the run's plan directory. The plan must not be trained again.
	ReleaseInitialValues bool
	// Profile, when set, has ONNX Runtime write a per-node timing profile of
	// every graph (Chrome trace JSON, file names starting with Profile) when
	// the run ends.
	Profile string
}

// Result is what a training run reports; results.json holds it.
type Result struct {
	Method     string            `json:"method"`
	Hyper      map[string]string `json:"hyper"`
	Dataset    string            `json:"dataset"`
	Protocol   string            `json:"protocol"`
	Epochs     int               `json:"epochs"`
	BestEpoch  int               `json:"best_epoch"`
	Validation SplitMetrics      `json:"validation"`
	Test       SplitMetrics      `json:"test"`
	Imbalance  Imbalance         `json:"imbalance"`
	// TrainingFLOPs is the whole run's training cost: every graph run the
	// training made (steps, the method's passes, validation) times the
	// graph's static count. PlannedFLOPs is the static report's prediction,
	// which it equals unless the schedule's work depends on the data.
	TrainingFLOPs int64   `json:"training_flops"`
	PlannedFLOPs  int64   `json:"planned_training_flops"`
	Seconds       float64 `json:"seconds"`
	// Device and Precision are where the (last) training process ran.
	Device    string `json:"device"`
	Precision string `json:"precision"`
}

// EpochLog is one line of log.jsonl. Train and Val have one naming
// scheme, that of results.json's metrics: train is the epoch's running
// metrics over the batches it trained on (and the samples --skip-bad
// dropped), val one pass over the validation split.
type EpochLog struct {
	Epoch   int                `json:"epoch"`
	LR      float64            `json:"lr"`
	Train   SplitMetrics       `json:"train"`
	Val     SplitMetrics       `json:"val"`
	Method  map[string]float64 `json:"method,omitempty"`
	FLOPs   int64              `json:"train_flops_so_far"`
	Best    bool               `json:"best"`
	Seconds float64            `json:"seconds"`
}

// SkippedSample is a sample that failed to read.
type SkippedSample struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// skippedSamples lists what a loader skipped.
func skippedSamples(in []datasets.SkippedSample) []SkippedSample {
	var out []SkippedSample
	for _, s := range in {
		out = append(out, SkippedSample{Index: s.Index, Error: s.Err.Error()})
	}
	return out
}

// scalars are the line's numbers as TensorBoard tags (train/…, val/…,
// method/…, lr, train_flops).
func (l EpochLog) scalars() map[string]float64 {
	out := map[string]float64{"lr": l.LR, "train_flops": float64(l.FLOPs)}
	l.Train.addScalars("train/", out)
	l.Val.addScalars("val/", out)
	for k, v := range l.Method {
		out["method/"+k] = v
	}
	return out
}

// Train runs a plan: every epoch trains on shuffled batches (the last partial
// batch dropped), validates, logs a JSON line and keeps the best checkpoint
// by validation accuracy and the last one; then it evaluates the best model
// on the test split (performance and Shapley imbalance) and exports
// model.onnx.
func Train(p *compile.Plan, data datasets.Dataset, sched methods.Schedule, opt TrainOptions) (res *Result, err error) {
	if err := opt.Target.Check(); err != nil {
		return nil, err
	}
	dir, err := openRunDir(opt.OutDir, opt.Resume)
	if err != nil {
		return nil, err
	}
	defer func() { dir.close(err) }()
	t, err := newTrainer(p, data, sched, opt)
	if err != nil {
		return nil, err
	}
	defer t.close()
	for epoch := t.state.Epoch + 1; epoch < p.Manifest.Train.Epochs; epoch++ {
		if err := t.epoch(epoch); err != nil {
			return nil, err
		}
	}
	return t.finish()
}

// trainer is one training run in progress.
type trainer struct {
	plan       *compile.Plan
	sched      methods.Schedule
	opt        TrainOptions
	pr         *Program
	run        *trainRun
	spec       datasets.Spec
	train      datasets.Split
	val        datasets.Split
	test       datasets.Split
	batch      *Batch
	loader     *datasets.Loader
	valEval    *evaluator
	report     flops.Report
	logf       *os.File
	state      RunState
	start      time.Time
	keepAll    []float32
	stateShape map[string][]int64
	tb         *tensorboard.Writer
	progress   *progress
	// threads is ONNX Runtime's intra-op thread count.
	threads int
	// initial are the plan's initial values read back from the run
	// directory (ReleaseInitialValues).
	initial map[string][]float32
	// passLoaders read the splits for the schedule's passes.
	passLoaders map[passLoaderKey]*datasets.Loader
}

func newTrainer(p *compile.Plan, data datasets.Dataset, sched methods.Schedule, opt TrainOptions) (*trainer, error) {
	t := &trainer{plan: p, sched: sched, opt: opt, start: time.Now(), state: RunState{Epoch: -1, BestEpoch: -1, BestAcc: math.Inf(-1)}}
	m := &p.Manifest
	if sched == nil {
		return nil, errors.New("train: no method schedule given")
	}
	if err := checkDiskSpace(opt.OutDir, runBytes(m), freeBytes); err != nil {
		return nil, err
	}
	var err error
	if t.report, err = flops.PlanReport(p); err != nil {
		return nil, err
	}
	t.spec = data.Spec()
	if t.train, err = data.Split(datasets.Train); err != nil {
		return nil, err
	}
	valName := datasets.Val
	if m.Train.Protocol == "balancemm" {
		valName = datasets.Test
	}
	if t.val, err = data.Split(valName); err != nil {
		return nil, err
	}
	if t.test, err = data.Split(datasets.Test); err != nil {
		return nil, err
	}
	if t.train.Len() != t.spec.Sizes[datasets.Train] || t.train.Len() < m.Train.BatchSize {
		return nil, fmt.Errorf("dataset %s: the training split has %d samples, the plan was compiled for %d (batch %d)", t.spec.Name, t.train.Len(), t.spec.Sizes[datasets.Train], m.Train.BatchSize)
	}
	if !opt.Resume {
		if err := p.Save(filepath.Join(opt.OutDir, PlanDir)); err != nil {
			return nil, err
		}
		for name, data := range opt.Files {
			if err := atomicfile.WriteBytes(filepath.Join(opt.OutDir, name), data); err != nil {
				return nil, err
			}
		}
	}
	threads := m.Train.Threads
	if opt.Threads > 0 {
		threads = opt.Threads
	}
	t.threads = threads
	if t.pr, err = Load(p, Options{Threads: threads, Profile: opt.Profile, Target: opt.Target}); err != nil {
		return nil, err
	}
	if opt.ReleaseInitialValues {
		p.Init = nil
		// Give the memory back now, before the training's own peak.
		debug.FreeOSMemory()
	}
	t.run = &trainRun{t: t, pr: t.pr, seed: m.Train.Seed, global: 0}
	if t.batch, err = t.pr.BatchOf(m.StepGraphs[0]); err != nil {
		t.close()
		return nil, err
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = goruntime.NumCPU()
	}
	if t.loader, err = datasets.NewLoader(t.train, t.spec, datasets.LoaderOptions{
		BatchSize: m.Train.BatchSize, Workers: workers, Seed: m.Train.Seed, DropLast: true, SkipBad: opt.SkipBad}); err != nil {
		t.close()
		return nil, err
	}
	if t.valEval, err = newEvaluator(t.pr.Predictor(), t.val, t.spec, EvalOptions{SkipBad: opt.SkipBad}); err != nil {
		t.close()
		return nil, err
	}
	t.keepAll = ones(len(m.ModalityNames()))
	t.stateShape = map[string][]int64{}
	for _, s := range m.State {
		t.stateShape[s.Key] = s.Shape
	}
	if opt.Resume {
		if err := t.restore(); err != nil {
			t.close()
			return nil, err
		}
	}
	if t.logf, err = os.OpenFile(filepath.Join(opt.OutDir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		t.close()
		return nil, err
	}
	if t.tb, err = tensorboard.Create(filepath.Join(opt.OutDir, TensorBoardDir), time.Now()); err != nil {
		t.close()
		return nil, err
	}
	remaining := int64(m.Train.Epochs-t.state.Epoch-1) * m.StepsPerEpoch()
	t.progress = newProgress(opt.Progress, remaining)
	return t, nil
}

func (t *trainer) close() {
	if t.logf != nil {
		t.logf.Close()
	}
	if t.tb != nil {
		t.tb.Close()
	}
	if t.pr != nil {
		t.pr.Close()
	}
}

// epoch trains one epoch, validates, checkpoints and logs.
func (t *trainer) epoch(epoch int) error {
	m := &t.plan.Manifest
	epochStart := time.Now()
	run := t.run
	lr := m.Train.LR(epoch)
	tm, skipped, err := t.trainSteps(epoch, lr)
	if err != nil {
		return err
	}
	if err := t.checkFinite(fmt.Sprintf("epoch %d", epoch)); err != nil {
		return err
	}
	val, err := t.valEval.evaluate(t.keepAll)
	if err != nil {
		return fmt.Errorf("epoch %d: validation: %w", epoch, err)
	}
	t.state.GraphRuns = t.pr.Runs()
	method := tm.methodMeans()
	for k, v := range run.reports {
		if method == nil {
			method = map[string]float64{}
		}
		method[k] = v
	}
	clear(run.reports)
	line := EpochLog{Epoch: epoch, LR: lr, Train: tm.summary(skipped), Val: val, Method: method,
		FLOPs: t.flopsSoFar()}
	t.state.Epoch, t.state.GlobalStep, t.state.Seconds = epoch, run.global, time.Since(t.start).Seconds()
	if val.Acc > t.state.BestAcc {
		t.state.BestAcc, t.state.BestEpoch = val.Acc, epoch
		line.Best = true
		if err := t.writeCheckpoint(BestCheckpoint); err != nil {
			return err
		}
	}
	// The logs go first: a resume trims log lines past the last checkpoint.
	line.Seconds = time.Since(epochStart).Seconds()
	if err := appendJSONLine(t.logf, line); err != nil {
		return err
	}
	if err := t.tb.Scalars(int64(epoch), time.Now(), line.scalars()); err != nil {
		return err
	}
	if err := t.tb.Flush(); err != nil {
		return err
	}
	// The last checkpoint, with the run state in its metadata, commits the epoch.
	if err := t.writeCheckpoint(LastCheckpoint); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(t.opt.OutDir, RunStateFile), t.state); err != nil {
		return err
	}
	mark := ""
	if line.Best {
		mark = "  *best"
	}
	trainAcc := "–" // no graph of the epoch reported fused logits
	if line.Train.Samples > 0 {
		trainAcc = fmt.Sprintf("%.4f", line.Train.Acc)
	}
	t.progress.epoch(epoch, m.Train.Epochs, fmt.Sprintf("lr %.4g  train loss %.4f acc %s  val acc %.4f f1 %.4f%s",
		lr, line.Train.Loss, trainAcc, val.Acc, val.F1, mark))
	return nil
}

// trainSteps runs one epoch's training: the schedule's epoch hooks, and
// each phase of its plan (by default one phase, the plan's step graphs on
// a fresh shuffle of the training split) batch by batch, with the
// optimizer's and the method's runtime inputs set before every step. It
// returns the training metrics and the samples the loader skipped.
func (t *trainer) trainSteps(epoch int, lr float64) (*trainMetrics, []SkippedSample, error) {
	m := &t.plan.Manifest
	run := t.run
	run.epoch, run.phase, run.step = epoch, 0, 0
	run.phaseGraphs = m.StepGraphs
	run.stepsPerEpoch = int(m.StepsPerEpoch())
	if err := t.sched.BeginEpoch(run); err != nil {
		return nil, nil, fmt.Errorf("epoch %d: method schedule: %w", epoch, err)
	}
	plan, err := t.epochPlan(run)
	if err != nil {
		return nil, nil, fmt.Errorf("epoch %d: method schedule: %w", epoch, err)
	}
	run.stepsPerEpoch = 0
	for _, ph := range plan {
		run.stepsPerEpoch += len(ph.Samples) / m.Train.BatchSize
	}
	// The ETA assumes the epochs left are as long as this one.
	t.progress.expect(int64(m.Train.Epochs-epoch) * int64(run.stepsPerEpoch))
	tm := newTrainMetrics(int(m.Model.Classes), m.ModalityNames())
	var skipped []SkippedSample
	for i, ph := range plan {
		run.phase, run.phaseGraphs = i, ph.Graphs
		s, err := t.trainPhase(epoch, lr, ph, tm)
		skipped = append(skipped, s...)
		if err != nil {
			return nil, nil, err
		}
	}
	if run.step == 0 {
		return nil, nil, fmt.Errorf("epoch %d trained no step: %d of its samples could be read (%d skipped), fewer than the batch of %d", epoch, run.stepsPerEpoch*m.Train.BatchSize-len(skipped), len(skipped), m.Train.BatchSize)
	}
	if e, ok := t.sched.(methods.EpochEnder); ok {
		if err := e.EndEpoch(run); err != nil {
			return nil, nil, fmt.Errorf("epoch %d: method schedule: %w", epoch, err)
		}
	}
	return tm, skipped, nil
}

// epochPlan is the schedule's plan of the epoch, checked, with every
// phase's graphs and samples filled in.
func (t *trainer) epochPlan(run *trainRun) (methods.EpochPlan, error) {
	m := &t.plan.Manifest
	plan := methods.EpochPlan{{}}
	if p, ok := t.sched.(methods.EpochPlanner); ok {
		var err error
		if plan, err = p.PlanEpoch(run); err != nil {
			return nil, err
		}
	}
	n := t.train.Len()
	for i := range plan {
		ph := &plan[i]
		if ph.Graphs == nil {
			ph.Graphs = m.StepGraphs
		}
		for _, g := range ph.Graphs {
			gi, ok := m.Graph(g)
			if !ok || gi.Role != compile.RoleTrain {
				return nil, fmt.Errorf("epoch plan: phase %d runs %q, which is not a train graph of the plan", i, g)
			}
			if b, err := t.pr.BatchOf(g); err != nil || b != t.batch {
				return nil, fmt.Errorf("epoch plan: phase %d: graph %s does not read batches of the training batch size", i, g)
			}
		}
		if ph.Samples == nil {
			ph.Samples = randstream.New(m.Train.Seed, "shuffle", uint64(run.epoch)).Perm(n)
			if i > 0 {
				// Later phases get their own shuffles.
				ph.Samples = randstream.New(m.Train.Seed, fmt.Sprintf("shuffle/phase=%d", i), uint64(run.epoch)).Perm(n)
			}
		}
		for p, idx := range ph.Samples {
			if idx < 0 || idx >= n {
				return nil, fmt.Errorf("epoch plan: phase %d: sample %d at position %d is outside the training split's %d samples", i, idx, p, n)
			}
		}
	}
	return plan, nil
}

// trainPhase runs one phase: its graphs on every batch of its samples.
func (t *trainer) trainPhase(epoch int, lr float64, ph methods.Phase, tm *trainMetrics) ([]SkippedSample, error) {
	m := &t.plan.Manifest
	run := t.run
	batches, err := t.loader.Epoch(epoch, ph.Samples)
	if err != nil {
		return nil, err
	}
	defer batches.Close()
	skipped := func() []SkippedSample { return skippedSamples(batches.Skipped()) }
	for ; ; run.step++ {
		at := fmt.Sprintf("epoch %d step %d", epoch, run.step)
		hb, err := batches.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return skipped(), fmt.Errorf("%s: dataset %s: %w", at, t.spec.Name, err)
		}
		err = t.fill(hb)
		run.positions = append(run.positions[:0], hb.Positions...)
		batches.Release(hb)
		if err != nil {
			return skipped(), fmt.Errorf("%s: %w", at, err)
		}
		if err := t.step(lr, ph.Graphs, tm, at); err != nil {
			return skipped(), err
		}
		t.progress.step(epoch, m.Train.Epochs, run.step, run.stepsPerEpoch, tm.lastLoss)
	}
	return skipped(), nil
}

// step runs one training step on the batch in place: the optimizer's
// inputs, the schedule's BeforeStep, the graphs in order, their metrics,
// AfterStep. at names the step in errors.
func (t *trainer) step(lr float64, graphs []string, tm *trainMetrics, at string) error {
	run := t.run
	if err := t.setOptimizerInputs(lr, run.global+1); err != nil {
		return err
	}
	run.inStep = true
	defer func() { run.inStep = false }()
	if err := t.sched.BeforeStep(run); err != nil {
		return fmt.Errorf("%s: method schedule: %w", at, err)
	}
	t.pr.SetRandomStream("")
	t.pr.SetStep(uint64(run.global))
	for _, g := range graphs {
		if err := t.pr.Run(g); err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		if err := tm.add(t.pr, g, t.batch); err != nil {
			// Name the tensor that went bad, when one did.
			if ferr := t.checkFinite(at); ferr != nil {
				return fmt.Errorf("%w (%v)", ferr, err)
			}
			return fmt.Errorf("%s: %w; the run stops and its last good checkpoint is kept", at, err)
		}
	}
	if err := t.sched.AfterStep(run); err != nil {
		return fmt.Errorf("%s: method schedule: %w", at, err)
	}
	run.global++
	return nil
}

// setOptimizerInputs sets the optimizer's runtime inputs (learning rate,
// step count) for a step.
func (t *trainer) setOptimizerInputs(lr float64, step int64) error {
	for name, v := range t.plan.Manifest.Train.Optimizer.Inputs(lr, step) {
		buf, err := t.pr.Input(name)
		if err != nil {
			return err
		}
		buf[0] = v
	}
	return nil
}

// flopsSoFar is the cost of every graph run the training has made (the
// tally of runs times each graph's static count), plus the trainings the
// run builds on (its teachers').
func (t *trainer) flopsSoFar() int64 {
	total := t.report.Prior.Total
	for g, n := range t.pr.Runs() {
		total += n * t.report.PerGraph[g]
	}
	return total
}

// fill copies a loaded batch into the training graph's batch tensors.
func (t *trainer) fill(hb *datasets.HostBatch) error {
	if hb.N != t.batch.Size {
		return fmt.Errorf("the loader gave %d samples for a batch of %d", hb.N, t.batch.Size)
	}
	return fillFromHost(t.batch, t.spec, hb)
}

// checkFinite stops a run whose state holds a NaN or Inf before it could be
// checkpointed, so the last good checkpoint stays as it is. at says where
// the run is ("epoch 3 step 17").
func (t *trainer) checkFinite(at string) error {
	for _, k := range t.pr.StateKeys() {
		v, _ := t.pr.State(k)
		for i, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return fmt.Errorf("%s: tensor %s holds %v at element %d; the run stops and its last good checkpoint is kept", at, k, x, i)
			}
		}
	}
	return nil
}

// finish evaluates the best checkpoint on the test split, exports it and
// writes results.json.
func (t *trainer) finish() (*Result, error) {
	m := &t.plan.Manifest
	bestPath := filepath.Join(t.opt.OutDir, BestCheckpoint)
	best, _, err := readCheckpointState(bestPath)
	if err != nil {
		return nil, fmt.Errorf("run %s has no best checkpoint to evaluate: %w", t.opt.OutDir, err)
	}
	if err := t.pr.SetState(best); err != nil {
		return nil, fmt.Errorf("%s: %w", bestPath, err)
	}
	res := &Result{Method: m.Method, Hyper: m.Hyper, Dataset: t.spec.Name, Protocol: m.Train.Protocol, Epochs: m.Train.Epochs,
		BestEpoch: t.state.BestEpoch, TrainingFLOPs: t.flopsSoFar(), PlannedFLOPs: t.report.Training.Total,
		Device: t.opt.Device.String(), Precision: t.opt.Precision.String()}
	if res.Validation, err = t.valEval.evaluate(t.keepAll); err != nil {
		return nil, err
	}
	if res.Test, res.Imbalance, err = MeasureImbalance(t.pr.Predictor(), t.test, t.spec, EvalOptions{SkipBad: t.opt.SkipBad}); err != nil {
		return nil, err
	}
	if err := Export(t.plan, best, filepath.Join(t.opt.OutDir, ModelFile)); err != nil {
		return nil, err
	}
	res.Seconds = time.Since(t.start).Seconds()
	if err := writeJSON(filepath.Join(t.opt.OutDir, ResultsFile), res); err != nil {
		return nil, err
	}
	return res, nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, append(data, '\n'))
}

func appendJSONLine(f *os.File, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return nil
}
