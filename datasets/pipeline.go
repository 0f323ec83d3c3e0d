package datasets

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"bmc/internal/machine"
	"bmc/internal/randstream"
)

// SeededReader is implemented by splits whose samples are random draws
// (augmentation, frame choice). The loader passes each sample its own seed,
// SampleSeed(run seed, epoch, index), so a sample gets the same draws in the
// same epoch whatever the number of workers and whichever worker reads it.
// Splits without it are read with Read.
type SeededReader interface {
	ReadSeeded(i int, seed uint64, dst []Buffer) (label int64, err error)
}

// SampleSeed is the seed of sample index's random draws in an epoch of a run.
func SampleSeed(runSeed uint64, epoch, index int) uint64 {
	return sampleSeed(runSeed, augmentPurpose(epoch), index)
}

func augmentPurpose(epoch int) string { return "augment/epoch=" + strconv.Itoa(epoch) }

func sampleSeed(runSeed uint64, purpose string, index int) uint64 {
	return randstream.New(runSeed, purpose, uint64(index)).Uint64()
}

// LoaderOptions configure a Loader.
type LoaderOptions struct {
	// BatchSize is the number of samples per batch (required).
	BatchSize int
	// Workers is the number of goroutines reading samples (default 1).
	Workers int
	// Prefetch is the number of finished batches kept ready ahead of the
	// consumer (default 2).
	Prefetch int
	// Seed is the run seed the per-sample seeds derive from.
	Seed uint64
	// DropLast drops a final batch with fewer than BatchSize samples, as
	// PyTorch's drop_last=True (which the benchmark uses for every split).
	DropLast bool
	// SkipBad drops samples whose read fails instead of ending the epoch;
	// Batches.Skipped lists them.
	SkipBad bool
}

// HostBatch is one batch in host memory. Data[m] holds modality m's samples
// back to back, laid out [N, sample shape...] in F32 or, for integer
// modalities, I64. Labels and Indices (dataset indices) have N entries.
// Its memory belongs to the Loader: hand it back with Batches.Release.
type HostBatch struct {
	Data    []Buffer
	Labels  []int64
	Indices []int
	N       int
	full    []Buffer // Data at full BatchSize capacity
}

// SkippedSample is a sample SkipBad dropped.
type SkippedSample struct {
	// Index is the dataset index; Position its place in the epoch's order.
	Index, Position int
	Err             error
}

// Loader reads a split into batches with parallel workers. One epoch runs at
// a time; batch and sample buffers are reused across epochs.
type Loader struct {
	split   Split
	seeded  SeededReader
	mods    []Modality
	opt     LoaderOptions
	batches chan *HostBatch // free batch buffers
	slots   []*sampleSlot
	current *Batches
}

// sampleSlot is where a worker reads one sample before the assembler copies
// it into its batch.
type sampleSlot struct {
	bufs  []Buffer
	label int64
	err   error
	done  chan struct{}
}

