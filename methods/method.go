// Package methods holds the multimodal-imbalance methods: a registry with the
// paper's taxonomy, and one file per method. A method is two things: graph-time
// hooks that shape the model and build its training-step graphs (extra losses,
// gradient modulation, masked forwards), and a Go-side schedule that sets the
// graphs' runtime inputs per epoch and per step. Methods never touch ONNX
// Runtime: the runtime drives the schedule through the Run interface.
package methods

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"bmc/compile"
	"bmc/graph/nn"
)

// Method is one training method.
type Method interface {
	// Info is the method's taxonomy entry and hyperparameters.
	Info() Info
	// Model adapts the default model to the method (modalities, fusion head).
	Model(spec nn.ModelSpec, hp Hyper) (nn.ModelSpec, error)
	// Build adds the method's training-step graph(s) to the plan.
	Build(b *compile.Builder, hp Hyper) error
	// Schedule returns the Go-side schedule of one training run.
	Schedule(m *compile.Manifest, hp Hyper) (Schedule, error)
}

// Schedule is a method's Go-side logic during training. The runtime calls
// BeginEpoch before an epoch's first step, and BeforeStep and AfterStep
// around every run of the step graphs. A schedule may also implement
// EpochPlanner, EpochEnder and StatefulSchedule.
type Schedule interface {
	BeginEpoch(r Run) error
	BeforeStep(r Run) error
	AfterStep(r Run) error
}

// EpochPlanner is a schedule that shapes its epochs: which step graphs run
// and over which training samples. The runtime calls PlanEpoch after
// BeginEpoch; schedules without it train every epoch on a fresh shuffle of
// the training split with the plan's step graphs.
type EpochPlanner interface {
	PlanEpoch(r Run) (EpochPlan, error)
}

// EpochPlan is one epoch of training: its phases run in order.
type EpochPlan []Phase

// Phase is a stretch of an epoch's training: the samples are cut into
// batches of the training batch size (a last partial batch is dropped) and
// the graphs run in order on every batch, each batch being one step.
type Phase struct {
	// Graphs are the train graphs run on every batch; nil runs the plan's
	// step graphs.
	Graphs []string
	// Samples are training-split indices in the order they are read
	// (repeats allowed); nil is a fresh shuffle of the whole split, the one
	// an epoch without a plan reads.
	Samples []int
}

// EpochEnder is a schedule with work after an epoch's training steps and
// before its validation pass.
type EpochEnder interface {
	EndEpoch(r Run) error
}

// StatefulSchedule is a schedule with Go-side state that must survive a
// resume: the runtime stores MarshalState's bytes with each epoch's
// checkpoint and hands them to UnmarshalState when the run resumes, before
// the next epoch begins. The encoding must round-trip exactly.
type StatefulSchedule interface {
	MarshalState() ([]byte, error)
	UnmarshalState(data []byte) error
}

// Run is what the runtime offers a schedule.
type Run interface {
	// Epoch is the 0-based epoch.
	Epoch() int
	// Phase is the 0-based phase of the epoch's plan.
	Phase() int
	// Step is the 0-based step within the epoch (counted across phases).
	Step() int
	// GlobalStep counts steps from the start of training (0-based).
	GlobalStep() int64
	// BatchPositions are the places, in the current phase's Samples, of the
	// current step's rows: p·B … p·B+B−1 unless --skip-bad dropped a sample
	// before or inside the batch. Valid from BeforeStep to AfterStep.
	BatchPositions() []int
	// StepsPerEpoch is the number of steps of the current epoch (of the
	// default epoch before its plan is known).
	StepsPerEpoch() int
	// Input is the buffer of a runtime input the plan declares, to be filled
	// before the step runs.
	Input(name string) ([]float32, error)
	// Metric is the last value of a metric output of the graphs the current
	// phase runs (the first that has it).
	Metric(name string) ([]float32, error)
	// GraphMetric is the last value of a metric output of one graph.
	GraphMetric(graph, name string) ([]float32, error)
	// Rand is the current step's random stream for a purpose, derived from
	// the run's seed, the purpose and the global step, so that a resumed run
	// draws the same numbers and streams of different purposes can be drawn
	// in parallel.
	Rand(purpose string) *rand.Rand
	// Report records a diagnostic of the current epoch (a purity, a weight):
	// it joins the epoch's "method" values in log.jsonl and TensorBoard; a
	// name reported twice keeps the last value.
	Report(name string, value float64)
	// Manifest is the plan being trained.
	Manifest() *compile.Manifest
	// Pass runs graphs over samples of the training or validation split
	// outside the training steps (feature passes, temporary models).
	Pass(opt PassOptions, fn func(b PassBatch) error) error
	// State is the current value of a training-state tensor; writing to the
	// returned slice changes the state.
	State(key string) ([]float32, error)
	// Initial is a state tensor's initial value (the plan's θ₀); read only.
	Initial(key string) ([]float32, error)
	// Snapshot copies the whole training state; Restore puts a snapshot
	// back. Together they fork a temporary model.
	Snapshot() map[string][]float32
	Restore(state map[string][]float32) error
}

