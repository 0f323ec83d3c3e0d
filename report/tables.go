package report

import (
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
)

// Mark is a cell's rank in its column.
type Mark int

// The marks of Table 2.
const (
	NoMark Mark = iota
	// Best is drawn bold.
	Best
	// Second is drawn underlined.
	Second
)

// Table is a report table, rendered as Markdown, HTML and CSV.
type Table struct {
	// Name is the CSV file's base name; Title heads the table.
	Name, Title string
	// Note is a line under the title (how to read the table).
	Note   string
	Header []string
	Rows   [][]TableCell
	// CSV is the table in long form, its first row the header: one number
	// per line, with full precision.
	CSV [][]string
}

// TableCell is one shown cell.
type TableCell struct {
	Text string
	Mark Mark
	// Average marks a category-average row's cells (drawn in italics).
	Average bool
}

// eligible reports whether a row competes for best and second: every
// method but the single-modality reference (Unimodal).
func (r *Row) eligible() bool { return r.Info.MaxModalities != 1 }

// metric is one number a run reports.
type metric struct {
	name string
	get  func(*Run) (float64, bool)
}

func accMetric() metric {
	return metric{"acc", func(r *Run) (float64, bool) { return r.Result.Test.Acc, true }}
}
func f1Metric() metric {
	return metric{"f1", func(r *Run) (float64, bool) { return r.Result.Test.F1, true }}
}

func shapleyMetric(m string) metric {
	return metric{"phi_" + m, func(r *Run) (float64, bool) { v, ok := r.Result.Imbalance.Shapley[m]; return v, ok }}
}

func degreeMetric() metric {
	return metric{"I", func(r *Run) (float64, bool) {
		if d := r.Result.Imbalance.Degree; d != nil {
			return *d, true
		}
		return 0, false
	}}
}

// Performance is the Table 2 analogue: test accuracy and macro-F1 (%) per
// method row and dataset column, mean ± std over seeds, the best of each
// column bold and the second underlined, with category averages.
func (s *Set) Performance() Table {
	t := Table{Name: "performance", Title: "Performance (Table 2): test accuracy and macro-F1, %, mean ± std over seeds",
		Note:   "Bold: best, underlined: second best of a column among the multimodal methods; (n=…): a cell with fewer seeds than the others.",
		Header: []string{"Method"}, CSV: [][]string{{"method", "category", "row", "dataset", "metric", "mean", "std", "n", "mark"}}}
	var cols []colMetric
	for ci, c := range s.Cols {
		for _, m := range []metric{accMetric(), f1Metric()} {
			cols = append(cols, colMetric{ci, m})
			label := map[string]string{"acc": "ACC", "f1": "F1"}[m.name]
			t.Header = append(t.Header, c.Label+" "+label)
		}
	}
	s.fill(&t, cols, func(v float64) string { return strconv.FormatFloat(100*v, 'f', 2, 64) }, true, true)
	return t
}

// Imbalance is the imbalance table: the Shapley value φ of each modality
// and the imbalance degree I per method row and dataset column.
func (s *Set) Imbalance() Table {
	t := Table{Name: "imbalance", Title: "Imbalance: Shapley value φ per modality and imbalance degree I (test split), mean ± std over seeds",
		Note:   "Lower I: more balanced modalities.",
		Header: []string{"Method"}, CSV: [][]string{{"method", "category", "row", "dataset", "metric", "mean", "std", "n", "mark"}}}
	var cols []colMetric
	for ci, c := range s.Cols {
		for _, m := range c.Modalities {
			cols = append(cols, colMetric{ci, shapleyMetric(m)})
			t.Header = append(t.Header, c.Label+" φ "+m)
		}
		cols = append(cols, colMetric{ci, degreeMetric()})
		t.Header = append(t.Header, c.Label+" I")
	}
	s.fill(&t, cols, func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }, false, false)
	return t
}

type colMetric struct {
	col int
	m   metric
}

