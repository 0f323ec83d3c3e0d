package imaging

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Transform is a torchvision Compose of the steps the benchmark's loaders
// use, always applied in this order:
//
//	RandomRotation(Rotation) → RandomResizedCrop | Resize → RandomHorizontalFlip(FlipP) → ToTensor → Normalize
//
// Random steps are off when their field is zero.
type Transform struct {
	// Rotation is RandomRotation's range in degrees; 0 leaves it out.
	Rotation float64
	// Crop, when set, is RandomResizedCrop to Width×Height; otherwise the
	// image is resized.
	Crop *RandomResizedCrop
	// ShorterSide, when positive, resizes as torchvision's Resize(int): the
	// shorter edge becomes ShorterSide, the longer keeps the aspect ratio.
	// The result must then be Width×Height. Zero means Resize((Height, Width)).
	ShorterSide int
	// Width and Height are the output size.
	Width, Height int
	// FlipP is RandomHorizontalFlip's probability; 0 leaves it out.
	FlipP float64
	// Normalize, when set, follows ToTensor.
	Normalize *Normalize
}

// Random reports whether t draws random numbers.
func (t Transform) Random() bool {
	return t.Rotation != 0 || t.Crop != nil || t.FlipP != 0
}

// Worker holds one goroutine's scratch images and resampling buffers, so
// that decoding into it and transforming allocate nothing beyond what the
// JPEG decoder needs. Its zero value is ready; it is not safe for concurrent
// use (a loader called from many goroutines keeps Workers in a sync.Pool).
type Worker struct {
	decoded, a, b Image
	resampler     Resampler
}

// DecodeJPEG decodes data into w's decode buffer (see the package function
// DecodeJPEG); the image stays valid until w decodes again.
func (w *Worker) DecodeJPEG(data []byte, channels int) (*Image, error) {
	if err := DecodeJPEG(&w.decoded, data, channels); err != nil {
		return nil, err
	}
	return &w.decoded, nil
}

// other returns one of w's two work images that is not cur.
func (w *Worker) other(cur *Image) *Image {
	if cur == &w.a {
		return &w.b
	}
	return &w.a
}

// Apply runs t on src, drawing its random parameters from rng in the order of
// the steps, and writes the tensor into dst with the given plane stride (see
// ToTensor). rng may be nil when t has no random step. src is left unchanged.
func (w *Worker) Apply(t Transform, src *Image, rng *rand.Rand, dst []float32, planeStride int) error {
	if err := src.check(); err != nil {
		return fmt.Errorf("transform: %w", err)
	}
	if t.Width <= 0 || t.Height <= 0 {
		return fmt.Errorf("transform: output size %dx%d: want positive width and height", t.Width, t.Height)
	}
	if t.Random() && rng == nil {
		return fmt.Errorf("transform: random steps need a random stream, got nil")
	}
	cur := src
	if t.Rotation != 0 {
		next := w.other(cur)
		Rotate(next, cur, RotationAngle(rng, t.Rotation))
		cur = next
	}
	switch {
	case t.Crop != nil:
		box := t.Crop.Box(rng, cur.Width, cur.Height)
		cropped := w.other(cur)
		if err := Crop(cropped, cur, box); err != nil {
			return fmt.Errorf("transform: %w", err)
		}
		cur = cropped
		next := w.other(cur)
		w.resampler.Resize(next, cur, t.Width, t.Height)
		cur = next
	case t.ShorterSide > 0:
		width, height := ShorterSideSize(cur.Width, cur.Height, t.ShorterSide)
		if width != t.Width || height != t.Height {
			return fmt.Errorf("transform: Resize(%d) turns a %dx%d image into %dx%d: want %dx%d", t.ShorterSide, cur.Width, cur.Height, width, height, t.Width, t.Height)
		}
		next := w.other(cur)
		w.resampler.Resize(next, cur, width, height)
		cur = next
	default:
		next := w.other(cur)
		w.resampler.Resize(next, cur, t.Width, t.Height)
		cur = next
	}
	if t.FlipP != 0 && Flip(rng, t.FlipP) {
		FlipHorizontal(cur) // cur is a work image here, never src
	}
	if err := ToTensor(dst, planeStride, cur, t.Normalize); err != nil {
		return fmt.Errorf("transform: %w", err)
	}
	return nil
}

// ShorterSideSize is the size torchvision's Resize(size) with one int gives a
// width×height image: the shorter edge becomes size and the longer edge
// int(size·long/short), truncated.
func ShorterSideSize(width, height, size int) (int, int) {
	if width <= height {
		return size, int(math.Floor(float64(size) * float64(height) / float64(width)))
	}
	return int(math.Floor(float64(size) * float64(width) / float64(height))), size
}
