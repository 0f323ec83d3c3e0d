package runtime_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bmc/datasets"
	"bmc/experiment"
	"bmc/runtime"
)

// unreadable fails to read the listed samples of each split.
type unreadable struct {
	datasets.Dataset
	bad map[string]func(i int) bool
}

func (u unreadable) Split(name string) (datasets.Split, error) {
	s, err := u.Dataset.Split(name)
	if f := u.bad[name]; f != nil && err == nil {
		return unreadableSplit{s, name, f}, nil
	}
	return s, err
}

type unreadableSplit struct {
	datasets.Split
	name string
	bad  func(i int) bool
}

func (u unreadableSplit) Read(i int, dst []datasets.Buffer) (int64, error) {
	if u.bad(i) {
		return 0, fmt.Errorf("%s/clip_%d.npy is truncated", u.name, i)
	}
	return u.Split.Read(i, dst)
}

// With SkipBad, unreadable validation and test samples are listed (in each
// epoch's log line and in results.json) and left out of the metrics.
func TestSkipBadCoversValidationAndTest(t *testing.T) {
	p, d := compilePlan(t, "baseline", nil, small, experiment.Overrides{Epochs: 2})
	sched, _ := experiment.Schedule(p)
	data := unreadable{d, map[string]func(int) bool{
		datasets.Val:  func(i int) bool { return i == 5 || i == 70 },
		datasets.Test: func(i int) bool { return i == 199 },
	}}
	if _, err := runtime.Train(p, data, sched, runtime.TrainOptions{OutDir: filepath.Join(t.TempDir(), "run")}); err == nil || !strings.Contains(err.Error(), "val/clip_5.npy is truncated") {
		t.Errorf("without SkipBad a bad validation sample: %v", err)
	}
	dir := t.TempDir()
	res, err := runtime.Train(p, data, sched, runtime.TrainOptions{OutDir: dir, SkipBad: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Test.Samples != 199 || len(res.Test.Skipped) != 1 || res.Test.Skipped[0].Index != 199 || !strings.Contains(res.Test.Skipped[0].Error, "test/clip_199.npy") {
		t.Errorf("test metrics over %d samples, skipped %+v; want 199 and sample 199", res.Test.Samples, res.Test.Skipped)
	}
	log, err := os.ReadFile(filepath.Join(dir, runtime.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(strings.TrimSpace(string(log)), "\n") {
		var l runtime.EpochLog
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if l.Val.Samples != 126 || len(l.Val.Skipped) != 2 || l.Val.Skipped[0].Index != 5 || l.Val.Skipped[1].Index != 70 {
			t.Errorf("epoch %d: validation over %d samples, skipped %+v; want 126, samples 5 and 70", i, l.Val.Samples, l.Val.Skipped)
		}
	}
}

// An epoch that trains no step is an error, when every training sample is
// bad or too few are left for one batch, and so is a validation pass with
// no usable sample.
func TestEpochWithoutUsableSamplesIsAnError(t *testing.T) {
	p, d := compilePlan(t, "baseline", nil, small, experiment.Overrides{Epochs: 1, BatchSize: 64})
	sched, _ := experiment.Schedule(p)
	tests := []struct {
		name  string
		split string
		bad   func(int) bool
		want  []string
	}{
		{"every training sample", datasets.Train, func(int) bool { return true }, []string{"epoch 0 trained no step: 0 of its samples could be read (512 skipped), fewer than the batch of 64"}},
		{"all but 63 training samples", datasets.Train, func(i int) bool { return i >= 63 }, []string{"trained no step: 63 of its samples could be read (449 skipped)"}},
		{"every validation sample", datasets.Val, func(int) bool { return true }, []string{"validation", "no usable sample: 128 samples, 128 of them skipped as unreadable (the first: sample 0: val/clip_0.npy is truncated)"}},
	}
	for _, tt := range tests {
		data := unreadable{d, map[string]func(int) bool{tt.split: tt.bad}}
		dir := filepath.Join(t.TempDir(), "run")
		_, err := runtime.Train(p, data, sched, runtime.TrainOptions{OutDir: dir, SkipBad: true})
		if err == nil {
			t.Errorf("%s bad: the run succeeded", tt.name)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s bad: error %q lacks %q", tt.name, err, w)
			}
		}
	}
}
