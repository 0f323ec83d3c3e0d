package audio

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"
)

func TestRealFFTMatchesDirectDFT(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{2, 4, 8, 16, 256, 512, 2048} {
		p, err := newRealFFT(n)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float64, n)
		for i := range x {
			x[i] = rng.NormFloat64()
		}
		got := make([]complex128, n/2+1)
		p.transform(x, got)
		var worst float64
		for k := 0; k <= n/2; k++ {
			var want complex128
			for i, v := range x {
				want += complex(v, 0) * cmplx.Exp(complex(0, -2*math.Pi*float64(k*i%n)/float64(n)))
			}
			worst = max(worst, cmplx.Abs(got[k]-want))
		}
		if worst > 1e-9*float64(n) {
			t.Errorf("n=%d: max |FFT - DFT| = %g", n, worst)
		}
	}
}

func TestRealFFTRejectsOtherSizes(t *testing.T) {
	for _, n := range []int{0, 1, 3, 400, 1102} {
		if _, err := newRealFFT(n); err == nil {
			t.Errorf("newRealFFT(%d): no error", n)
		}
	}
}
