package report

import (
	"strconv"
	"strings"

	"bmc/methods"
)

// Balance is a strength sweep of one method on one dataset column (the
// paper's Fig. 3): the method's rows differ in one numeric hyperparameter
// and nothing else.
type Balance struct {
	Method methods.Info
	// Param is the swept hyperparameter; Col the dataset column.
	Param, Col string
	// Points are the strengths in increasing order.
	Points []BalancePoint
	// Relative is the index of the relative balance point (the best mean
	// accuracy), Absolute of the absolute balance point (the lowest mean
	// imbalance degree); -1 when no point has one.
	Relative, Absolute int
	// Baseline is the Baseline's point on the same column, if it ran.
	Baseline *BalancePoint
}

// BalancePoint is one strength's accuracy and imbalance over seeds.
type BalancePoint struct {
	Value  float64
	Text   string
	Acc, I Stat
}

// minBalancePoints is how many strengths make a sweep.
const minBalancePoints = 3

// Balances finds the strength sweeps among the rows.
func (s *Set) Balances() []Balance {
	var out []Balance
	for ci, c := range s.Cols {
		byMethod := map[string][]int{}
		var order []string
		for ri, r := range s.Rows {
			if len(s.Cell(ri, ci)) == 0 {
				continue
			}
			if byMethod[r.Info.Name] == nil {
				order = append(order, r.Info.Name)
			}
			byMethod[r.Info.Name] = append(byMethod[r.Info.Name], ri)
		}
		var base *BalancePoint
		if rows := byMethod["baseline"]; len(rows) == 1 {
			p := s.balancePoint(rows[0], ci, 0, "")
			base = &p
		}
		for _, name := range order {
			rows := byMethod[name]
			param, ok := s.sweptParam(rows)
			if !ok || len(rows) < minBalancePoints {
				continue
			}
			b := Balance{Method: s.Rows[rows[0]].Info, Param: strings.TrimPrefix(param, "hp."), Col: c.Label, Relative: -1, Absolute: -1, Baseline: base}
			for _, ri := range rows {
				text := s.Rows[ri].Vary[param]
				v, _ := strconv.ParseFloat(text, 64)
				b.Points = append(b.Points, s.balancePoint(ri, ci, v, text))
			}
			// Rows come sorted numerically by their one varying setting.
			for i, p := range b.Points {
				if b.Relative < 0 || p.Acc.Mean > b.Points[b.Relative].Acc.Mean {
					b.Relative = i
				}
				if p.I.N > 0 && (b.Absolute < 0 || p.I.Mean < b.Points[b.Absolute].I.Mean) {
					b.Absolute = i
				}
			}
			out = append(out, b)
		}
	}
	return out
}

// sweptParam is the one numeric hyperparameter that tells rows apart.
func (s *Set) sweptParam(rows []int) (string, bool) {
	var param string
	for _, ri := range rows {
		vary := s.Rows[ri].Vary
		if len(vary) != 1 {
			return "", false
		}
		for k, v := range vary {
			if _, err := strconv.ParseFloat(v, 64); err != nil || !strings.HasPrefix(k, "hp.") || (param != "" && k != param) {
				return "", false
			}
			param = k
		}
	}
	return param, param != ""
}

func (s *Set) balancePoint(ri, ci int, v float64, text string) BalancePoint {
	runs := s.Cell(ri, ci)
	return BalancePoint{Value: v, Text: text, Acc: over(runs, accMetric().get), I: over(runs, degreeMetric().get)}
}

// Figures are the sweep's two plots: accuracy against imbalance degree
// along the strengths with both balance points (Fig. 3), and accuracy and
// I against the strength.
func (b Balance) Figures() []Figure {
	name := fileName(b.Method.Name + "_" + b.Col)
	title := b.Method.Display + " on " + b.Col
	curve := Series{Name: b.Method.Display + " (" + b.Param + " swept)", Line: true}
	acc := Series{Name: "test accuracy", Line: true}
	deg := Series{Name: "imbalance degree I", Line: true}
	for _, p := range b.Points {
		if p.I.N > 0 {
			curve.Points = append(curve.Points, Point{X: p.I.Mean, Y: p.Acc.Mean, Label: b.Param + "=" + p.Text})
			deg.Points = append(deg.Points, Point{X: p.Value, Y: p.I.Mean})
		}
		acc.Points = append(acc.Points, Point{X: p.Value, Y: p.Acc.Mean})
	}
	fig3 := Figure{Name: "balance_" + name, Title: title + ": relative and absolute balance", XAxis: "imbalance degree I", YAxis: "test accuracy",
		Series: []Series{curve}}
	vs := Figure{Name: "strength_" + name, Title: title + ": accuracy and imbalance against " + b.Param, XAxis: b.Param, YAxis: "accuracy, I",
		Series: []Series{acc, deg}}
	if b.Baseline != nil && b.Baseline.I.N > 0 {
		fig3.Series = append(fig3.Series, Series{Name: "Baseline", Points: []Point{{X: b.Baseline.I.Mean, Y: b.Baseline.Acc.Mean, Label: "baseline"}}})
	}
	if b.Relative >= 0 {
		p := b.Points[b.Relative]
		if p.I.N > 0 {
			fig3.Series = append(fig3.Series, Series{Name: "relative balance point (best accuracy)", Marker: true, Points: []Point{{X: p.I.Mean, Y: p.Acc.Mean}}})
		}
		vs.Series = append(vs.Series, Series{Name: "relative balance point", Marker: true, Points: []Point{{X: p.Value, Y: p.Acc.Mean}}})
	}
	if b.Absolute >= 0 {
		p := b.Points[b.Absolute]
		fig3.Series = append(fig3.Series, Series{Name: "absolute balance point (lowest I)", Marker: true, Points: []Point{{X: p.I.Mean, Y: p.Acc.Mean}}})
		vs.Series = append(vs.Series, Series{Name: "absolute balance point", Marker: true, Points: []Point{{X: p.Value, Y: p.I.Mean}}})
	}
	return []Figure{fig3, vs}
}

// Table lists the sweep's strengths with accuracy, I and the balance
// points.
func (b Balance) Table() Table {
	t := Table{Name: "balance_" + fileName(b.Method.Name+"_"+b.Col), Title: "Relative balance: " + b.Method.Display + " on " + b.Col + ", " + b.Param + " swept",
		Note:   "Relative balance point: the best accuracy; absolute balance point: the lowest imbalance degree (paper §6.2).",
		Header: []string{b.Param, "test acc %", "I", "point"}, CSV: [][]string{{"param", "value", "acc_mean", "acc_std", "I_mean", "I_std", "n", "point"}}}
	pct := func(v float64) string { return strconv.FormatFloat(100*v, 'f', 2, 64) }
	frac := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
	row := func(label string, p BalancePoint, point string) {
		t.Rows = append(t.Rows, []TableCell{{Text: label}, {Text: formatStat(p.Acc, pct, p.Acc.N)}, {Text: formatStat(p.I, frac, p.I.N)}, {Text: point}})
		t.CSV = append(t.CSV, []string{b.Param, label, fullFloat(p.Acc.Mean), fullFloat(p.Acc.Std), fullFloat(p.I.Mean), fullFloat(p.I.Std), strconv.Itoa(p.Acc.N), point})
	}
	if b.Baseline != nil {
		row("baseline", *b.Baseline, "")
	}
	for i, p := range b.Points {
		var marks []string
		if i == b.Relative {
			marks = append(marks, "relative balance point")
		}
		if i == b.Absolute {
			marks = append(marks, "absolute balance point")
		}
		row(p.Text, p, strings.Join(marks, ", "))
	}
	return t
}
