package datasets

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"bmc/internal/randstream"
)

// The benchmark's datasets are read from their layouts on disk (spec §3).
// Each loader indexes its split files when the dataset is opened, dropping
// the rows the reference drops and recording every drop as a Problem, and
// decodes one sample per Read. A row bmc keeps but cannot use (a label
// outside the class list, say) keeps its defect and Read returns it, so
// `bmc datasets check` can read every sample and list every problem.

// Problem is a defect of a dataset on disk found while indexing it.
type Problem struct {
	Split string `json:"split"`
	// File is the file or folder the problem is about; Line is the 1-based
	// line or row of File, or 0.
	File string `json:"file"`
	Line int    `json:"line,omitempty"`
	Msg  string `json:"problem"`
	// Dropped is true for a row left out of its split as the reference
	// leaves it out (its files are missing, its frame folder is too short,
	// its CREMA-D emotion is unknown); the split is usable without it.
	Dropped bool `json:"dropped,omitempty"`
}

// String is "split: file:line: problem", marked when the row was dropped.
func (p Problem) String() string {
	loc := p.File
	if p.Line > 0 {
		loc += ":" + strconv.Itoa(p.Line)
	}
	s := p.Split + ": " + loc + ": " + p.Msg
	if p.Dropped {
		s += " (row dropped)"
	}
	return s
}

// ProblemLister is implemented by the datasets read from disk: the
// problems found while indexing them, in the order found.
type ProblemLister interface {
	Problems() []Problem
}

// item is one row of a split.
type item struct {
	id    string // what the dataset calls the sample: a clip name, a key, a row
	label int64
	row   int   // index into in-memory arrays, for datasets that keep them
	err   error // a defect found while indexing; Read returns it
}

// readFunc decodes one item into dst. rng is nil for the evaluation
// transforms and frame choice, non-nil for training's random ones.
type readFunc func(it item, rng *rand.Rand, dst []Buffer) error

// diskDataset is the Dataset of every loader here.
type diskDataset struct {
	spec     Spec
	splits   map[string]*diskSplit
	problems []Problem
}

func (d *diskDataset) Spec() Spec { return d.spec }

func (d *diskDataset) Problems() []Problem { return slices.Clone(d.problems) }

func (d *diskDataset) Split(name string) (Split, error) {
	sp, ok := d.splits[name]
	if !ok {
		return nil, fmt.Errorf("dataset %s has no split %q (splits: train, val, test)", d.spec.Name, name)
	}
	return sp, nil
}

// diskSplit is one split of a diskDataset. It is a SeededReader: the
// random draws of training augmentation and frame choice come from the
// seed, so a training sample depends only on (seed, i); evaluation splits
// ignore the seed. Read is ReadSeeded with seed 0.
type diskSplit struct {
	dataset string
	name    string
	items   []item
	mods    []Modality
	augment bool // training transforms and random frame choice
	read    readFunc
}

func (s *diskSplit) Len() int { return len(s.items) }

func (s *diskSplit) Read(i int, dst []Buffer) (int64, error) { return s.ReadSeeded(i, 0, dst) }

func (s *diskSplit) ReadSeeded(i int, seed uint64, dst []Buffer) (int64, error) {
	if i < 0 || i >= len(s.items) {
		return 0, fmt.Errorf("%s %s: sample %d is out of range [0, %d)", s.dataset, s.name, i, len(s.items))
	}
	if err := checkBuffers(s.mods, dst); err != nil {
		return 0, fmt.Errorf("%s %s sample %d: %w", s.dataset, s.name, i, err)
	}
	it := s.items[i]
	if it.err != nil {
		return 0, fmt.Errorf("%s %s sample %d (%s): %w", s.dataset, s.name, i, it.id, it.err)
	}
	var rng *rand.Rand
	if s.augment {
		rng = randstream.New(seed, s.dataset+"/augment", uint64(i))
	}
	if err := s.read(it, rng, dst); err != nil {
		return 0, fmt.Errorf("%s %s sample %d (%s): %w", s.dataset, s.name, i, it.id, err)
	}
	return it.label, nil
}

