package runtime

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress reports training progress: on a terminal a live status line
// (steps/s, ETA, loss) that each epoch's summary replaces; elsewhere one
// plain line per epoch.
type progress struct {
	w          io.Writer
	live       bool
	start      time.Time
	last       time.Time
	stepsDone  int64
	stepsTotal int64
}

func newProgress(w io.Writer, totalSteps int64) *progress {
	p := &progress{w: w, start: time.Now(), stepsTotal: totalSteps}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.live = true
		}
	}
	return p
}

// step records one finished step and, on a terminal, redraws the status
// line at most ten times a second.
func (p *progress) step(epoch, epochs, step, steps int, loss float64) {
	p.stepsDone++
	if p.w == nil || !p.live || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	rate := float64(p.stepsDone) / time.Since(p.start).Seconds()
	eta := time.Duration(float64(p.stepsTotal-p.stepsDone) / rate * float64(time.Second)).Round(time.Second)
	fmt.Fprintf(p.w, "\r\033[Kepoch %d/%d  step %d/%d  %.0f steps/s  ETA %s  loss %.4f", epoch+1, epochs, step+1, steps, rate, eta, loss)
}

// epoch prints an epoch's summary line.
func (p *progress) epoch(line string) {
	if p.w == nil {
		return
	}
	if p.live {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintln(p.w, line)
}
