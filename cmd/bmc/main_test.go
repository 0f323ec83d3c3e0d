package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"bmc/flops"
)

func bmc(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(args, &out, &errOut)
	return out.String(), err
}

func TestEveryCommandHasHelpWithExamples(t *testing.T) {
	for _, c := range commands() {
		out, err := bmc(t, c.name, "--help")
		if err != nil {
			t.Errorf("%s --help: %v", c.name, err)
		}
		if !strings.Contains(out, "Usage:") || !strings.Contains(out, "Examples:") || !strings.Contains(out, "bmc "+c.name) {
			t.Errorf("%s --help lacks usage or examples:\n%s", c.name, out)
		}
	}
	out, err := bmc(t)
	if err != nil || !strings.Contains(out, "compile") || !strings.Contains(out, "datasets") {
		t.Errorf("bmc without arguments: %v\n%s", err, out)
	}
	// bmc help CMD is CMD --help; a command without flags has no Flags block.
	for _, c := range commands() {
		help, err := bmc(t, "help", c.name)
		own, _ := bmc(t, c.name, "--help")
		if err != nil || help != own {
			t.Errorf("bmc help %s differs from bmc %s --help (%v)", c.name, c.name, err)
		}
	}
	for _, name := range []string{"methods", "datasets", "version"} {
		if out, _ := bmc(t, "help", name); strings.Contains(out, "Flags:") {
			t.Errorf("bmc help %s shows a Flags block without flags:\n%s", name, out)
		}
	}
	// One convention: every command that writes takes -o/--out for it.
	for _, name := range []string{"compile", "train", "eval", "export", "prepare"} {
		if out, _ := bmc(t, "help", name); !strings.Contains(out, "-o, --out") {
			t.Errorf("bmc %s has no -o/--out", name)
		}
	}
	if _, err := bmc(t, "help", "nope"); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("bmc help nope: %v", err)
	}
	out, err = bmc(t, "version")
	if err != nil || !strings.Contains(out, "bmc ") || !strings.Contains(out, "ONNX Runtime 1.") {
		t.Errorf("bmc version: %v\n%s", err, out)
	}
	for _, name := range []string{"train", "eval"} {
		out, _ := bmc(t, "help", name)
		for _, want := range []string{"v(∅)", "imbalance degree", "Shapley φ_m"} {
			if !strings.Contains(out, want) {
				t.Errorf("bmc help %s does not define %s", name, want)
			}
		}
	}
}

func TestBadInputListsTheValidChoices(t *testing.T) {
	tmp := t.TempDir()
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"frobnicate"}, []string{"unknown command", "compile", "train", "flops"}},
		{[]string{"compile", "--method", "nope", "--dataset", "synth-av", "-o", tmp}, []string{"unknown method", "baseline", "agm", "reconboost"}},
		{[]string{"compile", "--method", "agm", "--dataset", "nope", "-o", tmp}, []string{"unknown dataset", "synth-av", "cremad"}},
		{[]string{"compile", "--method", "agm", "--dataset", "cremad", "-o", tmp}, []string{"cremad", "--data-root"}},
		{[]string{"compile", "--method", "ogm", "--hp", "beta=1", "--dataset", "synth-av", "-o", tmp}, []string{"no hyperparameter \"beta\"", "alpha", "modulation_starts"}},
		{[]string{"compile", "--method", "ogm", "--hp", "method=OGM4", "--dataset", "synth-av", "-o", tmp}, []string{"method=\"OGM4\"", "OGM_GE, OGM, OGM_GE3"}},
		{[]string{"compile", "--method", "agm", "--dataset", "synth-av", "--data", "noise=2", "-o", tmp}, []string{"unknown parameter \"noise\"", "signal.audio"}},
		{[]string{"compile", "--method", "agm", "--dataset", "synth-av", "--protocol", "x", "-o", tmp}, []string{"train.protocol", "bmc or balancemm"}},
		{[]string{"compile", "--method", "agm", "--dataset", "synth-av"}, []string{"-o PLAN_DIR is required"}},
		{[]string{"train", "--method", "agm", "--dataset", "synth-av"}, []string{"--out RUN_DIR is required"}},
		{[]string{"flops", filepath.Join(tmp, "missing")}, []string{"not a plan directory", "plan.json"}},
		{[]string{"eval", filepath.Join(tmp, "missing")}, []string{"no run directory"}},
		{[]string{"compile", "--method", "agm", "--dataset", "synth-av", "--encoder", "cnn:3", "-o", tmp}, []string{"kind \"cnn\"", "linear, mlp"}},
		{[]string{"train", tmp, "--epochs", "3", "--out", filepath.Join(tmp, "run")}, []string{"--epochs", "compiled"}},
	}
	for _, tt := range tests {
		_, err := bmc(t, tt.args...)
		if err == nil {
			t.Errorf("%v: no error", tt.args)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not mention %q", tt.args, err, w)
			}
		}
	}
}

