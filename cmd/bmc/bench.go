package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"bmc/experiment"
	"bmc/runtime"
)

// benchReport is what bmc bench prints with --json.
type benchReport struct {
	Method     string   `json:"method"`
	Dataset    string   `json:"dataset"`
	Size       string   `json:"size,omitempty"`
	Batch      int      `json:"batch"`
	Threads    int      `json:"threads"`
	Device     string   `json:"device"`
	Precision  string   `json:"precision"`
	StepGraphs []string `json:"step_graphs"`
	// Forward and Step are median milliseconds per run.
	Forward      runtime.Timing `json:"forward"`
	Step         runtime.Timing `json:"step"`
	StepPerFwd   float64        `json:"step_per_forward"`
	ForwardGFLOP float64        `json:"forward_gflop"`
	StepGFLOP    float64        `json:"step_gflop"`
	PeakRSSMiB   float64        `json:"peak_rss_mib"`
}

func runBench(args []string, stdout io.Writer) error {
	fs := flagSet("bench", stdout)
	var ef experimentFlags
	ef.register(fs)
	var tf targetFlags
	tf.register(fs)
	size := fs.String("size", "", "benchmark size: "+strings.Join(experiment.BenchSizes(), ", ")+" (the two-ResNet18 audio-visual model; other flags override its settings)")
	iters := fs.Int("iters", 10, "timed runs of each graph")
	warmup := fs.Int("warmup", 2, "untimed runs before the timed ones")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	profile := fs.String("profile", "", "write ONNX Runtime's per-node traces (Chrome trace JSON) to files named PREFIX_… (tools/bench/profile.py sums them per op)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench takes no positional arguments (got %q)", fs.Args())
	}
	if *iters < 1 || *warmup < 0 {
		return fmt.Errorf("--iters %d --warmup %d: want --iters ≥ 1 and --warmup ≥ 0", *iters, *warmup)
	}
	target, err := tf.target()
	if err != nil {
		return err
	}
	req, err := ef.flagRequest(fs)
	if err != nil {
		return err
	}
	if *size != "" {
		base, err := experiment.BenchRequest(*size)
		if err != nil {
			return fmt.Errorf("--size: %w", err)
		}
		req = experiment.Merge(base, req)
	} else if req, err = ef.request(fs); err != nil {
		return err
	}
	plan, data, err := experiment.CompileWith(req, runtime.ReadFinishedRun)
	if err != nil {
		return err
	}
	sched, err := experiment.Schedule(plan)
	if err != nil {
		return err
	}
	res, err := runtime.Bench(plan, data, sched, runtime.BenchOptions{Iters: *iters, Warmup: *warmup, Threads: ef.threads, Target: target, ReleaseInitialValues: true, Profile: *profile})
	if err != nil {
		return err
	}
	m := &plan.Manifest
	rep := benchReport{Method: m.Method, Dataset: m.Dataset.Name, Size: *size, Batch: m.Train.BatchSize, Threads: res.Threads,
		Device: target.Device.String(), Precision: target.Precision.String(),
		StepGraphs: res.StepGraphs, Forward: res.Forward, Step: res.Step, StepPerFwd: res.Step.WallMS / res.Forward.WallMS,
		ForwardGFLOP: float64(res.ForwardFLOPs) / 1e9, StepGFLOP: float64(res.StepFLOPs) / 1e9, PeakRSSMiB: float64(res.PeakRSSBytes) / (1 << 20)}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	threads := fmt.Sprint(rep.Threads)
	if rep.Threads == 0 {
		threads = "ONNX Runtime's default"
	}
	fmt.Fprintf(stdout, "%s on %s, batch %d, %s %s, threads %s (medians of %d runs)\n", rep.Method, rep.Dataset, rep.Batch, rep.Device, rep.Precision, threads, *iters)
	fmt.Fprintf(stdout, "  forward %8.1f ms (%.1f cpu-ms)  %.2f GFLOP\n", rep.Forward.WallMS, rep.Forward.CPUMS, rep.ForwardGFLOP)
	fmt.Fprintf(stdout, "  step    %8.1f ms (%.1f cpu-ms)  %.2f GFLOP  graphs %s\n", rep.Step.WallMS, rep.Step.CPUMS, rep.StepGFLOP, strings.Join(rep.StepGraphs, ", "))
	fmt.Fprintf(stdout, "  step/forward %.2f  peak RSS %.0f MiB\n", rep.StepPerFwd, rep.PeakRSSMiB)
	return nil
}
