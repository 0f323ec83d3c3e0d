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

// ycbcrToRGB converts a decoded YCbCr image to interleaved RGB the way
// libjpeg-turbo (PIL's decoder) does: "fancy" triangle-filter upsampling of
// 4:2:0 and 4:2:2 chroma, then its fixed-point YCbCr→RGB tables. Other chroma
// layouts are upsampled by replication.
func ycbcrToRGB(dst *Image, src *image.YCbCr) {
	w, h := dst.Width, dst.Height
	cb, cr := make([]uint8, w), make([]uint8, w)
	cw, ch := (w+1)/2, (h+1)/2 // subsampled chroma size, as libjpeg counts it
	for y := 0; y < h; y++ {
		switch {
		case src.SubsampleRatio == image.YCbCrSubsampleRatio420 && cw >= 2:
			// Output row y sits between chroma rows y/2 and its nearer
			// neighbour, weighted 3:1, edges replicated.
			near := y / 2
			far := near - 1
			if y%2 == 1 {
				far = near + 1
			}
			far = min(max(far, 0), ch-1)
			fancyRow2D(cb, src.Cb[near*src.CStride:], src.Cb[far*src.CStride:], cw)
			fancyRow2D(cr, src.Cr[near*src.CStride:], src.Cr[far*src.CStride:], cw)
		case src.SubsampleRatio == image.YCbCrSubsampleRatio422 && cw >= 2:
			fancyRow1D(cb, src.Cb[y*src.CStride:], cw)
			fancyRow1D(cr, src.Cr[y*src.CStride:], cw)
		default:
			for x := 0; x < w; x++ {
				ci := src.COffset(src.Rect.Min.X+x, src.Rect.Min.Y+y)
				cb[x], cr[x] = src.Cb[ci], src.Cr[ci]
			}
		}
		luma := src.Y[y*src.YStride:]
		out := dst.Pix[y*w*3:]
		for x := 0; x < w; x++ {
			out[3*x], out[3*x+1], out[3*x+2] = jpegYCbCrToRGB(luma[x], cb[x], cr[x])
		}
	}
}

// fancyRow1D upsamples one chroma row of width n ≥ 2 to 2n samples (cut to
// len(out)) with libjpeg's h2v1 rule: 3/4 of the nearer plus 1/4 of the
// further input, rounding alternately down and up.
func fancyRow1D(out, in []uint8, n int) {
	put := func(i int, v int) {
		if i < len(out) {
			out[i] = uint8(v)
		}
	}
	put(0, int(in[0]))
	put(1, (int(in[0])*3+int(in[1])+2)>>2)
	for i := 1; i < n-1; i++ {
		v := int(in[i]) * 3
		put(2*i, (v+int(in[i-1])+1)>>2)
		put(2*i+1, (v+int(in[i+1])+2)>>2)
	}
	put(2*n-2, (int(in[n-1])*3+int(in[n-2])+1)>>2)
	put(2*n-1, int(in[n-1]))
}

// fancyRow2D upsamples with libjpeg's h2v2 rule: each column first mixes the
// nearer row 3:1 with the further one, then columns mix 3:1 horizontally.
func fancyRow2D(out, near, far []uint8, n int) {
	put := func(i int, v int) {
		if i < len(out) {
			out[i] = uint8(v)
		}
	}
	col := func(i int) int { return int(near[i])*3 + int(far[i]) }
	this, next := col(0), col(1)
	put(0, (this*4+8)>>4)
	put(1, (this*3+next+7)>>4)
	last := this
	this = next
	for i := 1; i < n-1; i++ {
		next = col(i + 1)
		put(2*i, (this*3+last+8)>>4)
		put(2*i+1, (this*3+next+7)>>4)
		last, this = this, next
	}
	put(2*n-2, (this*3+last+8)>>4)
	put(2*n-1, (this*4+7)>>4)
}

// jpegYCbCrToRGB is libjpeg's ycc_rgb_convert: JFIF coefficients in 16.16
// fixed point, rounded as its lookup tables round.
func jpegYCbCrToRGB(y, cb, cr uint8) (uint8, uint8, uint8) {
	const half = 1 << 15
	b1, r1 := int32(cb)-128, int32(cr)-128
	yy := int32(y)
	r := yy + (91881*r1+half)>>16
	g := yy + (-22554*b1+half-46802*r1)>>16
	b := yy + (116130*b1+half)>>16
	return clamp255(r), clamp255(g), clamp255(b)
}

func clamp255(v int32) uint8 {
	return uint8(min(max(v, 0), 255))
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
