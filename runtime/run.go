package runtime

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	goruntime "runtime"
	"slices"

	"bmc/compile"
	"bmc/datasets"
	"bmc/internal/randstream"
	"bmc/methods"
	"bmc/safetensors"
)

// trainRun is the methods.Run the trainer gives a schedule.
type trainRun struct {
	t    *trainer
	pr   *Program
	seed uint64
	// epoch, phase and step say where training is; global counts steps
	// from the start of training.
	epoch, phase, step int
	global             int64
	stepsPerEpoch      int
	// phaseGraphs are the graphs the current phase runs on every batch.
	phaseGraphs []string
	// inStep is set between BeforeStep and AfterStep, where a pass would
	// overwrite the step's batch.
	inStep bool
	// positions are the current batch's rows' places in the phase's order.
	positions []int
	// reports are the epoch's diagnostics from Report.
	reports map[string]float64
}

// Report records an epoch diagnostic for the log line.
func (r *trainRun) Report(name string, value float64) {
	if r.reports == nil {
		r.reports = map[string]float64{}
	}
	r.reports[name] = value
}

func (r *trainRun) Epoch() int                           { return r.epoch }
func (r *trainRun) Phase() int                           { return r.phase }
func (r *trainRun) Step() int                            { return r.step }
func (r *trainRun) GlobalStep() int64                    { return r.global }
func (r *trainRun) BatchPositions() []int                { return r.positions }
func (r *trainRun) StepsPerEpoch() int                   { return r.stepsPerEpoch }
func (r *trainRun) Input(name string) ([]float32, error) { return r.pr.Input(name) }
func (r *trainRun) Manifest() *compile.Manifest          { return &r.pr.Plan.Manifest }
func (r *trainRun) Snapshot() map[string][]float32       { return r.pr.snapshot() }
func (r *trainRun) State(key string) ([]float32, error)  { return r.pr.State(key) }

func (r *trainRun) Rand(purpose string) *rand.Rand {
	return randstream.New(r.seed, "method/"+purpose, uint64(r.global))
}

