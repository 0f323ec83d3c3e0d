package audio

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixtures holds WAV files and torchaudio 0.13's outputs for them, made by
// tools/fixtures/audio/make.py.
const fixtures = "../tools/fixtures/audio"

// referenceCase is one entry of cases.json.
type referenceCase struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	WAV    string `json:"wav"`
	Shape  []int  `json:"shape"`
	Window Window `json:"window"`
	Frames int    `json:"frames"`
	To     int    `json:"to"`
	Filter string `json:"filter"`
	NFFT   int    `json:"n_fft"`
	Hop    int    `json:"hop"`
	Start  int    `json:"start"`

	Float32Deviation float64 `json:"float32_deviation"` // torchaudio in float32 vs float64
}

// referenceTolerance is the largest absolute difference accepted per kind of
// output against torchaudio run in float64 (see make.py). Measured maxima:
// load 0, resample 6e-8, fbank 1.9e-5, ks 1.4e-6, stft and vggsound 0. The
// fbank difference comes from torchaudio's float32 mel weights: bmc repeats
// their float32 arithmetic, but torch's vectorised float32 log is one ulp off
// the correctly rounded value for 1 to 3 FFT bins per rate, which moves a few
// weights by up to 1.2e-5.
var referenceTolerance = map[string]float64{
	"load":     0,
	"resample": 1e-6,
	"fbank":    1e-4,
	"ks":       1e-5,
	"stft":     1e-5,
	"vggsound": 1e-5,
}

// soxInt32Tolerance applies to decoding 32-bit integer PCM (fixtures named
// i32_*): torchaudio's sox backend rounds those samples to 25 bits,
// ((d+64)>>7)/2^24, where bmc divides exactly by 2^31.
const soxInt32Tolerance = 0x1p-24

func TestMatchesTorchaudio(t *testing.T) {
	var manifest struct {
		Cases []referenceCase `json:"cases"`
	}
	raw, err := os.ReadFile(filepath.Join(fixtures, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, c := range manifest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			kinds[c.Kind]++
			want := readF32(t, filepath.Join(fixtures, c.Name+".f32"), c.Shape)
			clip, err := ReadWAV(filepath.Join(fixtures, c.WAV))
			if err != nil {
				t.Fatal(err)
			}
			got := computeCase(t, c, clip)
			if len(got) != len(want) {
				t.Fatalf("%d values, torchaudio has %d (shape %v)", len(got), len(want), c.Shape)
			}
			var worst float64
			at := 0
			for i := range got {
				if d := math.Abs(float64(got[i]) - float64(want[i])); d > worst || math.IsNaN(d) {
					worst, at = d, i
				}
			}
			tol := referenceTolerance[c.Kind]
			if c.Kind == "load" && strings.HasPrefix(c.WAV, "i32_") {
				tol = soxInt32Tolerance
			}
			t.Logf("max |bmc − torchaudio float64| = %.3g; torchaudio float32 − float64: %.3g", worst, c.Float32Deviation)
			if !(worst <= tol) {
				t.Errorf("max |bmc − torchaudio| = %g at %d (%g vs %g), tolerance %g", worst, at, got[at], want[at], tol)
			}
		})
	}
	for kind := range referenceTolerance {
		if kinds[kind] == 0 {
			t.Errorf("cases.json has no %q case", kind)
		}
	}
}

// computeCase returns bmc's output for a case, flattened in the reference's
// (row-major) order.
func computeCase(t *testing.T, c referenceCase, clip *Clip) []float32 {
	t.Helper()
	var (
		m   *Matrix
		err error
	)
	switch c.Kind {
	case "load":
		if len(clip.Channels) != c.Shape[0] {
			t.Fatalf("%d channels, torchaudio has %d", len(clip.Channels), c.Shape[0])
		}
		var flat []float32
		for _, ch := range clip.Channels {
			flat = append(flat, ch...)
		}
		return flat
	case "resample":
		filter := HannSinc()
		if c.Filter == "kaiser_best" {
			filter = KaiserBest()
		}
		y, err := Resample(clip.Mono(), clip.Rate, c.To, filter)
		if err != nil {
			t.Fatal(err)
		}
		return y
	case "fbank":
		opts := KineticsSoundsFbank()
		opts.Window = c.Window
		var fb *Fbank
		if fb, err = NewFbank(clip.Rate, opts); err != nil {
			t.Fatal(err)
		}
		m, err = fb.Compute(clip.Mono())
	case "ks":
		p := KineticsSounds()
		p.Frames = c.Frames
		m, err = p.Run(clip.Mono(), clip.Rate)
	case "stft":
		m, err = LogSTFT(clip.Mono(), c.NFFT, c.Hop)
	case "vggsound":
		m, err = VGGSoundSpectrogram(clip.Mono(), clip.Rate, c.Start)
	default:
		t.Fatalf("unknown kind %q", c.Kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != c.Shape[0] || m.Cols != c.Shape[1] {
		t.Fatalf("shape %d×%d, torchaudio has %v", m.Rows, m.Cols, c.Shape)
	}
	return m.Data
}

func readF32(t *testing.T, path string, shape []int) []float32 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	if len(raw) != 4*n {
		t.Fatalf("%s: %d bytes, shape %v needs %d", path, len(raw), shape, 4*n)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}
