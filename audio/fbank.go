package audio

import (
	"fmt"
	"math"
)

// Window is the analysis window of a Kaldi filterbank frame.
type Window string

// The windows of torchaudio.compliance.kaldi, all symmetric (periodic=False)
// over the unpadded frame length N.
const (
	Hanning Window = "hanning" // 0.5 − 0.5·cos(2πn/(N−1))
	Povey   Window = "povey"   // the Hanning window raised to the power 0.85 (Kaldi's default)
	Hamming Window = "hamming" // 0.54 − 0.46·cos(2πn/(N−1))
)

// FbankOptions are the options of torchaudio.compliance.kaldi.fbank that bmc
// varies. The others are fixed at the values the Kinetics-Sounds pipeline
// uses: dither 0, snip_edges true, power spectrum, log of the mel energies
// floored at the float32 epsilon, no energy column (so htk_compat, which only
// places that column, and energy_floor have no effect), no VTLN warp and no
// per-column mean subtraction.
type FbankOptions struct {
	NumMelBins        int     // mel filters (> 3)
	FrameLengthMs     float64 // frame length in milliseconds
	FrameShiftMs      float64 // frame shift in milliseconds
	Window            Window  // analysis window
	Preemphasis       float64 // x[i] −= Preemphasis·x[i−1] within each frame (x[−1] = x[0])
	RemoveDCOffset    bool    // subtract each frame's mean before pre-emphasis
	RoundToPowerOfTwo bool    // zero-pad each frame to the next power of two for the FFT
	LowFreq           float64 // lowest mel filter edge in Hz
	HighFreq          float64 // highest edge in Hz; ≤ 0 means Nyquist + HighFreq
}

// KineticsSoundsFbank is the filterbank of the Kinetics-Sounds pipeline (spec
// §3): 128 mel bins, 25 ms frames every 10 ms, Hanning window, pre-emphasis
// 0.97, DC offset removed, 20 Hz to Nyquist.
func KineticsSoundsFbank() FbankOptions {
	return FbankOptions{
		NumMelBins: 128, FrameLengthMs: 25, FrameShiftMs: 10, Window: Hanning,
		Preemphasis: 0.97, RemoveDCOffset: true, RoundToPowerOfTwo: true, LowFreq: 20, HighFreq: 0,
	}
}

// float32Epsilon is torch.finfo(torch.float32).eps, the floor of the mel
// energies before the log.
const float32Epsilon = 1.1920928955078125e-07

// Matrix is a row-major float32 matrix.
type Matrix struct {
	Rows, Cols int
	Data       []float32 // Data[r*Cols+c]
}

// At returns element (r, c).
func (m *Matrix) At(r, c int) float32 { return m.Data[r*m.Cols+c] }

// Fbank computes log-mel filterbank features at one sample rate. It is not
// safe for concurrent use; make one per goroutine.
type Fbank struct {
	opts       FbankOptions
	frameLen   int         // samples per frame
	frameShift int         // samples between frame starts
	fftSize    int         // frameLen, or the next power of two
	window     []float64   // frameLen values
	banks      []melFilter // NumMelBins triangles over the FFT bins
	fft        *realFFT
	frame      []float64
	spectrum   []complex128
	power      []float64 // |spectrum|²
}

// melFilter is one triangular filter: weights for FFT bins first, first+1, ….
type melFilter struct {
	first   int
	weights []float64
}

// NewFbank prepares the filterbank for audio sampled at rate Hz.
func NewFbank(rate int, opts FbankOptions) (*Fbank, error) {
	if rate <= 0 {
		return nil, fmt.Errorf("fbank: sample rate %d must be positive", rate)
	}
	if opts.NumMelBins <= 3 {
		return nil, fmt.Errorf("fbank: num_mel_bins %d must be > 3", opts.NumMelBins)
	}
	// The products are written as torchaudio writes them so that the
	// truncation to whole samples agrees for every rate.
	sr := float64(rate)
	f := &Fbank{
		opts:       opts,
		frameLen:   int(sr * opts.FrameLengthMs * 0.001),
		frameShift: int(sr * opts.FrameShiftMs * 0.001),
	}
	if f.frameLen < 2 || f.frameShift < 1 {
		return nil, fmt.Errorf("fbank: frame length %g ms and shift %g ms give %d and %d samples at %d Hz (want ≥ 2 and ≥ 1)",
			opts.FrameLengthMs, opts.FrameShiftMs, f.frameLen, f.frameShift, rate)
	}
	f.fftSize = f.frameLen
	if opts.RoundToPowerOfTwo {
		f.fftSize = 1
		for f.fftSize < f.frameLen {
			f.fftSize *= 2
		}
	}
	var err error
	if f.fft, err = newRealFFT(f.fftSize); err != nil {
		return nil, fmt.Errorf("fbank: padded frame of %d samples: %w (set RoundToPowerOfTwo)", f.fftSize, err)
	}
	if f.window, err = kaldiWindow(opts.Window, f.frameLen); err != nil {
		return nil, err
	}
	if f.banks, err = melBanks(opts.NumMelBins, f.fftSize, sr, opts.LowFreq, opts.HighFreq); err != nil {
		return nil, err
	}
	f.frame = make([]float64, f.fftSize)
	f.spectrum = make([]complex128, f.fftSize/2+1)
	f.power = make([]float64, f.fftSize/2+1)
	return f, nil
}

