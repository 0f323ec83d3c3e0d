package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// bmc bench times a method's step through the trainer (schedule work
// included) and the forward, and reports FLOPs and peak memory.
func TestBenchReportsStepAndForward(t *testing.T) {
	out, err := bmc(t, "bench", "--method", "agm", "--dataset", "synth-avt", "--threads", "1", "--iters", "3", "--warmup", "1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Method != "agm" || rep.Threads != 1 || rep.Step.WallMS <= 0 || rep.Forward.WallMS <= 0 || rep.StepGFLOP <= rep.ForwardGFLOP/4 ||
		rep.PeakRSSMiB <= 0 || len(rep.StepGraphs) != 1 {
		t.Errorf("bench report: %+v", rep)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--size", "huge"}, `benchmark size "huge": want one of bench, ks`},
		{[]string{"--size", "bench", "--iters", "0"}, "--iters ≥ 1"},
		{[]string{"--method", "agm"}, "--method and --dataset are required"},
	}
	for _, tc := range cases {
		if _, err := bmc(t, append([]string{"bench"}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench %v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
