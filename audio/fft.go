package audio

import (
	"fmt"
	"math"
	"math/bits"
)

// realFFT computes the discrete Fourier transform of real input of one
// power-of-two length n. It packs the n reals into n/2 complex numbers, runs
// an iterative radix-2 complex FFT of that half length and untangles the
// result, which halves the work of a complex FFT of length n. A realFFT
// keeps scratch space, so each goroutine needs its own.
type realFFT struct {
	n       int
	rev     []int        // bit-reversal permutation of the half length
	twiddle []complex128 // exp(-2πi·k/(n/2)), k < n/4: the half-length butterflies
	untwist []complex128 // exp(-2πi·k/n), k ≤ n/2: the real-input split
	buf     []complex128
}

func newRealFFT(n int) (*realFFT, error) {
	if n < 2 || n&(n-1) != 0 {
		return nil, fmt.Errorf("FFT size %d is not a power of two ≥ 2", n)
	}
	half := n / 2
	p := &realFFT{n: n, rev: make([]int, half), twiddle: make([]complex128, half/2), untwist: make([]complex128, half+1), buf: make([]complex128, half)}
	shift := bits.UintSize - bits.Len(uint(half)) + 1
	for i := range half {
		if half > 1 {
			p.rev[i] = int(bits.Reverse(uint(i)) >> shift)
		}
	}
	for k := range p.twiddle {
		s, c := math.Sincos(-2 * math.Pi * float64(k) / float64(half))
		p.twiddle[k] = complex(c, s)
	}
	for k := range p.untwist {
		s, c := math.Sincos(-2 * math.Pi * float64(k) / float64(n))
		p.untwist[k] = complex(c, s)
	}
	return p, nil
}

// transform writes X[k] = Σ_t x[t]·exp(-2πi·k·t/n) for k = 0…n/2 into out,
// which must hold n/2+1 values; x must hold n.
func (p *realFFT) transform(x []float64, out []complex128) {
	half := p.n / 2
	z := p.buf
	for m := range half {
		z[p.rev[m]] = complex(x[2*m], x[2*m+1])
	}
	for size := 2; size <= half; size *= 2 {
		step := half / size
		for start := 0; start < half; start += size {
			for k := range size / 2 {
				w := p.twiddle[k*step]
				a, b := z[start+k], z[start+k+size/2]*w
				z[start+k], z[start+k+size/2] = a+b, a-b
			}
		}
	}
	// With Z the transform of z[m] = x[2m] + i·x[2m+1], the even and odd
	// samples' transforms are E[k] = (Z[k] + conj Z[h-k])/2 and
	// O[k] = (Z[k] - conj Z[h-k])/(2i), and X[k] = E[k] + exp(-2πik/n)·O[k].
	for k := 0; k <= half; k++ {
		zk, zr := z[k%half], z[(half-k)%half]
		zr = complex(real(zr), -imag(zr))
		e := (zk + zr) * 0.5
		o := (zk - zr) * complex(0, -0.5) // ÷ 2i
		out[k] = e + p.untwist[k]*o
	}
}
