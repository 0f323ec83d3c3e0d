package runtime

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress reports training progress: on a terminal a live status line
// (steps/s, ETA, loss) that each epoch's summary replaces; elsewhere (a
// log file under nohup or Slurm) a plain status line every plainEvery and
// one line per epoch. Epochs are numbered from 1 in both, as "epoch 3/70".
type progress struct {
	w          io.Writer
	live       bool
	every      time.Duration // between plain status lines
	start      time.Time
	last       time.Time
	stepsDone  int64
	stepsTotal int64
}

// plainEvery is how often a non-terminal output gets a status line.
const plainEvery = 30 * time.Second

func newProgress(w io.Writer, totalSteps int64) *progress {
	now := time.Now()
	p := &progress{w: w, start: now, last: now, stepsTotal: totalSteps, every: plainEvery}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.live, p.every = true, 100*time.Millisecond
		}
	}
	return p
}

// step records one finished step (0-based epoch and step) and prints the
// status line when it is due: at most ten times a second on a terminal,
// every plainEvery elsewhere.
func (p *progress) step(epoch, epochs, step, steps int, loss float64) {
	p.stepsDone++
	if p.w == nil || time.Since(p.last) < p.every {
		return
	}
	p.last = time.Now()
	rate := float64(p.stepsDone) / time.Since(p.start).Seconds()
	eta := time.Duration(float64(p.stepsTotal-p.stepsDone) / rate * float64(time.Second)).Round(time.Second)
	line := fmt.Sprintf("epoch %d/%d  step %d/%d  %.3g steps/s  ETA %s  loss %.4f", epoch+1, epochs, step+1, steps, rate, eta, loss)
	if p.live {
		fmt.Fprint(p.w, "\r\033[K"+line)
		return
	}
	fmt.Fprintln(p.w, line)
}

// epoch prints an epoch's summary line: "epoch 3/70" (epoch is 0-based)
// and the rest.
func (p *progress) epoch(epoch, epochs int, rest string) {
	if p.w == nil {
		return
	}
	if p.live {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, "epoch %d/%d  %s\n", epoch+1, epochs, rest)
}

// expect sets the steps still to come (an epoch plan may change an epoch's
// length).
func (p *progress) expect(steps int64) { p.stepsTotal = p.stepsDone + steps }
