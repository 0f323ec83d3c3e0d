// Package safetensors reads and writes the safetensors file format used by
// Hugging Face to store named tensors.
//
// A safetensors file is laid out as
//
//	[8 bytes]  N, the header length, a little-endian uint64
//	[N bytes]  a UTF-8 JSON object, the header
//	[rest]     the data buffer
//
// The header maps each tensor name to an object
//
//	{"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
//
// whose offsets are relative to the start of the data buffer (end exclusive),
// plus an optional "__metadata__" entry mapping strings to strings. Tensor
// data is little-endian and row-major. The tensors must not overlap and must
// cover the data buffer exactly.
package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// DType is the element type of a stored tensor, spelled as in the header.
type DType string

// The element types this package understands.
const (
	F32  DType = "F32"  // IEEE 754 binary32
	I64  DType = "I64"  // signed 64-bit integer
	F64  DType = "F64"  // IEEE 754 binary64
	I32  DType = "I32"  // signed 32-bit integer
	BOOL DType = "BOOL" // one byte per element, 0 or 1
	U8   DType = "U8"   // unsigned 8-bit integer
	F16  DType = "F16"  // IEEE 754 binary16
	BF16 DType = "BF16" // bfloat16: the top half of a binary32
)

// itemSize returns the size in bytes of one element of d, and false when d
// is not a dtype this package understands.
func (d DType) itemSize() (int64, bool) {
	switch d {
	case F32, I32:
		return 4, true
	case I64, F64:
		return 8, true
	case BOOL, U8:
		return 1, true
	case F16, BF16:
		return 2, true
	}
	return 0, false
}

// metadataKey is the reserved header key holding the file's metadata.
const metadataKey = "__metadata__"

// maxHeaderLen bounds the header length a decoder accepts, so that a corrupt
// length field cannot make it allocate or scan an absurd amount of memory.
const maxHeaderLen = 100 << 20

// Tensor is one named tensor: raw little-endian bytes plus dtype and shape.
// A tensor with an empty shape is a scalar holding one element.
type Tensor struct {
	DType DType
	Shape []int64
	Data  []byte
}

// Float32s returns an F32 tensor of the given shape holding v, encoded
// little-endian. It does not check that len(v) matches shape; Encode and
// AsFloat32 do.
func Float32s(shape []int64, v []float32) Tensor {
	data := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(x))
	}
	return Tensor{DType: F32, Shape: slices.Clone(shape), Data: data}
}

// Float32sView is Float32s without the copy on little-endian machines: the
// tensor's data is v's memory, so v must not change until the tensor has
// been written. Checkpoints of large states use it.
func Float32sView(shape []int64, v []float32) Tensor {
	if len(v) == 0 || !littleEndian() {
		return Float32s(shape, v)
	}
	data := unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
	return Tensor{DType: F32, Shape: slices.Clone(shape), Data: data}
}

// littleEndian reports whether the machine stores the low byte first, the
// order safetensors files use.
func littleEndian() bool {
	one := uint16(1)
	return *(*byte)(unsafe.Pointer(&one)) == 1
}

// Int64s returns an I64 tensor of the given shape holding v, encoded
// little-endian. It does not check that len(v) matches shape; Encode and
// AsInt64 do.
func Int64s(shape []int64, v []int64) Tensor {
	data := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(data[8*i:], uint64(x))
	}
	return Tensor{DType: I64, Shape: slices.Clone(shape), Data: data}
}

