package imaging

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func noiseImage(w, h, c int, seed uint64) *Image {
	rng := rand.New(rand.NewPCG(seed, 1))
	im := &Image{}
	im.Reset(w, h, c)
	for i := range im.Pix {
		im.Pix[i] = uint8(rng.IntN(256))
	}
	return im
}

func TestRandomResizedCropBoxes(t *testing.T) {
	p := DefaultRandomResizedCrop()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range [][2]int{{300, 200}, {64, 48}, {224, 224}, {31, 45}} {
		w, h := size[0], size[1]
		n, fracSum := 2000, 0.0
		for range n {
			b := p.Box(rng, w, h)
			if b.Top < 0 || b.Left < 0 || b.Width <= 0 || b.Height <= 0 || b.Top+b.Height > h || b.Left+b.Width > w {
				t.Fatalf("%dx%d: box %+v leaves the image", w, h, b)
			}
			frac := float64(b.Width*b.Height) / float64(w*h)
			fracSum += frac
		}
		// Accepted areas are uniform on [0.08, 1] cut by the fit condition,
		// so their mean lies well inside (0.08, 1).
		if mean := fracSum / float64(n); mean < 0.3 || mean > 0.6 {
			t.Errorf("%dx%d: mean area fraction %.3f, want within [0.3, 0.6]", w, h, mean)
		}
	}
}

func TestRandomResizedCropFallback(t *testing.T) {
	// A scale range no box can satisfy forces torchvision's fallback: the
	// centred box of the whole image, clamped to the ratio range.
	p := RandomResizedCrop{Scale: [2]float64{2, 3}, Ratio: [2]float64{3.0 / 4, 4.0 / 3}}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		w, h int
		want Box
	}{
		{300, 100, Box{Top: 0, Left: 83, Height: 100, Width: 133}}, // wider than 4/3: width = round(100·4/3)
		{100, 300, Box{Top: 83, Left: 0, Height: 133, Width: 100}}, // taller than 3/4: height = round(100/(3/4))
		{120, 100, Box{Top: 0, Left: 0, Height: 100, Width: 120}},  // inside the range: whole image
	} {
		if got := p.Box(rng, c.w, c.h); got != c.want {
			t.Errorf("%dx%d: fallback box %+v, want %+v", c.w, c.h, got, c.want)
		}
	}
}

func TestRotationAngleAndFlipDraws(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	n, flips, sum := 10000, 0, 0.0
	lo, hi := math.Inf(1), math.Inf(-1)
	for range n {
		a := RotationAngle(rng, 30)
		lo, hi, sum = min(lo, a), max(hi, a), sum+a
		if Flip(rng, 0.5) {
			flips++
		}
	}
	if lo < -30 || hi > 30 || lo > -29 || hi < 29 {
		t.Errorf("angles span [%.2f, %.2f], want about [-30, 30]", lo, hi)
	}
	if mean := sum / float64(n); math.Abs(mean) > 0.6 { // 3.5 standard errors
		t.Errorf("mean angle %.3f, want about 0", mean)
	}
	if f := float64(flips) / float64(n); math.Abs(f-0.5) > 0.02 {
		t.Errorf("flip rate %.3f, want about 0.5", f)
	}
}

// The composed Transform equals its steps applied by hand with the same
// draws, and leaves its source untouched.
func TestTransformComposesSteps(t *testing.T) {
	src := noiseImage(80, 60, 3, 7)
	orig := append([]uint8(nil), src.Pix...)
	norm := ImageNet()
	crop := DefaultRandomResizedCrop()
	tr := Transform{Rotation: 30, Crop: &crop, Width: 32, Height: 24, FlipP: 0.5, Normalize: &norm}
	for seed := uint64(0); seed < 20; seed++ {
		var w Worker
		got := make([]float32, 3*32*24)
		if err := w.Apply(tr, src, rand.New(rand.NewPCG(seed, 0)), got, 32*24); err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(seed, 0))
		var rotated, cropped, resized Image
		var r Resampler
		Rotate(&rotated, src, RotationAngle(rng, 30))
		if err := Crop(&cropped, &rotated, crop.Box(rng, 80, 60)); err != nil {
			t.Fatal(err)
		}
		r.Resize(&resized, &cropped, 32, 24)
		if Flip(rng, 0.5) {
			FlipHorizontal(&resized)
		}
		want := make([]float32, len(got))
		if err := ToTensor(want, 32*24, &resized, &norm); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("seed %d: value %d = %v, want %v", seed, i, got[i], want[i])
			}
		}
	}
	for i := range orig {
		if src.Pix[i] != orig[i] {
			t.Fatal("Apply changed its source image")
		}
	}
}