// fill adds a row per method row (and per category average when
// averages) with one mean ± std cell per column metric, marking best and
// second when marks.
func (s *Set) fill(t *Table, cols []colMetric, format func(float64) string, marks, averages bool) {
	stats := make([][]Stat, len(s.Rows))
	for ri := range s.Rows {
		stats[ri] = make([]Stat, len(cols))
		for j, cm := range cols {
			stats[ri][j] = over(s.Cell(ri, cm.col), cm.m.get)
		}
	}
	usual := 0
	for _, row := range stats {
		for _, st := range row {
			usual = max(usual, st.N)
		}
	}
	rank := make([][]Mark, len(s.Rows))
	for ri := range rank {
		rank[ri] = make([]Mark, len(cols))
	}
	if marks {
		for j := range cols {
			var vals []float64
			for ri, r := range s.Rows {
				if r.eligible() && stats[ri][j].N > 0 {
					vals = append(vals, stats[ri][j].Mean)
				}
			}
			best, second := topTwo(vals)
			for ri, r := range s.Rows {
				st := stats[ri][j]
				switch {
				case !r.eligible() || st.N == 0:
				case st.Mean == best:
					rank[ri][j] = Best
				case second != nil && st.Mean == *second:
					rank[ri][j] = Second
				}
			}
		}
	}
	for ri, r := range s.Rows {
		row := []TableCell{{Text: r.Label}}
		for j, cm := range cols {
			st := stats[ri][j]
			row = append(row, TableCell{Text: formatStat(st, format, usual), Mark: rank[ri][j]})
			if st.N > 0 {
				t.CSV = append(t.CSV, []string{r.Info.Name, r.Info.Category, r.Label, s.Cols[cm.col].Label, cm.m.name,
					fullFloat(st.Mean), fullFloat(st.Std), strconv.Itoa(st.N), markName(rank[ri][j])})
			}
		}
		t.Rows = append(t.Rows, row)
		if averages && (ri+1 == len(s.Rows) || s.Rows[ri+1].Info.Category != r.Info.Category) {
			if avg := s.categoryAverage(r.Info.Category, stats, len(cols)); avg != nil {
				row := []TableCell{{Text: r.Info.Category + " avg", Average: true}}
				for j, cm := range cols {
					row = append(row, TableCell{Text: formatMean(avg[j], format), Average: true})
					if avg[j].N > 0 {
						t.CSV = append(t.CSV, []string{"", r.Info.Category, r.Info.Category + " avg", s.Cols[cm.col].Label, cm.m.name,
							fullFloat(avg[j].Mean), "", strconv.Itoa(avg[j].N), ""})
					}
				}
				t.Rows = append(t.Rows, row)
			}
		}
	}
}

// categoryAverage averages the row means of a category's multimodal
// method rows per column (the paper's "Objective Avg"); nil for the
// reference rows and for a category with fewer than two rows.
func (s *Set) categoryAverage(category string, stats [][]Stat, ncols int) []Stat {
	if categoryRank(category) == 0 {
		return nil
	}
	var rows []int
	for ri, r := range s.Rows {
		if r.Info.Category == category && r.eligible() {
			rows = append(rows, ri)
		}
	}
	if len(rows) < 2 {
		return nil
	}
	out := make([]Stat, ncols)
	for j := range out {
		var means []float64
		for _, ri := range rows {
			if stats[ri][j].N > 0 {
				means = append(means, stats[ri][j].Mean)
			}
		}
		out[j] = stat(means)
	}
	return out
}

// topTwo is the largest value and the largest below it (nil if none).
func topTwo(vals []float64) (best float64, second *float64) {
	if len(vals) == 0 {
		return 0, nil
	}
	best = vals[0]
	for _, v := range vals {
		best = max(best, v)
	}
	for _, v := range vals {
		if v < best && (second == nil || v > *second) {
			second = &v
		}
	}
	return best, second
}

// formatStat writes mean ± std, with the number of seeds where it is not
// the table's usual one.
func formatStat(st Stat, format func(float64) string, usual int) string {
	text := format(st.Mean)
	switch {
	case st.N == 0:
		return "-"
	case st.N > 1:
		text += " ± " + format(st.Std)
	}
	if st.N != usual {
		text += fmt.Sprintf(" (n=%d)", st.N)
	}
	return text
}

func formatMean(st Stat, format func(float64) string) string {
	if st.N == 0 {
		return "-"
	}
	return format(st.Mean)
}

func fullFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func markName(m Mark) string {
	switch m {
	case Best:
		return "best"
	case Second:
		return "second"
	}
	return ""
}

// FLOPs is the Table 3 analogue: the average training FLOPs of each
// method category per dataset column and over all runs, from each run's
// exact tally (results.json training_flops: every graph run the training
// made times its counted FLOPs).
func (s *Set) FLOPs() Table {
	t := Table{Name: "flops", Title: "Training FLOPs by category (Table 3): mean per run, exact counts",
		Note:   "Each run's training_flops counts every graph run its training made (steps, the method's extra passes, validation).",
		Header: []string{"Category"}, CSV: [][]string{{"category", "dataset", "mean_training_flops", "runs"}}}
	for _, c := range s.Cols {
		t.Header = append(t.Header, c.Label)
	}
	t.Header = append(t.Header, "all")
	for _, cat := range Categories() {
		var all []*Run
		row := []TableCell{{Text: cat}}
		for ci, c := range s.Cols {
			var runs []*Run
			for ri, r := range s.Rows {
				if r.Info.Category == cat {
					runs = append(runs, s.Cell(ri, ci)...)
				}
			}
			all = append(all, runs...)
			row = append(row, flopsCell(&t, cat, c.Label, runs))
		}
		if len(all) == 0 {
			continue
		}
		row = append(row, flopsCell(&t, cat, "all", all))
		t.Rows = append(t.Rows, row)
	}
	return t
}

