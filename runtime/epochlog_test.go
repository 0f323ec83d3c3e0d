package runtime_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bmc/experiment"
	"bmc/runtime"
)

// log.jsonl names the training and the validation metrics one way, the
// way results.json names the test metrics.
func TestLogNamesTrainAndValidationMetricsAlike(t *testing.T) {
	p, d := compilePlan(t, "baseline", nil, small, experiment.Overrides{Epochs: 1})
	dir := t.TempDir()
	train(t, p, d, dir)
	data, err := os.ReadFile(filepath.Join(dir, runtime.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(data))), &raw); err != nil {
		t.Fatal(err)
	}
	line := map[string]map[string]any{}
	for _, k := range []string{"train", "val"} {
		m := map[string]any{}
		if err := json.Unmarshal(raw[k], &m); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		line[k] = m
	}
	res, err := os.ReadFile(filepath.Join(dir, runtime.ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	var results map[string]json.RawMessage
	var test map[string]any
	if json.Unmarshal(res, &results) != nil || json.Unmarshal(results["test"], &test) != nil {
		t.Fatal("results.json has no test metrics")
	}
	keys := func(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }
	if !slices.Equal(keys(line["train"]), keys(line["val"])) || !slices.Equal(keys(line["val"]), keys(test)) {
		t.Errorf("metric names differ: train %v, val %v, results.json test %v", keys(line["train"]), keys(line["val"]), keys(test))
	}
	if n := line["train"]["samples"].(float64); n != 512 {
		t.Errorf("train samples %v, want 8 batches of 64", n)
	}
}
