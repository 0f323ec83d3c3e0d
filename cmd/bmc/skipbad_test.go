package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bmc/datasets"
	"bmc/runtime"
)

// cremadWithBadAudio copies the CREMA-D fixture and truncates the audio
// files of the named clips.
func cremadWithBadAudio(t *testing.T, clips ...string) string {
	t.Helper()
	root := copyDir(t, filepath.Join("..", "..", "datasets", "testdata", "cremad"))
	for _, c := range clips {
		if err := os.WriteFile(filepath.Join(root, "audio", c+".pt"), []byte("PK\x03"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func cremadTrain(root, out string, extra ...string) []string {
	return append([]string{"train", "--method", "baseline", "--dataset", "cremad", "--data-root", root, "--encoder", "mlp:8,4",
		"--epochs", "1", "--batch-size", "2", "--threads", "1", "--workers", "2", "--quiet", "--out", out,
		"--data", "size=16,val_fraction=0.34"}, extra...)
}

// audio_shape=auto reads the first training clip; with --skip-bad an
// unreadable first clip is passed over (and listed), without it the error
// names the clip and the two ways out.
func TestSkipBadCoversTheAutoShapeClip(t *testing.T) {
	root := cremadWithBadAudio(t, "1001_DFA_NEU_XX")
	run := filepath.Join(t.TempDir(), "run")
	_, err := bmc(t, cremadTrain(root, run)...)
	if err == nil || !strings.Contains(err.Error(), "1001_DFA_NEU_XX.pt") || !strings.Contains(err.Error(), "--skip-bad") || !strings.Contains(err.Error(), "audio_shape=HxW") {
		t.Fatalf("a bad first clip without --skip-bad: %v", err)
	}
	if _, err := bmc(t, cremadTrain(root, run, "--skip-bad")...); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(run, ProblemsFile))
	if err != nil {
		t.Fatal(err)
	}
	var problems []datasets.Problem
	if err := json.Unmarshal(data, &problems); err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || !strings.Contains(problems[0].File, "1001_DFA_NEU_XX.pt") || !strings.Contains(problems[0].Msg, "audio_shape=auto passed over") {
		t.Errorf("problems %+v, want the passed-over clip", problems)
	}
	var res runtime.Result
	if data, err = os.ReadFile(filepath.Join(run, runtime.ResultsFile)); err != nil || json.Unmarshal(data, &res) != nil {
		t.Fatalf("results: %v", err)
	}
}

// --skip-bad with every training sample bad is an error, not a run of zero
// steps with a perfect score, and leaves no run directory.
func TestSkipBadWithEveryTrainingSampleBadIsAnError(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("..", "..", "datasets", "testdata", "cremad", "audio"))
	if err != nil {
		t.Fatal(err)
	}
	var clips []string
	for _, e := range entries {
		clips = append(clips, strings.TrimSuffix(e.Name(), ".pt"))
	}
	root := cremadWithBadAudio(t, clips...)
	run := filepath.Join(t.TempDir(), "run")
	_, err = bmc(t, cremadTrain(root, run, "--skip-bad", "--data", "audio_shape=10x8")...)
	if err == nil || !strings.Contains(err.Error(), "trained no step: 0 of its samples could be read (6 skipped), fewer than the batch of 2") {
		t.Errorf("every training sample bad: %v", err)
	}
	if _, err := os.Stat(run); err == nil {
		t.Errorf("the failed run left %s", run)
	}
}