// MethodFLOPs is the training FLOPs of every method row per dataset
// column (mean over its runs).
func (s *Set) MethodFLOPs() Table {
	t := Table{Name: "flops_methods", Title: "Training FLOPs per method: mean per run, exact counts",
		Header: []string{"Method"}, CSV: [][]string{{"row", "dataset", "mean_training_flops", "runs"}}}
	for _, c := range s.Cols {
		t.Header = append(t.Header, c.Label)
	}
	for ri, r := range s.Rows {
		row := []TableCell{{Text: r.Label}}
		for ci, c := range s.Cols {
			row = append(row, flopsCell(&t, r.Label, c.Label, s.Cell(ri, ci)))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// flopsCell is the mean training FLOPs of runs, exactly in the CSV.
func flopsCell(t *Table, row, col string, runs []*Run) TableCell {
	if len(runs) == 0 {
		return TableCell{Text: "-"}
	}
	sum := new(big.Int)
	for _, r := range runs {
		sum.Add(sum, big.NewInt(r.Result.TrainingFLOPs))
	}
	mean := new(big.Rat).SetFrac(sum, big.NewInt(int64(len(runs))))
	exact := mean.FloatString(0)
	if !mean.IsInt() {
		exact = mean.FloatString(3)
	}
	t.CSV = append(t.CSV, []string{row, col, exact, strconv.Itoa(len(runs))})
	f, _ := mean.Float64()
	return TableCell{Text: fmt.Sprintf("%.3e", f)}
}

// RunsTable lists every run: its method, dataset, seed and numbers.
func (s *Set) RunsTable() Table {
	t := Table{Name: "runs", Title: "Runs", Header: []string{"run", "method", "dataset", "seed", "acc", "F1"}}
	mods := map[string]bool{}
	for _, c := range s.Cols {
		for _, m := range c.Modalities {
			mods[m] = true
		}
	}
	ms := slices.Sorted(maps.Keys(mods))
	for _, m := range ms {
		t.Header = append(t.Header, "acc "+m)
	}
	for _, m := range ms {
		t.Header = append(t.Header, "φ "+m)
	}
	t.Header = append(t.Header, "I", "training FLOPs")
	csvHead := []string{"dir", "method", "row", "dataset", "column", "seed", "test_acc", "test_f1"}
	for _, m := range ms {
		csvHead = append(csvHead, "acc_"+m)
	}
	for _, m := range ms {
		csvHead = append(csvHead, "phi_"+m)
	}
	t.CSV = [][]string{append(csvHead, "imbalance_degree", "training_flops", "seconds")}
	for ri, row := range s.Rows {
		for ci, col := range s.Cols {
			for _, r := range s.Cell(ri, ci) {
				seed := "-"
				if r.HasSeed {
					seed = strconv.FormatUint(r.Seed, 10)
				}
				cells := []TableCell{{Text: r.Name}, {Text: row.Label}, {Text: col.Label}, {Text: seed},
					{Text: fmt.Sprintf("%.4f", r.Result.Test.Acc)}, {Text: fmt.Sprintf("%.4f", r.Result.Test.F1)}}
				rec := []string{r.Dir, r.Result.Method, row.Label, r.Result.Dataset, col.Label, seed, fullFloat(r.Result.Test.Acc), fullFloat(r.Result.Test.F1)}
				for _, tab := range []map[string]float64{r.Result.Test.ModalityAcc, r.Result.Imbalance.Shapley} {
					for _, m := range ms {
						v, ok := tab[m]
						cells = append(cells, optCell(v, ok))
						rec = append(rec, optFull(v, ok))
					}
				}
				d := r.Result.Imbalance.Degree
				var dv float64
				if d != nil {
					dv = *d
				}
				cells = append(cells, optCell(dv, d != nil), TableCell{Text: fmt.Sprintf("%.3e", float64(r.Result.TrainingFLOPs))})
				rec = append(rec, optFull(dv, d != nil), strconv.FormatInt(r.Result.TrainingFLOPs, 10), fullFloat(r.Result.Seconds))
				t.Rows = append(t.Rows, cells)
				t.CSV = append(t.CSV, rec)
			}
		}
	}
	return t
}

func optCell(v float64, ok bool) TableCell {
	if !ok {
		return TableCell{Text: "-"}
	}
	return TableCell{Text: fmt.Sprintf("%.4f", v)}
}

func optFull(v float64, ok bool) string {
	if !ok {
		return ""
	}
	return fullFloat(v)
}