// NewLoader prepares batched reading of split, whose samples have spec's
// modalities.
func NewLoader(split Split, spec Spec, opt LoaderOptions) (*Loader, error) {
	if opt.BatchSize < 1 {
		return nil, fmt.Errorf("loader for %s: batch size %d: want at least 1", spec.Name, opt.BatchSize)
	}
	if opt.Workers < 0 || opt.Prefetch < 0 {
		return nil, fmt.Errorf("loader for %s: %d workers, prefetch %d: want non-negative values", spec.Name, opt.Workers, opt.Prefetch)
	}
	if len(spec.Modalities) == 0 {
		return nil, fmt.Errorf("loader for %s: the spec lists no modalities", spec.Name)
	}
	for _, m := range spec.Modalities {
		if n := shapeElements(m.Shape); n > MaxSampleElements {
			return nil, fmt.Errorf("loader for %s: modality %s has %.4g values per sample (shape %v); at most %d are supported", spec.Name, m.Name, n, m.Shape, MaxSampleElements)
		}
		if m.Size() < 1 {
			return nil, fmt.Errorf("loader for %s: modality %s has shape %v: want a known, non-empty shape", spec.Name, m.Name, m.Shape)
		}
	}
	opt.Workers = max(opt.Workers, 1)
	if opt.Prefetch == 0 {
		opt.Prefetch = 2
	}
	if err := checkLoaderMemory(spec, opt); err != nil {
		return nil, err
	}
	l := &Loader{split: split, mods: spec.Modalities, opt: opt}
	l.seeded, _ = split.(SeededReader)
	// Prefetch batches wait for the consumer, one is being filled and one is
	// held by the consumer.
	nBatches := opt.Prefetch + 2
	l.batches = make(chan *HostBatch, nBatches)
	for range nBatches {
		l.batches <- l.newBatch()
	}
	// Two sample slots per worker let workers run ahead of a slow sample.
	for range 2 * opt.Workers {
		s := &sampleSlot{done: make(chan struct{}, 1)}
		for _, m := range l.mods {
			s.bufs = append(s.bufs, newBuffer(m, 1))
		}
		l.slots = append(l.slots, s)
	}
	return l, nil
}

// shapeElements multiplies a shape's sizes in float64, which cannot
// overflow.
func shapeElements(shape []int64) float64 {
	n := 1.0
	for _, d := range shape {
		n *= float64(d)
	}
	return n
}

// checkLoaderMemory refuses a loader whose buffers (Prefetch+2 batches and
// two sample slots per worker) would not fit in memory.
func checkLoaderMemory(spec Spec, opt LoaderOptions) error {
	var perSample float64
	for _, m := range spec.Modalities {
		elem := 4.0
		if m.Int {
			elem = 8
		}
		perSample += shapeElements(m.Shape) * elem
	}
	samples := float64(opt.Prefetch+2)*float64(opt.BatchSize) + 2*float64(opt.Workers)
	what := fmt.Sprintf("reading %s in batches of %d with %d workers (%s per sample)", spec.Name, opt.BatchSize, opt.Workers, machine.FormatBytes(perSample))
	return machine.CheckMemory(what, samples*perSample)
}

func newBuffer(m Modality, n int) Buffer {
	if m.Int {
		return Buffer{I64: make([]int64, n*m.Size())}
	}
	return Buffer{F32: make([]float32, n*m.Size())}
}

func (l *Loader) newBatch() *HostBatch {
	b := &HostBatch{Labels: make([]int64, l.opt.BatchSize), Indices: make([]int, l.opt.BatchSize)}
	for _, m := range l.mods {
		b.full = append(b.full, newBuffer(m, l.opt.BatchSize))
	}
	b.Data = make([]Buffer, len(l.mods))
	return b
}

// Batches is one epoch's stream of batches. Next, Release and Close may be
// called from one consumer goroutine; Skipped from any.
type Batches struct {
	l       *Loader
	purpose string // seeds the samples' random draws
	label   string // names the read in errors ("epoch 3")
	order   []int
	out     chan batchResult
	quit    chan struct{}
	wg      sync.WaitGroup
	stopped sync.Once // closes quit
	closing sync.Once
	err     error // the error that ended the epoch, returned again by Next
	closed  bool

	mu      sync.Mutex
	skipped []SkippedSample
}

type batchResult struct {
	b   *HostBatch
	err error
}

// Epoch starts reading the samples order lists (dataset indices, e.g. a
// shuffled permutation for training) in batches of BatchSize in that order.
// Sample order[p]'s seed is SampleSeed(Seed, epoch, order[p]). With SkipBad a
// failing sample is left out and the following samples in order move up, so
// the batches are order without the bad samples, cut into BatchSize pieces:
// deterministic, whatever the number of workers. Epoch closes the previous
// epoch's Batches if it is still open.
func (l *Loader) Epoch(epoch int, order []int) (*Batches, error) {
	return l.read(augmentPurpose(epoch), fmt.Sprintf("epoch %d", epoch), order)
}

