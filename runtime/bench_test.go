package runtime_test

import (
	"strconv"
	"testing"

	"bmc/datasets"
	"bmc/experiment"
	"bmc/runtime"
)

// BenchmarkTrainStep times one optimizer step (one run of the step graph,
// batch 64, default synth-av MLP model) on 1 and 2 ORT threads.
func BenchmarkTrainStep(b *testing.B) {
	for _, method := range []string{"baseline", "ogm", "agm"} {
		for _, threads := range []int{1, 2} {
			b.Run(method+"/threads="+strconv.Itoa(threads), func(b *testing.B) {
				p, d, err := experiment.Compile(experiment.Request{Method: method, Dataset: "synth-av", Train: experiment.Overrides{Threads: threads}})
				if err != nil {
					b.Fatal(err)
				}
				pr, err := runtime.Load(p, runtime.Options{Threads: threads})
				if err != nil {
					b.Fatal(err)
				}
				defer pr.Close()
				train, _ := d.Split(datasets.Train)
				batch, _ := pr.BatchOf("train")
				idx := make([]int, batch.Size)
				for i := range idx {
					idx[i] = i
				}
				fillRows(b, train, d.Spec(), batch, idx)
				b.ResetTimer()
				for range b.N {
					if err := pr.Run("train"); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkValidationPass times one evaluation pass over synth-av's
// validation split (500 samples, batch 256, last batch padded).
func BenchmarkValidationPass(b *testing.B) {
	p, d, err := experiment.Compile(experiment.Request{Method: "baseline", Dataset: "synth-av"})
	if err != nil {
		b.Fatal(err)
	}
	pr, err := runtime.Load(p, runtime.Options{Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer pr.Close()
	val, _ := d.Split(datasets.Val)
	b.ResetTimer()
	for range b.N {
		if _, err := runtime.Evaluate(pr.Predictor(), val, d.Spec(), []float32{1, 1}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompile times building an AGM plan (model, 3 masked forwards,
// autodiff, optimizer, evaluation graph) in memory.
func BenchmarkCompile(b *testing.B) {
	for range b.N {
		if _, _, err := experiment.Compile(experiment.Request{Method: "agm", Dataset: "synth-av"}); err != nil {
			b.Fatal(err)
		}
	}
}
