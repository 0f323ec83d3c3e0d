package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/runtime"
)

// tinyRun trains a one-epoch run on small synthetic data and returns its
// directory.
func tinyRun(t *testing.T, dir string, extra ...string) string {
	t.Helper()
	args := append([]string{"train", "--method", "baseline", "--epochs", "1", "--threads", "1", "--quiet", "--out", dir}, extra...)
	if _, err := bmc(t, args...); err != nil {
		t.Fatal(err)
	}
	return dir
}

func wantError(t *testing.T, err error, what string, want ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q lacks %q", what, err, w)
		}
	}
}

// bmc eval and bmc export never write over a run's or a plan's files, and
// bmc compile never replaces a plan without --force, nor writes into a run.
func TestOutputsNeverOverwriteARunOrPlan(t *testing.T) {
	tmp := t.TempDir()
	run := tinyRun(t, filepath.Join(tmp, "run"), "--dataset", "synth-av", "--data", "train=64,val=16,test=16")
	plan := filepath.Join(tmp, "plan")
	if _, err := bmc(t, "compile", "--method", "agm", "--dataset", "synth-av", "--data", "train=64", "-o", plan); err != nil {
		t.Fatal(err)
	}
	before := map[string][]byte{}
	for _, f := range []string{runtime.ResultsFile, runtime.ModelFile, runtime.BestCheckpoint} {
		before[f], _ = os.ReadFile(filepath.Join(run, f))
	}
	model := filepath.Join(run, runtime.ModelFile)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"eval", run, "-o", filepath.Join(run, runtime.ResultsFile)}, []string{"would overwrite the results.json of run", "bmc report"}},
		{[]string{"eval", run, "-o", model}, []string{"would overwrite the model.onnx of run"}},
		{[]string{"eval", run, "--out", filepath.Join(run, "..", "run", runtime.BestCheckpoint)}, []string{"would overwrite the best.safetensors"}},
		{[]string{"eval", model, "-o", model}, []string{"is the file this command reads"}},
		{[]string{"eval", run, "-o", filepath.Join(run, runtime.PlanDir, "eval.onnx")}, []string{"would overwrite a file of plan"}},
		{[]string{"eval", run, "-o", filepath.Join(plan, compile.ManifestFile)}, []string{"would overwrite a file of plan"}},
		{[]string{"export", run, "--checkpoint", "last"}, []string{"is the run's best model", "-o FILE"}},
		{[]string{"export", run, "-o", filepath.Join(run, runtime.ResultsFile)}, []string{"would overwrite the results.json"}},
		{[]string{"compile", "--method", "ogm", "--dataset", "synth-av", "-o", plan}, []string{"already holds a plan", "--force"}},
		{[]string{"compile", "--method", "ogm", "--dataset", "synth-av", "-o", run}, []string{"is a run directory"}},
		{[]string{"compile", "--method", "ogm", "--dataset", "synth-av", "--force", "-o", run}, []string{"is a run directory"}},
		{[]string{"train", plan, "--out", plan}, []string{"--out " + plan + " is a plan directory"}},
	} {
		_, err := bmc(t, tc.args...)
		wantError(t, err, strings.Join(tc.args, " "), tc.want...)
	}
	for f, data := range before {
		if now, _ := os.ReadFile(filepath.Join(run, f)); !bytes.Equal(now, data) {
			t.Errorf("the run's %s changed", f)
		}
	}
	// A new file in the run directory, and the run's own model.onnx from
	// the best checkpoint (what it already is), are fine.
	if _, err := bmc(t, "eval", run, "-o", filepath.Join(run, "eval-test.json")); err != nil {
		t.Error(err)
	}
	if _, err := bmc(t, "export", run); err != nil {
		t.Error(err)
	}
	if now, _ := os.ReadFile(model); !bytes.Equal(now, before[runtime.ModelFile]) {
		t.Error("bmc export RUN changed the run's model.onnx")
	}
	// --force replaces the plan and leaves none of the old plan's graphs.
	if _, err := bmc(t, "compile", "--method", "baseline", "--dataset", "synth-av", "--data", "train=64", "--force", "-o", plan); err != nil {
		t.Fatal(err)
	}
	p, err := compile.Load(plan)
	if err != nil || p.Manifest.Method != "baseline" {
		t.Fatalf("the replaced plan: %v", err)
	}
	var want, got []string
	for _, g := range p.Manifest.Graphs {
		want = append(want, g.File)
	}
	onnx, _ := filepath.Glob(filepath.Join(plan, "*.onnx"))
	for _, f := range onnx {
		got = append(got, filepath.Base(f))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("after --force the plan folder holds graphs %v, the plan lists %v", got, want)
	}
}

