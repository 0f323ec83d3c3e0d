// Package ndarray is the n-dimensional array value shared by the readers of
// NumPy-family files in formats/ (npy, pickle, torchpt): a dtype, a shape and
// the raw element bytes in C (row-major) order, with conversions to the Go
// slices the rest of bmc consumes.
package ndarray

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the NumPy kind character of a dtype.
type Kind byte

// The kinds this package understands.
const (
	Bool    Kind = 'b' // one byte per element, 0 or 1
	Int     Kind = 'i' // signed integer of 1, 2, 4 or 8 bytes
	Uint    Kind = 'u' // unsigned integer of 1, 2, 4 or 8 bytes
	Float   Kind = 'f' // IEEE 754 binary16, binary32 or binary64
	Bytes   Kind = 'S' // fixed-length byte string, NUL-padded
	Unicode Kind = 'U' // fixed-length UTF-32 string, NUL-padded; Size counts bytes
	Object  Kind = 'O' // Python objects, only in pickles; elements live in Array.Objects
)

// DType is an element type: kind, item size in bytes and byte order.
type DType struct {
	Kind      Kind
	Size      int  // bytes per element (for Unicode: 4 per character)
	BigEndian bool // byte order of multi-byte elements
}

// String spells d as a NumPy type descriptor, e.g. "<f4", "|u1", "<U5".
func (d DType) String() string {
	if d.Kind == Object {
		return "|O"
	}
	order := "<"
	switch {
	case d.Size == 1 && d.Kind != Unicode, d.Kind == Bytes:
		order = "|"
	case d.BigEndian:
		order = ">"
	}
	size := d.Size
	if d.Kind == Unicode {
		size /= 4
	}
	return order + string(d.Kind) + strconv.Itoa(size)
}

// ParseDescr parses a NumPy type descriptor such as "<f4", ">i8", "|b1",
// "u1", "<U12", "|S7" or "|O". A missing or "=" byte order means little
// endian (the order of every machine bmc runs on).
func ParseDescr(s string) (DType, error) {
	rest := s
	big := false
	if rest != "" {
		switch rest[0] {
		case '<', '=', '|':
			rest = rest[1:]
		case '>':
			big, rest = true, rest[1:]
		}
	}
	if rest == "" {
		return DType{}, fmt.Errorf("type descriptor %q: missing kind", s)
	}
	kind := Kind(rest[0])
	if kind == Object {
		if rest != "O" && rest != "O8" {
			return DType{}, fmt.Errorf("type descriptor %q: want O or O8", s)
		}
		return DType{Kind: Object, Size: 8}, nil
	}
	size, err := strconv.Atoi(rest[1:])
	if err != nil || size < 0 {
		return DType{}, fmt.Errorf("type descriptor %q: item size %q is not a non-negative integer", s, rest[1:])
	}
	return NewDType(kind, size, big)
}

// NewDType checks that kind and size form a supported dtype. For Unicode,
// size is the number of characters, as NumPy spells it; the DType stores
// bytes.
func NewDType(kind Kind, size int, bigEndian bool) (DType, error) {
	d := DType{Kind: kind, Size: size, BigEndian: bigEndian}
	switch kind {
	case Bool:
		if size != 1 {
			return DType{}, fmt.Errorf("dtype %c%d: bool must be 1 byte", kind, size)
		}
	case Int, Uint:
		if size != 1 && size != 2 && size != 4 && size != 8 {
			return DType{}, fmt.Errorf("dtype %c%d: integer size must be 1, 2, 4 or 8", kind, size)
		}
	case Float:
		if size != 2 && size != 4 && size != 8 {
			return DType{}, fmt.Errorf("dtype %c%d: float size must be 2, 4 or 8", kind, size)
		}
	case Bytes:
	case Unicode:
		if size > math.MaxInt/4 {
			return DType{}, fmt.Errorf("dtype U%d: too long", size)
		}
		d.Size = 4 * size
	case Object:
		d.Size = 8
	default:
		return DType{}, fmt.Errorf("dtype %c%d: unsupported kind %q", kind, size, string(rune(kind)))
	}
	if d.Size <= 1 {
		d.BigEndian = false
	}
	return d, nil
}

// Array is an n-dimensional array in C order. For every kind but Object,
// Data holds exactly NumElements()*DType.Size bytes; for Object, Objects
// holds NumElements() values decoded by the pickle package.
type Array struct {
	DType   DType
	Shape   []int
	Data    []byte
	Objects []any
}

// New validates that data holds a whole array of dtype d and the given shape
// and returns it in C order; fortran says data is in Fortran (column-major)
// order, as NumPy can store it, and makes New reorder a copy.
func New(d DType, shape []int, data []byte, fortran bool) (*Array, error) {
	if d.Kind == Object {
		return nil, fmt.Errorf("ndarray: object arrays carry Objects, not bytes")
	}
	n, err := NumElements(shape)
	if err != nil {
		return nil, err
	}
	hi, want := bits.Mul64(uint64(n), uint64(d.Size))
	if hi != 0 || want > math.MaxInt {
		return nil, fmt.Errorf("ndarray: shape %v of %s overflows", shape, d)
	}
	if uint64(len(data)) != want {
		return nil, fmt.Errorf("ndarray: data is %d bytes, want %d (shape %v of %s)", len(data), want, shape, d)
	}
	a := &Array{DType: d, Shape: append([]int(nil), shape...), Data: data}
	if fortran && len(shape) > 1 {
		a.Data = fortranToC(data, shape, d.Size)
	}
	return a, nil
}