// PassOptions say what Run.Pass runs.
type PassOptions struct {
	// Graphs run on every batch, in order; all read batches of one size.
	Graphs []string
	// Split is datasets.Train or datasets.Val (the run's validation split,
	// which follows the protocol); the test split is never read in training.
	Split string
	// Samples are indices of the split in the order they are read (repeats
	// allowed); nil reads every sample in order.
	Samples []int
	// Keep is the modality keep mask of graphs that take one; nil keeps all.
	Keep []float32
	// DropLast drops a last partial batch; otherwise it is padded with zero
	// rows, which PassBatch.N leaves out.
	DropLast bool
	// LR is the learning rate of graphs that update parameters; their
	// optimizer step counts from 1 within the pass.
	LR float64
	// Purpose names the pass's random draws (augmentation, dropout), which
	// also depend on the run's seed and global step, so a resumed run
	// draws the same and different passes draw differently.
	Purpose string
	// Before, when set, runs before the graphs on every batch (to set
	// runtime inputs).
	Before func(b PassBatch) error
}

// PassBatch is one batch of a pass.
type PassBatch struct {
	// Index is the batch's number within the pass.
	Index int
	// N is the number of real rows; padded rows follow them.
	N int
	// Samples are the split indices of the real rows, Labels their labels.
	Samples []int
	Labels  []int64
	// Metric reads a metric output of one of the pass's graphs after they ran.
	Metric func(graph, name string) ([]float32, error)
}

// Categories of the paper's Table 1.
const (
	CategoryReference    = "Reference"
	CategoryData         = "Data"
	CategoryFeedForward  = "Feed-forward"
	CategoryObjective    = "Objective"
	CategoryOptimization = "Optimization"
)

// Info describes a method.
type Info struct {
	// Name is the CLI key (lower case).
	Name string
	// Display is the paper's name.
	Display  string
	Category string
	// Indicator is the imbalance indicator of Table 1.
	Indicator string
	// PaperModalities is Table 1's "Number of Modalities".
	PaperModalities int
	// MaxModalities is how many modalities the method supports here.
	MaxModalities int
	Domains       string
	Citation      string
	// Cost is the per-step cost (spec §4.19): F forward, BW backward, Fe
	// no-grad forward.
	Cost   string
	Params []Param
}

// Param is a hyperparameter with its default.
type Param struct {
	Name    string
	Default string
	// Kind is "float", "int", "bool", "choice" or "string".
	Kind    string
	Choices []string
	Doc     string
	// Range bounds a float or int; nil accepts any finite value.
	Range *Range
}

// Range is an interval of valid values.
type Range struct {
	Min, Max float64 // ±Inf where unbounded
	// MinOpen and MaxOpen exclude the ends.
	MinOpen, MaxOpen bool
}

// Contains reports whether x lies in the range.
func (r Range) Contains(x float64) bool {
	lo := x > r.Min || (!r.MinOpen && x == r.Min)
	hi := x < r.Max || (!r.MaxOpen && x == r.Max)
	return lo && hi
}

