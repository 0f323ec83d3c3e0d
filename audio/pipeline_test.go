package audio

import (
	"strings"
	"testing"
)

func TestFbankPipelineShapesAndNormalisation(t *testing.T) {
	wave := tone(16000, 440, 16000) // 1 s: 98 frames
	tests := []struct {
		name      string
		frames    int
		normalize bool
		rows      int
	}{
		{"keep", 0, false, 98},
		{"crop", 50, false, 50},
		{"pad", 120, false, 120},
		{"pad normalised", 120, true, 120},
	}
	fb, err := NewFbank(16000, KineticsSoundsFbank())
	if err != nil {
		t.Fatal(err)
	}
	all, err := fb.Compute(wave)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		p := KineticsSounds()
		p.Frames, p.Normalize = tt.frames, tt.normalize
		m, err := p.Run(wave, 16000)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if m.Rows != tt.rows || m.Cols != 128 {
			t.Fatalf("%s: shape %d×%d, want %d×128", tt.name, m.Rows, m.Cols, tt.rows)
		}
		for r := range m.Rows {
			for c := range m.Cols {
				var want float64 // padding rows are zero before normalisation
				if r < all.Rows {
					want = float64(all.At(r, c)) // the tone has zero mean over whole periods, so centring is a no-op
				}
				if tt.normalize {
					want = (want + 4.503877) / (2 * 5.141276)
				}
				if d := float64(m.At(r, c)) - want; d > 1e-4 || d < -1e-4 {
					t.Fatalf("%s: (%d, %d) = %g, want %g", tt.name, r, c, m.At(r, c), want)
				}
			}
		}
	}
}

func TestPipelineErrors(t *testing.T) {
	ks := KineticsSounds()
	negative := ks
	negative.Frames = -1
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"short fbank", func() error { _, err := ks.Run(make([]float32, 399), 16000); return err }, "399 samples are fewer than one 25 ms frame (400 samples)"},
		{"negative frames", func() error { _, err := negative.Run(make([]float32, 400), 16000); return err }, "frames -1"},
		{"window", func() error {
			o := KineticsSoundsFbank()
			o.Window = "blackman"
			_, err := NewFbank(16000, o)
			return err
		}, `unknown window "blackman"`},
		{"mel range", func() error {
			o := KineticsSoundsFbank()
			o.LowFreq = 9000
			_, err := NewFbank(16000, o)
			return err
		}, "low 9000 Hz to high 8000 Hz"},
		{"vggsound rate", func() error { _, err := VGGSoundSpectrogram(make([]float32, 100), 22050, 0); return err }, "22050 Hz, want 16000 Hz"},
		{"vggsound empty", func() error { _, err := VGGSoundSpectrogram(nil, 16000, 0); return err }, "empty audio"},
		{"vggsound start", func() error { _, err := VGGSoundSpectrogram(make([]float32, 1000), 16000, 176001); return err }, "outside [0, 176000] for a clip of 1000 samples tiled to 256000"},
		{"stft short", func() error { _, err := LogSTFT(make([]float32, 128), 256, 128); return err }, "128 samples are too few"},
	}
	for _, tt := range tests {
		err := tt.run()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
}

func TestVGGSoundSpectrogramShapeAndStart(t *testing.T) {
	wave := tone(16000, 1000, 12000) // 0.75 s, tiled to 12 s
	m, err := VGGSoundSpectrogram(wave, 16000, VGGSoundMaxStart)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != 129 || m.Cols != 626 {
		t.Errorf("shape %d×%d, want 129×626", m.Rows, m.Cols)
	}
	seen := map[int]bool{}
	for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
		s := VGGSoundRandomStart(7, name)
		if s < 0 || s > VGGSoundMaxStart {
			t.Errorf("start %d outside [0, %d]", s, VGGSoundMaxStart)
		}
		if s != VGGSoundRandomStart(7, name) {
			t.Errorf("start of %q is not reproducible", name)
		}
		seen[s] = true
	}
	if len(seen) < 5 {
		t.Errorf("six clips drew only %d distinct starts", len(seen))
	}
	if VGGSoundRandomStart(7, "a") == VGGSoundRandomStart(8, "a") && VGGSoundRandomStart(7, "b") == VGGSoundRandomStart(8, "b") {
		t.Errorf("the seed does not change the starts")
	}
}