// Pass reads the samples order lists like Epoch, for a pass outside the
// training epochs: sample order[p]'s seed derives from the run seed,
// purpose and order[p], so passes of different purposes draw different
// augmentations and a pass repeated with its purpose draws the same.
func (l *Loader) Pass(purpose string, order []int) (*Batches, error) {
	return l.read("pass/"+purpose, "pass "+purpose, order)
}

func (l *Loader) read(purpose, label string, order []int) (*Batches, error) {
	n := l.split.Len()
	if len(order) == 0 && !l.opt.DropLast {
		return nil, fmt.Errorf("%s: no samples to read (the split is empty)", label)
	}
	for p, i := range order {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("%s: order[%d] = %d is outside the split's %d samples", label, p, i, n)
		}
	}
	if l.current != nil {
		l.current.Close()
	}
	b := &Batches{l: l, purpose: purpose, label: label, order: order, out: make(chan batchResult, l.opt.Prefetch), quit: make(chan struct{})}
	l.current = b
	jobs := make(chan int)
	free := make(chan struct{}, len(l.slots))
	for range l.slots {
		free <- struct{}{}
	}
	b.wg.Add(2 + l.opt.Workers)
	go b.dispatch(jobs, free)
	for range l.opt.Workers {
		go b.work(jobs)
	}
	go b.assemble(free)
	return b, nil
}

// dispatch hands positions to workers in order, each once the slot it uses
// is free again.
func (b *Batches) dispatch(jobs chan<- int, free <-chan struct{}) {
	defer b.wg.Done()
	defer close(jobs)
	for p := range b.order {
		select {
		case <-free:
		case <-b.quit:
			return
		}
		select {
		case jobs <- p:
		case <-b.quit:
			return
		}
	}
}

// work reads the samples of the positions it receives into their slots.
func (b *Batches) work(jobs <-chan int) {
	defer b.wg.Done()
	l := b.l
	for {
		var p int
		var ok bool
		select {
		case p, ok = <-jobs:
			if !ok {
				return
			}
		case <-b.quit:
			return
		}
		s := l.slots[p%len(l.slots)]
		i := b.order[p]
		if l.seeded != nil {
			s.label, s.err = l.seeded.ReadSeeded(i, sampleSeed(l.opt.Seed, b.purpose, i), s.bufs)
		} else {
			s.label, s.err = l.split.Read(i, s.bufs)
		}
		s.done <- struct{}{}
	}
}

// assemble copies finished samples into batches in order and delivers them.
func (b *Batches) assemble(free chan<- struct{}) {
	defer b.wg.Done()
	defer close(b.out)
	l := b.l
	var cur *HostBatch
	delivered := 0 // batches
	defer func() {
		if cur != nil {
			l.batches <- cur
		}
	}()
	deliver := func(r batchResult) bool {
		select {
		case b.out <- r:
			return true
		case <-b.quit:
			return false
		}
	}
	for p, i := range b.order {
		s := l.slots[p%len(l.slots)]
		select {
		case <-s.done:
		case <-b.quit:
			return
		}
		if s.err != nil {
			if !l.opt.SkipBad {
				deliver(batchResult{err: fmt.Errorf("%s: sample %d (position %d): %w", b.label, i, p, s.err)})
				b.stop() // the epoch is over: release the dispatcher and workers
				return
			}
			b.mu.Lock()
			b.skipped = append(b.skipped, SkippedSample{Index: i, Position: p, Err: s.err})
			b.mu.Unlock()
			free <- struct{}{}
			continue
		}
		if cur == nil {
			select {
			case cur = <-l.batches:
			case <-b.quit:
				free <- struct{}{}
				return
			}
			cur.N = 0
			cur.Labels, cur.Indices = cur.Labels[:l.opt.BatchSize], cur.Indices[:l.opt.BatchSize]
		}
		for m, buf := range s.bufs {
			if buf.I64 != nil {
				copy(cur.full[m].I64[cur.N*len(buf.I64):], buf.I64)
			} else {
				copy(cur.full[m].F32[cur.N*len(buf.F32):], buf.F32)
			}
		}
		cur.Labels[cur.N], cur.Indices[cur.N] = s.label, i
		cur.N++
		free <- struct{}{}
		if cur.N == l.opt.BatchSize {
			full := cur
			cur = nil
			if !deliver(batchResult{b: full.trim(l.mods)}) {
				l.batches <- full
				return
			}
			delivered++
		}
	}
	if cur != nil && !l.opt.DropLast {
		last := cur
		cur = nil
		if !deliver(batchResult{b: last.trim(l.mods)}) {
			l.batches <- last
			return
		}
		delivered++
	}
	if delivered == 0 && !l.opt.DropLast {
		// A pass that reads every sample (evaluation) and gets none would
		// report a meaningless score: it is an error, not an empty pass.
		// With DropLast (training) an order may be shorter than a batch; the
		// trainer refuses an epoch that trained no step.
		deliver(batchResult{err: b.emptyEpochError()})
	}
}

