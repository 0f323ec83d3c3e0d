package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"bmc/compile"
	"bmc/datasets"
	"bmc/eval"
	"bmc/flops"
	"bmc/internal/atomicfile"
	"bmc/methods"
	"bmc/safetensors"
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
)

// TrainOptions configure a training run.
type TrainOptions struct {
	// OutDir is the run directory; it must not hold a previous run.
	OutDir string
	// Threads overrides the plan's ONNX Runtime thread count when > 0.
	Threads int
	// Progress receives one human-readable line per epoch (nil: silent).
	Progress io.Writer
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
	// TrainingFLOPs is the whole run's training cost from the static count.
	TrainingFLOPs int64   `json:"training_flops"`
	Seconds       float64 `json:"seconds"`
}

// EpochLog is one line of log.jsonl.
type EpochLog struct {
	Epoch   int                `json:"epoch"`
	LR      float64            `json:"lr"`
	Train   map[string]float64 `json:"train"`
	Val     SplitMetrics       `json:"val"`
	Method  map[string]float64 `json:"method,omitempty"`
	FLOPs   int64              `json:"train_flops_so_far"`
	Best    bool               `json:"best"`
	Seconds float64            `json:"seconds"`
}

// RunState is checkpoint.json: where the run stands.
type RunState struct {
	Epoch     int     `json:"epoch"`
	BestEpoch int     `json:"best_epoch"`
	BestAcc   float64 `json:"best_val_acc"`
}

