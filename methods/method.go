// Package methods holds the multimodal-imbalance methods: a registry with the
// paper's taxonomy, and one file per method. A method is two things: graph-time
// hooks that shape the model and build its training-step graphs (extra losses,
// gradient modulation, masked forwards), and a Go-side schedule that sets the
// graphs' runtime inputs per epoch and per step. Methods never touch ONNX
// Runtime: the runtime drives the schedule through the Run interface.
package methods

import (
	"fmt"
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
// around every run of the step graphs.
type Schedule interface {
	BeginEpoch(r Run) error
	BeforeStep(r Run) error
	AfterStep(r Run) error
}

// Run is what the runtime offers a schedule.
type Run interface {
	// Epoch is the 0-based epoch.
	Epoch() int
	// Step is the 0-based step within the epoch.
	Step() int
	// GlobalStep counts steps from the start of training (0-based).
	GlobalStep() int64
	// StepsPerEpoch is the number of optimizer steps per epoch.
	StepsPerEpoch() int
	// Input is the buffer of a runtime input the plan declares, to be filled
	// before the step runs.
	Input(name string) ([]float32, error)
	// Metric is the last step's value of a metric output.
	Metric(name string) ([]float32, error)
	// Rand is the current step's random stream for a purpose, derived from
	// the run's seed, the purpose and the global step, so that a resumed run
	// draws the same numbers and streams of different purposes can be drawn
	// in parallel.
	Rand(purpose string) *rand.Rand
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
	// Kind is "float", "int", "bool" or "choice".
	Kind    string
	Choices []string
	Doc     string
}

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
		switch p.Kind {
		case "float":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return h, bad("a number")
			}
			h.floats[p.Name] = f
		case "int":
			n, err := strconv.Atoi(v)
			if err != nil {
				return h, bad("an integer")
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

// entry is a registry row: a method's info and, once built, its code.
type entry struct {
	info   Info
	method Method
}

// Available reports whether a method can be compiled.
func (e entry) Available() bool { return e.method != nil }

// All lists every method of the benchmark in the paper's Table 1 order,
// preceded by Baseline and Unimodal.
func All() []Info {
	var out []Info
	for _, e := range registry() {
		out = append(out, e.info)
	}
	return out
}

// IsAvailable reports whether the named method can be compiled.
func IsAvailable(name string) bool {
	for _, e := range registry() {
		if e.info.Name == name {
			return e.Available()
		}
	}
	return false
}

// Lookup returns an available method by name.
func Lookup(name string) (Method, error) {
	var avail, known []string
	for _, e := range registry() {
		known = append(known, e.info.Name)
		if e.Available() {
			avail = append(avail, e.info.Name)
		}
	}
	for _, e := range registry() {
		if e.info.Name != name {
			continue
		}
		if !e.Available() {
			return nil, fmt.Errorf("method %s (%s) is not available yet in this bmc (available: %s)", name, e.info.Display, strings.Join(avail, ", "))
		}
		return e.method, nil
	}
	return nil, fmt.Errorf("unknown method %q (methods: %s)", name, strings.Join(known, ", "))
}
