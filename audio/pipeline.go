package audio

import (
	"fmt"

	"bmc/internal/randstream"
)

// FbankPipeline turns a mono waveform into the log-mel features of the
// Kinetics-Sounds loader: the waveform's mean is subtracted, the Kaldi
// filterbank computed at the waveform's own rate, the frames padded with
// zero rows or cut to Frames, and the result optionally normalised as
// (x − Mean)/(2·Std).
type FbankPipeline struct {
	Fbank     FbankOptions
	Frames    int  // pad or crop to this many frames; 0 keeps every frame
	Normalize bool // apply (x − Mean)/(2·Std) after padding
	Mean, Std float64
}

// KineticsSounds is the pipeline of spec §3 (GeWu-Lab's process_audio.py,
// after AST): 1024 frames of 128 bins normalised with mean −4.503877 and
// std 5.141276.
func KineticsSounds() FbankPipeline {
	return FbankPipeline{Fbank: KineticsSoundsFbank(), Frames: 1024, Normalize: true, Mean: -4.503877, Std: 5.141276}
}

// Run computes the features of wave sampled at rate Hz: Frames rows (or one
// per frame when Frames is 0) and Fbank.NumMelBins columns.
func (p FbankPipeline) Run(wave []float32, rate int) (*Matrix, error) {
	if p.Frames < 0 {
		return nil, fmt.Errorf("fbank pipeline: frames %d must be ≥ 0", p.Frames)
	}
	if p.Normalize && p.Std == 0 {
		return nil, fmt.Errorf("fbank pipeline: normalisation std must not be 0")
	}
	fb, err := NewFbank(rate, p.Fbank)
	if err != nil {
		return nil, err
	}
	var mean float64
	for _, s := range wave {
		mean += float64(s)
	}
	mean /= float64(max(len(wave), 1))
	centred := make([]float32, len(wave))
	for i, s := range wave {
		centred[i] = float32(float64(s) - mean)
	}
	m, err := fb.Compute(centred)
	if err != nil {
		return nil, err
	}
	if p.Frames > 0 && p.Frames != m.Rows {
		data := make([]float32, p.Frames*m.Cols)
		copy(data, m.Data) // crops, or leaves zero rows after the frames
		m = &Matrix{Rows: p.Frames, Cols: m.Cols, Data: data}
	}
	if p.Normalize {
		for i, v := range m.Data {
			m.Data[i] = float32((float64(v) - p.Mean) / (2 * p.Std))
		}
	}
	return m, nil
}

// The historical VGGSound pipeline (spec §3): 16 kHz audio, a 5 s window out
// of the clip tiled to at least 10 s, STFT with 256-point frames every 128
// samples.
const (
	VGGSoundRate   = 16000
	vggsoundWindow = 5 * VGGSoundRate
	vggsoundTiled  = 10 * VGGSoundRate
	vggsoundNFFT   = 256
	vggsoundHop    = 128
)

// VGGSoundMaxStart is the largest start VGGSoundRandomStart draws (5 s).
const VGGSoundMaxStart = 5 * VGGSoundRate

// VGGSoundRandomStart draws the window start, in samples, uniformly from
// [0, VGGSoundMaxStart] with both ends included (as Python's
// random.randint(0, rate·5)), from a stream keyed by seed and the clip's
// name so that the draw does not depend on the order clips are processed in.
func VGGSoundRandomStart(seed uint64, name string) int {
	return randstream.New(seed, "vggsound-start/"+name, 0).IntN(VGGSoundMaxStart + 1)
}

// VGGSoundSpectrogram runs the historical VGGSound pipeline on mono audio at
// VGGSoundRate: the clip is repeated until it lasts at least 10 s, the 5 s
// from sample start on are clipped to [−1, 1], and LogSTFT with n_fft 256 and
// hop 128 gives a 129 × 626 matrix.
func VGGSoundSpectrogram(wave []float32, rate, start int) (*Matrix, error) {
	if rate != VGGSoundRate {
		return nil, fmt.Errorf("vggsound pipeline: audio at %d Hz, want %d Hz (resample first)", rate, VGGSoundRate)
	}
	if len(wave) == 0 {
		return nil, fmt.Errorf("vggsound pipeline: empty audio")
	}
	tiled := len(wave)
	for tiled < vggsoundTiled {
		tiled *= 2 // np.tile(sample, 2) until the clip lasts 10 s
	}
	if start < 0 || start+vggsoundWindow > tiled {
		return nil, fmt.Errorf("vggsound pipeline: window start %d samples is outside [0, %d] for a clip of %d samples tiled to %d",
			start, tiled-vggsoundWindow, len(wave), tiled)
	}
	window := make([]float32, vggsoundWindow)
	for i := range window {
		window[i] = min(max(wave[(start+i)%len(wave)], -1), 1)
	}
	return LogSTFT(window, vggsoundNFFT, vggsoundHop)
}