// Compute returns the log-mel energies of wave, one row per frame and one
// column per mel bin. Frames start every shift samples and only whole frames
// are taken (snip_edges), so the wave must hold at least one frame.
func (f *Fbank) Compute(wave []float32) (*Matrix, error) {
	if len(wave) < f.frameLen {
		return nil, fmt.Errorf("fbank: %d samples are fewer than one %g ms frame (%d samples)", len(wave), f.opts.FrameLengthMs, f.frameLen)
	}
	frames := 1 + (len(wave)-f.frameLen)/f.frameShift
	out := &Matrix{Rows: frames, Cols: len(f.banks), Data: make([]float32, frames*len(f.banks))}
	for r := range frames {
		f.prepareFrame(wave[r*f.frameShift : r*f.frameShift+f.frameLen])
		f.fft.transform(f.frame, f.spectrum)
		for k, s := range f.spectrum {
			f.power[k] = real(s)*real(s) + imag(s)*imag(s)
		}
		row := out.Data[r*out.Cols : (r+1)*out.Cols]
		for b, bank := range f.banks {
			var e float64
			for i, w := range bank.weights {
				e += w * f.power[bank.first+i]
			}
			row[b] = float32(math.Log(max(e, float32Epsilon)))
		}
	}
	return out, nil
}

// prepareFrame fills f.frame with one frame after DC removal, pre-emphasis,
// windowing and zero padding.
func (f *Fbank) prepareFrame(samples []float32) {
	x := f.frame[:f.frameLen]
	var mean float64
	for i, s := range samples {
		x[i] = float64(s)
		mean += x[i]
	}
	if f.opts.RemoveDCOffset {
		mean /= float64(len(x))
		for i := range x {
			x[i] -= mean
		}
	}
	if k := f.opts.Preemphasis; k != 0 {
		for i := len(x) - 1; i > 0; i-- {
			x[i] -= k * x[i-1]
		}
		x[0] -= k * x[0]
	}
	for i := range x {
		x[i] *= f.window[i]
	}
	clear(f.frame[f.frameLen:])
}

func kaldiWindow(w Window, n int) ([]float64, error) {
	out := make([]float64, n)
	for i := range out {
		c := math.Cos(2 * math.Pi * float64(i) / float64(n-1))
		switch w {
		case Hanning:
			out[i] = 0.5 - 0.5*c
		case Povey:
			out[i] = math.Pow(0.5-0.5*c, 0.85)
		case Hamming:
			out[i] = 0.54 - 0.46*c
		default:
			return nil, fmt.Errorf("fbank: unknown window %q (want %s, %s or %s)", w, Hanning, Povey, Hamming)
		}
	}
	return out, nil
}

// melScale is Kaldi's mel scale.
func melScale(hz float64) float64 { return 1127 * math.Log(1+hz/700) }

// melBanks builds Kaldi's triangular filters: num+2 edges equally spaced on
// the mel scale from low to high; filter b rises from edge b to b+1 and falls
// to b+2, evaluated at the mel value of each FFT bin's frequency. The Nyquist
// bin gets no weight.
//
// torchaudio evaluates the edges and the bins' mel values in float32 (for
// float64 audio too), which moves weights near a filter's edges by up to
// about 1e-4; the weights here repeat its float32 operations one by one,
// with each rounding made explicit so that no fused multiply-add changes
// them.
func melBanks(num, fftSize int, rate, low, high float64) ([]melFilter, error) {
	nyquist := rate / 2
	if high <= 0 {
		high += nyquist
	}
	if low < 0 || low >= nyquist || high <= 0 || high > nyquist || low >= high {
		return nil, fmt.Errorf("fbank: mel range low %g Hz to high %g Hz must satisfy 0 ≤ low < high ≤ Nyquist (%g Hz)", low, high, nyquist)
	}
	binWidth := float32(rate / float64(fftSize))
	melLow := melScale(low)
	delta := float32((melScale(high) - melLow) / float64(num+1))
	edge := func(i int) float32 { return float32(melLow) + float32(float32(i)*delta) }
	banks := make([]melFilter, num)
	for b := range banks {
		left, center, right := edge(b), edge(b+1), edge(b+2)
		var weights []float64
		first := -1
		for k := range fftSize / 2 {
			hz := float32(binWidth * float32(k))
			mel := float32(1127 * float32(math.Log(float64(float32(1+float32(hz/700))))))
			w := max(0, min((mel-left)/(center-left), (right-mel)/(right-center)))
			if w > 0 {
				if first < 0 {
					first = k
				}
				weights = append(weights, float64(w))
			} else if first >= 0 {
				break
			}
		}
		if first < 0 { // a filter narrower than one bin: keep it, all zero
			first = 0
		}
		banks[b] = melFilter{first: first, weights: weights}
	}
	return banks, nil
}