func checkBuffers(mods []Modality, dst []Buffer) error {
	if len(dst) != len(mods) {
		return fmt.Errorf("%d buffers for %d modalities", len(dst), len(mods))
	}
	for m, mod := range mods {
		if mod.Int {
			if len(dst[m].I64) != mod.Size() {
				return fmt.Errorf("modality %s buffer holds %d int64s, a sample has %d", mod.Name, len(dst[m].I64), mod.Size())
			}
		} else if len(dst[m].F32) != mod.Size() {
			return fmt.Errorf("modality %s buffer holds %d floats, a sample has %d", mod.Name, len(dst[m].F32), mod.Size())
		}
	}
	return nil
}

// newDiskDataset assembles a dataset from its train and test rows and,
// where the dataset has none, holds out a seeded, class-stratified
// fraction of train as the validation split (val == nil).
func newDiskDataset(spec Spec, read readFunc, train, val, test []item, common commonParams, problems []Problem) *diskDataset {
	if val == nil {
		train, val = holdOut(train, common.valFraction, common.splitSeed)
	}
	d := &diskDataset{spec: spec, splits: map[string]*diskSplit{}, problems: problems}
	d.spec.Sizes = map[string]int{}
	for _, s := range []struct {
		name    string
		items   []item
		augment bool
	}{{Train, train, true}, {Val, val, false}, {Test, test, false}} {
		d.splits[s.name] = &diskSplit{dataset: spec.Name, name: s.name, items: s.items, mods: spec.Modalities, augment: s.augment, read: read}
		d.spec.Sizes[s.name] = len(s.items)
	}
	return d
}

// holdOut moves round(fraction·n_c) rows of every class c (rows with a
// defect form one more group) from train to val, chosen by a stream of
// seed; both keep the rows' order. At least one row moves when train has
// two or more.
func holdOut(rows []item, fraction float64, seed uint64) (train, val []item) {
	groups := map[int64][]int{}
	for i, it := range rows {
		key := it.label
		if it.err != nil {
			key = -1
		}
		groups[key] = append(groups[key], i)
	}
	keys := make([]int64, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	rng := randstream.New(seed, "val-holdout", 0)
	toVal := make([]bool, len(rows))
	moved := 0
	for _, k := range keys {
		g := groups[k]
		n := int(math.Round(fraction * float64(len(g))))
		perm := rng.Perm(len(g))
		for _, p := range perm[:n] {
			toVal[g[p]] = true
		}
		moved += n
	}
	if moved == 0 && len(rows) >= 2 && fraction > 0 {
		toVal[rng.IntN(len(rows))] = true
	}
	for i, it := range rows {
		if toVal[i] {
			val = append(val, it)
		} else {
			train = append(train, it)
		}
	}
	return train, val
}

// commonParams are the settings every dataset on disk takes.
type commonParams struct {
	size        int     // image side after resizing or cropping
	valFraction float64 // share of train held out as val
	splitSeed   uint64  // seed of the hold-out
	skipBad     bool    // Options.SkipBad
}

func commonParamDocs(hasVal bool) []Param {
	ps := []Param{{Name: "size", Default: "224", Doc: "image side in pixels after resizing or cropping"}}
	if !hasVal {
		ps = append(ps,
			Param{Name: "val_fraction", Default: "0.1", Doc: "share of each class of train held out as the val split (the dataset has none)"},
			Param{Name: "split_seed", Default: "0", Doc: "seed of the val hold-out"},
		)
	}
	return ps
}

// params reads a dataset's parameters: the user's values over the
// entry's defaults, and the dataset root.
type params struct {
	dataset string
	root    string
	values  map[string]string
}

// newParams reads the parameters of entry e and the settings every
// dataset on disk takes; hasVal is true for a dataset with its own val
// split (no hold-out settings).
func newParams(e Entry, o Options, hasVal bool) (*params, commonParams, error) {
	if o.Root == "" {
		return nil, commonParams{}, fmt.Errorf("dataset %s reads its files from disk: give the dataset folder (--data-root)", e.Name)
	}
	if st, err := os.Stat(o.Root); err != nil {
		return nil, commonParams{}, fmt.Errorf("dataset %s: data root: %w", e.Name, err)
	} else if !st.IsDir() {
		return nil, commonParams{}, fmt.Errorf("dataset %s: data root %s is not a folder", e.Name, o.Root)
	}
	p := &params{dataset: e.Name, root: o.Root, values: map[string]string{}}
	for _, d := range e.Params {
		p.values[d.Name] = d.Default
	}
	for k, v := range o.Params {
		p.values[k] = v
	}
	common, err := p.common(hasVal)
	if err != nil {
		return nil, commonParams{}, err
	}
	common.skipBad = o.SkipBad
	return p, common, nil
}

// path resolves a path parameter against the root.
func (p *params) path(name string) string {
	v := p.values[name]
	if filepath.IsAbs(v) {
		return v
	}
	return filepath.Join(p.root, v)
}

func (p *params) int(name string, lo int) (int, error) {
	v, err := strconv.Atoi(p.values[name])
	if err != nil || v < lo {
		return 0, fmt.Errorf("dataset %s: parameter %s=%q: want an integer ≥ %d", p.dataset, name, p.values[name], lo)
	}
	return v, nil
}

func (p *params) bool(name string) (bool, error) {
	v, err := strconv.ParseBool(p.values[name])
	if err != nil {
		return false, fmt.Errorf("dataset %s: parameter %s=%q: want true or false", p.dataset, name, p.values[name])
	}
	return v, nil
}

// shape reads "auto" (nil: taken from the first training file) or
// "AxB" (each ≥ 1).
func (p *params) shape(name string) ([]int64, error) {
	v := p.values[name]
	if v == "auto" {
		return nil, nil
	}
	var out []int64
	for _, f := range strings.Split(v, "x") {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("dataset %s: parameter %s=%q: want auto or sizes like 1024x128", p.dataset, name, v)
		}
		out = append(out, n)
	}
	return out, nil
}

