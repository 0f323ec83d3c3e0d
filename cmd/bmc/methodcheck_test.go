package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bmc/internal/onnxcheck"
	"bmc/runtime"
	"bmc/safetensors"
)

// The checks every method's CLI test makes. A method test calls
// checkMethodRun with its `bmc train` arguments (without --out), and
// checkKillResume for a method with Go-side state.

// methodRun is a finished CLI training run.
type methodRun struct {
	Dir     string
	Result  runtime.Result
	Threads string
}

// checkMethodRun trains from the CLI into a new run directory (args are
// `bmc train` flags; --threads 1 and --quiet are added), then checks what a
// finished run must hold: results.json; the test metrics of `bmc eval RUN`
// equal results.json's; `bmc eval RUN/model.onnx` predicts as the run does;
// model.onnx passes the ONNX checker; `bmc flops` reads the run's plan;
// and, unless the method's work depends on the data (dynamic), the
// training FLOPs tally equals the static count.
func checkMethodRun(t *testing.T, dynamic bool, args ...string) methodRun {
	t.Helper()
	r := methodRun{Dir: filepath.Join(t.TempDir(), "run"), Threads: "1"}
	full := append([]string{"train", "--threads", r.Threads, "--quiet", "--out", r.Dir}, args...)
	if out, err := bmc(t, full...); err != nil {
		t.Fatalf("bmc %s: %v\n%s", strings.Join(full, " "), err, out)
	}
	data, err := os.ReadFile(filepath.Join(r.Dir, runtime.ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &r.Result); err != nil {
		t.Fatal(err)
	}
	if r.Result.TrainingFLOPs <= 0 || (!dynamic && r.Result.TrainingFLOPs != r.Result.PlannedFLOPs) {
		t.Errorf("training FLOPs %d, the plan predicted %d", r.Result.TrainingFLOPs, r.Result.PlannedFLOPs)
	}
	// A dataset on disk is read from the training run's --data-root.
	var root []string
	for i, a := range args {
		if a == "--data-root" && i+1 < len(args) {
			root = []string{a, args[i+1]}
		}
	}
	evalJSON := func(src string, extra ...string) evalReport {
		t.Helper()
		out, err := bmc(t, append(append([]string{"eval", src, "--json", "--threads", r.Threads}, root...), extra...)...)
		if err != nil {
			t.Fatalf("bmc eval %s: %v", src, err)
		}
		var rep evalReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("bmc eval %s --json: %v\n%s", src, err, out)
		}
		return rep
	}
	run := evalJSON(r.Dir)
	if run.Metrics.Acc != r.Result.Test.Acc || run.Metrics.F1 != r.Result.Test.F1 || run.Metrics.Samples != r.Result.Test.Samples {
		t.Errorf("bmc eval of the run: acc %v F1 %v on %d samples, results.json has %v %v on %d",
			run.Metrics.Acc, run.Metrics.F1, run.Metrics.Samples, r.Result.Test.Acc, r.Result.Test.F1, r.Result.Test.Samples)
	}
	for m, phi := range r.Result.Imbalance.Shapley {
		if run.Imbalance.Shapley[m] != phi {
			t.Errorf("bmc eval of the run: Shapley %s %v, results.json %v", m, run.Imbalance.Shapley[m], phi)
		}
	}
	model := filepath.Join(r.Dir, runtime.ModelFile)
	exported := evalJSON(model, "--batch-size", "5")
	if exported.Metrics.Acc != run.Metrics.Acc || exported.Metrics.F1 != run.Metrics.F1 {
		t.Errorf("model.onnx: acc %v F1 %v, the run %v %v", exported.Metrics.Acc, exported.Metrics.F1, run.Metrics.Acc, run.Metrics.F1)
	}
	for k, v := range run.Imbalance.Coalitions {
		if exported.Imbalance.Coalitions[k] != v {
			t.Errorf("model.onnx: coalition %q accuracy %v, the run %v", k, exported.Imbalance.Coalitions[k], v)
		}
	}
	if err := onnxcheck.Files(model); err != nil {
		t.Error(err)
	}
	if out, err := bmc(t, "flops", filepath.Join(r.Dir, runtime.PlanDir)); err != nil || !strings.Contains(out, "whole training") {
		t.Errorf("bmc flops on the run's plan: %v\n%s", err, out)
	}
	return r
}

// checkKillResume trains with args (`bmc train` flags without --out; give
// enough epochs that the run outlasts `after` logged epochs) twice: once
// uninterrupted, once killed with SIGKILL after `after` epochs are logged
// and resumed with --resume. Both runs must end with the same checkpoints,
// bit for bit, and the same number of log lines.
func checkKillResume(t *testing.T, after int, args ...string) {
	t.Helper()
	tmp := t.TempDir()
	whole, killed := filepath.Join(tmp, "whole"), filepath.Join(tmp, "killed")
	base := append([]string{"train", "--threads", "1", "--quiet"}, args...)
	if out, err := bmc(t, append(base, "--out", whole)...); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	cmd := exec.Command(os.Args[0], append(base, "--out", killed)...)
	cmd.Env = append(os.Environ(), "BMC_TEST_AS_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(120 * time.Second)
	for {
		data, _ := os.ReadFile(filepath.Join(killed, runtime.LogFile))
		if bytes.Count(data, []byte("\n")) >= after {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the training process ended before it was killed (%v): %s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the training process wrote too few epochs")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-done
	if _, err := os.Stat(filepath.Join(killed, runtime.ResultsFile)); err == nil {
		t.Fatal("the run finished before it was killed; give it more epochs")
	}
	if out, err := bmc(t, "train", "--resume", killed, "--quiet"); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	for _, f := range []string{runtime.LastCheckpoint, runtime.BestCheckpoint} {
		a, err := safetensors.ReadFile(filepath.Join(whole, f))
		if err != nil {
			t.Fatal(err)
		}
		b, err := safetensors.ReadFile(filepath.Join(killed, f))
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Tensors) != len(b.Tensors) || len(a.Metadata) != len(b.Metadata) {
			t.Fatalf("%s: %d vs %d tensors, %d vs %d metadata entries", f, len(a.Tensors), len(b.Tensors), len(a.Metadata), len(b.Metadata))
		}
		for k, v := range a.Metadata {
			if b.Metadata[k] != v {
				t.Errorf("%s: metadata %s differs between the uninterrupted and the resumed run:\n%s\n%s", f, k, v, b.Metadata[k])
			}
		}
		for k, ta := range a.Tensors {
			if !bytes.Equal(ta.Data, b.Tensors[k].Data) {
				t.Errorf("%s: tensor %s differs between the uninterrupted and the resumed run", f, k)
			}
		}
	}
	la, _ := os.ReadFile(filepath.Join(whole, runtime.LogFile))
	lb, _ := os.ReadFile(filepath.Join(killed, runtime.LogFile))
	if bytes.Count(la, []byte("\n")) != bytes.Count(lb, []byte("\n")) {
		t.Errorf("the resumed run's log has %d lines, the uninterrupted %d", bytes.Count(lb, []byte("\n")), bytes.Count(la, []byte("\n")))
	}
}

// The checks hold for the methods that exist, two and three modalities.
func TestMethodRunsFromTheCLI(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"ogm-av", []string{"--method", "ogm", "--hp", "modulation_starts=0", "--dataset", "synth-av", "--epochs", "2"}},
		{"agm-avt", []string{"--method", "agm", "--dataset", "synth-avt", "--epochs", "2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkMethodRun(t, false, tc.args...) })
	}
}
