package datasets_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"bmc/datasets"
)

func openSynthTrain(t testing.TB) (datasets.Split, datasets.Spec) {
	t.Helper()
	ds, err := datasets.Open("synth-av", datasets.Options{Params: map[string]string{"train": "203"}})
	if err != nil {
		t.Fatal(err)
	}
	split, err := ds.Split(datasets.Train)
	if err != nil {
		t.Fatal(err)
	}
	return split, ds.Spec()
}

// sampleBuffers allocates one sample's buffers for spec.
func sampleBuffers(spec datasets.Spec) []datasets.Buffer {
	var bufs []datasets.Buffer
	for _, m := range spec.Modalities {
		if m.Int {
			bufs = append(bufs, datasets.Buffer{I64: make([]int64, m.Size())})
		} else {
			bufs = append(bufs, datasets.Buffer{F32: make([]float32, m.Size())})
		}
	}
	return bufs
}

// collect reads a whole epoch, copying each batch before releasing it.
type collected struct {
	labels  []int64
	indices []int
	sizes   []int
	data    [][]float32 // per modality, concatenated
	ints    [][]int64
}

func collect(t *testing.T, l *datasets.Loader, epoch int, order []int) (collected, *datasets.Batches) {
	t.Helper()
	b, err := l.Epoch(epoch, order)
	if err != nil {
		t.Fatal(err)
	}
	var c collected
	for {
		h, err := b.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(c.data) == 0 {
			c.data = make([][]float32, len(h.Data))
			c.ints = make([][]int64, len(h.Data))
		}
		if len(h.Labels) != h.N || len(h.Indices) != h.N {
			t.Fatalf("batch of %d has %d labels and %d indices", h.N, len(h.Labels), len(h.Indices))
		}
		c.sizes = append(c.sizes, h.N)
		c.labels = append(c.labels, h.Labels...)
		c.indices = append(c.indices, h.Indices...)
		for m, d := range h.Data {
			c.data[m] = append(c.data[m], d.F32...)
			c.ints[m] = append(c.ints[m], d.I64...)
		}
		b.Release(h)
	}
	return c, b
}

// expected reads the samples of order one by one, as the batches must hold
// them.
func expected(t *testing.T, split datasets.Split, spec datasets.Spec, order []int, read func(i int, dst []datasets.Buffer) (int64, error)) collected {
	t.Helper()
	c := collected{data: make([][]float32, len(spec.Modalities)), ints: make([][]int64, len(spec.Modalities))}
	bufs := sampleBuffers(spec)
	for _, i := range order {
		label, err := read(i, bufs)
		if err != nil {
			continue
		}
		c.labels = append(c.labels, label)
		c.indices = append(c.indices, i)
		for m, b := range bufs {
			c.data[m] = append(c.data[m], b.F32...)
			c.ints[m] = append(c.ints[m], b.I64...)
		}
	}
	return c
}

func sameContent(t *testing.T, name string, got, want collected) {
	t.Helper()
	if !slices.Equal(got.indices, want.indices) || !slices.Equal(got.labels, want.labels) {
		t.Fatalf("%s: indices %v labels %v,\nwant %v %v", name, got.indices, got.labels, want.indices, want.labels)
	}
	for m := range want.data {
		if !slices.Equal(got.data[m], want.data[m]) || !slices.Equal(got.ints[m], want.ints[m]) {
			t.Fatalf("%s: modality %d data differs from reading the samples one by one", name, m)
		}
	}
}

