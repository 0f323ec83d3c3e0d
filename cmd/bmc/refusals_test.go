package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// bmcProcess runs bmc as a real process (this test binary as main) with
// extra environment entries, and returns its output and exit status. A
// process still running after a minute is killed and the test fails: a
// refusal must be prompt.
func bmcProcess(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "BMC_TEST_AS_MAIN=1"), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("bmc %q did not finish within a minute", args)
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("bmc %q: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// refusal is a command line bmc must refuse promptly with a named error.
type refusal struct {
	name string
	env  []string
	args []string
	want []string // in the error message
}

// checkRefusals runs each case as a real process: exit status 1, every
// wanted phrase in the message, and neither a Go panic nor a runtime crash.
func checkRefusals(t *testing.T, cases []refusal) {
	t.Helper()
	for _, tc := range cases {
		_, stderr, code := bmcProcess(t, tc.env, tc.args...)
		if code != 1 {
			t.Errorf("%s: bmc %q exited with %d, want 1\n%s", tc.name, tc.args, code, stderr)
		}
		if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "fatal error") || strings.Contains(stderr, "panic") {
			t.Errorf("%s: bmc %q crashed instead of refusing:\n%.2000s", tc.name, tc.args, stderr)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: bmc %q: message lacks %q:\n%s", tc.name, tc.args, w, stderr)
			}
		}
	}
}

// An explicit value outside a setting's range is refused, naming the flag
// and the range: a 0 never silently means "the preset's".
func TestOutOfRangeSettingsAreRefused(t *testing.T) {
	out := t.TempDir() + "/plan"
	base := []string{"compile", "--method", "baseline", "--dataset", "synth-av", "-o", out}
	cases := []refusal{
		{"epochs 0", nil, append(base, "--epochs", "0"), []string{"--epochs 0: want an integer from 1 to"}},
		{"batch size 0", nil, append(base, "--batch-size", "0"), []string{"--batch-size 0: want an integer from 1 to"}},
		{"step size 0", nil, append(base, "--step-size", "0"), []string{"--step-size 0: want an integer from 1 to"}},
		{"eval batch size 0", nil, append(base, "--eval-batch-size", "0"), []string{"--eval-batch-size 0"}},
		{"lr 0", nil, append(base, "--lr", "0"), []string{"--lr 0: want a number in (0, ∞)"}},
		{"lr NaN", nil, append(base, "--lr", "NaN"), []string{"--lr NaN: want a number in (0, ∞)"}},
		{"gamma Inf", nil, append(base, "--gamma", "Inf"), []string{"--gamma +Inf: want a number in (0, ∞)"}},
		{"momentum 1", nil, append(base, "--momentum", "1"), []string{"--momentum 1: want a number in [0, 1)"}},
		{"threads", nil, append(base, "--threads", "100000"), []string{"--threads 100000: want an integer from 0 to", "per CPU"}},
		{"repeated hp key", nil, append(base, "--hp", "a=1,a=2"), []string{"--hp: key a is given twice (a=1 and a=2)"}},
		{"train epochs 0", nil, []string{"train", "--method", "baseline", "--dataset", "synth-av", "--epochs", "0", "--out", out}, []string{"--epochs 0"}},
		{"workers", nil, []string{"train", "--method", "baseline", "--dataset", "synth-av", "--workers", "100000", "--out", out}, []string{"--workers 100000", "per CPU"}},
		{"check workers", nil, []string{"datasets", "check", "--dataset", "synth-av", "--workers", "100000"}, []string{"--workers 100000", "per CPU"}},
		{"prepare jobs", nil, []string{"prepare", "audio", "--pipeline", "fbank", "--in", out, "--out", out, "-j", "100000"}, []string{"-j 100000", "per CPU"}},
		{"prepare rate", nil, []string{"prepare", "audio", "--pipeline", "fbank", "--in", out, "--out", out, "--rate", "100000000"}, []string{"--rate 100000000: want 0", "768000 Hz"}},
	}
	checkRefusals(t, cases)
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a refused command left %s behind", out)
	}
}

// Requests far beyond the machine (tensor sizes, parameter counts, memory,
// threads) are refused before anything is allocated, with the estimate,
// instead of crashing out of memory or hanging.
func TestOversizedRequestsAreRefusedPromptly(t *testing.T) {
	tmp := t.TempDir()
	out := tmp + "/plan"
	base := []string{"compile", "--method", "baseline", "--dataset", "synth-av", "-o", out}
	small := []string{"BMC_MEMORY_LIMIT=1G"}
	run := tinyRun(t, tmp+"/run", "--dataset", "synth-av", "--data", "train=64,val=16,test=16")
	cases := []refusal{
		{"feature width", nil, append(base, "--data", "dim.audio=100000000000"), []string{"modality audio has 1e+11 values per sample", "at most 2147483647"}},
		{"sample count", nil, append(base, "--data", "train=100000000000"), []string{"dataset synth-av (1e+11 samples", "needs about", "TiB of memory"}},
		{"shape overflow", nil, append(base, "--data", "shape.visual=100000x100000x100000x100000"), []string{"modality visual has 1e+20 values per sample"}},
		{"parameters", nil, append(base, "--encoder", "mlp:100000000,10"), []string{"parameters (the largest tensor, modality_encoder.audio.0.weight [100000000 32]", "at most 1073741824"}},
		{"memory", small, append(base, "--encoder", "mlp:4000000,10"), []string{"training a model of 3.44e+08 parameters with sgd", "GiB of memory, more than the 1 GiB of BMC_MEMORY_LIMIT"}},
		{"dataset memory", small, append(base, "--data", "dim.audio=1000000"), []string{"dataset synth-av (3500 samples", "more than the 1 GiB"}},
		{"eval batch memory", small, []string{"eval", run + "/model.onnx", "--batch-size", "16000000"}, []string{"model.onnx in batches of 16000000 needs about", "more than the 1 GiB"}},
		{"threads", nil, []string{"eval", run, "--threads", "100000"}, []string{"--threads 100000"}},
	}
	checkRefusals(t, cases)
}
