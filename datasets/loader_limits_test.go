package datasets_test

import (
	"io"
	"strings"
	"testing"

	"bmc/datasets"
	"bmc/internal/machine"
)

// A loader whose buffers cannot exist is refused before they are made.
func TestLoaderRefusesBuffersBeyondMemory(t *testing.T) {
	base, _ := openSynthTrain(t)
	huge := datasets.Spec{Name: "x", Modalities: []datasets.Modality{{Name: "audio", Shape: []int64{1 << 20, 1 << 20}}}}
	if _, err := datasets.NewLoader(base, huge, datasets.LoaderOptions{BatchSize: 1}); err == nil || !strings.Contains(err.Error(), "1.1e+12 values per sample") {
		t.Errorf("a sample of 2^40 values: %v", err)
	}
	t.Setenv(machine.MemoryEnv, "64M")
	big := datasets.Spec{Name: "x", Modalities: []datasets.Modality{{Name: "audio", Shape: []int64{1 << 20}}}}
	_, err := datasets.NewLoader(base, big, datasets.LoaderOptions{BatchSize: 64, Workers: 2})
	if err == nil || !strings.Contains(err.Error(), "reading x in batches of 64 with 2 workers (4 MiB per sample) needs about 1.02 GiB") {
		t.Errorf("batches of 4 MiB samples under a 64 MiB limit: %v", err)
	}
}

// A pass that reads every sample (no DropLast) and gets none is an error
// naming the skipped samples; an empty order is one too. With DropLast a
// short order gives an epoch of no batch, for the trainer to judge.
func TestLoaderPassWithoutSamples(t *testing.T) {
	base, spec := openSynthTrain(t)
	split := flakySplit{Split: base, bad: map[int]bool{0: true, 1: true, 2: true}}
	eval, err := datasets.NewLoader(split, spec, datasets.LoaderOptions{BatchSize: 8, SkipBad: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := eval.Epoch(0, []int{0, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Next(); err == nil || !strings.Contains(err.Error(), "no usable sample: 3 samples, 3 of them skipped as unreadable (the first: sample 0: frame file clip000") {
		t.Errorf("every sample bad: %v", err)
	}
	b.Close()
	if _, err := eval.Epoch(1, nil); err == nil || !strings.Contains(err.Error(), "the split is empty") {
		t.Errorf("an empty order: %v", err)
	}
	train, err := datasets.NewLoader(split, spec, datasets.LoaderOptions{BatchSize: 8, SkipBad: true, DropLast: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err = train.Epoch(0, []int{0, 1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Next(); err != io.EOF {
		t.Errorf("a training order shorter than a batch: %v, want io.EOF", err)
	}
	b.Close()
}