func TestLoaderMatchesSequentialReads(t *testing.T) {
	split, spec := openSynthTrain(t)
	order := rand.New(rand.NewPCG(1, 2)).Perm(split.Len())
	want := expected(t, split, spec, order, split.Read)
	for _, workers := range []int{1, 3, 8} {
		for _, dropLast := range []bool{false, true} {
			l, err := datasets.NewLoader(split, spec, datasets.LoaderOptions{BatchSize: 32, Workers: workers, Prefetch: 2, DropLast: dropLast})
			if err != nil {
				t.Fatal(err)
			}
			// Two epochs on one loader: its buffers are reused.
			for epoch := range 2 {
				got, b := collect(t, l, epoch, order)
				b.Close()
				name := fmt.Sprintf("workers %d, drop last %v, epoch %d", workers, dropLast, epoch)
				w, sizes := want, []int{32, 32, 32, 32, 32, 32, 11} // 203 = 6·32 + 11
				if dropLast {
					w.indices, w.labels = w.indices[:192], w.labels[:192]
					w.data = [][]float32{w.data[0][:192*32], w.data[1][:192*32]}
					sizes = sizes[:6]
				}
				sameContent(t, name, got, w)
				if !slices.Equal(got.sizes, sizes) {
					t.Errorf("%s: batch sizes %v, want %v", name, got.sizes, sizes)
				}
			}
		}
	}
}

// seededSplit adds noise drawn from the sample's seed to a base split: an
// augmenting split.
type seededSplit struct {
	datasets.Split
}

func (s seededSplit) ReadSeeded(i int, seed uint64, dst []datasets.Buffer) (int64, error) {
	label, err := s.Split.Read(i, dst)
	rng := rand.New(rand.NewPCG(seed, 0))
	for _, b := range dst {
		for j := range b.F32 {
			b.F32[j] += float32(rng.NormFloat64())
		}
	}
	return label, err
}

func TestLoaderSeedsPerSampleNotPerWorker(t *testing.T) {
	base, spec := openSynthTrain(t)
	split := seededSplit{Split: base}
	order := rand.New(rand.NewPCG(3, 4)).Perm(split.Len())
	const runSeed = 42
	for _, epoch := range []int{0, 5} {
		want := expected(t, split, spec, order, func(i int, dst []datasets.Buffer) (int64, error) {
			return split.ReadSeeded(i, datasets.SampleSeed(runSeed, epoch, i), dst)
		})
		for _, workers := range []int{1, 4} {
			l, err := datasets.NewLoader(split, spec, datasets.LoaderOptions{BatchSize: 16, Workers: workers, Seed: runSeed})
			if err != nil {
				t.Fatal(err)
			}
			got, b := collect(t, l, epoch, order)
			b.Close()
			sameContent(t, fmt.Sprintf("epoch %d, workers %d", epoch, workers), got, want)
		}
	}
	if datasets.SampleSeed(runSeed, 0, 7) == datasets.SampleSeed(runSeed, 1, 7) ||
		datasets.SampleSeed(runSeed, 0, 7) == datasets.SampleSeed(runSeed, 0, 8) ||
		datasets.SampleSeed(runSeed, 0, 7) == datasets.SampleSeed(runSeed+1, 0, 7) {
		t.Error("sample seeds repeat across epochs, samples or runs")
	}
}

// flakySplit fails to read the samples in bad, and sleeps a little so that
// workers finish out of order.
type flakySplit struct {
	datasets.Split
	bad map[int]bool
}

func (s flakySplit) Read(i int, dst []datasets.Buffer) (int64, error) {
	time.Sleep(time.Duration(i%5) * 50 * time.Microsecond)
	if s.bad[i] {
		return 0, fmt.Errorf("frame file clip%03d/frame_00001.jpg: unexpected EOF", i)
	}
	return s.Split.Read(i, dst)
}

