package runtime

import (
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"
	"time"

	"bmc/compile"
	"bmc/datasets"
	"bmc/methods"
)

// BenchOptions configure Bench.
type BenchOptions struct {
	// Warmup runs are untimed (ONNX Runtime plans and allocates on the first
	// runs); Iters runs are timed.
	Warmup, Iters int
	// Threads overrides the plan's ONNX Runtime thread count when > 0.
	Threads int
	// Target is the device and precision (zero: the CPU in fp32).
	Target
	// ReleaseInitialValues is TrainOptions' (a process timing its one plan
	// measures the memory a training process needs).
	ReleaseInitialValues bool
	// Profile is TrainOptions': ONNX Runtime's per-node traces of every
	// graph, warm-up and timed runs included, written when Bench returns.
	Profile string
}

// Timing is the median wall and process CPU time of a run, in
// milliseconds.
type Timing struct {
	WallMS float64 `json:"wall_ms"`
	CPUMS  float64 `json:"cpu_ms"`
}

// BenchResult is what Bench measured.
type BenchResult struct {
	// Forward is one run of the evaluation graph (batch statistics off, no
	// gradient); Step one training step as the trainer makes it (the
	// method's BeforeStep and AfterStep, every graph of the epoch's first
	// phase, the training metrics).
	Forward, Step Timing
	StepGraphs    []string
	// ForwardFLOPs and StepFLOPs are the static counts of one run.
	ForwardFLOPs, StepFLOPs int64
	// PeakRSSBytes is the process's peak resident memory when Bench
	// returns (getrusage).
	PeakRSSBytes int64
	Threads      int
}

// Bench times a plan's evaluation forward and its training step on the
// first training batch, through the trainer's own step (so a method's
// schedule work counts), in a scratch run directory it removes.
func Bench(p *compile.Plan, data datasets.Dataset, sched methods.Schedule, opt BenchOptions) (*BenchResult, error) {
	if opt.Iters < 1 || opt.Warmup < 0 {
		return nil, fmt.Errorf("bench: %d timed and %d warm-up runs: want ≥ 1 and ≥ 0", opt.Iters, opt.Warmup)
	}
	if err := opt.Target.Check(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bmc-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	t, err := newTrainer(p, data, sched, TrainOptions{OutDir: dir, Threads: opt.Threads, Target: opt.Target, Workers: 1, ReleaseInitialValues: opt.ReleaseInitialValues, Profile: opt.Profile})
	if err != nil {
		return nil, err
	}
	defer t.close()
	m := &p.Manifest
	run := t.run
	run.epoch, run.phaseGraphs, run.stepsPerEpoch = 0, m.StepGraphs, int(m.StepsPerEpoch())
	if err := sched.BeginEpoch(run); err != nil {
		return nil, fmt.Errorf("bench: method schedule: %w", err)
	}
	plan, err := t.epochPlan(run)
	if err != nil {
		return nil, fmt.Errorf("bench: method schedule: %w", err)
	}
	ph := plan[0]
	run.phaseGraphs = ph.Graphs
	if err := t.fillFirstBatch(ph.Samples); err != nil {
		return nil, err
	}
	// The evaluation graph reads the same samples (its batch may differ).
	eval := t.pr.Predictor()
	if eb := eval.Batch(); eb != t.batch {
		if err := fillRowsFrom(eb, t.batch); err != nil {
			return nil, err
		}
	}
	lr := m.Train.LR(0)
	tm := newTrainMetrics(int(m.Model.Classes), m.ModalityNames())
	res := &BenchResult{StepGraphs: slices.Clone(ph.Graphs), Threads: t.threads}
	for _, g := range ph.Graphs {
		res.StepFLOPs += t.report.PerGraph[g]
	}
	res.ForwardFLOPs = t.report.PerGraph[compile.EvalGraph]
	if res.Forward, err = timeRuns(opt, func() error { _, _, err := eval.Predict(t.keepAll); return err }); err != nil {
		return nil, fmt.Errorf("bench: forward: %w", err)
	}
	if res.Step, err = timeRuns(opt, func() error { return t.step(lr, ph.Graphs, tm, "bench step") }); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return nil, err
	}
	res.PeakRSSBytes = ru.Maxrss * 1024 // kilobytes on Linux
	return res, nil
}

// fillFirstBatch reads the first training batch of an order into the
// training graphs' batch.
func (t *trainer) fillFirstBatch(order []int) error {
	batches, err := t.loader.Epoch(0, order)
	if err != nil {
		return err
	}
	defer batches.Close()
	hb, err := batches.Next()
	if err == io.EOF {
		return fmt.Errorf("bench: the training split has no full batch")
	}
	if err != nil {
		return fmt.Errorf("bench: dataset %s: %w", t.spec.Name, err)
	}
	defer batches.Release(hb)
	t.run.positions = append(t.run.positions[:0], hb.Positions...)
	return t.fill(hb)
}

// fillRowsFrom copies the leading rows of src into dst, repeating them when
// dst is larger.
func fillRowsFrom(dst, src *Batch) error {
	for name, d := range dst.Data {
		s, ok := src.Data[name]
		if !ok {
			return fmt.Errorf("bench: no %s batch to copy", name)
		}
		repeatInto(d.F32, s.F32)
		repeatInto(d.I64, s.I64)
	}
	repeatInto(dst.Labels.I64, src.Labels.I64)
	return nil
}

// repeatInto fills dst with copies of src.
func repeatInto[T any](dst, src []T) {
	if len(src) == 0 {
		return
	}
	for off := 0; off < len(dst); {
		off += copy(dst[off:], src)
	}
}

// timeRuns runs fn opt.Warmup times untimed, then opt.Iters times, and
// returns the medians.
func timeRuns(opt BenchOptions, fn func() error) (Timing, error) {
	for range opt.Warmup {
		if err := fn(); err != nil {
			return Timing{}, err
		}
	}
	wall := make([]float64, opt.Iters)
	cpu := make([]float64, opt.Iters)
	for i := range opt.Iters {
		c0, err := processCPU()
		if err != nil {
			return Timing{}, err
		}
		t0 := time.Now()
		if err := fn(); err != nil {
			return Timing{}, err
		}
		wall[i] = float64(time.Since(t0).Microseconds()) / 1e3
		c1, err := processCPU()
		if err != nil {
			return Timing{}, err
		}
		cpu[i] = float64((c1 - c0).Microseconds()) / 1e3
	}
	return Timing{WallMS: median(wall), CPUMS: median(cpu)}, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// processCPU is the user and system CPU time the process has used.
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
