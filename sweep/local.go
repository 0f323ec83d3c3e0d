package sweep

import (
	"context"
	"fmt"
	"io"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// LocalOptions configure the local executor.
type LocalOptions struct {
	// Jobs is how many cells run at once (default 1).
	Jobs int
	// Threads per cell (default: the machine's CPUs split over the jobs).
	Threads int
	// BMC is the bmc executable.
	BMC string
	// Progress receives a line per cell event and, every Heartbeat, the
	// epochs of the running cells (nil: silent; Heartbeat 0: none).
	Progress  io.Writer
	Heartbeat time.Duration
}

// ThreadsPerJob splits the machine's CPUs over parallel jobs.
func ThreadsPerJob(jobs int) int { return max(1, goruntime.NumCPU()/max(jobs, 1)) }

// Summary is what a local sweep did.
type Summary struct {
	Total, Done, Failed, Skipped, Stopped, Elsewhere int
	// Failures are the failed cells' IDs with their errors.
	Failures []string
}

// RunLocal runs every unfinished cell on this machine, Jobs at a time. A
// failing cell is recorded and the others go on; cancelling ctx stops the
// running cells (they resume on the next run).
func (s *Sweep) RunLocal(ctx context.Context, o LocalOptions) Summary {
	o.Jobs = max(o.Jobs, 1)
	if o.Threads <= 0 {
		o.Threads = ThreadsPerJob(o.Jobs)
	}
	p := &progress{w: o.Progress, total: len(s.Manifest.Cells), running: map[int]Cell{}}
	var todo []int
	sum := Summary{Total: len(s.Manifest.Cells)}
	for i, st := range s.Status(nil) {
		if st.State == StateDone {
			sum.Skipped++
			continue
		}
		todo = append(todo, i)
	}
	p.finished = sum.Skipped
	p.printf("sweep %s: %d cells, %d finished before, %d to run, %d at a time with %d threads each\n", s.Manifest.Name, sum.Total, sum.Skipped, len(todo), o.Jobs, o.Threads)
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range o.Jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c := s.Manifest.Cells[i]
				out, err := s.RunCell(ctx, i, RunOptions{BMC: o.BMC, Threads: o.Threads, Started: func(c Cell, resumed bool) { p.started(i, c, resumed) }})
				p.ended(i)
				mu.Lock()
				switch {
				case err != nil:
					out.State, out.Error = StateFailed, err.Error()
					sum.Failed++
					sum.Failures = append(sum.Failures, c.ID+": "+err.Error())
				case out.State == StateDone:
					sum.Done++
				case out.State == StateFailed:
					sum.Failed++
					sum.Failures = append(sum.Failures, c.ID+": "+out.Error)
				case out.State == StateRunning:
					sum.Elsewhere++
				default:
					sum.Stopped++
				}
				mu.Unlock()
				p.outcome(s, i, c, out)
			}
		}()
	}
	stop := p.heartbeat(s, o.Heartbeat)
feed:
	for _, i := range todo {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	stop()
	sum.Stopped += len(todo) - sum.Done - sum.Failed - sum.Stopped - sum.Elsewhere
	return sum
}

// String is the summary's closing line.
func (sum Summary) String() string {
	parts := []string{fmt.Sprintf("%d done now", sum.Done), fmt.Sprintf("%d done before", sum.Skipped)}
	if sum.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed", sum.Failed))
	}
	if sum.Stopped > 0 {
		parts = append(parts, fmt.Sprintf("%d stopped (rerun to resume)", sum.Stopped))
	}
	if sum.Elsewhere > 0 {
		parts = append(parts, fmt.Sprintf("%d running in another process", sum.Elsewhere))
	}
	return fmt.Sprintf("%d cells: %s", sum.Total, strings.Join(parts, ", "))
}

// progress prints the local executor's progress lines.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	total    int
	finished int
	running  map[int]Cell
}

func (p *progress) printf(format string, args ...any) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, args...)
}

func (p *progress) started(i int, c Cell, resumed bool) {
	p.mu.Lock()
	p.running[i] = c
	p.mu.Unlock()
	verb := "start "
	if resumed {
		verb = "resume"
	}
	p.printf("[%d/%d] %s %s\n", p.count(), p.total, verb, c.ID)
}

func (p *progress) ended(i int) {
	p.mu.Lock()
	delete(p.running, i)
	p.mu.Unlock()
}

func (p *progress) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.finished
}

func (p *progress) outcome(s *Sweep, i int, c Cell, out Outcome) {
	switch out.State {
	case StateDone:
		p.mu.Lock()
		p.finished++
		p.mu.Unlock()
		st := s.cellStatus(i, c, nil)
		deg := ""
		if st.Degree != nil {
			deg = fmt.Sprintf("  I %.4f", *st.Degree)
		}
		p.printf("[%d/%d] done   %s  test acc %.4f%s  (%.1f s)\n", p.count(), p.total, c.ID, st.TestAcc, deg, out.Seconds)
	case StateFailed:
		p.printf("[%d/%d] FAILED %s: %s (output: %s)\n", p.count(), p.total, c.ID, out.Error, s.LogFile(c))
	case StateRunning:
		p.printf("[%d/%d] skip   %s: another process is running it\n", p.count(), p.total, c.ID)
	default:
		p.printf("[%d/%d] stop   %s: interrupted; rerun to resume it\n", p.count(), p.total, c.ID)
	}
}

// heartbeat prints the running cells' epochs every d until stopped.
func (p *progress) heartbeat(s *Sweep, d time.Duration) (stop func()) {
	if d <= 0 || p.w == nil {
		return func() {}
	}
	t := time.NewTicker(d)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p.mu.Lock()
				var parts []string
				for i, c := range p.running {
					st := s.cellStatus(i, c, nil)
					parts = append(parts, fmt.Sprintf("%s epoch %d/%d", c.ID, st.EpochsDone, st.Epochs))
				}
				p.mu.Unlock()
				sort.Strings(parts)
				if len(parts) > 0 {
					p.printf("        running: %s\n", strings.Join(parts, ", "))
				}
			}
		}
	}()
	return func() { t.Stop(); close(done) }
}