// emptyEpochError says why a pass produced no batch.
func (b *Batches) emptyEpochError() error {
	skipped := b.Skipped()
	msg := fmt.Sprintf("%s: no usable sample: %d samples", b.label, len(b.order))
	if len(skipped) > 0 {
		msg += fmt.Sprintf(", %d of them skipped as unreadable (the first: sample %d: %v)", len(skipped), skipped[0].Index, skipped[0].Err)
	}
	return errors.New(msg)
}

// trim points Data, Labels and Indices at the first N samples.
func (h *HostBatch) trim(mods []Modality) *HostBatch {
	for m, mod := range mods {
		n := h.N * mod.Size()
		if mod.Int {
			h.Data[m] = Buffer{I64: h.full[m].I64[:n]}
		} else {
			h.Data[m] = Buffer{F32: h.full[m].F32[:n]}
		}
	}
	h.Labels, h.Indices = h.Labels[:h.N], h.Indices[:h.N]
	return h
}

// errClosed is what Next returns after Close.
var errClosed = errors.New("batches: next after close")

// Next returns the next batch, io.EOF after the last, or the error of the
// sample that ended the epoch (naming its index). Release each batch when
// done with it: the Loader holds only Prefetch+2 batch buffers.
func (b *Batches) Next() (*HostBatch, error) {
	if b.closed {
		return nil, errClosed
	}
	if b.err != nil {
		return nil, b.err
	}
	r, ok := <-b.out
	if !ok {
		return nil, io.EOF
	}
	if r.err != nil {
		b.err = r.err
		return nil, r.err
	}
	return r.b, nil
}

// Release hands a batch's buffers back for reuse; h must not be used after,
// nor released twice.
func (b *Batches) Release(h *HostBatch) {
	if h != nil {
		b.l.batches <- h
	}
}

// Skipped lists the samples SkipBad has dropped so far, in order.
func (b *Batches) Skipped() []SkippedSample {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]SkippedSample(nil), b.skipped...)
}

// Close stops the epoch's goroutines, waits for them and reclaims the
// batches not yet returned by Next. It is safe to call more than once and
// after the last batch; a consumer stopping early must call it.
func (b *Batches) Close() {
	b.closing.Do(func() {
		b.stop()
		b.wg.Wait()
		for r := range b.out {
			if r.b != nil {
				b.l.batches <- r.b
			}
		}
		// A worker may have finished a sample the assembler no longer
		// waited for; clear its signal so the slot starts the next epoch empty.
		for _, s := range b.l.slots {
			select {
			case <-s.done:
			default:
			}
		}
		b.closed = true
	})
}

func (b *Batches) stop() { b.stopped.Do(func() { close(b.quit) }) }