// A plan directory or a missing path given where a run directory is wanted
// gets a hint that fits.
func TestRunDirectoryHintsFitTheMistake(t *testing.T) {
	tmp := t.TempDir()
	plan := filepath.Join(tmp, "plan")
	if _, err := bmc(t, "compile", "--method", "baseline", "--dataset", "synth-av", "--data", "train=64", "-o", plan); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(tmp, "missing")
	file := filepath.Join(tmp, "notes.txt")
	os.WriteFile(file, nil, 0o644)
	empty := filepath.Join(tmp, "empty")
	os.Mkdir(empty, 0o755)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"eval", plan}, []string{"is a plan directory (compiled, not trained)", "bmc train " + plan + " --out RUN_DIR"}},
		{[]string{"train", "--resume", plan}, []string{"is a plan directory"}},
		{[]string{"export", plan}, []string{"is a plan directory"}},
		{[]string{"eval", missing}, []string{"no run directory " + missing, "--out"}},
		{[]string{"train", "--resume", missing}, []string{"no run directory"}},
		{[]string{"eval", file}, []string{"is a file, neither a run directory nor a .onnx model"}},
		{[]string{"eval", empty}, []string{"is not a run directory", "plan/plan.json"}},
	} {
		_, err := bmc(t, tc.args...)
		wantError(t, err, strings.Join(tc.args, " "), tc.want...)
		if err != nil && strings.Contains(err.Error(), "bmc compile") {
			t.Errorf("%q: %v suggests bmc compile", tc.args, err)
		}
	}
}

// bmc eval MODEL.onnx checks the data against the model's inputs and
// classes, and --data overrides only the parameters it names.
func TestEvalModelChecksTheData(t *testing.T) {
	tmp := t.TempDir()
	run := tinyRun(t, filepath.Join(tmp, "av"), "--dataset", "synth-av", "--data", "train=64,val=16,test=16,dim.audio=16")
	model := filepath.Join(run, runtime.ModelFile)
	out, err := bmc(t, "eval", model, "--data", "test=20")
	if err != nil || !strings.Contains(out, "(20 samples)") {
		t.Errorf("eval with --data test=20 (the model's dim.audio=16 kept): %v\n%s", err, out)
	}
	avt := tinyRun(t, filepath.Join(tmp, "avt"), "--dataset", "synth-avt", "--data", "train=64,val=16,test=16")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"eval", model, "--data", "dim.audio=32"}, []string{"takes modality audio as [16] float32; dataset synth-av gives [32] float32"}},
		{[]string{"eval", model, "--data", "vocab.visual=40"}, []string{"takes modality visual as [32] float32", "int64 token ids"}},
		{[]string{"eval", model, "--data", "classes=5"}, []string{"has 10 classes; dataset synth-av has 5"}},
		{[]string{"eval", model, "--dataset", "synth-avt", "--data", "dim.audio=16"}, []string{"dataset synth-avt has modality text, which", "does not take"}},
		{[]string{"eval", filepath.Join(avt, runtime.ModelFile), "--dataset", "synth-av"}, []string{"takes modality text, which dataset synth-av lacks"}},
		{[]string{"eval", model, "--batch-size", "0"}, []string{"--batch-size 0"}},
		{[]string{"eval", model, "--threads", "100000"}, []string{"--threads 100000"}},
	} {
		_, err := bmc(t, tc.args...)
		wantError(t, err, strings.Join(tc.args, " "), tc.want...)
	}
}