// String writes the range as an interval, e.g. "[0, ∞)" or "(0, 1]".
func (r Range) String() string {
	end := func(v float64) string {
		switch {
		case math.IsInf(v, 1):
			return "∞"
		case math.IsInf(v, -1):
			return "−∞"
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	open, close := "[", "]"
	if r.MinOpen || math.IsInf(r.Min, -1) {
		open = "("
	}
	if r.MaxOpen || math.IsInf(r.Max, 1) {
		close = ")"
	}
	return open + end(r.Min) + ", " + end(r.Max) + close
}

// in bounds a parameter to [lo, hi].
func (p Param) in(lo, hi float64) Param {
	p.Range = &Range{Min: lo, Max: hi}
	return p
}

// atLeast bounds a parameter to [lo, ∞).
func (p Param) atLeast(lo float64) Param { return p.in(lo, math.Inf(1)) }

// positive bounds a parameter to (0, ∞).
func (p Param) positive() Param {
	p.Range = &Range{Min: 0, Max: math.Inf(1), MinOpen: true}
	return p
}

// probability bounds a parameter to [0, 1].
func (p Param) probability() Param { return p.in(0, 1) }

// Hyper holds resolved hyperparameters (defaults filled in).
type Hyper struct {
	values map[string]string
	floats map[string]float64
	ints   map[string]int
	bools  map[string]bool
}

// Float returns a float hyperparameter.
func (h Hyper) Float(name string) float64 { return h.floats[name] }

// Int returns an int hyperparameter.
func (h Hyper) Int(name string) int { return h.ints[name] }

// Bool returns a bool hyperparameter.
func (h Hyper) Bool(name string) bool { return h.bools[name] }

// String returns a hyperparameter as written.
func (h Hyper) String(name string) string { return h.values[name] }

// Values are all hyperparameters as strings (for plan.json).
func (h Hyper) Values() map[string]string {
	out := make(map[string]string, len(h.values))
	for k, v := range h.values {
		out[k] = v
	}
	return out
}

// Resolve checks raw hyperparameters against a method's declaration and
// fills in defaults. Unknown names and bad values give errors that list what
// is valid.
func Resolve(info Info, raw map[string]string) (Hyper, error) {
	h := Hyper{values: map[string]string{}, floats: map[string]float64{}, ints: map[string]int{}, bools: map[string]bool{}}
	valid := make([]string, len(info.Params))
	for i, p := range info.Params {
		valid[i] = p.Name
	}
	for k := range raw {
		if !slices.Contains(valid, k) {
			if len(valid) == 0 {
				return h, fmt.Errorf("method %s takes no hyperparameters (got %q)", info.Name, k)
			}
			return h, fmt.Errorf("method %s has no hyperparameter %q (valid: %s)", info.Name, k, strings.Join(valid, ", "))
		}
	}
	for _, p := range info.Params {
		v, ok := raw[p.Name]
		if !ok {
			v = p.Default
		}
		bad := func(want string) error {
			return fmt.Errorf("method %s: hyperparameter %s=%q: want %s", info.Name, p.Name, v, want)
		}
		inRange := func(x float64, what string) error {
			if p.Range != nil && !p.Range.Contains(x) {
				return bad(what + " in " + p.Range.String())
			}
			return nil
		}
		switch p.Kind {
		case "float":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return h, bad("a finite number")
			}
			if err := inRange(f, "a number"); err != nil {
				return h, err
			}
			h.floats[p.Name] = f
		case "int":
			n, err := strconv.Atoi(v)
			if err != nil {
				return h, bad("an integer")
			}
			if err := inRange(float64(n), "an integer"); err != nil {
				return h, err
			}
			h.ints[p.Name] = n
		case "bool":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return h, bad("true or false")
			}
			h.bools[p.Name] = b
		case "choice":
			if !slices.Contains(p.Choices, v) {
				return h, bad("one of " + strings.Join(p.Choices, ", "))
			}
		}
		h.values[p.Name] = v
	}
	return h, nil
}

// entry is a registry row: a method's info and its code.
type entry struct {
	info   Info
	method Method
}

// All lists every method of the benchmark in the paper's Table 1 order,
// preceded by Baseline and Unimodal.
func All() []Info {
	var out []Info
	for _, e := range registry() {
		out = append(out, e.info)
	}
	return out
}

// Lookup returns a method by name.
func Lookup(name string) (Method, error) {
	var known []string
	for _, e := range registry() {
		if e.info.Name == name {
			return e.method, nil
		}
		known = append(known, e.info.Name)
	}
	return nil, fmt.Errorf("unknown method %q (methods: %s)", name, strings.Join(known, ", "))
}
