// Package imaging decodes JPEG frames and applies the torchvision image
// transforms the benchmark's loaders use (Resize, RandomResizedCrop,
// RandomHorizontalFlip, RandomRotation, ToTensor, Normalize), computing what
// torchvision 0.14 computes on PIL images.
//
// Images stay 8-bit, as PIL keeps them, until ToTensor: PIL rounds to uint8
// after every resampling pass, and matching its outputs means doing the same.
// The geometric operations are deterministic given their parameters and match
// Pillow's algorithms bit for bit; the random parameter draws take an explicit
// *rand.Rand, never global state, so a loader can seed each sample's stream.
package imaging

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
)

// Image is an 8-bit image with 1 (gray) or 3 (RGB) channels, stored
// row-major with channels interleaved: Pix[(y*Width+x)*Channels+c].
type Image struct {
	Width, Height, Channels int
	Pix                     []uint8
}

// Reset gives im the given geometry, reusing Pix's capacity. The pixel
// values are unspecified afterwards.
func (im *Image) Reset(width, height, channels int) {
	n := width * height * channels
	if cap(im.Pix) < n {
		im.Pix = make([]uint8, n)
	}
	im.Width, im.Height, im.Channels, im.Pix = width, height, channels, im.Pix[:n]
}

// check reports whether im's geometry is consistent.
func (im *Image) check() error {
	if im.Width <= 0 || im.Height <= 0 {
		return fmt.Errorf("image is %dx%d: want positive width and height", im.Width, im.Height)
	}
	if im.Channels != 1 && im.Channels != 3 {
		return fmt.Errorf("image has %d channels: want 1 or 3", im.Channels)
	}
	if len(im.Pix) != im.Width*im.Height*im.Channels {
		return fmt.Errorf("image %dx%dx%d holds %d bytes: want %d", im.Width, im.Height, im.Channels, len(im.Pix), im.Width*im.Height*im.Channels)
	}
	return nil
}

// DecodeJPEG decodes a baseline or progressive JPEG into dst with the given
// number of channels: 3 converts to RGB (PIL's convert("RGB"); a gray JPEG is
// replicated), 1 converts to gray (PIL's convert("L"), ITU-R 601-2 luma).
func DecodeJPEG(dst *Image, data []byte, channels int) error {
	if channels != 1 && channels != 3 {
		return fmt.Errorf("decode JPEG: %d channels requested: want 1 or 3", channels)
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("decode JPEG: %w", err)
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dst.Reset(w, h, channels)
	switch src := img.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := src.Pix[y*src.Stride : y*src.Stride+w]
			if channels == 1 {
				copy(dst.Pix[y*w:], row)
				continue
			}
			out := dst.Pix[y*w*3:]
			for x, v := range row {
				out[3*x], out[3*x+1], out[3*x+2] = v, v, v
			}
		}
	case *image.YCbCr:
		ycbcrToRGB(dst, src)
		if channels == 1 {
			rgbToGray(dst)
		}
	default:
		// CMYK and other rare encodings: the generic colour model.
		rgb := Image{}
		rgb.Reset(w, h, 3)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := color.RGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.RGBA)
				i := (y*w + x) * 3
				rgb.Pix[i], rgb.Pix[i+1], rgb.Pix[i+2] = c.R, c.G, c.B
			}
		}
		if channels == 1 {
			rgbToGray(&rgb)
		}
		dst.Pix = rgb.Pix
	}
	return nil
}

// ycbcrToRGB converts a decoded YCbCr image to interleaved RGB, upsampling
// subsampled chroma by replication.
func ycbcrToRGB(dst *Image, src *image.YCbCr) {
	b := src.Rect
	for y := 0; y < dst.Height; y++ {
		out := dst.Pix[y*dst.Width*3:]
		for x := 0; x < dst.Width; x++ {
			yi := src.YOffset(b.Min.X+x, b.Min.Y+y)
			ci := src.COffset(b.Min.X+x, b.Min.Y+y)
			r, g, bl := color.YCbCrToRGB(src.Y[yi], src.Cb[ci], src.Cr[ci])
			out[3*x], out[3*x+1], out[3*x+2] = r, g, bl
		}
	}
}

// rgbToGray converts im in place from RGB to gray with PIL's fixed-point
// ITU-R 601-2 luma: L = (19595 R + 38470 G + 7471 B + 2^15) >> 16.
func rgbToGray(im *Image) {
	n := im.Width * im.Height
	for i := 0; i < n; i++ {
		r, g, b := uint32(im.Pix[3*i]), uint32(im.Pix[3*i+1]), uint32(im.Pix[3*i+2])
		im.Pix[i] = uint8((r*19595 + g*38470 + b*7471 + 0x8000) >> 16)
	}
	im.Channels, im.Pix = 1, im.Pix[:n]
}
