package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bmc/datasets"
)

// Rows a dataset drops while indexing are counted on the terminal and listed
// in the run directory.
func TestTrainRecordsDroppedRows(t *testing.T) {
	root := copyDir(t, filepath.Join("..", "..", "datasets", "testdata", "cremad"))
	test, err := os.ReadFile(filepath.Join(root, "test.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "test.csv"), append(test, []byte("absent_clip,NEU\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(t.TempDir(), "run")
	out, err := bmc(t, "train", "--method", "baseline", "--dataset", "cremad", "--data-root", root, "--data", "size=16,val_fraction=0.34",
		"--encoder", "mlp:8,4", "--epochs", "1", "--batch-size", "2", "--threads", "1", "--workers", "2", "--skip-bad", "--out", run)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "dataset cremad: 1 rows dropped while indexing (listed in "+ProblemsFile+")") {
		t.Errorf("train output lacks the dropped-row count:\n%s", out)
	}
	data, err := os.ReadFile(filepath.Join(run, ProblemsFile))
	if err != nil {
		t.Fatal(err)
	}
	var problems []datasets.Problem
	if err := json.Unmarshal(data, &problems); err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || !problems[0].Dropped || !strings.Contains(problems[0].Msg, "absent_clip") || problems[0].Split != datasets.Test {
		t.Errorf("problems %+v", problems)
	}
}

// --profile leaves ONNX Runtime's per-node timings of the training graph.
func TestTrainWritesORTProfiles(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "prof", "run")
	if err := os.MkdirAll(filepath.Dir(prefix), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := bmc(t, "train", "--method", "baseline", "--dataset", "synth-av", "--data", "train=64,val=16,test=16",
		"--epochs", "1", "--threads", "1", "--quiet", "--profile", prefix, "--out", filepath.Join(dir, "run")); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(prefix + "*.json")
	var trainNodes int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var events []struct {
			Cat  string `json:"cat"`
			Name string `json:"name"`
		}
		if err := json.Unmarshal(data, &events); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, e := range events {
			if e.Cat == "Node" && strings.HasPrefix(e.Name, "backward/") {
				trainNodes++
			}
		}
	}
	if trainNodes == 0 {
		t.Errorf("no profile with backward nodes among %v", files)
	}
}
