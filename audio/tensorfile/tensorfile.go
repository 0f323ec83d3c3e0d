// Package tensorfile writes float32 arrays in the two file formats the
// benchmark's loaders read: NumPy .npy (numpy.load) and PyTorch's zip
// serialisation (torch.load), the latter holding one CPU tensor.
package tensorfile

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"strconv"
	"strings"
)

// checkShape returns the element count of shape and whether data fits it.
func checkShape(shape []int, data []float32) error {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("shape %v has a negative dimension", shape)
		}
		n *= d
	}
	if n != len(data) {
		return fmt.Errorf("shape %v holds %d values, data has %d", shape, n, len(data))
	}
	return nil
}

func littleEndian(data []float32) []byte {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// WriteNPY writes data, row-major with the given shape, as a NumPy .npy file
// of format version 1.0: little-endian float32 ('<f4') in C order. The
// header is padded so that the data starts at a multiple of 64 bytes, as
// NumPy writes it.
func WriteNPY(w io.Writer, shape []int, data []float32) error {
	if err := checkShape(shape, data); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	tuple := "(" + strings.Join(dims, ", ") + ")"
	if len(shape) == 1 {
		tuple = "(" + dims[0] + ",)"
	}
	header := "{'descr': '<f4', 'fortran_order': False, 'shape': " + tuple + ", }"
	const prefix = 10 // magic (6), version (2), header length (2)
	total := (prefix + len(header) + 1 + 63) / 64 * 64
	header += strings.Repeat(" ", total-prefix-len(header)-1) + "\n"
	if len(header) > math.MaxUint16 {
		return fmt.Errorf("npy: shape %v makes a header of %d bytes, format 1.0 allows %d", shape, len(header), math.MaxUint16)
	}
	var head bytes.Buffer
	head.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&head, binary.LittleEndian, uint16(len(header)))
	head.WriteString(header)
	if _, err := w.Write(head.Bytes()); err != nil {
		return err
	}
	_, err := w.Write(littleEndian(data))
	return err
}

// WriteTorch writes data, row-major with the given shape, as torch.save
// writes one contiguous float32 CPU tensor (the zip format of PyTorch ≥ 1.6):
// an uncompressed zip whose records sit in the folder "archive" — data.pkl,
// a protocol-2 pickle calling torch._utils._rebuild_tensor_v2 on a
// persistent FloatStorage reference "0"; data/0, the raw little-endian
// values; version ("3"); and byteorder ("little"). Each record's data is
// aligned to 64 bytes, as PyTorch aligns them, so that torch.load can map
// the file.
func WriteTorch(w io.Writer, shape []int, data []float32) error {
	if err := checkShape(shape, data); err != nil {
		return fmt.Errorf("pt: %w", err)
	}
	cw := &countingWriter{w: w}
	zw := zip.NewWriter(cw)
	records := []struct {
		name string
		data []byte
	}{
		{"archive/data.pkl", tensorPickle(shape, len(data))},
		{"archive/byteorder", []byte("little")},
		{"archive/data/0", littleEndian(data)},
		{"archive/version", []byte("3\n")},
	}
	for _, r := range records {
		if err := zw.Flush(); err != nil {
			return err
		}
		// A local file header is 30 bytes plus the name and the extra
		// field; the extra field (ID "FB", as PyTorch names it) pads the
		// data to the next multiple of 64.
		const headerLen, extraHeaderLen = 30, 4
		pad := (64 - (cw.n+headerLen+int64(len(r.name))+extraHeaderLen)%64) % 64
		extra := make([]byte, extraHeaderLen+pad)
		copy(extra, "FB")
		binary.LittleEndian.PutUint16(extra[2:], uint16(pad))
		for i := extraHeaderLen; i < len(extra); i++ {
			extra[i] = 'Z'
		}
		fw, err := zw.CreateRaw(&zip.FileHeader{
			Name:               r.name,
			Method:             zip.Store,
			CRC32:              crc32.ChecksumIEEE(r.data),
			CompressedSize64:   uint64(len(r.data)),
			UncompressedSize64: uint64(len(r.data)),
			Extra:              extra,
		})
		if err != nil {
			return err
		}
		if _, err := fw.Write(r.data); err != nil {
			return err
		}
	}
	return zw.Close()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// tensorPickle is the pickle torch.save writes for a contiguous float32
// tensor of the given shape stored from offset 0 of storage "0":
//
//	_rebuild_tensor_v2(persistent_load(('storage', FloatStorage, '0', 'cpu', numel)),
//	                   0, shape, strides, False, OrderedDict())
func tensorPickle(shape []int, numel int) []byte {
	var p pickler
	p.b.WriteString("\x80\x02") // PROTO 2
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.b.WriteByte('(') // MARK: the arguments
	p.b.WriteByte('(') // MARK: the persistent id
	p.unicode("storage")
	p.global("torch", "FloatStorage")
	p.unicode("0")
	p.unicode("cpu")
	p.int(numel)
	p.b.WriteString("tQ") // TUPLE, BINPERSID
	p.int(0)              // storage offset
	strides := make([]int, len(shape))
	stride := 1
	for i := len(shape) - 1; i >= 0; i-- {
		strides[i] = stride
		stride *= shape[i]
	}
	p.tuple(shape)
	p.tuple(strides)
	p.b.WriteByte('\x89') // NEWFALSE: requires_grad
	p.global("collections", "OrderedDict")
	p.b.WriteString(")R")  // EMPTY_TUPLE, REDUCE: backward hooks
	p.b.WriteString("tR.") // TUPLE, REDUCE, STOP
	return p.b.Bytes()
}

// pickler emits the few pickle opcodes tensorPickle needs.
type pickler struct{ b bytes.Buffer }

func (p *pickler) global(module, name string) {
	p.b.WriteString("c" + module + "\n" + name + "\n")
}

func (p *pickler) unicode(s string) {
	p.b.WriteByte('X') // BINUNICODE
	binary.Write(&p.b, binary.LittleEndian, uint32(len(s)))
	p.b.WriteString(s)
}

func (p *pickler) int(v int) {
	if v >= math.MinInt32 && v <= math.MaxInt32 {
		p.b.WriteByte('J') // BININT
		binary.Write(&p.b, binary.LittleEndian, int32(v))
		return
	}
	p.b.WriteString("\x8a\x08") // LONG1 with 8 bytes
	binary.Write(&p.b, binary.LittleEndian, int64(v))
}

func (p *pickler) tuple(vs []int) {
	p.b.WriteByte('(')
	for _, v := range vs {
		p.int(v)
	}
	p.b.WriteByte('t')
}