func TestMethodsAndDatasetsListings(t *testing.T) {
	out, err := bmc(t, "methods")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"baseline", "unimodal", "sample", "mla", "opm", "greedy", "amco", "mmcosine", "umt", "mbsd", "cml", "mmpareto", "gblending", "lfm", "ogm", "agm", "pmr", "relearning", "reconboost"} {
		if !strings.Contains(out, "\n"+name+" ") {
			t.Errorf("bmc methods does not list %s", name)
		}
	}
	for _, want := range []string{"Optimization", "Feed-forward", "Objective", "Data", "performance score", "bmc methods NAME"} {
		if !strings.Contains(out, want) {
			t.Errorf("bmc methods lacks %q", want)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(line); n > 100 {
			t.Errorf("bmc methods has a line of %d columns, more than a 100-column terminal:\n%s", n, line)
		}
	}
	out, err = bmc(t, "methods", "ogm")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ogm — OGM", "category:            Optimization", "alpha=0.3", "modulation_starts=10", "OGM_GE|OGM|OGM_GE3", "per-step cost"} {
		if !strings.Contains(out, want) {
			t.Errorf("bmc methods ogm lacks %q:\n%s", want, out)
		}
	}
	if _, err := bmc(t, "methods", "nope"); err == nil || !strings.Contains(err.Error(), "baseline, unimodal") {
		t.Errorf("bmc methods nope: %v", err)
	}
	out, err = bmc(t, "datasets")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"synth-av", "synth-avt", "cremad", "mosei", "signal.visual", "presets: default: sgd"} {
		if !strings.Contains(out, want) {
			t.Errorf("bmc datasets lacks %q", want)
		}
	}
}

// The user's path: compile, count, train the plan, evaluate the run and its
// model.onnx, export again, report.
func TestCompileFlopsTrainEvalExport(t *testing.T) {
	tmp := t.TempDir()
	plan, run := filepath.Join(tmp, "plan"), filepath.Join(tmp, "run")
	out, err := bmc(t, "compile", "--method", "agm", "--dataset", "synth-av", "--data", "train=256,val=64,test=64", "--epochs", "2", "--threads", "1", "-o", plan)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "training FLOPs") {
		t.Errorf("compile output:\n%s", out)
	}
	out, err = bmc(t, "flops", plan)
	if err != nil || !strings.Contains(out, "whole training") || !strings.Contains(out, "method") || !strings.Contains(out, "MACs per sample") {
		t.Fatalf("flops: %v\n%s", err, out)
	}
	out, err = bmc(t, "flops", "--json", plan)
	if err != nil {
		t.Fatal(err)
	}
	var rep flops.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Training.Phase["method"] == 0 || rep.Training.Total != rep.PerEpoch.Total*2 {
		t.Errorf("flops --json: %+v", rep.Training)
	}
	if out, err = bmc(t, "train", plan, "--out", run, "--quiet"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Shapley") || !strings.Contains(out, "test acc") {
		t.Errorf("train output:\n%s", out)
	}
	runEval, err := bmc(t, "eval", run)
	if err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(tmp, "eval.json")
	modelEval, err := bmc(t, "eval", filepath.Join(run, "model.onnx"), "-o", report)
	if err != nil {
		t.Fatal(err)
	}
	var written evalReport
	if data, err := os.ReadFile(report); err != nil || json.Unmarshal(data, &written) != nil || written.Metrics.Samples != 64 || len(written.Imbalance.Shapley) != 2 {
		t.Errorf("eval -o wrote %+v (%v)", written, err)
	}
	body := func(s string) string { _, rest, _ := strings.Cut(s, "\n"); return rest }
	if body(runEval) != body(modelEval) {
		t.Errorf("eval of the run and of its model.onnx differ:\n%s\n%s", runEval, modelEval)
	}
	exported := filepath.Join(tmp, "again.onnx")
	if _, err := bmc(t, "export", run, "-o", exported); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(exported)
	b, _ := os.ReadFile(filepath.Join(run, "model.onnx"))
	if !bytes.Equal(a, b) {
		t.Error("bmc export of the best checkpoint differs from the model.onnx training wrote")
	}
	out, err = bmc(t, "report", run)
	if err != nil || !strings.Contains(out, "AGM") || !strings.Contains(out, "φ visual") {
		t.Errorf("report: %v\n%s", err, out)
	}
}
