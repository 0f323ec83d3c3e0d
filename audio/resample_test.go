package audio

import (
	"math"
	"strings"
	"testing"
)

func tone(rate int, hz float64, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(0.5 * math.Sin(2*math.Pi*hz*float64(i)/float64(rate)))
	}
	return x
}

// rms is the root mean square of x[from:to].
func rms(x []float32, from, to int) float64 {
	var s float64
	for _, v := range x[from:to] {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(to-from))
}

// TestResampleKeepsThePassbandAndRejectsAliases checks the filters on tones:
// one inside the new band comes through as the same tone (away from the
// edges, where the zero padding shows), and one above the new Nyquist
// frequency is suppressed rather than folded back. The bounds are about 1.5×
// what was measured; HannSinc's short filter passes much more of a tone just
// above the cut-off than KaiserBest does.
func TestResampleKeepsThePassbandAndRejectsAliases(t *testing.T) {
	tests := []struct {
		filter     string
		from, to   int
		hz         float64
		passband   bool
		worstError float64 // passband: max |y − ideal tone|; stopband: output RMS
	}{
		{"hann", 44100, 16000, 1000, true, 3e-4},
		{"hann", 22050, 16000, 3000, true, 4e-4},
		{"hann", 8000, 16000, 1000, true, 1.5e-4},
		{"hann", 16000, 22050, 5000, true, 6e-3},
		{"hann", 44100, 16000, 10000, false, 3e-3},
		{"hann", 22050, 16000, 9000, false, 0.08},
		{"kaiser", 44100, 16000, 1000, true, 1e-6},
		{"kaiser", 22050, 16000, 3000, true, 1e-6},
		{"kaiser", 8000, 16000, 1000, true, 1e-6},
		{"kaiser", 16000, 22050, 5000, true, 1e-6},
		{"kaiser", 44100, 16000, 10000, false, 1e-6},
		{"kaiser", 22050, 16000, 9000, false, 1e-6},
	}
	for _, tt := range tests {
		filter := HannSinc()
		if tt.filter == "kaiser" {
			filter = KaiserBest()
		}
		x := tone(tt.from, tt.hz, tt.from) // one second
		y, err := Resample(x, tt.from, tt.to, filter)
		if err != nil {
			t.Fatal(err)
		}
		if len(y) != tt.to {
			t.Errorf("%d→%d: %d samples, want %d", tt.from, tt.to, len(y), tt.to)
			continue
		}
		edge := tt.to / 20 // 50 ms
		if tt.passband {
			want := tone(tt.to, tt.hz, tt.to)
			var worst float64
			for i := edge; i < len(y)-edge; i++ {
				worst = max(worst, math.Abs(float64(y[i]-want[i])))
			}
			t.Logf("%s %d→%d Hz, %g Hz tone: max error %.2g", tt.filter, tt.from, tt.to, tt.hz, worst)
			if worst > tt.worstError {
				t.Errorf("%s %d→%d Hz, %g Hz tone: max error %g > %g", tt.filter, tt.from, tt.to, tt.hz, worst, tt.worstError)
			}
		} else {
			r := rms(y, edge, len(y)-edge)
			t.Logf("%s %d→%d Hz, %g Hz tone (input RMS 0.35): output RMS %.2g", tt.filter, tt.from, tt.to, tt.hz, r)
			if r > tt.worstError {
				t.Errorf("%s %d→%d Hz, %g Hz tone above Nyquist: output RMS %g > %g", tt.filter, tt.from, tt.to, tt.hz, r, tt.worstError)
			}
		}
	}
}

func TestResampleRejectsBadRates(t *testing.T) {
	for _, r := range [][2]int{{0, 16000}, {16000, -1}} {
		if _, err := Resample([]float32{1}, r[0], r[1], HannSinc()); err == nil {
			t.Errorf("Resample %d→%d: no error", r[0], r[1])
		}
	}
	x := []float32{1, 2}
	if y, err := Resample(x, 16000, 16000, KaiserBest()); err != nil || &y[0] != &x[0] {
		t.Errorf("same rate: %v, %v (want the input back)", y, err)
	}
}

// Rates without a useful common divisor would need a filter of billions of
// coefficients: refused at once, with the sizes, instead of computed for
// minutes.
func TestResampleRefusesAHugeFilter(t *testing.T) {
	_, err := Resample(make([]float32, 100), 767999, 16000, KaiserBest())
	if err == nil || !strings.Contains(err.Error(), "767999 Hz → 16000 Hz") || !strings.Contains(err.Error(), "16000 phases") {
		t.Errorf("767999 → 16000 Hz: %v", err)
	}
	if _, err := Resample(make([]float32, 100), 44100, 16000, KaiserBest()); err != nil {
		t.Errorf("44100 → 16000 Hz: %v", err)
	}
}