// Train runs a plan: every epoch trains on shuffled batches (the last partial
// batch dropped), validates, logs a JSON line and keeps the best checkpoint
// by validation accuracy; then it evaluates the best model on the test split
// (performance and Shapley imbalance) and exports model.onnx.
func Train(p *compile.Plan, data datasets.Dataset, sched methods.Schedule, opt TrainOptions) (*Result, error) {
	start := time.Now()
	m := &p.Manifest
	if sched == nil {
		return nil, errors.New("train: no method schedule given")
	}
	if err := prepareRunDir(opt.OutDir); err != nil {
		return nil, err
	}
	report, err := flops.PlanReport(p)
	if err != nil {
		return nil, err
	}
	threads := m.Train.Threads
	if opt.Threads > 0 {
		threads = opt.Threads
	}
	if err := p.Save(filepath.Join(opt.OutDir, PlanDir)); err != nil {
		return nil, err
	}
	pr, err := Load(p, Options{Threads: threads})
	if err != nil {
		return nil, err
	}
	defer pr.Close()

	spec := data.Spec()
	trainSplit, err := data.Split(datasets.Train)
	if err != nil {
		return nil, err
	}
	valName := datasets.Val
	if m.Train.Protocol == "balancemm" {
		valName = datasets.Test
	}
	valSplit, err := data.Split(valName)
	if err != nil {
		return nil, err
	}
	testSplit, err := data.Split(datasets.Test)
	if err != nil {
		return nil, err
	}
	if trainSplit.Len() != spec.Sizes[datasets.Train] || trainSplit.Len() < m.Train.BatchSize {
		return nil, fmt.Errorf("dataset %s: the training split has %d samples, the plan was compiled for %d (batch %d)", spec.Name, trainSplit.Len(), spec.Sizes[datasets.Train], m.Train.BatchSize)
	}

	logf, err := os.OpenFile(filepath.Join(opt.OutDir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()

	steps := int(m.StepsPerEpoch())
	run := &trainRun{pr: pr, seed: m.Train.Seed, stepsPerEpoch: steps}
	batch, err := pr.BatchOf(m.StepGraphs[0])
	if err != nil {
		return nil, err
	}
	mods := m.ModalityNames()
	best := RunState{BestEpoch: -1, BestAcc: math.Inf(-1)}
	var bestState map[string][]float32
	var flopsSoFar int64
	for epoch := range m.Train.Epochs {
		epochStart := time.Now()
		run.epoch = epoch
		lr := m.Train.LR(epoch)
		lrBuf, err := pr.Input(compile.LRInput)
		if err != nil {
			return nil, err
		}
		lrBuf[0] = float32(lr)
		if err := sched.BeginEpoch(run); err != nil {
			return nil, fmt.Errorf("epoch %d: method schedule: %w", epoch, err)
		}
		perm := stream(m.Train.Seed, "shuffle", uint64(epoch)).Perm(trainSplit.Len())
		tm := newTrainMetrics(int(m.Model.Classes), mods)
		for step := range steps {
			run.step = step
			if err := FillRows(trainSplit, spec, batch, perm[step*batch.Size:(step+1)*batch.Size]); err != nil {
				return nil, err
			}
			if err := sched.BeforeStep(run); err != nil {
				return nil, fmt.Errorf("epoch %d step %d: method schedule: %w", epoch, step, err)
			}
			for _, g := range m.StepGraphs {
				if err := pr.Run(g); err != nil {
					return nil, fmt.Errorf("epoch %d step %d: %w", epoch, step, err)
				}
				if err := tm.add(pr, g, batch); err != nil {
					return nil, fmt.Errorf("epoch %d step %d: %w", epoch, step, err)
				}
			}
			if err := sched.AfterStep(run); err != nil {
				return nil, fmt.Errorf("epoch %d step %d: method schedule: %w", epoch, step, err)
			}
			run.global++
		}
		val, err := Evaluate(pr.Predictor(), valSplit, spec, ones(len(mods)))
		if err != nil {
			return nil, fmt.Errorf("epoch %d: validation: %w", epoch, err)
		}
		flopsSoFar += report.PerEpoch.Total
		line := EpochLog{Epoch: epoch, LR: lr, Train: tm.summary(), Val: val, Method: tm.methodMeans(), FLOPs: flopsSoFar}
		if val.Acc > best.BestAcc {
			best.BestAcc, best.BestEpoch = val.Acc, epoch
			line.Best = true
			bestState = pr.snapshot()
			if err := writeCheckpoint(filepath.Join(opt.OutDir, BestCheckpoint), bestState, epoch); err != nil {
				return nil, err
			}
		}
		best.Epoch = epoch
		if err := writeCheckpoint(filepath.Join(opt.OutDir, LastCheckpoint), pr.snapshot(), epoch); err != nil {
			return nil, err
		}
		if err := writeJSON(filepath.Join(opt.OutDir, RunStateFile), best); err != nil {
			return nil, err
		}
		line.Seconds = time.Since(epochStart).Seconds()
		if err := appendJSONLine(logf, line); err != nil {
			return nil, err
		}
		if opt.Progress != nil {
			fmt.Fprintf(opt.Progress, "epoch %3d  lr %.4g  train loss %.4f acc %.4f  val acc %.4f f1 %.4f%s\n",
				epoch, lr, line.Train["loss"], line.Train["acc"], val.Acc, val.F1, map[bool]string{true: "  *best", false: ""}[line.Best])
		}
	}

	// Final evaluation of the best checkpoint on the test split.
	if err := pr.SetState(bestState); err != nil {
		return nil, err
	}
	res := &Result{Method: m.Method, Hyper: m.Hyper, Dataset: spec.Name, Protocol: m.Train.Protocol, Epochs: m.Train.Epochs,
		BestEpoch: best.BestEpoch, TrainingFLOPs: report.Training.Total}
	if res.Validation, err = Evaluate(pr.Predictor(), valSplit, spec, ones(len(mods))); err != nil {
		return nil, err
	}
	if res.Test, err = Evaluate(pr.Predictor(), testSplit, spec, ones(len(mods))); err != nil {
		return nil, err
	}
	if res.Imbalance, err = MeasureImbalance(pr.Predictor(), testSplit, spec); err != nil {
		return nil, err
	}
	if err := Export(p, bestState, filepath.Join(opt.OutDir, ModelFile)); err != nil {
		return nil, err
	}
	res.Seconds = time.Since(start).Seconds()
	if err := writeJSON(filepath.Join(opt.OutDir, ResultsFile), res); err != nil {
		return nil, err
	}
	return res, nil
}

// prepareRunDir creates the run directory and checks that it is writable
// and holds no previous run, before any training time is spent.
func prepareRunDir(dir string) error {
	if dir == "" {
		return fmt.Errorf("no run directory given")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	for _, f := range []string{LogFile, RunStateFile, ResultsFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("run directory %s already holds a run (%s); choose another --out or remove it", dir, f)
		}
	}
	probe, err := os.CreateTemp(dir, ".write-test")
	if err != nil {
		return fmt.Errorf("run directory %s is not writable: %w", dir, err)
	}
	probe.Close()
	return os.Remove(probe.Name())
}

// snapshot copies the current state.
func (pr *Program) snapshot() map[string][]float32 {
	out := map[string][]float32{}
	for k, s := range pr.state {
		out[k] = slices.Clone(s.cur.F32)
	}
	return out
}

func writeCheckpoint(path string, state map[string][]float32, epoch int) error {
	f := safetensors.File{Tensors: map[string]safetensors.Tensor{}, Metadata: map[string]string{"epoch": fmt.Sprint(epoch), "producer": "bmc"}}
	for k, v := range state {
		f.Tensors[k] = safetensors.Float32s([]int64{int64(len(v))}, v)
	}
	return safetensors.WriteFile(path, f)
}

// ReadCheckpoint loads a checkpoint's tensors (flat float32 values).
func ReadCheckpoint(path string) (map[string][]float32, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string][]float32{}
	for k, t := range f.Tensors {
		v, err := t.AsFloat32()
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %s: %w", path, k, err)
		}
		out[k] = v
	}
	return out, nil
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

// stream derives a reproducible random stream from the run seed, a purpose
// and an index (epoch or step).
func stream(seed uint64, purpose string, index uint64) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(purpose))
	return rand.New(rand.NewPCG(seed^index*0x9e3779b97f4a7c15, h.Sum64()))
}

