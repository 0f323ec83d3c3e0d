package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bmc/runtime"
)

// A run directory is locked while a process trains in it: a second train
// into it or a resume of it fails naming the holder; once the holder is
// killed, its lock does not block the resume, which also removes the
// temporary files the kill left and keeps counting the run's time.
func TestRunDirectoryIsLockedWhileTraining(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	args := []string{"train", "--method", "baseline", "--dataset", "synth-av", "--encoder", "mlp:512,256",
		"--epochs", "8", "--threads", "1", "--quiet", "--out", dir}
	cmd, done := startTraining(t, func() bool {
		data, _ := os.ReadFile(filepath.Join(dir, runtime.LogFile))
		return bytes.Count(data, []byte("\n")) >= 1
	}, args...)
	holder := fmt.Sprintf("in use by another bmc process (pid %d)", cmd.Process.Pid)
	for _, again := range [][]string{{"train", "--resume", dir, "--quiet"}, args} {
		_, err := bmc(t, again...)
		if err == nil || !strings.Contains(err.Error(), holder) {
			t.Errorf("bmc %q while another process trains there: %v, want an error saying %q", again, err, holder)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, runtime.ResultsFile)); err == nil {
		t.Fatal("the run finished before the concurrent attempts were made; make it longer")
	}
	// Kill once an epoch is committed (its log line comes before the
	// checkpoints and checkpoint.json).
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, runtime.RunStateFile)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the training process committed no epoch")
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-done
	if _, err := os.Stat(filepath.Join(dir, runtime.ResultsFile)); err == nil {
		t.Fatal("the run finished before it was killed; make it longer")
	}

	// What a kill in the middle of writes leaves, and a long first segment.
	stale := []string{filepath.Join(dir, ".last.safetensors.tmp-123"), filepath.Join(dir, runtime.PlanDir, ".plan.json.tmp-9")}
	for _, f := range stale {
		if err := os.WriteFile(f, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var st runtime.RunState
	data, err := os.ReadFile(filepath.Join(dir, runtime.RunStateFile))
	if err != nil || json.Unmarshal(data, &st) != nil || st.Seconds <= 0 {
		t.Fatalf("%s after the kill: %s (%v); want the seconds trained so far", runtime.RunStateFile, data, err)
	}
	const earlier = 100000.0
	st.Seconds = earlier
	data, _ = json.Marshal(st)
	if err := os.WriteFile(filepath.Join(dir, runtime.RunStateFile), data, 0o644); err != nil {
		t.Fatal(err)
	}

	if _, err := bmc(t, "train", "--resume", dir, "--quiet"); err != nil {
		t.Fatalf("resume after the holder was killed: %v", err)
	}
	for _, f := range stale {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("the resume left the stale temporary file %s", f)
		}
	}
	var res runtime.Result
	data, err = os.ReadFile(filepath.Join(dir, runtime.ResultsFile))
	if err != nil || json.Unmarshal(data, &res) != nil {
		t.Fatalf("results: %v", err)
	}
	if res.Seconds <= earlier {
		t.Errorf("results.json seconds %g after a resume: want the earlier segments' %g plus the last one", res.Seconds, earlier)
	}
}

// A new run that fails before its first epoch is committed leaves no
// half-made run directory behind, nor anything in a folder that existed.
func TestFailedStartLeavesNothingBehind(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "run")
	// A learning rate of 1e30 makes the loss diverge in the first epoch,
	// after the run directory was made.
	bad := []string{"train", "--method", "baseline", "--dataset", "synth-av", "--data", "train=64,val=16,test=16",
		"--epochs", "1", "--threads", "1", "--quiet", "--lr", "1e30", "--out", dir}
	if _, err := bmc(t, bad...); err == nil {
		t.Fatal("a run with a diverging learning rate succeeded")
	}
	if _, err := os.Stat(dir); err == nil {
		entries, _ := os.ReadDir(dir)
		t.Errorf("a failed start left %s with %d entries", dir, len(entries))
	}
	// A folder that existed keeps what it held, and only that.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(dir, "notes.txt")
	os.WriteFile(mine, []byte("mine"), 0o644)
	if _, err := bmc(t, bad...); err == nil {
		t.Fatal("a run with a diverging learning rate succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "notes.txt" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("after a failed start the existing folder holds %v, want only notes.txt", names)
	}
}