// NumElements returns the product of the tensor's dimensions: 1 for a
// scalar, 0 when any dimension is 0. The result is meaningful only for a
// valid shape (no negative dimensions, product fitting in an int64).
func (t Tensor) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// AsFloat32 decodes the data of an F32 tensor. It returns an error when the
// dtype is not F32 or the data length does not match the shape.
func (t Tensor) AsFloat32() ([]float32, error) {
	if t.DType != F32 {
		return nil, fmt.Errorf("safetensors: AsFloat32 of a %s tensor", t.DType)
	}
	if err := t.validate(); err != nil {
		return nil, fmt.Errorf("safetensors: AsFloat32: %w", err)
	}
	v := make([]float32, len(t.Data)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return v, nil
}

// ToFloat32 decodes a floating-point tensor (F32, F64, F16 or BF16) as
// float32, rounding F64 to nearest.
func (t Tensor) ToFloat32() ([]float32, error) {
	if t.DType == F32 {
		return t.AsFloat32()
	}
	if err := t.validate(); err != nil {
		return nil, fmt.Errorf("safetensors: ToFloat32: %w", err)
	}
	var v []float32
	switch t.DType {
	case F64:
		v = make([]float32, len(t.Data)/8)
		for i := range v {
			v[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:])))
		}
	case BF16:
		v = make([]float32, len(t.Data)/2)
		for i := range v {
			v[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(t.Data[2*i:])) << 16)
		}
	case F16:
		v = make([]float32, len(t.Data)/2)
		for i := range v {
			v[i] = halfToFloat32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	default:
		return nil, fmt.Errorf("safetensors: ToFloat32 of a %s tensor (want F32, F64, F16 or BF16)", t.DType)
	}
	return v, nil
}

// halfToFloat32 widens an IEEE binary16 value exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf, NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
	case frac == 0: // ±0
		return math.Float32frombits(sign)
	}
	// Subnormal: frac·2⁻²⁴.
	f := float32(frac) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}

// AsInt64 decodes the data of an I64 tensor. It returns an error when the
// dtype is not I64 or the data length does not match the shape.
func (t Tensor) AsInt64() ([]int64, error) {
	if t.DType != I64 {
		return nil, fmt.Errorf("safetensors: AsInt64 of a %s tensor", t.DType)
	}
	if err := t.validate(); err != nil {
		return nil, fmt.Errorf("safetensors: AsInt64: %w", err)
	}
	v := make([]int64, len(t.Data)/8)
	for i := range v {
		v[i] = int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
	}
	return v, nil
}

// byteLen returns the number of bytes a tensor of dtype d and the given shape
// occupies, checking the dtype, the dimensions and overflow.
func byteLen(d DType, shape []int64) (int64, error) {
	size, ok := d.itemSize()
	if !ok {
		return 0, fmt.Errorf("unknown dtype %q", string(d))
	}
	n := uint64(size)
	for i, dim := range shape {
		if dim < 0 {
			return 0, fmt.Errorf("shape %v: dimension %d is negative (%d)", shape, i, dim)
		}
		hi, lo := bits.Mul64(n, uint64(dim))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("shape %v: byte size overflows int64", shape)
		}
		n = lo
	}
	return int64(n), nil
}

// validate checks the dtype, the shape and that the data length equals
// product(shape) times the item size.
func (t Tensor) validate() error {
	want, err := byteLen(t.DType, t.Shape)
	if err != nil {
		return err
	}
	if int64(len(t.Data)) != want {
		size, _ := t.DType.itemSize()
		return fmt.Errorf("data is %d bytes, want %d (shape %v × %s item size %d)",
			len(t.Data), want, t.Shape, t.DType, size)
	}
	return nil
}

// File is a whole safetensors file in memory.
type File struct {
	// Tensors maps each tensor name to its tensor.
	Tensors map[string]Tensor
	// Metadata is the optional free-form "__metadata__" header entry.
	// Decode leaves it nil when the file has none.
	Metadata map[string]string
}

// Encode writes f to w in the safetensors format. The output is
// deterministic: header entries and data appear in tensor-name order, and
// the header is padded with spaces so that the data starts at an offset that
// is a multiple of 8. Encode validates every tensor (known dtype,
// non-negative dimensions, data length matching the shape, name not
// "__metadata__") before it writes anything, so an invalid File leaves w
// untouched.
func Encode(w io.Writer, f File) error {
	header, names, err := encodeHeader(f)
	if err != nil {
		return fmt.Errorf("safetensors: encode: %w", err)
	}
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(header)))
	if _, err := w.Write(prefix[:]); err != nil {
		return fmt.Errorf("safetensors: encode: write header length: %w", err)
	}
	if _, err := w.Write(header); err != nil {
		return fmt.Errorf("safetensors: encode: write header: %w", err)
	}
	for _, name := range names {
		if _, err := w.Write(f.Tensors[name].Data); err != nil {
			return fmt.Errorf("safetensors: encode: write data of tensor %q: %w", name, err)
		}
	}
	return nil
}