// NumElements returns the product of shape, checking for negative
// dimensions and overflow.
func NumElements(shape []int) (int, error) {
	n := uint64(1)
	for i, s := range shape {
		if s < 0 {
			return 0, fmt.Errorf("ndarray: shape %v: dimension %d is negative", shape, i)
		}
		hi, lo := bits.Mul64(n, uint64(s))
		if hi != 0 || lo > math.MaxInt {
			return 0, fmt.Errorf("ndarray: shape %v overflows", shape)
		}
		n = lo
	}
	return int(n), nil
}

// fortranToC reorders column-major element bytes into row-major order.
func fortranToC(data []byte, shape []int, size int) []byte {
	out := make([]byte, len(data))
	n := len(data) / max(size, 1)
	if size == 0 {
		return out
	}
	idx := make([]int, len(shape)) // C-order multi-index of element i
	for i := range n {
		f, stride := 0, 1
		for k := range shape {
			f += idx[k] * stride
			stride *= shape[k]
		}
		copy(out[i*size:(i+1)*size], data[f*size:(f+1)*size])
		for k := len(shape) - 1; k >= 0; k-- {
			idx[k]++
			if idx[k] < shape[k] {
				break
			}
			idx[k] = 0
		}
	}
	return out
}

func (a *Array) order() binary.ByteOrder {
	if a.DType.BigEndian {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// Float32s converts every element to float32: floats (16, 32, 64 bit),
// integers and bools. Values beyond float32's range or precision round as a
// Go conversion does (float64 ±Inf and NaN carry over).
func (a *Array) Float32s() ([]float32, error) {
	out := make([]float32, len(a.Data)/max(a.DType.Size, 1))
	o := a.order()
	sz := a.DType.Size
	switch a.DType.Kind {
	case Float:
		for i := range out {
			b := a.Data[i*sz:]
			switch sz {
			case 2:
				out[i] = halfToFloat32(o.Uint16(b))
			case 4:
				out[i] = math.Float32frombits(o.Uint32(b))
			case 8:
				out[i] = float32(math.Float64frombits(o.Uint64(b)))
			}
		}
	case Int, Uint, Bool:
		ints, err := a.Int64s()
		if err != nil {
			return nil, err
		}
		for i, v := range ints {
			out[i] = float32(v)
		}
	default:
		return nil, fmt.Errorf("ndarray: cannot convert %s elements to float32", a.DType)
	}
	return out, nil
}

// Int64s converts every element of an integer or bool array to int64.
// Unsigned 64-bit values above MaxInt64 are an error, as are float arrays
// (use Float32s).
func (a *Array) Int64s() ([]int64, error) {
	k, sz := a.DType.Kind, a.DType.Size
	if k != Int && k != Uint && k != Bool {
		return nil, fmt.Errorf("ndarray: cannot convert %s elements to int64", a.DType)
	}
	out := make([]int64, len(a.Data)/sz)
	o := a.order()
	for i := range out {
		b := a.Data[i*sz:]
		var u uint64
		switch sz {
		case 1:
			u = uint64(b[0])
		case 2:
			u = uint64(o.Uint16(b))
		case 4:
			u = uint64(o.Uint32(b))
		case 8:
			u = o.Uint64(b)
		}
		if k == Int {
			shift := 64 - 8*uint(sz)
			out[i] = int64(u<<shift) >> shift // sign-extend
		} else {
			if u > math.MaxInt64 {
				return nil, fmt.Errorf("ndarray: element %d of %s is %d, beyond int64", i, a.DType, u)
			}
			out[i] = int64(u)
		}
	}
	return out, nil
}

// Strings returns the elements of a Bytes, Unicode or Object array as
// strings: fixed-length strings lose their NUL padding, Unicode is decoded
// from UTF-32, and Object elements must be strings or []byte.
func (a *Array) Strings() ([]string, error) {
	sz := a.DType.Size
	switch a.DType.Kind {
	case Bytes:
		out := make([]string, a.numElements())
		for i := range out {
			out[i] = strings.TrimRight(string(a.Data[i*sz:(i+1)*sz]), "\x00")
		}
		return out, nil
	case Unicode:
		o := a.order()
		out := make([]string, 0, a.numElements())
		for i := range a.numElements() {
			var sb strings.Builder
			for j := i * sz; j < (i+1)*sz; j += 4 {
				r := o.Uint32(a.Data[j:])
				if r == 0 {
					break
				}
				if r > utf8.MaxRune {
					return nil, fmt.Errorf("ndarray: element %d holds code point %#x beyond Unicode", i, r)
				}
				sb.WriteRune(rune(r))
			}
			out = append(out, sb.String())
		}
		return out, nil
	case Object:
		out := make([]string, len(a.Objects))
		for i, v := range a.Objects {
			switch v := v.(type) {
			case string:
				out[i] = v
			case []byte:
				out[i] = string(v)
			default:
				return nil, fmt.Errorf("ndarray: object element %d is %T, not a string", i, v)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("ndarray: cannot convert %s elements to strings", a.DType)
}

// numElements is the product of a.Shape, which New has validated.
func (a *Array) numElements() int {
	n := 1
	for _, s := range a.Shape {
		n *= s
	}
	return n
}

// halfToFloat32 converts IEEE 754 binary16 bits to float32 exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
	case frac == 0: // ±0
		return math.Float32frombits(sign)
	}
	// Subnormal half: value = frac × 2^-24, exact in float32.
	v := float32(frac) * (1.0 / (1 << 24))
	if sign != 0 {
		v = -v
	}
	return v
}
