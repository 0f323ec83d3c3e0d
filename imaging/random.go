package imaging

import (
	"math"
	"math/rand/v2"
)

// RandomResizedCrop is torchvision's RandomResizedCrop parameter rule: a box
// whose area is a Scale fraction of the image and whose aspect ratio
// (width/height) is log-uniform in Ratio.
type RandomResizedCrop struct {
	Scale, Ratio [2]float64
}

// DefaultRandomResizedCrop is torchvision's default: scale (0.08, 1), ratio
// (3/4, 4/3).
func DefaultRandomResizedCrop() RandomResizedCrop {
	return RandomResizedCrop{Scale: [2]float64{0.08, 1}, Ratio: [2]float64{3.0 / 4, 4.0 / 3}}
}

// Box draws a crop box for a width×height image with torchvision's
// algorithm: up to 10 attempts at a random area and aspect ratio, taking the
// first that fits at a uniformly random position; otherwise the centred box
// of the whole image clamped to the ratio range.
func (p RandomResizedCrop) Box(rng *rand.Rand, width, height int) Box {
	area := float64(width * height)
	logLo, logHi := math.Log(p.Ratio[0]), math.Log(p.Ratio[1])
	for range 10 {
		target := area * uniform(rng, p.Scale[0], p.Scale[1])
		aspect := math.Exp(uniform(rng, logLo, logHi))
		w := int(math.RoundToEven(math.Sqrt(target * aspect)))
		h := int(math.RoundToEven(math.Sqrt(target / aspect)))
		if 0 < w && w <= width && 0 < h && h <= height {
			top := rng.IntN(height - h + 1)
			left := rng.IntN(width - w + 1)
			return Box{Top: top, Left: left, Height: h, Width: w}
		}
	}
	inRatio := float64(width) / float64(height)
	w, h := width, height
	switch {
	case inRatio < min(p.Ratio[0], p.Ratio[1]):
		h = int(math.RoundToEven(float64(w) / min(p.Ratio[0], p.Ratio[1])))
	case inRatio > max(p.Ratio[0], p.Ratio[1]):
		w = int(math.RoundToEven(float64(h) * max(p.Ratio[0], p.Ratio[1])))
	}
	return Box{Top: (height - h) / 2, Left: (width - w) / 2, Height: h, Width: w}
}

// RotationAngle draws torchvision's RandomRotation(degrees) angle, uniform
// in [-degrees, degrees].
func RotationAngle(rng *rand.Rand, degrees float64) float64 {
	return uniform(rng, -degrees, degrees)
}

// Flip draws torchvision's RandomHorizontalFlip(p) decision: true with
// probability p.
func Flip(rng *rand.Rand, p float64) bool {
	return rng.Float64() < p
}

func uniform(rng *rand.Rand, lo, hi float64) float64 {
	return lo + (hi-lo)*rng.Float64()
}
