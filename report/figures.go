package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"bmc/runtime"
)

// Epoch is one line of a run's log.jsonl, read tolerantly: the train and
// validation metrics may be a flat map (acc_audio) or nested
// (acc_modality.audio), and validation may be named val or validation.
type Epoch struct {
	Epoch               int
	TrainLoss, TrainAcc float64
	ValLoss, ValAcc     float64
	ValModalityAcc      map[string]float64
}

// ReadLog reads a run's log.jsonl.
func ReadLog(dir string) ([]Epoch, error) {
	path := filepath.Join(dir, runtime.LogFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Epoch
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var line struct {
			Epoch      int            `json:"epoch"`
			Train      map[string]any `json:"train"`
			Val        map[string]any `json:"val"`
			Validation map[string]any `json:"validation"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		val := line.Val
		if val == nil {
			val = line.Validation
		}
		e := Epoch{Epoch: line.Epoch, ValModalityAcc: modalityAcc(val)}
		e.TrainLoss, _ = number(line.Train["loss"])
		e.TrainAcc, _ = number(line.Train["acc"])
		e.ValLoss, _ = number(val["loss"])
		e.ValAcc, _ = number(val["acc"])
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

func number(v any) (float64, bool) {
	f, ok := v.(float64)
	return f, ok
}

// modalityAcc reads per-modality accuracies from acc_modality or acc_M keys.
func modalityAcc(m map[string]any) map[string]float64 {
	out := map[string]float64{}
	if nested, ok := m["acc_modality"].(map[string]any); ok {
		for k, v := range nested {
			if f, ok := number(v); ok {
				out[k] = f
			}
		}
		return out
	}
	for k, v := range m {
		if mod, ok := strings.CutPrefix(k, "acc_"); ok {
			if f, ok := number(v); ok {
				out[mod] = f
			}
		}
	}
	return out
}

// Curves are a run's training curves: the train and validation loss, and
// the validation accuracy fused and per modality with the train accuracy.
func Curves(name string, log []Epoch) []Figure {
	loss := Figure{Name: "loss", Title: name + ": loss", XAxis: "epoch", YAxis: "cross-entropy"}
	acc := Figure{Name: "accuracy", Title: name + ": accuracy", XAxis: "epoch", YAxis: "accuracy"}
	trainLoss, valLoss := Series{Name: "train loss", Line: true}, Series{Name: "validation loss", Line: true}
	trainAcc, valAcc := Series{Name: "train acc", Line: true}, Series{Name: "validation acc", Line: true}
	mods := map[string]*Series{}
	for _, e := range log {
		x := float64(e.Epoch)
		trainLoss.Points = append(trainLoss.Points, Point{X: x, Y: e.TrainLoss})
		valLoss.Points = append(valLoss.Points, Point{X: x, Y: e.ValLoss})
		trainAcc.Points = append(trainAcc.Points, Point{X: x, Y: e.TrainAcc})
		valAcc.Points = append(valAcc.Points, Point{X: x, Y: e.ValAcc})
		for m, v := range e.ValModalityAcc {
			if mods[m] == nil {
				mods[m] = &Series{Name: "validation acc " + m, Line: true}
			}
			mods[m].Points = append(mods[m].Points, Point{X: x, Y: v})
		}
	}
	loss.Series = []Series{trainLoss, valLoss}
	acc.Series = []Series{valAcc}
	for _, m := range slices.Sorted(maps.Keys(mods)) {
		acc.Series = append(acc.Series, *mods[m])
	}
	acc.Series = append(acc.Series, trainAcc)
	return []Figure{loss, acc}
}

// AccuracyVsImbalance has a figure per dataset column: each method row's
// runs as points (imbalance degree I, test accuracy).
func (s *Set) AccuracyVsImbalance() []Figure {
	return s.scatter("acc_vs_imbalance", "test accuracy against imbalance degree", "imbalance degree I", false, func(r *Run) (float64, bool) {
		return degreeMetric().get(r)
	})
}

// AccuracyVsFLOPs has a figure per dataset column: each method row's runs
// as points (training FLOPs, test accuracy), FLOPs on a log scale.
func (s *Set) AccuracyVsFLOPs() []Figure {
	return s.scatter("acc_vs_flops", "test accuracy against training FLOPs", "training FLOPs", true, func(r *Run) (float64, bool) {
		return float64(r.Result.TrainingFLOPs), r.Result.TrainingFLOPs > 0
	})
}

func (s *Set) scatter(name, title, xaxis string, logX bool, x func(*Run) (float64, bool)) []Figure {
	var out []Figure
	for ci, c := range s.Cols {
		f := Figure{Name: name + "_" + fileName(c.Label), Title: c.Label + ": " + title, XAxis: xaxis, YAxis: "test accuracy", LogX: logX}
		for ri, r := range s.Rows {
			ser := Series{Name: r.Label}
			for _, run := range s.Cell(ri, ci) {
				if v, ok := x(run); ok {
					ser.Points = append(ser.Points, Point{X: v, Y: run.Result.Test.Acc})
				}
			}
			if len(ser.Points) > 0 {
				f.Series = append(f.Series, ser)
			}
		}
		if len(f.Series) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// fileName keeps a label to file-name characters.
func fileName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '=':
			return r
		}
		return '_'
	}, s)
}
