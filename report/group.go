package report

import (
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"bmc/methods"
)

// Set is a collection of runs arranged as the paper's tables: a row per
// method setting, a column per dataset setting, the seeds of a row and a
// column in one cell.
type Set struct {
	Runs []*Run
	Rows []*Row
	Cols []*Col
	// cells maps a row and a column index to the runs there.
	cells map[[2]int][]*Run
}

// Row is a method with the settings that tell its rows apart.
type Row struct {
	Label string
	Info  methods.Info
	// Vary are the settings (hp.K, encoder.M, train.K) that differ
	// between this method's rows, with this row's values.
	Vary map[string]string
	// index orders rows: category, registry order, label.
	order int
}

// Col is a dataset with the parameters that tell its columns apart.
type Col struct {
	Label, Dataset string
	// Modalities are the modalities its runs report.
	Modalities []string
}

// Build arranges runs into rows and columns. A setting becomes part of a
// row's label only where it tells two runs of a method apart on the same
// dataset column (the paper preset's per-dataset learning rates do not
// split a method's row); seeds never do.
func Build(runs []*Run) *Set {
	s := &Set{Runs: runs, cells: map[[2]int][]*Run{}}
	type keyed struct {
		run          *Run
		method, data map[string]string
		col          string
	}
	ks := make([]keyed, len(runs))
	dataValues := map[string]map[string]map[string]bool{} // dataset → key → values ("" unset)
	for i, r := range runs {
		m, d := r.settings()
		ks[i] = keyed{run: r, method: m, data: d}
		if dataValues[r.Result.Dataset] == nil {
			dataValues[r.Result.Dataset] = map[string]map[string]bool{}
		}
	}
	for _, k := range ks {
		vs := dataValues[k.run.Result.Dataset]
		for name := range k.data {
			if vs[name] == nil {
				vs[name] = map[string]bool{}
			}
		}
	}
	for _, k := range ks {
		for name, vals := range dataValues[k.run.Result.Dataset] {
			vals[k.data[name]] = true
		}
	}
	// Columns: the dataset and those of its parameters that vary.
	colIndex := map[string]int{}
	for i := range ks {
		r := ks[i].run
		vary := map[string]string{}
		for name, vals := range dataValues[r.Result.Dataset] {
			if v := ks[i].data[name]; len(vals) > 1 && v != "" {
				vary[strings.TrimPrefix(name, "data.")] = v
			}
		}
		label := r.Result.Dataset
		if l := labelOf(vary); l != "" {
			label += " (" + l + ")"
		}
		ks[i].col = label
		if _, ok := colIndex[label]; !ok {
			colIndex[label] = len(s.Cols)
			s.Cols = append(s.Cols, &Col{Label: label, Dataset: r.Result.Dataset})
		}
	}
	// The method settings that vary within a column.
	methodVary := map[string]map[string]bool{}
	byCol := map[[2]string][]map[string]string{}
	for _, k := range ks {
		key := [2]string{k.run.Result.Method, k.col}
		byCol[key] = append(byCol[key], k.method)
	}
	// A setting varies when two runs that both have it differ in it (a
	// Unimodal run has no encoder for the modality it leaves out).
	for key, settings := range byCol {
		for i, a := range settings {
			for _, b := range settings[i+1:] {
				for name, va := range a {
					if vb, ok := b[name]; ok && va != vb {
						if methodVary[key[0]] == nil {
							methodVary[key[0]] = map[string]bool{}
						}
						methodVary[key[0]][name] = true
					}
				}
			}
		}
	}
	rowIndex := map[string]int{}
	order := map[string]int{}
	for i, info := range methods.All() {
		order[info.Name] = i
	}
	for _, k := range ks {
		r := k.run
		vary := map[string]string{}
		for name := range methodVary[r.Result.Method] {
			vary[name] = k.method[name]
		}
		label := r.Info.Display
		if l := labelOf(trimPrefixes(vary)); l != "" {
			label += " (" + l + ")"
		}
		ri, ok := rowIndex[label]
		if !ok {
			o, known := order[r.Result.Method]
			if !known {
				o = len(order)
			}
			ri = len(s.Rows)
			rowIndex[label] = ri
			s.Rows = append(s.Rows, &Row{Label: label, Info: r.Info, Vary: vary, order: categoryRank(r.Info.Category)*1000 + o})
		}
		ci := colIndex[k.col]
		s.cells[[2]int{ri, ci}] = append(s.cells[[2]int{ri, ci}], r)
		for m := range r.Result.Test.ModalityAcc {
			if !slices.Contains(s.Cols[ci].Modalities, m) {
				s.Cols[ci].Modalities = append(s.Cols[ci].Modalities, m)
			}
		}
	}
	s.sortRows()
	for _, c := range s.Cols {
		sort.Strings(c.Modalities)
	}
	return s
}