// encodeHeader validates f and returns its padded JSON header and the
// tensor names in the order their data is laid out.
func encodeHeader(f File) ([]byte, []string, error) {
	names := make([]string, 0, len(f.Tensors))
	for name := range f.Tensors {
		names = append(names, name)
	}
	slices.Sort(names)

	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	comma := func() {
		if !first {
			b.WriteByte(',')
		}
		first = false
	}
	if len(f.Metadata) > 0 {
		keys := make([]string, 0, len(f.Metadata))
		for k := range f.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		comma()
		writeJSONString(&b, metadataKey)
		b.WriteString(":{")
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, f.Metadata[k])
		}
		b.WriteByte('}')
	}
	var offset int64
	for _, name := range names {
		t := f.Tensors[name]
		if name == metadataKey {
			return nil, nil, fmt.Errorf("tensor name %q is reserved for metadata", name)
		}
		if err := t.validate(); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		end := offset + int64(len(t.Data))
		comma()
		writeJSONString(&b, name)
		b.WriteString(`:{"dtype":`)
		writeJSONString(&b, string(t.DType))
		b.WriteString(`,"shape":[`)
		for i, d := range t.Shape {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(d, 10))
		}
		b.WriteString(`],"data_offsets":[`)
		b.WriteString(strconv.FormatInt(offset, 10))
		b.WriteByte(',')
		b.WriteString(strconv.FormatInt(end, 10))
		b.WriteString("]}")
		offset = end
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes(), names, nil
}

// writeJSONString appends s to b as a JSON string literal. Invalid UTF-8 is
// replaced by U+FFFD, as encoding/json does.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	// Encoding a string cannot fail; Encode appends a newline we drop.
	_ = enc.Encode(s)
	b.Truncate(b.Len() - 1)
}

// Decode parses a whole safetensors file held in data. The Data of each
// returned tensor is a sub-slice of data (with its capacity capped at its
// length), so data must not be modified while the tensors are in use.
//
// Decode rejects malformed input with an error that names the offending
// tensor or field: a file shorter than 8 bytes, a header length beyond the
// file or above 100 MiB, a header that is not a UTF-8 JSON object, duplicate
// names, an entry missing dtype, shape or data_offsets, an unknown dtype,
// negative dimensions, data_offsets that are not two non-decreasing
// non-negative integers, a byte span that does not match the shape, offsets
// past the data buffer, overlapping tensors, gaps or unused bytes in the
// buffer, and a "__metadata__" entry that is not a string-to-string object.
func Decode(data []byte) (File, error) {
	f, err := decode(data)
	if err != nil {
		return File{}, fmt.Errorf("safetensors: decode: %w", err)
	}
	return f, nil
}

// span is the location of one tensor in the data buffer.
type span struct {
	name       string
	begin, end int64
}