// A (C, T, H, W) sample gets frame t's channels at planes c·T + t.
func TestToTensorFrameLayout(t *testing.T) {
	const frames, w, h = 3, 4, 2
	sample := make([]float32, 3*frames*w*h)
	for f := 0; f < frames; f++ {
		im := &Image{}
		im.Reset(w, h, 3)
		for i := range im.Pix {
			im.Pix[i] = uint8(10*f + i%3) // channel c of frame f holds 10f+c
		}
		if err := ToTensor(sample[f*w*h:], frames*w*h, im, nil); err != nil {
			t.Fatal(err)
		}
	}
	for c := 0; c < 3; c++ {
		for f := 0; f < frames; f++ {
			for i := 0; i < w*h; i++ {
				got := sample[(c*frames+f)*w*h+i] * 255
				if want := float32(10*f + c); math.Abs(float64(got-want)) > 1e-4 {
					t.Fatalf("channel %d frame %d pixel %d = %v/255, want %v/255", c, f, i, got, want)
				}
			}
		}
	}
}

func TestWorkerApplyAllocatesNothing(t *testing.T) {
	src := noiseImage(320, 240, 3, 9)
	norm := ImageNet()
	crop := DefaultRandomResizedCrop()
	tr := Transform{Rotation: 30, Crop: &crop, Width: 224, Height: 224, FlipP: 0.5, Normalize: &norm}
	dst := make([]float32, 3*224*224)
	rng := rand.New(rand.NewPCG(1, 1))
	var w Worker
	// Grow the buffers to their largest size first (a full-image crop).
	full := tr
	full.Crop = nil
	if err := w.Apply(full, src, rng, dst, 224*224); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if err := w.Apply(tr, src, rng, dst, 224*224); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Apply allocates %.1f times per call once warm, want 0", allocs)
	}
}

func TestShorterSideSize(t *testing.T) {
	for _, c := range []struct{ w, h, size, ww, wh int }{
		{340, 256, 224, 297, 224}, // int(224·340/256) = int(297.5)
		{256, 340, 224, 224, 297},
		{224, 224, 224, 224, 224},
		{100, 50, 25, 50, 25},
	} {
		if w, h := ShorterSideSize(c.w, c.h, c.size); w != c.ww || h != c.wh {
			t.Errorf("ShorterSideSize(%d, %d, %d) = %dx%d, want %dx%d", c.w, c.h, c.size, w, h, c.ww, c.wh)
		}
	}
}

func TestErrors(t *testing.T) {
	src := noiseImage(10, 8, 3, 1)
	var w Worker
	cases := []struct {
		name, want string
		err        func() error
	}{
		{"crop outside", "inside the 10x8 image", func() error { return Crop(&Image{}, src, Box{Top: 5, Left: 0, Height: 4, Width: 3}) }},
		{"decode channels", "want 1 or 3", func() error { return DecodeJPEG(&Image{}, nil, 4) }},
		{"decode garbage", "decode JPEG", func() error { return DecodeJPEG(&Image{}, []byte("not a jpeg"), 3) }},
		{"tensor too small", "want at least 240", func() error { return ToTensor(make([]float32, 100), 80, src, nil) }},
		{"tensor stride", "plane stride 10", func() error { return ToTensor(make([]float32, 1000), 10, src, nil) }},
		{"norm channels", "want 3 each", func() error {
			return ToTensor(make([]float32, 240), 80, src, &Normalize{Mean: []float32{0}, Std: []float32{1}})
		}},
		{"no rng", "random stream", func() error {
			return w.Apply(Transform{Width: 4, Height: 4, FlipP: 0.5}, src, nil, make([]float32, 48), 16)
		}},
		{"shorter side", "want 4x4", func() error {
			return w.Apply(Transform{ShorterSide: 4, Width: 4, Height: 4}, src, nil, make([]float32, 48), 16)
		}},
		{"bad image", "holds 3 bytes", func() error {
			return w.Apply(Transform{Width: 4, Height: 4}, &Image{Width: 2, Height: 2, Channels: 3, Pix: make([]uint8, 3)}, nil, make([]float32, 48), 16)
		}},
	}
	for _, c := range cases {
		err := c.err()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func BenchmarkTrainTransform(b *testing.B) {
	src := noiseImage(320, 240, 3, 9)
	norm := ImageNet()
	crop := DefaultRandomResizedCrop()
	tr := Transform{Crop: &crop, Width: 224, Height: 224, FlipP: 0.5, Normalize: &norm}
	dst := make([]float32, 3*224*224)
	rng := rand.New(rand.NewPCG(1, 1))
	var w Worker
	for b.Loop() {
		if err := w.Apply(tr, src, rng, dst, 224*224); err != nil {
			b.Fatal(err)
		}
	}
}
