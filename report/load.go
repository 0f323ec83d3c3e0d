// Package report turns finished runs into the paper's comparisons: the
// Table 2 analogue (accuracy and macro-F1, mean ± std over seeds, best bold
// and second underlined), the imbalance table (Shapley value per modality
// and the imbalance degree I), the Table 3 analogue (training FLOPs by
// method category), each in Markdown and CSV; plots of training curves,
// accuracy against imbalance and against FLOPs, and the relative-balance
// analysis of a strength sweep (the paper's Fig. 3); and a self-contained
// HTML page with all of it.
package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"bmc/experiment"
	"bmc/methods"
	"bmc/runtime"
	"bmc/sweep"
)

// Run is one finished run.
type Run struct {
	// Dir is the run directory; Name its base name.
	Dir, Name string
	Result    runtime.Result
	// Config is the run's effective configuration (config.yaml); nil when
	// the directory has none.
	Config *experiment.Request
	// Seed is the training seed (HasSeed false when no config says).
	Seed    uint64
	HasSeed bool
	// Info is the method's registry entry (Name only for a method this
	// bmc does not know).
	Info methods.Info
}

// Skipped is a path the report leaves out, with why.
type Skipped struct {
	Path, Reason string
}

// Load reads run directories and sweep directories (every cell's run).
// Directories without a finished run are skipped and listed, so that a
// glob over runs still in progress reports the finished ones; a path that
// does not exist, or a results.json that is not one bmc train writes, is an
// error.
func Load(paths []string) ([]*Run, []Skipped, error) {
	var l loaded
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case !fi.IsDir():
			l.skipped = append(l.skipped, Skipped{p, "not a directory"})
		case sweep.IsSweep(p):
			err = l.sweep(p)
		default:
			err = l.run(p)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return l.runs, l.skipped, nil
}

// loaded gathers the runs read and the paths left out.
type loaded struct {
	runs    []*Run
	skipped []Skipped
}

// run reads one run directory.
func (l *loaded) run(dir string) error {
	r, reason, err := loadRun(dir)
	switch {
	case err != nil:
		return err
	case r == nil:
		l.skipped = append(l.skipped, Skipped{dir, reason})
	default:
		l.runs = append(l.runs, r)
	}
	return nil
}

// sweep reads a sweep's finished cells and lists the others.
func (l *loaded) sweep(dir string) error {
	s, err := sweep.Open(dir)
	if err != nil {
		return err
	}
	for _, st := range s.Status(nil) {
		path := s.RunDir(s.Manifest.Cells[st.Index])
		if st.State != sweep.StateDone {
			reason := "cell " + string(st.State)
			if st.Error != "" {
				reason += ": " + st.Error
			}
			l.skipped = append(l.skipped, Skipped{path, reason})
			continue
		}
		if err := l.run(path); err != nil {
			return err
		}
	}
	return nil
}

// loadRun reads one run directory; nil with a reason when it holds no
// finished run.
func loadRun(dir string) (*Run, string, error) {
	path := filepath.Join(dir, runtime.ResultsFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		for _, f := range []string{runtime.LastCheckpoint, runtime.LogFile, runtime.PlanDir, experiment.ConfigFile} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				return nil, "unfinished run (no " + runtime.ResultsFile + "; bmc train --resume " + dir + " continues it)", nil
			}
		}
		return nil, "not a run directory (no " + runtime.ResultsFile + ")", nil
	}
	if err != nil {
		return nil, "", err
	}
	res, err := ParseResult(path, data)
	if err != nil {
		return nil, "", err
	}
	r := &Run{Dir: dir, Name: filepath.Base(dir), Result: *res, Info: methods.Info{Name: res.Method, Display: res.Method, Category: "?"}}
	for _, info := range methods.All() {
		if info.Name == res.Method {
			r.Info = info
		}
	}
	cfgPath := filepath.Join(dir, experiment.ConfigFile)
	if _, err := os.Stat(cfgPath); err == nil {
		cfg, err := experiment.ReadConfig(cfgPath)
		if err != nil {
			return nil, "", err
		}
		r.Config = &cfg
		if cfg.Train.Seed != nil {
			r.Seed, r.HasSeed = *cfg.Train.Seed, true
		}
	}
	return r, "", nil
}

// resultFields are the fields of results.json a report reads.
func resultFields() []string {
	return []string{"method", "dataset", "epochs", "validation", "test", "imbalance", "training_flops"}
}

// ParseResult reads a results.json as bmc train writes it. A file of
// another schema (a bmc eval report, a file from another tool) is refused
// with the file and the field named.
func ParseResult(path string, data []byte) (*runtime.Result, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object: %w", path, err)
	}
	want := "want the results.json bmc train writes, with fields " + strings.Join(resultFields(), ", ")
	if _, ok := raw["source"]; ok {
		if _, ok := raw["metrics"]; ok {
			return nil, fmt.Errorf("%s: fields source and metrics are a bmc eval report, not a training result (%s)", path, want)
		}
	}
	for _, f := range resultFields() {
		if _, ok := raw[f]; !ok {
			return nil, fmt.Errorf("%s: field %s missing (%s)", path, f, want)
		}
	}
	for _, split := range []string{"validation", "test"} {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw[split], &m); err != nil {
			return nil, fmt.Errorf("%s: field %s: want an object of metrics, got %s", path, split, shorten(raw[split]))
		}
		for _, f := range []string{"acc", "f1"} {
			if _, ok := m[f]; !ok {
				return nil, fmt.Errorf("%s: field %s.%s missing (%s)", path, split, f, want)
			}
		}
	}
	r := &runtime.Result{}
	if err := json.Unmarshal(data, r); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%s: field %s: want a %s, got a JSON %s", path, te.Field, te.Type, te.Value)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Method == "" || r.Dataset == "" {
		return nil, fmt.Errorf("%s: fields method and dataset must name the run's method and dataset", path)
	}
	return r, nil
}

func shorten(b []byte) string {
	s := string(bytes.TrimSpace(b))
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// settings are a run's settings besides method, dataset and seed, as
// "hp.K", "encoder.M", "train.K" (method side) and "data.K" (dataset side)
// keys.
func (r *Run) settings() (method, data map[string]string) {
	method, data = map[string]string{}, map[string]string{}
	for k, v := range r.Result.Hyper {
		method["hp."+k] = v
	}
	c := r.Config
	if c == nil {
		return method, data
	}
	for k, v := range c.DataParams {
		data["data."+k] = v
	}
	if c.Encoder != "" {
		method["encoder"] = c.Encoder
	}
	for m, e := range c.Encoders {
		method["encoder."+m] = e
	}
	t := c.Train
	for k, v := range map[string]any{"epochs": t.Epochs, "batch_size": t.BatchSize, "optimizer": t.Optimizer, "lr": t.LR,
		"momentum": t.Momentum, "weight_decay": t.WeightDecay, "step_size": t.StepSize, "gamma": t.Gamma, "protocol": t.Protocol} {
		method["train."+k] = fmt.Sprint(v)
	}
	return method, data
}
