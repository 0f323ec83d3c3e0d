// Package npy reads NumPy .npy files (format versions 1.0, 2.0 and 3.0), the
// format Kinetics-Sounds and VGGSound ship their audio spectrograms in.
//
// A .npy file is
//
//	"\x93NUMPY" major minor   magic and version
//	HEADER_LEN                uint16 (v1) or uint32 (v2, v3), little-endian
//	HEADER                    a Python dict literal, ASCII (v1, v2) or UTF-8 (v3)
//	data                      the array elements, C or Fortran order
//
// where the header holds 'descr' (a type descriptor such as '<f4'),
// 'fortran_order' (True or False) and 'shape' (a tuple of ints). Structured
// dtypes and object arrays (which NumPy stores as a pickle) are rejected.
package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"bmc/formats/ndarray"
)

// magic opens every .npy file.
const magic = "\x93NUMPY"

// maxHeaderLen bounds the header a reader accepts, so a corrupt length field
// cannot make it read an absurd amount before failing.
const maxHeaderLen = 1 << 20

// ReadFile reads the .npy file at path. Errors name the file and the header
// field that is wrong.
func ReadFile(path string) (*ndarray.Array, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	a, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("npy: %s: %w", path, err)
	}
	return a, nil
}

// Read decodes a whole .npy stream from r.
func Read(r io.Reader) (*ndarray.Array, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	a, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	return a, nil
}

// Decode decodes a whole .npy file held in data. The returned array is in C
// order (Fortran-order files are reordered) and may share data's memory.
func Decode(data []byte) (*ndarray.Array, error) {
	if len(data) < len(magic)+2 || string(data[:len(magic)]) != magic {
		return nil, errors.New("not a .npy file: missing \\x93NUMPY magic")
	}
	major, minor := data[6], data[7]
	rest := data[8:]
	var hlen int
	switch major {
	case 1:
		if len(rest) < 2 {
			return nil, errors.New("header length: file truncated")
		}
		hlen, rest = int(binary.LittleEndian.Uint16(rest)), rest[2:]
	case 2, 3:
		if len(rest) < 4 {
			return nil, errors.New("header length: file truncated")
		}
		n := binary.LittleEndian.Uint32(rest)
		if n > maxHeaderLen {
			return nil, fmt.Errorf("header length: %d bytes exceeds the %d-byte limit", n, maxHeaderLen)
		}
		hlen, rest = int(n), rest[4:]
	default:
		return nil, fmt.Errorf("version: %d.%d is not 1.0, 2.0 or 3.0", major, minor)
	}
	if len(rest) < hlen {
		return nil, fmt.Errorf("header: file truncated (%d of %d bytes)", len(rest), hlen)
	}
	header, body := rest[:hlen], rest[hlen:]
	if major < 3 && bytes.IndexFunc(header, func(r rune) bool { return r > 0x7f }) >= 0 {
		return nil, errors.New("header: non-ASCII byte in a version 1/2 header")
	}
	if !utf8.Valid(header) {
		return nil, errors.New("header: not valid UTF-8")
	}
	h, err := parseHeader(string(header))
	if err != nil {
		return nil, err
	}
	if h.dtype.Kind == ndarray.Object {
		return nil, fmt.Errorf("field 'descr': %q is an object array (a pickle); not supported", h.descr)
	}
	n, err := ndarray.NumElements(h.shape)
	if err != nil {
		return nil, fmt.Errorf("field 'shape': %w", err)
	}
	want := uint64(n) * uint64(h.dtype.Size)
	if n != 0 && want/uint64(n) != uint64(h.dtype.Size) {
		return nil, fmt.Errorf("field 'shape': %v of %s overflows", h.shape, h.descr)
	}
	if uint64(len(body)) < want {
		return nil, fmt.Errorf("data: file truncated: %d bytes, want %d for shape %v of %s", len(body), want, h.shape, h.descr)
	}
	if uint64(len(body)) > want {
		return nil, fmt.Errorf("data: %d trailing bytes after the %d of shape %v of %s", uint64(len(body))-want, want, h.shape, h.descr)
	}
	a, err := ndarray.New(h.dtype, h.shape, body, h.fortran)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return a, nil
}

// header is the parsed header dict.
type header struct {
	descr   string
	dtype   ndarray.DType
	fortran bool
	shape   []int
}

// parseHeader parses the header dict literal, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// followed by space padding and a newline.
func parseHeader(s string) (header, error) {
	p := &literal{s: s}
	var h header
	seen := map[string]bool{}
	if !p.eat('{') {
		return h, fmt.Errorf("header: want a dict literal, got %q", clip(s))
	}
	for !p.eat('}') {
		key, err := p.str()
		if err != nil {
			return h, fmt.Errorf("header: key: %w", err)
		}
		if !p.eat(':') {
			return h, fmt.Errorf("header: field '%s': missing ':'", key)
		}
		switch key {
		case "descr":
			h.descr, err = p.str()
			if err == nil {
				h.dtype, err = ndarray.ParseDescr(h.descr)
			}
		case "fortran_order":
			h.fortran, err = p.boolean()
		case "shape":
			h.shape, err = p.tuple()
		default:
			return h, fmt.Errorf("header: unexpected field '%s'", key)
		}
		if err != nil {
			return h, fmt.Errorf("field '%s': %w", key, err)
		}
		seen[key] = true
		if !p.eat(',') && !p.peek('}') {
			return h, fmt.Errorf("header: want ',' or '}' after field '%s'", key)
		}
	}
	if p.skipSpace(); p.i != len(s) {
		return h, fmt.Errorf("header: unexpected %q after the dict", clip(s[p.i:]))
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return h, fmt.Errorf("header: field '%s' missing", k)
		}
	}
	return h, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// literal scans the small subset of Python literal syntax a .npy header
// uses: quoted strings, True/False, and tuples of non-negative ints.
type literal struct {
	s string
	i int
}

func (p *literal) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\n' || p.s[p.i] == '\t' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *literal) peek(c byte) bool {
	p.skipSpace()
	return p.i < len(p.s) && p.s[p.i] == c
}

func (p *literal) eat(c byte) bool {
	if p.peek(c) {
		p.i++
		return true
	}
	return false
}

// str reads a single- or double-quoted string without escapes (a valid
// header never needs them).
func (p *literal) str() (string, error) {
	p.skipSpace()
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", errors.New("want a quoted string")
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", errors.New("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.IndexByte(v, '\\') >= 0 {
		return "", fmt.Errorf("escaped string %q not supported", v)
	}
	p.i += end + 2
	return v, nil
}

func (p *literal) boolean() (bool, error) {
	p.skipSpace()
	for _, w := range []struct {
		word string
		v    bool
	}{{"True", true}, {"False", false}} {
		if len(p.s)-p.i >= len(w.word) && p.s[p.i:p.i+len(w.word)] == w.word {
			p.i += len(w.word)
			return w.v, nil
		}
	}
	return false, fmt.Errorf("want True or False, got %q", clip(p.s[p.i:]))
}

// tuple reads "()", "(3,)" or "(2, 3)".
func (p *literal) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, errors.New("want a tuple of ints")
	}
	dims := []int{}
	for !p.eat(')') {
		p.skipSpace()
		start := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		d, err := strconv.Atoi(p.s[start:p.i])
		if err != nil {
			return nil, fmt.Errorf("dimension %d: want a non-negative int, got %q", len(dims), clip(p.s[start:]))
		}
		dims = append(dims, d)
		if !p.eat(',') && !p.peek(')') {
			return nil, fmt.Errorf("want ',' or ')' after dimension %d", len(dims)-1)
		}
	}
	return dims, nil
}
