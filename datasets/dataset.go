// Package datasets provides the data bmc trains on: the Dataset interface,
// the catalogue of the benchmark's datasets, and the built-in synthetic
// datasets. It knows shapes and labels, never models.
package datasets

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Split names.
const (
	Train = "train"
	Val   = "val"
	Test  = "test"
)

// Modality is one input stream of a dataset.
type Modality struct {
	Name string `json:"name"`
	// Shape is one sample's shape, without the batch axis.
	Shape []int64 `json:"shape"`
	// Int is true for integer inputs (token ids); false for float32.
	Int bool `json:"int,omitempty"`
}

// MaxSampleElements bounds one sample of one modality: 2³¹−1 values, the
// most an ONNX Runtime dimension product and bmc's int sizes are checked for
// (a ResNet input of 3×224×224 has 150528).
const MaxSampleElements = 1<<31 - 1

// Size is the number of elements of one sample of the modality.
func (m Modality) Size() int {
	n := 1
	for _, d := range m.Shape {
		n *= int(d)
	}
	return n
}

// Spec describes a dataset as a model sees it.
type Spec struct {
	Name       string     `json:"name"`
	Modalities []Modality `json:"modalities"`
	Classes    int        `json:"classes"`
	// Sizes are the number of samples per split.
	Sizes map[string]int `json:"sizes"`
}

// Modality finds a modality by name.
func (s Spec) Modality(name string) (Modality, bool) {
	for _, m := range s.Modalities {
		if m.Name == name {
			return m, true
		}
	}
	return Modality{}, false
}

// Buffer is where one sample of one modality is written: F32 for float
// modalities, I64 for integer ones, with exactly Modality.Size() elements.
type Buffer struct {
	F32 []float32
	I64 []int64
}

// Dataset is a labelled multimodal dataset with named splits.
type Dataset interface {
	Spec() Spec
	// Split returns one split ("train", "val" or "test").
	Split(name string) (Split, error)
}

// Split is an indexed list of samples.
type Split interface {
	Len() int
	// Read writes sample i into dst (one buffer per modality, in Spec order)
	// and returns its label. It is safe for concurrent use.
	Read(i int, dst []Buffer) (label int64, err error)
}

// Options are what opening a dataset may need.
type Options struct {
	// Root is the dataset folder on disk (real datasets only).
	Root string
	// Params are dataset-specific settings as key=value strings.
	Params map[string]string
	// SkipBad passes over files that fail to read while the dataset is
	// opened (the clip audio_shape=auto takes the shape from), recording
	// each as a problem, instead of failing.
	SkipBad bool
}

// Entry describes a dataset in the catalogue.
type Entry struct {
	Name        string
	Description string
	Modalities  []Modality
	Classes     int
	// Layout is what the dataset expects on disk.
	Layout string
	// Params are the settings a user may pass (name → default and meaning).
	Params []Param
	// Available is false for datasets whose loader is not built yet.
	Available bool
	open      func(Options) (Dataset, error)
}

// Param is a dataset setting.
type Param struct {
	Name, Default, Doc string
}

// Catalog lists every dataset bmc knows, built-in synthetic ones first.
func Catalog() []Entry {
	entries := append(synthEntries(), benchmarkEntries()...)
	return entries
}

// Names lists the catalogue's dataset names.
func Names() []string {
	var names []string
	for _, e := range Catalog() {
		names = append(names, e.Name)
	}
	return names
}

// Lookup finds a catalogue entry by name.
func Lookup(name string) (Entry, error) {
	for _, e := range Catalog() {
		if e.Name == name {
			return e, nil
		}
	}
	return Entry{}, fmt.Errorf("unknown dataset %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Open opens a dataset by name.
func Open(name string, opt Options) (Dataset, error) {
	e, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	if !e.Available {
		var avail []string
		for _, c := range Catalog() {
			if c.Available {
				avail = append(avail, c.Name)
			}
		}
		return nil, fmt.Errorf("dataset %s: its loader is not built yet (available now: %s)", name, strings.Join(avail, ", "))
	}
	for k := range opt.Params {
		if !slices.ContainsFunc(e.Params, func(p Param) bool { return p.Name == k }) {
			var valid []string
			for _, p := range e.Params {
				valid = append(valid, p.Name)
			}
			sort.Strings(valid)
			return nil, fmt.Errorf("dataset %s: unknown parameter %q (valid: %s)", name, k, strings.Join(valid, ", "))
		}
	}
	return e.open(opt)
}
