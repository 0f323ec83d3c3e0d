package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bmc/runtime"
	"bmc/sweep"
)

// writeGrid writes a grid file into dir.
func writeGrid(t *testing.T, dir, grid string) string {
	t.Helper()
	path := filepath.Join(dir, "grid.yaml")
	if err := os.WriteFile(path, []byte(grid), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The local executor killed with SIGKILL mid-sweep (its bmc train process
// dies with it) completes when the same command runs again: the finished
// cell is skipped, the killed one resumes from its checkpoint, a start that
// never finished an epoch starts afresh, a cell not reached starts, and
// every run equals the uninterrupted sweep's bit for bit.
func TestKilledSweepCompletesToTheSameRuns(t *testing.T) {
	t.Setenv("BMC_TEST_AS_MAIN", "1") // the cells run this test binary as bmc
	tmp := t.TempDir()
	grid := writeGrid(t, tmp, `
name: kill
methods: [baseline, {method: ogm, hp: {modulation_starts: 0}}]
datasets: [synth-av]
seeds: [0, 1]
train: {epochs: 30}
`)
	whole, killed := filepath.Join(tmp, "whole"), filepath.Join(tmp, "killed")
	args := []string{"sweep", grid, "--jobs", "1", "--threads", "1", "--progress-every", "0"}
	if out, err := bmc(t, append(args, "--out", whole)...); err != nil {
		t.Fatalf("uninterrupted sweep: %v\n%s", err, out)
	}
	ids := []string{"baseline_synth-av_seed0", "ogm.modulation_starts=0_synth-av_seed0", "baseline_synth-av_seed1", "ogm.modulation_starts=0_synth-av_seed1"}
	run := func(sweepDir string, i int, file string) string {
		return filepath.Join(sweepDir, sweep.RunsDir, ids[i], file)
	}
	killWhen(t, func() bool {
		return exists(run(killed, 0, runtime.ResultsFile)) && exists(run(killed, 1, runtime.RunStateFile))
	}, append(args, "--out", killed)...)
	if exists(run(killed, 1, runtime.ResultsFile)) || exists(run(killed, 2, runtime.LogFile)) {
		t.Fatal("the sweep got further than it was to be killed; give the cells more epochs")
	}
	waitNoProcessUses(t, killed)
	// The last cell as a start killed before its first epoch left it.
	if err := os.MkdirAll(run(killed, 3, ""), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{runtime.LogFile, ConfigFile} {
		if err := os.WriteFile(run(killed, 3, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := bmc(t, append(args, "--out", killed)...)
	if err != nil {
		t.Fatalf("rerun: %v\n%s", err, out)
	}
	for _, want := range []string{"4 cells, 1 finished before, 3 to run", "resume " + ids[1], "start  " + ids[3], "3 done now, 1 done before"} {
		if !strings.Contains(out, want) {
			t.Errorf("rerun output lacks %q:\n%s", want, out)
		}
	}
	for i, id := range ids {
		sameRun(t, run(whole, i, ""), run(killed, i, ""))
		a, b := resultsWithoutTimes(t, run(whole, i, runtime.ResultsFile)), resultsWithoutTimes(t, run(killed, i, runtime.ResultsFile))
		if a != b {
			t.Errorf("%s: results differ:\n%s\n%s", id, a, b)
		}
	}
	attempts := func(i int) string {
		data, err := os.ReadFile(filepath.Join(killed, sweep.CellsDir, ids[i]+".log"))
		if err != nil {
			t.Fatal(err)
		}
		var heads []string
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "=== ") && strings.Contains(l, " train ") {
				heads = append(heads, l)
			}
		}
		return strings.Join(heads, "\n")
	}
	if h := attempts(0); strings.Count(h, "\n") != 0 {
		t.Errorf("the finished cell ran again:\n%s", h)
	}
	if h := attempts(1); strings.Count(h, "\n") != 1 || !strings.Contains(h[strings.Index(h, "\n"):], "train --resume") {
		t.Errorf("the killed cell did not resume:\n%s", h)
	}
}

// waitNoProcessUses waits until no process has path in its command line:
// a killed sweep's bmc train processes die with it.
func waitNoProcessUses(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		var users []string
		for _, p := range procs {
			if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(path)) {
				users = append(users, strings.ReplaceAll(string(data), "\x00", " "))
			}
		}
		if len(users) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes outlived the killed sweep: %v", users)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// resultsWithoutTimes is a results.json without its wall-clock time.
func resultsWithoutTimes(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "seconds")
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// A failing cell is recorded with its error and the others finish; a rerun
// retries only it; bmc sweep status shows both; bmc report reports the
// finished runs, lists what it leaves out and refuses an eval report
// written as a results.json.
func TestSweepRecordsFailuresAndReports(t *testing.T) {
	t.Setenv("BMC_TEST_AS_MAIN", "1")
	tmp := t.TempDir()
	grid := writeGrid(t, tmp, `
name: fail
methods: [baseline]
datasets: [synth-av, {dataset: cremad, data_root: `+filepath.Join(tmp, "no-such-folder")+`}]
train: {epochs: 2}
`)
	dir := filepath.Join(tmp, "sweep")
	args := []string{"sweep", grid, "--out", dir, "--jobs", "2", "--progress-every", "0"}
	for attempt := 1; attempt <= 2; attempt++ {
		out, err := bmc(t, args...)
		if err == nil || !strings.Contains(err.Error(), "1 of 2 cells failed") {
			t.Fatalf("attempt %d: %v\n%s", attempt, err, out)
		}
		if !strings.Contains(out, "FAILED baseline_cremad_seed0: dataset cremad: data root") {
			t.Errorf("attempt %d output:\n%s", attempt, out)
		}
	}
	logOf := func(id string) string {
		data, err := os.ReadFile(filepath.Join(dir, sweep.CellsDir, id+".log"))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	if n := strings.Count(logOf("baseline_synth-av_seed0"), "\n=== "); n != 0 {
		t.Errorf("the finished cell ran %d more times", n)
	}
	if n := strings.Count(logOf("baseline_cremad_seed0"), "=== "); n != 2 {
		t.Errorf("the failed cell ran %d times, want 2", n)
	}
	out, err := bmc(t, "sweep", "status", dir, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st []sweep.CellStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(st) != 2 || st[0].State != sweep.StateDone || st[0].EpochsDone != 2 || st[0].TestAcc <= 0.1 ||
		st[1].State != sweep.StateFailed || !strings.Contains(st[1].Error, "no-such-folder") {
		t.Errorf("status %+v", st)
	}
	if out, err = bmc(t, "sweep", "status", dir); err != nil || !strings.Contains(out, "fail: 2 cells: 1 done, 1 failed") {
		t.Errorf("status: %v\n%s", err, out)
	}

	// An unfinished run beside the sweep, and one whose results.json is
	// bmc eval's report.
	unfinished := filepath.Join(tmp, "unfinished")
	if err := os.MkdirAll(filepath.Join(unfinished, runtime.PlanDir), 0o755); err != nil {
		t.Fatal(err)
	}
	reportDir := filepath.Join(tmp, "report")
	out, err = bmc(t, "report", dir, unfinished, "-o", reportDir)
	if err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	for _, want := range []string{"| Baseline | **4", "| baseline_synth-av_seed0 | Baseline | synth-av | 0 |", "Left out (2):",
		"baseline_cremad_seed0: cell failed: dataset cremad", unfinished + ": unfinished run"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if !exists(filepath.Join(reportDir, "index.html")) || !exists(filepath.Join(reportDir, "plots", "runs", "baseline_synth-av_seed0", "accuracy.png")) {
		t.Error("report -o wrote no page or curves")
	}
	evalRun := filepath.Join(tmp, "eval-as-results")
	if err := os.MkdirAll(evalRun, 0o755); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(evalRun, runtime.ResultsFile)
	if out, err := bmc(t, "eval", filepath.Join(dir, sweep.RunsDir, "baseline_synth-av_seed0"), "-o", bad); err != nil {
		t.Fatalf("eval: %v\n%s", err, out)
	}
	if _, err := bmc(t, "report", dir, evalRun); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "source and metrics") {
		t.Errorf("report of an eval report as results.json: %v", err)
	}
	if _, err := bmc(t, "report", unfinished); err == nil || !strings.Contains(err.Error(), "no finished runs") {
		t.Errorf("report of unfinished runs only: %v", err)
	}
}
