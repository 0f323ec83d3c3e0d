package runtime_test

import (
	"testing"

	"bmc/datasets"
	"bmc/runtime"
)

// fillRows reads samples idx of split, one by one, straight into the
// batch's first len(idx) rows and zeroes the rest: a batch for tests and
// benchmarks that run graphs without the trainer's loader. Modalities the
// batch lacks are read into scratch buffers.
func fillRows(tb testing.TB, split datasets.Split, spec datasets.Spec, b *runtime.Batch, idx []int) {
	tb.Helper()
	if len(idx) > b.Size {
		tb.Fatalf("%d samples for a batch of %d", len(idx), b.Size)
	}
	bufs := make([]datasets.Buffer, len(spec.Modalities))
	for row, sample := range idx {
		for i, mod := range spec.Modalities {
			n := mod.Size()
			switch t := b.Data[mod.Name]; {
			case t == nil && mod.Int:
				bufs[i] = datasets.Buffer{I64: make([]int64, n)}
			case t == nil:
				bufs[i] = datasets.Buffer{F32: make([]float32, n)}
			case mod.Int:
				bufs[i] = datasets.Buffer{I64: t.I64[row*n : (row+1)*n]}
			default:
				bufs[i] = datasets.Buffer{F32: t.F32[row*n : (row+1)*n]}
			}
		}
		label, err := split.Read(sample, bufs)
		if err != nil {
			tb.Fatalf("dataset %s: sample %d: %v", spec.Name, sample, err)
		}
		b.Labels.I64[row] = label
	}
	for _, mod := range spec.Modalities {
		if t := b.Data[mod.Name]; t != nil {
			n := len(idx) * mod.Size()
			if mod.Int {
				clear(t.I64[n:])
			} else {
				clear(t.F32[n:])
			}
		}
	}
	clear(b.Labels.I64[len(idx):])
}
