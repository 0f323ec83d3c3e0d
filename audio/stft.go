package audio

import (
	"fmt"
	"math"
	"math/cmplx"
)

// LogSTFT returns log(|S| + 1e-7) of the short-time Fourier transform S of x,
// one row per frequency bin (nFFT/2 + 1 rows) and one column per frame, as
// librosa.stft (before 0.10) and torch.stft compute S with a periodic Hann
// window of nFFT samples, centred frames (x padded by nFFT/2 samples on each
// side by reflection, x[−i] = x[i]) and frames every hop samples. x must be
// longer than nFFT/2 for the reflection to exist.
func LogSTFT(x []float32, nFFT, hop int) (*Matrix, error) {
	if hop < 1 {
		return nil, fmt.Errorf("stft: hop %d must be positive", hop)
	}
	fft, err := newRealFFT(nFFT)
	if err != nil {
		return nil, fmt.Errorf("stft: %w", err)
	}
	pad := nFFT / 2
	if len(x) <= pad {
		return nil, fmt.Errorf("stft: %d samples are too few to reflect-pad by %d (need more than n_fft/2)", len(x), pad)
	}
	padded := make([]float64, len(x)+2*pad)
	for i := range padded {
		j := i - pad
		switch {
		case j < 0:
			j = -j
		case j >= len(x):
			j = 2*(len(x)-1) - j
		}
		padded[i] = float64(x[j])
	}
	window := make([]float64, nFFT)
	for i := range window {
		window[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(nFFT))
	}
	frames := 1 + len(x)/hop
	bins := nFFT/2 + 1
	out := &Matrix{Rows: bins, Cols: frames, Data: make([]float32, bins*frames)}
	frame := make([]float64, nFFT)
	spectrum := make([]complex128, bins)
	for c := range frames {
		for i := range frame {
			frame[i] = padded[c*hop+i] * window[i]
		}
		fft.transform(frame, spectrum)
		for r, s := range spectrum {
			out.Data[r*frames+c] = float32(math.Log(cmplx.Abs(s) + 1e-7))
		}
	}
	return out, nil
}
