package datasets

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"

	"bmc/imaging"
)

// Image transforms of spec §3, as imaging.Transforms at a side of size.
type frameAug int

const (
	// augNone is evaluation: Resize((s, s)), ToTensor, Normalize.
	augNone frameAug = iota
	// augCropFlip is the audio-video training transform: RandomResizedCrop(s)
	// with torchvision's defaults, RandomHorizontalFlip, ToTensor, Normalize.
	augCropFlip
	// augResizeFlip is UCF-101's RGB training transform: Resize((s, s)),
	// RandomHorizontalFlip, ToTensor, Normalize.
	augResizeFlip
	// augRotateResizeFlip is FOOD-101's training transform: RandomRotation(30),
	// Resize((s, s)), RandomHorizontalFlip, ToTensor, Normalize.
	augRotateResizeFlip
)

func (a frameAug) transform(size int) imaging.Transform {
	norm := imaging.ImageNet()
	t := imaging.Transform{Width: size, Height: size, Normalize: &norm}
	switch a {
	case augCropFlip:
		crop := imaging.DefaultRandomResizedCrop()
		t.Crop, t.FlipP = &crop, 0.5
	case augResizeFlip:
		t.FlipP = 0.5
	case augRotateResizeFlip:
		t.Rotation, t.FlipP = 30, 0.5
	}
	return t
}

// frameDecoder turns JPEG frames into tensors of side size; it keeps the
// imaging scratch buffers of concurrent reads.
type frameDecoder struct {
	size    int
	workers sync.Pool
}

func newFrameDecoder(size int) *frameDecoder {
	return &frameDecoder{size: size, workers: sync.Pool{New: func() any { return new(imaging.Worker) }}}
}

// rgb decodes one JPEG as RGB, transforms it and writes it as frame t of
// a (3, frames, s, s) tensor. The transform is train in training (rng
// non-nil) and augNone in evaluation (rng nil).
func (f *frameDecoder) rgb(data []byte, file string, train frameAug, rng *rand.Rand, dst []float32, t, frames int) error {
	aug := train
	if rng == nil {
		aug = augNone
	}
	w := f.workers.Get().(*imaging.Worker)
	defer f.workers.Put(w)
	size := f.size
	img, err := w.DecodeJPEG(data, 3)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	plane := size * size
	if err := w.Apply(aug.transform(size), img, rng, dst[t*plane:], frames*plane); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// rgbFile is rgb on a file.
func (f *frameDecoder) rgbFile(path string, train frameAug, rng *rand.Rand, dst []float32, t, frames int) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return f.rgb(data, path, train, rng, dst, t, frames)
}

// flow decodes the u and v grayscale JPEGs of one optical-flow frame,
// resizes each to s×s, scales it to [0, 1] (ToTensor, no normalisation)
// and writes them as frame t of a (2, frames, s, s) tensor. In training
// (rng non-nil) one RandomHorizontalFlip draw mirrors u and v together.
func (f *frameDecoder) flow(u, v []byte, uFile, vFile string, rng *rand.Rand, dst []float32, t, frames int) error {
	w := f.workers.Get().(*imaging.Worker)
	defer f.workers.Put(w)
	size := f.size
	flip := rng != nil && imaging.Flip(rng, 0.5)
	plane := size * size
	resize := imaging.Transform{Width: size, Height: size}
	for c, in := range []struct {
		data []byte
		file string
	}{{u, uFile}, {v, vFile}} {
		img, err := w.DecodeJPEG(in.data, 1)
		if err != nil {
			return fmt.Errorf("%s: %w", in.file, err)
		}
		out := dst[(c*frames+t)*plane : (c*frames+t+1)*plane]
		if err := w.Apply(resize, img, nil, out, plane); err != nil {
			return fmt.Errorf("%s: %w", in.file, err)
		}
		if flip {
			for y := range size {
				slices.Reverse(out[y*size : (y+1)*size])
			}
		}
	}
	return nil
}
