package imaging

import "fmt"

// Normalize is torchvision's Normalize(mean, std): each channel c becomes
// (x - Mean[c]) / Std[c], computed in float32 as torch does.
type Normalize struct {
	Mean, Std []float32
}

// ImageNet returns the ImageNet normalisation every benchmark loader uses:
// mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
func ImageNet() Normalize {
	return Normalize{Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}
}

// ToTensor writes src as float32 planes with values x/255, as torchvision's
// ToTensor does, then applies norm when it is not nil. Channel c's plane is
// dst[c*planeStride : c*planeStride+Width*Height], so a frame can land inside
// a (C, T, H, W) sample: pass dst = sample[t*H*W:] and planeStride = T*H*W.
func ToTensor(dst []float32, planeStride int, src *Image, norm *Normalize) error {
	ch, n := src.Channels, src.Width*src.Height
	if planeStride < n {
		return fmt.Errorf("to tensor: plane stride %d is smaller than the %dx%d image", planeStride, src.Width, src.Height)
	}
	if need := (ch-1)*planeStride + n; len(dst) < need {
		return fmt.Errorf("to tensor: destination holds %d values: want at least %d for a %dx%dx%d image", len(dst), need, src.Width, src.Height, ch)
	}
	if norm != nil && (len(norm.Mean) != ch || len(norm.Std) != ch) {
		return fmt.Errorf("to tensor: normalisation has %d means and %d stds: want %d each, one per channel", len(norm.Mean), len(norm.Std), ch)
	}
	for c := 0; c < ch; c++ {
		plane := dst[c*planeStride : c*planeStride+n]
		if norm == nil {
			for i := range plane {
				plane[i] = float32(src.Pix[i*ch+c]) / 255
			}
			continue
		}
		mean, std := norm.Mean[c], norm.Std[c]
		for i := range plane {
			plane[i] = (float32(src.Pix[i*ch+c])/255 - mean) / std
		}
	}
	return nil
}
