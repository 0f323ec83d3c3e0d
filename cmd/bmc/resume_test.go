package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bmc/runtime"
	"bmc/safetensors"
)

// TestMain lets a test start this binary as the bmc command
// (BMC_TEST_AS_MAIN=1), so a real training process can be killed.
func TestMain(m *testing.M) {
	if os.Getenv("BMC_TEST_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A run killed with SIGKILL in the middle of training resumes to exactly the
// parameters an uninterrupted run with the same seed reaches.
func TestKilledRunResumesToTheSameParameters(t *testing.T) {
	tmp := t.TempDir()
	whole, killed := filepath.Join(tmp, "whole"), filepath.Join(tmp, "killed")
	args := []string{"train", "--method", "ogm", "--hp", "modulation_starts=0", "--dataset", "synth-av",
		// Dropout makes the run depend on the per-step random draws too.
		"--encoder", "visual=mlp:64,32,dropout=0.2",
		"--epochs", "60", "--threads", "1", "--seed", "7", "--quiet", "--out"}
	if _, err := bmc(t, append(args, whole)...); err != nil {
		t.Fatal(err)
	}

	cmd, done := startTraining(t, 3, append(args, killed)...)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-done
	if _, err := os.Stat(filepath.Join(killed, runtime.ResultsFile)); err == nil {
		t.Fatal("the run finished before it was killed; make it longer")
	}
	if _, err := bmc(t, "train", "--resume", killed, "--quiet"); err != nil {
		t.Fatal(err)
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
		if len(a.Tensors) != len(b.Tensors) || a.Metadata["bmc.run_state"] != b.Metadata["bmc.run_state"] {
			t.Fatalf("%s: %d vs %d tensors, run state %s vs %s", f, len(a.Tensors), len(b.Tensors), a.Metadata["bmc.run_state"], b.Metadata["bmc.run_state"])
		}
		for k, ta := range a.Tensors {
			if !bytes.Equal(ta.Data, b.Tensors[k].Data) {
				t.Errorf("%s: tensor %s differs between the uninterrupted and the resumed run", f, k)
			}
		}
	}
	log, err := os.ReadFile(filepath.Join(killed, runtime.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "\n"); n != 60 {
		t.Errorf("the resumed run's log has %d lines, want one per epoch (60)", n)
	}
	if _, err := bmc(t, "train", "--resume", killed); err == nil || !strings.Contains(err.Error(), "finished") {
		t.Errorf("resuming a finished run: %v", err)
	}
}