func TestLoaderSkipBad(t *testing.T) {
	base, spec := openSynthTrain(t)
	split := flakySplit{Split: base, bad: map[int]bool{}}
	order := rand.New(rand.NewPCG(5, 6)).Perm(100)
	for p, i := range order {
		if p%9 == 4 || p == 99 {
			split.bad[i] = true
		}
	}
	want := expected(t, split, spec, order, split.Read)
	for _, workers := range []int{1, 6} {
		l, err := datasets.NewLoader(split, spec, datasets.LoaderOptions{BatchSize: 10, Workers: workers, SkipBad: true})
		if err != nil {
			t.Fatal(err)
		}
		got, b := collect(t, l, 0, order)
		sameContent(t, fmt.Sprintf("workers %d", workers), got, want)
		// 100 samples, 12 bad: eight full batches and one of 8.
		if wantSizes := []int{10, 10, 10, 10, 10, 10, 10, 10, 8}; !slices.Equal(got.sizes, wantSizes) {
			t.Errorf("batch sizes %v, want %v", got.sizes, wantSizes)
		}
		skipped := b.Skipped()
		var positions []int
		for _, s := range skipped {
			positions = append(positions, s.Position)
			if s.Index != order[s.Position] || !strings.Contains(s.Err.Error(), fmt.Sprintf("clip%03d", s.Index)) {
				t.Errorf("skipped %+v: want index order[%d] = %d and its file in the error", s, s.Position, order[s.Position])
			}
		}
		if wantPos := []int{4, 13, 22, 31, 40, 49, 58, 67, 76, 85, 94, 99}; !slices.Equal(positions, wantPos) {
			t.Errorf("skipped positions %v, want %v", positions, wantPos)
		}
		b.Close()
	}
}

