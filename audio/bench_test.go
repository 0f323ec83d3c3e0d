package audio

import "testing"

// tenSeconds is a 10 s tone at rate Hz, the length of a Kinetics-Sounds or
// VGGSound clip.
func tenSeconds(rate int) []float32 { return tone(rate, 440, 10*rate) }

func BenchmarkKineticsSounds10s16k(b *testing.B) {
	wave := tenSeconds(16000)
	p := KineticsSounds()
	for b.Loop() {
		if _, err := p.Run(wave, 16000); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVGGSound10s16k(b *testing.B) {
	wave := tenSeconds(16000)
	for b.Loop() {
		if _, err := VGGSoundSpectrogram(wave, 16000, 40000); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResample10s44kTo16k(b *testing.B) {
	wave := tenSeconds(44100)
	for _, f := range []struct {
		name   string
		filter ResampleFilter
	}{{"hann", HannSinc()}, {"kaiser-best", KaiserBest()}} {
		b.Run(f.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Resample(wave, 44100, 16000, f.filter); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