func decode(data []byte) (File, error) {
	if len(data) < 8 {
		return File{}, fmt.Errorf("file is %d bytes, shorter than the 8-byte header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data[:8])
	if n > maxHeaderLen {
		return File{}, fmt.Errorf("header length %d exceeds the %d-byte limit", n, maxHeaderLen)
	}
	if n > uint64(len(data)-8) {
		return File{}, fmt.Errorf("header length %d exceeds the %d bytes after the length field", n, len(data)-8)
	}
	header := data[8 : 8+n]
	buf := data[8+n:]
	if !utf8.Valid(header) {
		return File{}, errors.New("header is not valid UTF-8")
	}
	entries, err := splitHeader(header)
	if err != nil {
		return File{}, err
	}

	f := File{Tensors: make(map[string]Tensor, len(entries))}
	spans := make([]span, 0, len(entries))
	for _, e := range entries {
		if e.name == metadataKey {
			var md map[string]string
			if err := json.Unmarshal(e.raw, &md); err != nil {
				return File{}, fmt.Errorf("%s: want an object of strings: %w", metadataKey, err)
			}
			f.Metadata = md
			continue
		}
		t, sp, err := decodeEntry(e.raw, int64(len(buf)))
		if err != nil {
			return File{}, fmt.Errorf("tensor %q: %w", e.name, err)
		}
		sp.name = e.name
		t.Data = buf[sp.begin:sp.end:sp.end]
		f.Tensors[e.name] = t
		spans = append(spans, sp)
	}
	if err := checkCoverage(spans, int64(len(buf))); err != nil {
		return File{}, err
	}
	return f, nil
}

// headerEntry is one top-level key of the header with its undecoded value.
type headerEntry struct {
	name string
	raw  json.RawMessage
}

// splitHeader checks that header is a single JSON object without duplicate
// keys and returns its entries in order.
func splitHeader(header []byte) ([]headerEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(header))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("header is not valid JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("header is not a JSON object (starts with %v)", tok)
	}
	var entries []headerEntry
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("header is not valid JSON: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("header is not valid JSON: key %v is not a string", tok)
		}
		if seen[name] {
			return nil, fmt.Errorf("header has duplicate key %q", name)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("header is not valid JSON: value of %q: %w", name, err)
		}
		entries = append(entries, headerEntry{name: name, raw: raw})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("header is not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("header has trailing data after the JSON object")
	}
	return entries, nil
}

// decodeEntry parses one tensor entry of the header and checks it against
// a data buffer of bufLen bytes.
func decodeEntry(raw json.RawMessage, bufLen int64) (Tensor, span, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return Tensor{}, span{}, fmt.Errorf("entry is not a JSON object: %s", raw)
	}
	var (
		dtype   string
		shape   []int64
		offsets []int64
	)
	for _, fld := range []struct {
		key string
		dst any
	}{
		{"dtype", &dtype},
		{"shape", &shape},
		{"data_offsets", &offsets},
	} {
		v, ok := fields[fld.key]
		if !ok || string(v) == "null" {
			return Tensor{}, span{}, fmt.Errorf("missing %s", fld.key)
		}
		if err := json.Unmarshal(v, fld.dst); err != nil {
			return Tensor{}, span{}, fmt.Errorf("%s %s: %w", fld.key, v, err)
		}
	}
	if shape == nil {
		shape = []int64{}
	}
	t := Tensor{DType: DType(dtype), Shape: shape}
	want, err := byteLen(t.DType, shape)
	if err != nil {
		return Tensor{}, span{}, err
	}
	if len(offsets) != 2 {
		return Tensor{}, span{}, fmt.Errorf("data_offsets %v: want 2 numbers [begin, end]", offsets)
	}
	begin, end := offsets[0], offsets[1]
	if begin < 0 || end < begin {
		return Tensor{}, span{}, fmt.Errorf("data_offsets %v: want 0 <= begin <= end", offsets)
	}
	if end-begin != want {
		size, _ := t.DType.itemSize()
		return Tensor{}, span{}, fmt.Errorf("data_offsets %v span %d bytes, want %d (shape %v × %s item size %d)",
			offsets, end-begin, want, shape, t.DType, size)
	}
	if end > bufLen {
		return Tensor{}, span{}, fmt.Errorf("data_offsets %v lie outside the %d-byte data buffer", offsets, bufLen)
	}
	return t, span{begin: begin, end: end}, nil
}

// checkCoverage checks that spans tile [0, bufLen) exactly: no overlaps, no
// gaps, no unused bytes at the end.
func checkCoverage(spans []span, bufLen int64) error {
	slices.SortFunc(spans, func(a, b span) int {
		if c := cmp.Compare(a.begin, b.begin); c != 0 {
			return c
		}
		return cmp.Compare(a.end, b.end)
	})
	var pos int64
	prev := ""
	for _, s := range spans {
		switch {
		case s.begin < pos:
			return fmt.Errorf("tensor %q at [%d, %d] overlaps tensor %q ending at %d", s.name, s.begin, s.end, prev, pos)
		case s.begin > pos:
			return fmt.Errorf("data buffer bytes [%d, %d) are not used by any tensor", pos, s.begin)
		}
		prev, pos = s.name, s.end
	}
	if pos != bufLen {
		return fmt.Errorf("data buffer bytes [%d, %d) are not used by any tensor", pos, bufLen)
	}
	return nil
}