// Metric reads the last value of a metric from the first of the current
// phase's graphs that has it.
func (r *trainRun) Metric(name string) ([]float32, error) {
	var errs []error
	for _, g := range r.phaseGraphs {
		v, err := r.pr.Metric(g, name)
		if err == nil {
			return v, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func (r *trainRun) GraphMetric(graph, name string) ([]float32, error) {
	return r.pr.Metric(graph, name)
}

// Initial is the plan's initial value of a state tensor (zeros for state
// initialised to zero).
func (r *trainRun) Initial(key string) ([]float32, error) {
	for _, s := range r.pr.Plan.Manifest.State {
		if s.Key != key {
			continue
		}
		if s.Init == "params" {
			return r.t.initialValue(key)
		}
		return make([]float32, s.Shape.Size()), nil
	}
	return nil, fmt.Errorf("no state %q", key)
}

// Restore puts a snapshot of the whole state back.
func (r *trainRun) Restore(state map[string][]float32) error {
	if len(state) != len(r.pr.state) {
		return fmt.Errorf("restore: the snapshot holds %d tensors, the state has %d", len(state), len(r.pr.state))
	}
	return r.pr.SetState(state)
}

// Pass runs graphs over samples of the training or validation split.
func (r *trainRun) Pass(opt methods.PassOptions, fn func(methods.PassBatch) error) error {
	if r.inStep {
		return fmt.Errorf("pass %q: a pass cannot run inside a step (it would overwrite the step's batch); run it in BeginEpoch, PlanEpoch or EndEpoch", opt.Purpose)
	}
	if err := r.t.pass(opt, fmt.Sprintf("%s@%d", opt.Purpose, r.global), fn); err != nil {
		return fmt.Errorf("pass %q: %w", opt.Purpose, err)
	}
	return nil
}

// passLoaderKey identifies a loader the trainer keeps for passes.
type passLoaderKey struct {
	split    string
	batch    int
	dropLast bool
}

// pass runs opt.Graphs over a split's samples; stream names its random
// draws (sample augmentation and the graphs' random inputs).
func (t *trainer) pass(opt methods.PassOptions, stream string, fn func(methods.PassBatch) error) error {
	m := &t.plan.Manifest
	if len(opt.Graphs) == 0 {
		return errors.New("no graphs to run")
	}
	var batch *Batch
	updates := false
	for _, g := range opt.Graphs {
		b, err := t.pr.BatchOf(g)
		if err != nil {
			return err
		}
		if batch != nil && b != batch {
			return fmt.Errorf("graphs %s read batches of %d and %d samples; a pass runs graphs of one batch size", opt.Graphs, batch.Size, b.Size)
		}
		batch = b
		gi, _ := m.Graph(g)
		updates = updates || gi.Role == compile.RoleTrain
		if t.pr.graphs[g].keep != nil {
			keep := opt.Keep
			if keep == nil {
				keep = t.keepAll
			}
			if err := t.pr.SetKeep(g, keep); err != nil {
				return err
			}
		}
	}
	var split datasets.Split
	switch opt.Split {
	case datasets.Train:
		split = t.train
	case datasets.Val:
		split = t.val
	default:
		return fmt.Errorf("split %q: a pass reads %s or %s (the test split is never read in training)", opt.Split, datasets.Train, datasets.Val)
	}
	samples := opt.Samples
	if samples == nil {
		samples = make([]int, split.Len())
		for i := range samples {
			samples[i] = i
		}
	}
	loader, err := t.passLoader(opt.Split, split, batch.Size, opt.DropLast)
	if err != nil {
		return err
	}
	batches, err := loader.Pass(stream, samples)
	if err != nil {
		return err
	}
	defer batches.Close()
	t.pr.SetRandomStream("pass/" + stream)
	defer t.pr.SetRandomStream("")
	for index := 0; ; index++ {
		hb, err := batches.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("dataset %s: %w", t.spec.Name, err)
		}
		pb := methods.PassBatch{Index: index, N: hb.N, Samples: slices.Clone(hb.Indices),
			Metric: func(graph, name string) ([]float32, error) {
				if !slices.Contains(opt.Graphs, graph) {
					return nil, fmt.Errorf("graph %s is not one of the pass's %v", graph, opt.Graphs)
				}
				return t.pr.Metric(graph, name)
			}}
		err = fillFromHost(batch, t.spec, hb)
		batches.Release(hb)
		if err != nil {
			return err
		}
		pb.Labels = batch.Labels.I64[:pb.N]
		if updates {
			if err := t.setOptimizerInputs(opt.LR, int64(index)+1); err != nil {
				return err
			}
		}
		if opt.Before != nil {
			if err := opt.Before(pb); err != nil {
				return fmt.Errorf("batch %d: %w", index, err)
			}
		}
		t.pr.SetStep(uint64(index))
		for _, g := range opt.Graphs {
			if err := t.pr.Run(g); err != nil {
				return fmt.Errorf("batch %d: %w", index, err)
			}
		}
		if err := fn(pb); err != nil {
			return fmt.Errorf("batch %d: %w", index, err)
		}
	}
}

// passLoader returns the loader of a split for passes of a batch size,
// made once and kept for the run.
func (t *trainer) passLoader(name string, split datasets.Split, batch int, dropLast bool) (*datasets.Loader, error) {
	key := passLoaderKey{name, batch, dropLast}
	if l, ok := t.passLoaders[key]; ok {
		return l, nil
	}
	workers := t.opt.Workers
	if workers <= 0 {
		workers = goruntime.NumCPU()
	}
	l, err := datasets.NewLoader(split, t.spec, datasets.LoaderOptions{BatchSize: batch, Workers: workers, Seed: t.plan.Manifest.Train.Seed, DropLast: dropLast})
	if err != nil {
		return nil, err
	}
	if t.passLoaders == nil {
		t.passLoaders = map[passLoaderKey]*datasets.Loader{}
	}
	t.passLoaders[key] = l
	return l, nil
}

// initialValue is a state tensor's value in the plan: from the plan in
// memory, or, once the trainer released it, from the run's plan directory
// (read once).
func (t *trainer) initialValue(key string) ([]float32, error) {
	if v, ok := t.plan.Init[key]; ok {
		return v, nil
	}
	if t.initial == nil {
		path := filepath.Join(t.opt.OutDir, PlanDir, compile.ParamsFile)
		f, err := safetensors.ReadFile(path)
		if err != nil {
			return nil, err
		}
		t.initial = map[string][]float32{}
		for k, tt := range f.Tensors {
			if t.initial[k], err = tt.AsFloat32(); err != nil {
				return nil, fmt.Errorf("%s: tensor %s: %w", path, k, err)
			}
		}
	}
	v, ok := t.initial[key]
	if !ok {
		return nil, fmt.Errorf("%s has no initial value of %s", filepath.Join(t.opt.OutDir, PlanDir, compile.ParamsFile), key)
	}
	return v, nil
}