func (p *params) common(hasVal bool) (commonParams, error) {
	var c commonParams
	var err error
	if c.size, err = p.int("size", 1); err != nil {
		return c, err
	}
	if hasVal {
		return c, nil
	}
	c.valFraction, err = strconv.ParseFloat(p.values["val_fraction"], 64)
	if err != nil || !(c.valFraction > 0 && c.valFraction < 1) {
		return c, fmt.Errorf("dataset %s: parameter val_fraction=%q: want a number in (0, 1)", p.dataset, p.values["val_fraction"])
	}
	if c.splitSeed, err = strconv.ParseUint(p.values["split_seed"], 10, 64); err != nil {
		return c, fmt.Errorf("dataset %s: parameter split_seed=%q: want a non-negative integer", p.dataset, p.values["split_seed"])
	}
	return c, nil
}

// eachCSVRecord calls fn with every record of a CSV file (records may
// differ in length) and its 1-based line. what names the file in the
// errors of opening and parsing it; fn's errors are returned as they are.
func eachCSVRecord(path, what string, fn func(rec []string, line int) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		line, _ := r.FieldPos(0)
		if err := fn(rec, line); err != nil {
			return err
		}
	}
}

// readLines reads a text file's lines without their line ends; a missing
// or unreadable file is an error naming it.
func readLines(path, what string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	text = strings.TrimSuffix(text, "\n")
	if text == "" {
		return nil, nil
	}
	return strings.Split(text, "\n"), nil
}

// listDir lists a folder's entry names in sorted order.
func listDir(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	sort.Strings(names)
	return names, nil
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// checkFinite names the first non-finite value of x.
func checkFinite(x []float32) error {
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("value %d is %v: want finite numbers", i, v)
		}
	}
	return nil
}
