package imaging

import "math"

// Pillow resamples 8-bit images with fixed-point coefficients of this many
// fractional bits (32 bits minus 8 for the pixel and 2 for headroom).
const precisionBits = 32 - 8 - 2

// Resampler holds the coefficient and intermediate buffers of bilinear
// resizing so that resizing allocates nothing once they have grown. Its zero
// value is ready to use; it is not safe for concurrent use.
type Resampler struct {
	horiz, vert coefficients
	tmp         Image
}

// coefficients are one axis's resampling weights: output position i reads
// count[i] inputs from first[i] with weights w[i*size : i*size+count[i]].
type coefficients struct {
	first, count []int
	w            []int32
	size         int
	norm         []float64
}

// Resize resizes src to width×height into dst with PIL's BILINEAR filter, as
// torchvision's Resize((height, width)) does on PIL images: a triangle filter
// whose support grows with the scale when downscaling (antialiasing), run
// horizontally then vertically, rounding to uint8 after each pass. dst must
// not be src.
func (r *Resampler) Resize(dst, src *Image, width, height int) {
	needH := width != src.Width
	needV := height != src.Height
	if !needH && !needV {
		dst.Reset(src.Width, src.Height, src.Channels)
		copy(dst.Pix, src.Pix)
		return
	}
	r.vert.compute(src.Height, height)
	if !needH {
		dst.Reset(width, height, src.Channels)
		resampleVertical(dst, src, &r.vert, 0)
		return
	}
	r.horiz.compute(src.Width, width)
	// Only the rows the vertical pass reads are resampled horizontally.
	firstRow, lastRow := 0, src.Height
	if needV {
		firstRow = r.vert.first[0]
		lastRow = r.vert.first[height-1] + r.vert.count[height-1]
	}
	if !needV {
		dst.Reset(width, height, src.Channels)
		resampleHorizontal(dst, src, &r.horiz, 0)
		return
	}
	r.tmp.Reset(width, lastRow-firstRow, src.Channels)
	resampleHorizontal(&r.tmp, src, &r.horiz, firstRow)
	dst.Reset(width, height, src.Channels)
	resampleVertical(dst, &r.tmp, &r.vert, firstRow)
}

// compute fills c for resampling inSize inputs to outSize outputs, following
// Pillow's precompute_coeffs for the bilinear (triangle, support 1) filter and
// its conversion to fixed point for 8-bit images.
func (c *coefficients) compute(inSize, outSize int) {
	scale := float64(inSize) / float64(outSize)
	filterScale := max(scale, 1)
	support := filterScale // the triangle's support is 1
	c.size = int(math.Ceil(support))*2 + 1
	c.first = grow(c.first, outSize)
	c.count = grow(c.count, outSize)
	c.w = grow(c.w, outSize*c.size)
	c.norm = grow(c.norm, c.size)
	ss := 1 / filterScale
	for i := 0; i < outSize; i++ {
		// Explicit conversions keep each product rounded on its own, as in
		// the C code (no fused multiply-add).
		center := float64((float64(i) + 0.5) * scale)
		lo := int(center - support + 0.5)
		lo = max(lo, 0)
		hi := min(int(center+support+0.5), inSize)
		n := hi - lo
		sum := 0.0
		for x := 0; x < n; x++ {
			t := math.Abs(float64((float64(x+lo) - center + 0.5) * ss))
			w := 0.0
			if t < 1 {
				w = 1 - t
			}
			c.norm[x] = w
			sum += w
		}
		ws := c.w[i*c.size : (i+1)*c.size]
		for x := range ws {
			ws[x] = 0
		}
		for x := 0; x < n; x++ {
			w := c.norm[x]
			if sum != 0 {
				w /= sum
			}
			ws[x] = int32(0.5 + float64(w*(1<<precisionBits)))
		}
		c.first[i], c.count[i] = lo, n
	}
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// clip8 turns a fixed-point accumulator into a pixel value.
func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// resampleHorizontal resamples rows firstRow… of src into the rows of dst.
func resampleHorizontal(dst, src *Image, c *coefficients, firstRow int) {
	ch := src.Channels
	for y := 0; y < dst.Height; y++ {
		in := src.Pix[(y+firstRow)*src.Width*ch : (y+firstRow+1)*src.Width*ch]
		out := dst.Pix[y*dst.Width*ch : (y+1)*dst.Width*ch]
		for x := 0; x < dst.Width; x++ {
			first, n := c.first[x], c.count[x]
			ws := c.w[x*c.size : x*c.size+n]
			for k := 0; k < ch; k++ {
				acc := int32(1 << (precisionBits - 1))
				for j, w := range ws {
					acc += int32(in[(first+j)*ch+k]) * w
				}
				out[x*ch+k] = clip8(acc)
			}
		}
	}
}

// resampleVertical resamples src into dst along columns; src's row 0 is
// input row firstRow.
func resampleVertical(dst, src *Image, c *coefficients, firstRow int) {
	rowLen := src.Width * src.Channels
	for y := 0; y < dst.Height; y++ {
		first, n := c.first[y]-firstRow, c.count[y]
		ws := c.w[y*c.size : y*c.size+n]
		out := dst.Pix[y*rowLen : (y+1)*rowLen]
		for i := range out {
			acc := int32(1 << (precisionBits - 1))
			for j, w := range ws {
				acc += int32(src.Pix[(first+j)*rowLen+i]) * w
			}
			out[i] = clip8(acc)
		}
	}
}
