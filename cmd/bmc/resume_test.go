package main

import (
	"os"
	"strings"
	"testing"
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
	args := []string{"--method", "ogm", "--hp", "modulation_starts=0", "--dataset", "synth-av",
		// Dropout makes the run depend on the per-step random draws too.
		"--encoder", "visual=mlp:64,32,dropout=0.2",
		"--epochs", "60", "--seed", "7"}
	checkKillResume(t, 3, args...)
	dir := t.TempDir()
	if _, err := bmc(t, append([]string{"train", "--quiet", "--epochs", "1", "--out", dir}, args[:len(args)-4]...)...); err != nil {
		t.Fatal(err)
	}
	if _, err := bmc(t, "train", "--resume", dir); err == nil || !strings.Contains(err.Error(), "finished") {
		t.Errorf("resuming a finished run: %v", err)
	}
}