// trainRun is the methods.Run the trainer gives a schedule.
type trainRun struct {
	pr            *Program
	seed          uint64
	epoch, step   int
	global        int64
	stepsPerEpoch int
}

func (r *trainRun) Epoch() int                           { return r.epoch }
func (r *trainRun) Step() int                            { return r.step }
func (r *trainRun) GlobalStep() int64                    { return r.global }
func (r *trainRun) StepsPerEpoch() int                   { return r.stepsPerEpoch }
func (r *trainRun) Input(name string) ([]float32, error) { return r.pr.Input(name) }
func (r *trainRun) Rand() *rand.Rand                     { return stream(r.seed, "method", uint64(r.global)) }

// Metric reads the last step's metric from whichever step graph has it.
func (r *trainRun) Metric(name string) ([]float32, error) {
	var errs []error
	for _, g := range r.pr.Plan.Manifest.StepGraphs {
		v, err := r.pr.Metric(g, name)
		if err == nil {
			return v, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// trainMetrics accumulates an epoch's training metrics.
type trainMetrics struct {
	mods     []string
	loss     float64
	steps    int
	fused    *eval.Confusion
	uni      map[string]*eval.Confusion
	extra    map[string]float64
	extraCnt map[string]int
}

func newTrainMetrics(classes int, mods []string) *trainMetrics {
	t := &trainMetrics{mods: mods, fused: eval.NewConfusion(classes), uni: map[string]*eval.Confusion{},
		extra: map[string]float64{}, extraCnt: map[string]int{}}
	for _, m := range mods {
		t.uni[m] = eval.NewConfusion(classes)
	}
	return t
}

func (t *trainMetrics) add(pr *Program, g string, b *Batch) error {
	for _, name := range pr.MetricNames(g) {
		v, err := pr.Metric(g, name)
		if err != nil {
			return err
		}
		switch {
		case name == "loss":
			if math.IsNaN(float64(v[0])) || math.IsInf(float64(v[0]), 0) {
				return fmt.Errorf("graph %s: the loss is %v; the last good checkpoint is kept", g, v[0])
			}
			t.loss += float64(v[0])
			t.steps++
		case name == "logits":
			if err := t.fused.AddLogits(v, b.Labels.I64, b.Size); err != nil {
				return err
			}
		case strings.HasPrefix(name, "logits/"):
			if c, ok := t.uni[strings.TrimPrefix(name, "logits/")]; ok {
				if err := c.AddLogits(v, b.Labels.I64, b.Size); err != nil {
					return err
				}
			}
		default:
			var sum float64
			for _, x := range v {
				sum += float64(x)
			}
			t.extra[name] += sum / float64(len(v))
			t.extraCnt[name]++
		}
	}
	return nil
}

func (t *trainMetrics) summary() map[string]float64 {
	out := map[string]float64{"acc": t.fused.Accuracy(), "f1": t.fused.MacroF1()}
	if t.steps > 0 {
		out["loss"] = t.loss / float64(t.steps)
	}
	for m, c := range t.uni {
		out["acc_"+m] = c.Accuracy()
	}
	return out
}

func (t *trainMetrics) methodMeans() map[string]float64 {
	if len(t.extra) == 0 {
		return nil
	}
	out := map[string]float64{}
	for k, v := range t.extra {
		out[k] = v / float64(t.extraCnt[k])
	}
	return out
}
