package audio

import (
	"fmt"
	"math"
)

// ResampleFilter is the low-pass filter of a windowed-sinc resampler, with
// the parameters of torchaudio.functional.resample.
type ResampleFilter struct {
	ZeroCrossings int     // sinc zero crossings kept on each side (lowpass_filter_width)
	Rolloff       float64 // cut-off as a fraction of the lower Nyquist frequency
	KaiserBeta    float64 // Kaiser window shape; 0 selects the Hann window
}

// HannSinc is torchaudio.functional.resample's default filter: a Hann-windowed
// sinc with 6 zero crossings and its cut-off at 0.99 of the lower Nyquist
// frequency. It is short (cheap) but lets tones just above the new Nyquist
// frequency through (see docs/datasets.md).
func HannSinc() ResampleFilter { return ResampleFilter{ZeroCrossings: 6, Rolloff: 0.99} }

// KaiserBest is the filter torchaudio documents as its match for resampy's
// "kaiser_best", the resampler librosa.load used by default before librosa
// 0.10: a Kaiser-windowed sinc (β 14.769656459379492) with 64 zero crossings
// and its cut-off at 0.9475937167399596 of the lower Nyquist frequency.
func KaiserBest() ResampleFilter {
	return ResampleFilter{ZeroCrossings: 64, Rolloff: 0.9475937167399596, KaiserBeta: 14.769656459379492}
}

// Resample converts mono audio from one sample rate to another as
// torchaudio.functional.resample does, in polyphase form. With g the greatest
// common divisor, the rates reduce to p = from/g input and q = to/g output
// samples per block; output sample n sits at input time τ = n·p/q and is
//
//	y[n] = Σ_m x[m] · (c/p) · sinc(c·(m−τ)/p) · w(c·(m−τ)/(p·Z))
//
// over |c·(m−τ)/p| < Z, with c = Rolloff·min(p, q), Z the zero crossings,
// sinc(t) = sin(πt)/(πt), x zero outside the input and the window
// w(u) = cos²(πu/2) (Hann) or I0(β·√(1−u²))/I0(β) (Kaiser). The output has
// ⌈len(x)·q/p⌉ samples. The same rate returns x itself.
func Resample(x []float32, from, to int, f ResampleFilter) ([]float32, error) {
	if from <= 0 || to <= 0 {
		return nil, fmt.Errorf("resample: rates %d Hz → %d Hz must be positive", from, to)
	}
	if f.ZeroCrossings <= 0 || f.Rolloff <= 0 || f.Rolloff > 1 || f.KaiserBeta < 0 {
		return nil, fmt.Errorf("resample: filter %+v needs zero crossings > 0, 0 < rolloff ≤ 1 and β ≥ 0", f)
	}
	if from == to {
		return x, nil
	}
	g := gcd(from, to)
	p, q := from/g, to/g
	zc := float64(f.ZeroCrossings)
	cutoff := f.Rolloff * float64(min(p, q))
	// Taps reach width input samples before a block's first input and
	// width after its last, as torchaudio's kernels do.
	width := int(math.Ceil(zc * float64(p) / cutoff))
	taps := 2*width + p
	if work := float64(q) * float64(taps); work > maxFilterWork {
		return nil, fmt.Errorf("resample: %d Hz → %d Hz reduces to %d:%d, a filter of %d phases × %d taps (%.3g coefficients to scan, more than %.0g): convert the audio to a common rate first",
			from, to, p, q, q, taps, work, float64(maxFilterWork))
	}
	// phases[j] weighs x[c·p − width + k] for output c·q + j; only the
	// taps inside the zero crossings are kept (most of torchaudio's
	// kernel, which spans every phase's support, is zero).
	type phase struct {
		first   int // k of weights[0]
		weights []float64
	}
	phases := make([]phase, q)
	i0Beta := besselI0(f.KaiserBeta)
	for j := range phases {
		for k := range taps {
			t := (float64(k-width)/float64(p) - float64(j)/float64(q)) * cutoff
			if t <= -zc || t >= zc {
				continue // the window is zero there
			}
			var w float64
			if f.KaiserBeta == 0 {
				w = math.Cos(t * math.Pi / zc / 2)
				w *= w
			} else {
				u := t / zc
				w = besselI0(f.KaiserBeta*math.Sqrt(1-u*u)) / i0Beta
			}
			s := 1.0
			if t != 0 {
				s = math.Sin(math.Pi*t) / (math.Pi * t)
			}
			if len(phases[j].weights) == 0 {
				phases[j].first = k
			}
			phases[j].weights = append(phases[j].weights, s*w*cutoff/float64(p))
		}
	}
	n := (len(x)*q + p - 1) / p
	y := make([]float32, n)
	for i := range y {
		c, ph := i/q, phases[i%q]
		base := c*p - width + ph.first
		lo, hi := max(0, -base), min(len(ph.weights), len(x)-base)
		var acc float64
		for k := lo; k < hi; k++ {
			acc += ph.weights[k] * float64(x[base+k])
		}
		y[i] = float32(acc)
	}
	return y, nil
}

// besselI0 is the modified Bessel function of the first kind of order 0,
// summed from its power series Σ ((x/2)^k / k!)², which converges for every
// x and is accurate to float64 rounding for the β values of Kaiser windows.
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; term > 1e-17*sum; k++ {
		r := x / 2 / float64(k)
		term *= r * r
		sum += term
	}
	return sum
}

// maxFilterWork bounds the phases × taps a resampling filter scans to
// build: common rate pairs need well under a million (44100 → 16000 Hz,
// 130 thousand), while rates without a common divisor (1000003 → 16000)
// would need tens of billions, minutes of work for a corrupt header.
const maxFilterWork = 4e8

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