// sortRows puts rows in category, registry and label order, and the cells
// with them.
func (s *Set) sortRows() {
	perm := make([]int, len(s.Rows))
	for i := range perm {
		perm[i] = i
	}
	sort.SliceStable(perm, func(a, b int) bool {
		ra, rb := s.Rows[perm[a]], s.Rows[perm[b]]
		if ra.order != rb.order {
			return ra.order < rb.order
		}
		return lessLabel(ra, rb)
	})
	rows := make([]*Row, len(s.Rows))
	cells := map[[2]int][]*Run{}
	for to, from := range perm {
		rows[to] = s.Rows[from]
		for ci := range s.Cols {
			if rs, ok := s.cells[[2]int{from, ci}]; ok {
				cells[[2]int{to, ci}] = rs
			}
		}
	}
	s.Rows, s.cells = rows, cells
}

// lessLabel orders a method's rows by their settings, numerically where
// both values are numbers (α = 0.5 before α = 2).
func lessLabel(a, b *Row) bool {
	for _, k := range slices.Sorted(maps.Keys(a.Vary)) {
		va, vb := a.Vary[k], b.Vary[k]
		if va == vb {
			continue
		}
		fa, ea := strconv.ParseFloat(va, 64)
		fb, eb := strconv.ParseFloat(vb, 64)
		if ea == nil && eb == nil {
			return fa < fb
		}
		return va < vb
	}
	return a.Label < b.Label
}

// Cell is the runs of a row in a column (nil when none).
func (s *Set) Cell(row, col int) []*Run { return s.cells[[2]int{row, col}] }

// categoryRank orders the categories as the paper's Table 1.
func categoryRank(c string) int {
	for i, name := range []string{methods.CategoryReference, methods.CategoryData, methods.CategoryFeedForward, methods.CategoryObjective, methods.CategoryOptimization} {
		if c == name {
			return i
		}
	}
	return 5
}

// Categories lists the method categories in the paper's order.
func Categories() []string {
	return []string{methods.CategoryReference, methods.CategoryData, methods.CategoryFeedForward, methods.CategoryObjective, methods.CategoryOptimization}
}

// trimPrefixes drops the hp. prefix (the common case) from setting names.
func trimPrefixes(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[strings.TrimPrefix(k, "hp.")] = v
	}
	return out
}

// labelOf writes settings as k=v, k=v in key order.
func labelOf(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ", ")
}

// Stat is a mean ± sample standard deviation over n values.
type Stat struct {
	Mean, Std float64
	N         int
}

// stat summarises values (NaN-free; n = 0 gives a zero Stat).
func stat(xs []float64) Stat {
	if len(xs) == 0 {
		return Stat{}
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	mean := sum / float64(len(xs))
	if len(xs) == 1 {
		return Stat{Mean: mean, N: 1}
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return Stat{Mean: mean, Std: math.Sqrt(ss / float64(len(xs)-1)), N: len(xs)}
}

// over summarises one number of each run; runs without it are left out.
func over(runs []*Run, f func(*Run) (float64, bool)) Stat {
	var xs []float64
	for _, r := range runs {
		if v, ok := f(r); ok {
			xs = append(xs, v)
		}
	}
	return stat(xs)
}