func TestLoaderErrorNamesSample(t *testing.T) {
	base, spec := openSynthTrain(t)
	split := flakySplit{Split: base, bad: map[int]bool{37: true}}
	order := make([]int, 80)
	for i := range order {
		order[i] = i
	}
	before := runtime.NumGoroutine()
	l, err := datasets.NewLoader(split, spec, datasets.LoaderOptions{BatchSize: 8, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Epoch(3, order)
	if err != nil {
		t.Fatal(err)
	}
	var batches int
	for {
		h, err := b.Next()
		if err != nil {
			want := "epoch 3: sample 37 (position 37): frame file clip037/frame_00001.jpg: unexpected EOF"
			if err.Error() != want {
				t.Fatalf("error %q, want %q", err, want)
			}
			if _, again := b.Next(); again == nil || again.Error() != want {
				t.Errorf("Next after the error returned %v, want the same error", again)
			}
			break
		}
		batches++
		b.Release(h)
	}
	if batches != 4 {
		t.Errorf("%d batches before the error, want the 4 complete ones before sample 37", batches)
	}
	b.Close()
	waitGoroutines(t, before)
}

// An int64 modality travels as I64 next to float ones.
type tokenSplit struct{ n int }

func (s tokenSplit) Len() int { return s.n }
func (s tokenSplit) Read(i int, dst []datasets.Buffer) (int64, error) {
	for j := range dst[0].F32 {
		dst[0].F32[j] = float32(i) + float32(j)/10
	}
	for j := range dst[1].I64 {
		dst[1].I64[j] = int64(1000*i + j)
	}
	return int64(i % 3), nil
}

func TestLoaderInt64Modality(t *testing.T) {
	spec := datasets.Spec{Name: "tokens", Classes: 3, Modalities: []datasets.Modality{
		{Name: "visual", Shape: []int64{2, 3}},
		{Name: "text", Shape: []int64{1, 5}, Int: true},
	}}
	split := tokenSplit{n: 23}
	order := rand.New(rand.NewPCG(7, 8)).Perm(split.n)
	l, err := datasets.NewLoader(split, spec, datasets.LoaderOptions{BatchSize: 4, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	got, b := collect(t, l, 0, order)
	b.Close()
	want := expected(t, split, spec, order, split.Read)
	sameContent(t, "int64 modality", got, want)
	if len(got.ints[1]) != 23*5 || got.ints[1][5] != int64(1000*order[1]) {
		t.Errorf("text ids %v…, want sample %d's ids second", got.ints[1][:10], order[1])
	}
}

// slowSplit takes a fixed time per sample, like reading and decoding files.
type slowSplit struct {
	n     int
	delay time.Duration
	width int
}

func (s slowSplit) Len() int { return s.n }
func (s slowSplit) Read(i int, dst []datasets.Buffer) (int64, error) {
	time.Sleep(s.delay)
	for j := range dst[0].F32 {
		dst[0].F32[j] = float32(i)
	}
	return int64(i % 2), nil
}

func slowSpec(width int) datasets.Spec {
	return datasets.Spec{Name: "slow", Classes: 2, Modalities: []datasets.Modality{{Name: "visual", Shape: []int64{int64(width)}}}}
}

func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines remain, want %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLoaderStopsEarlyWithoutLeaks(t *testing.T) {
	split := slowSplit{n: 1000, delay: 200 * time.Microsecond, width: 8}
	order := make([]int, split.n)
	for i := range order {
		order[i] = i
	}
	before := runtime.NumGoroutine()
	l, err := datasets.NewLoader(split, slowSpec(8), datasets.LoaderOptions{BatchSize: 16, Workers: 8, Prefetch: 3})
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Epoch(0, order)
	if err != nil {
		t.Fatal(err)
	}
	h, err := b.Next()
	if err != nil {
		t.Fatal(err)
	}
	b.Release(h)
	// The consumer stops here; workers are blocked on full buffers.
	time.Sleep(20 * time.Millisecond)
	b.Close()
	b.Close() // idempotent
	if _, err := b.Next(); err == nil {
		t.Error("Next after Close returned a batch")
	}
	waitGoroutines(t, before)
	// A new epoch after an early stop starts clean, and starting one closes
	// an open one.
	first, err := l.Epoch(1, order[:40])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Next(); err != nil {
		t.Fatal(err)
	}
	got, b2 := collect(t, l, 2, order[:40])
	b2.Close()
	if !slices.Equal(got.indices, order[:40]) {
		t.Errorf("epoch after an early stop delivered %v, want %v", got.indices, order[:40])
	}
	waitGoroutines(t, before)
}

func TestLoaderOptionErrors(t *testing.T) {
	split, spec := openSynthTrain(t)
	cases := []struct {
		name string
		opt  datasets.LoaderOptions
		spec datasets.Spec
		want string
	}{
		{"batch size", datasets.LoaderOptions{}, spec, "batch size 0"},
		{"workers", datasets.LoaderOptions{BatchSize: 2, Workers: -1}, spec, "-1 workers"},
		{"no modalities", datasets.LoaderOptions{BatchSize: 2}, datasets.Spec{Name: "x"}, "no modalities"},
		{"unknown shape", datasets.LoaderOptions{BatchSize: 2}, datasets.Spec{Name: "x", Modalities: []datasets.Modality{{Name: "audio", Shape: []int64{0}}}}, "modality audio has shape [0]"},
	}
	for _, c := range cases {
		if _, err := datasets.NewLoader(split, c.spec, c.opt); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	l, err := datasets.NewLoader(split, spec, datasets.LoaderOptions{BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Epoch(0, []int{0, 203}); err == nil || !strings.Contains(err.Error(), "order[1] = 203") {
		t.Errorf("index out of range: error %v, want one naming order[1]", err)
	}
	if errors.Is(err, io.EOF) {
		t.Error("a bad order is not the end of an epoch")
	}
}

// drainEpoch reads and releases every batch of one epoch and returns the
// number of samples read.
func drainEpoch(tb testing.TB, l *datasets.Loader, epoch int, order []int) int {
	tb.Helper()
	batches, err := l.Epoch(epoch, order)
	if err != nil {
		tb.Fatal(err)
	}
	samples := 0
	for {
		h, err := batches.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		samples += h.N
		batches.Release(h)
	}
	batches.Close()
	return samples
}

// BenchmarkPipeline reads 256 samples taking 200µs each (a stand-in for
// reading and decoding files) in batches of 32: the time per epoch falls
// with the number of workers.
func BenchmarkPipeline(b *testing.B) {
	split := slowSplit{n: 256, delay: 200 * time.Microsecond, width: 3 * 224 * 224}
	order := make([]int, split.n)
	for i := range order {
		order[i] = i
	}
	for _, workers := range []int{1, 2, 4, 8, 16} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			l, err := datasets.NewLoader(split, slowSpec(split.width), datasets.LoaderOptions{BatchSize: 32, Workers: workers, Prefetch: 2})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				drainEpoch(b, l, 0, order)
			}
			b.ReportMetric(float64(split.n*b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
