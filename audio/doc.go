// Package audio turns raw WAV audio into the spectrogram features the
// benchmark's audio loaders read: a WAV decoder, a band-limited resampler,
// Kaldi-compatible log-mel filterbanks (as torchaudio.compliance.kaldi.fbank
// computes them) and the log-magnitude STFT of the historical VGGSound
// pipeline. Every computation runs in float64 and returns float32.
package audio
