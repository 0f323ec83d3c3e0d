package imaging

import (
	"fmt"
	"math"
	"strconv"
)

// Box is a crop rectangle in pixels, as torchvision's crop parameters
// (top, left, height, width).
type Box struct {
	Top, Left, Height, Width int
}

// Crop copies the box of src into dst, as PIL's crop does for a box inside
// the image. dst must not be src.
func Crop(dst, src *Image, box Box) error {
	if box.Top < 0 || box.Left < 0 || box.Height <= 0 || box.Width <= 0 ||
		box.Top+box.Height > src.Height || box.Left+box.Width > src.Width {
		return fmt.Errorf("crop box %+v: want a non-empty box inside the %dx%d image", box, src.Width, src.Height)
	}
	ch := src.Channels
	dst.Reset(box.Width, box.Height, ch)
	for y := 0; y < box.Height; y++ {
		start := ((box.Top+y)*src.Width + box.Left) * ch
		copy(dst.Pix[y*box.Width*ch:], src.Pix[start:start+box.Width*ch])
	}
	return nil
}

// FlipHorizontal mirrors im left to right in place.
func FlipHorizontal(im *Image) {
	ch := im.Channels
	for y := 0; y < im.Height; y++ {
		row := im.Pix[y*im.Width*ch : (y+1)*im.Width*ch]
		for l, r := 0, im.Width-1; l < r; l, r = l+1, r-1 {
			for k := 0; k < ch; k++ {
				row[l*ch+k], row[r*ch+k] = row[r*ch+k], row[l*ch+k]
			}
		}
	}
}

// Rotate rotates src counter-clockwise by degrees about its centre into dst,
// keeping src's size, with nearest-neighbour sampling and black outside: what
// torchvision's rotate(img, angle) does on a PIL image, which is PIL's
// Image.rotate(angle, NEAREST, expand=False). It reproduces Pillow's
// arithmetic: the inverse affine matrix rounded to 15 decimals, then 16.16
// fixed-point stepping across each row. dst must not be src.
func Rotate(dst, src *Image, degrees float64) {
	dst.Reset(src.Width, src.Height, src.Channels)
	// Python's angle % 360.0 takes the sign of the divisor.
	angle := math.Mod(degrees, 360)
	if angle < 0 {
		angle += 360
	}
	if angle == 0 {
		copy(dst.Pix, src.Pix)
		return
	}
	if angle == 180 {
		rotate180(dst, src)
		return
	}
	w, h := src.Width, src.Height
	if angle == 90 && w == h || angle == 270 && w == h {
		rotateQuarter(dst, src, angle == 90)
		return
	}
	rad := -(angle * (math.Pi / 180))
	a := [6]float64{round15(math.Cos(rad)), round15(math.Sin(rad)), 0, round15(-math.Sin(rad)), round15(math.Cos(rad)), 0}
	cx, cy := float64(w)/2, float64(h)/2
	a[2] = float64(a[0]*-cx) + float64(a[1]*-cy) + cx
	a[5] = float64(a[3]*-cx) + float64(a[4]*-cy) + cy
	fix := func(v float64) int32 { return int32(math.Floor(float64(v*65536) + 0.5)) }
	a0, a1, a3, a4 := fix(a[0]), fix(a[1]), fix(a[3]), fix(a[4])
	a2 := fix(a[2] + float64(a[1]*0.5) + float64(a[0]*0.5))
	a5 := fix(a[5] + float64(a[4]*0.5) + float64(a[3]*0.5))
	ch := src.Channels
	for y := 0; y < h; y++ {
		xx, yy := a2, a5
		out := dst.Pix[y*w*ch : (y+1)*w*ch]
		for x := 0; x < w; x++ {
			xin, yin := int(xx>>16), int(yy>>16)
			if xin >= 0 && xin < w && yin >= 0 && yin < h {
				copy(out[x*ch:(x+1)*ch], src.Pix[(yin*w+xin)*ch:])
			} else {
				for k := 0; k < ch; k++ {
					out[x*ch+k] = 0
				}
			}
			xx += a0
			yy += a3
		}
		a2 += a1
		a5 += a4
	}
}

// round15 is Python's round(v, 15): the double nearest the decimal value of v
// correctly rounded to 15 places.
func round15(v float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 15, 64), 64)
	return r
}

func rotate180(dst, src *Image) {
	ch, n := src.Channels, src.Width*src.Height
	for i := 0; i < n; i++ {
		copy(dst.Pix[i*ch:(i+1)*ch], src.Pix[(n-1-i)*ch:])
	}
}

// rotateQuarter rotates a square image by 90° counter-clockwise (ccw) or
// clockwise, as PIL's transpose does.
func rotateQuarter(dst, src *Image, ccw bool) {
	ch, n := src.Channels, src.Width
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			sx, sy := n-1-y, x // counter-clockwise: dst(x, y) = src(n-1-y, x)
			if !ccw {
				sx, sy = y, n-1-x
			}
			copy(dst.Pix[(y*n+x)*ch:(y*n+x+1)*ch], src.Pix[(sy*n+sx)*ch:])
		}
	}
}
