package runtime_test

import (
	"encoding/json"
	"strconv"
	"syscall"
	"testing"
	"time"

	"bmc/datasets"
	"bmc/experiment"
	"bmc/flops"
	"bmc/runtime"
)

// resNet18AV is the backbone benchmark's request (experiment.BenchSizeSmall)
// on 2 ORT threads. tools/bench/resnet_step.py times the same model in
// PyTorch.
func resNet18AV(tb testing.TB) experiment.Request {
	r, err := experiment.BenchRequest(experiment.BenchSizeSmall)
	if err != nil {
		tb.Fatal(err)
	}
	r.Train.Threads = 2
	return r
}

// BenchmarkResNet18AVStep times, through the compiled plan, the evaluation
// forward (running statistics, no gradient) and one full training step
// (train-mode forward with batch statistics, cross-entropy, backward, SGD
// with momentum and weight decay, running-statistics update), on 2 ORT
// threads (the benchmark's setting) and on 1. It reports the graph's FLOPs
// per run, the rate achieved, and the process CPU time per run: on one
// thread that is the work itself, which other load on the machine barely
// changes, unlike the wall time.
func BenchmarkResNet18AVStep(b *testing.B) {
	for _, threads := range []int{2, 1} {
		b.Run("threads="+strconv.Itoa(threads), func(b *testing.B) { benchResNet18AV(b, threads) })
	}
}

func benchResNet18AV(b *testing.B, threads int) {
	req := resNet18AV(b)
	req.Train.Threads = threads
	p, d, err := experiment.Compile(req)
	if err != nil {
		b.Fatal(err)
	}
	var report flops.Report
	if err := json.Unmarshal(p.Manifest.Flops, &report); err != nil {
		b.Fatal(err)
	}
	gflops := map[string]float64{}
	for _, g := range report.Graphs {
		gflops[g.Name] = float64(g.Counts.Total) / 1e9
	}
	pr, err := runtime.Load(p, runtime.Options{Threads: threads})
	if err != nil {
		b.Fatal(err)
	}
	defer pr.Close()
	train, err := d.Split(datasets.Train)
	if err != nil {
		b.Fatal(err)
	}
	for _, graph := range []string{"train", "eval"} {
		batch, err := pr.BatchOf(graph)
		if err != nil {
			b.Fatal(err)
		}
		idx := make([]int, batch.Size)
		for i := range idx {
			idx[i] = i
		}
		fillRows(b, train, d.Spec(), batch, idx)
	}
	for _, c := range []struct{ name, graph string }{{"forward", "eval"}, {"step", "train"}} {
		b.Run(c.name, func(b *testing.B) {
			// One untimed run: ONNX Runtime allocates and plans on the first.
			if err := pr.Run(c.graph); err != nil {
				b.Fatal(err)
			}
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for range b.N {
				if err := pr.Run(c.graph); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cpu := cpuTime(b) - cpu0
			b.ReportMetric(gflops[c.graph], "GFLOP/op")
			b.ReportMetric(gflops[c.graph]*float64(b.N)/b.Elapsed().Seconds(), "GFLOP/s")
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
