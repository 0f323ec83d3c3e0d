package hdf5

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"

	"bmc/formats/ndarray"
)

// Class is an HDF5 datatype class.
type Class int

// The datatype classes this package reads.
const (
	FixedPoint Class = 0 // integers
	Float      Class = 1 // IEEE floating point
	String     Class = 3 // fixed-length strings
	Opaque     Class = 5 // fixed-length uninterpreted bytes (numpy np.void)
	VarLen     Class = 9 // variable-length sequences and strings
)

// DType is a dataset's element type.
type DType struct {
	Class     Class
	Size      int    // bytes per element as stored in the dataset
	Signed    bool   // FixedPoint: two's complement
	BigEndian bool   // FixedPoint, Float: byte order
	VarString bool   // VarLen: a string rather than a sequence
	Base      *DType // VarLen sequence: the element type
	// Pad is how a String is padded: 0 NUL-terminated, 1 NUL-padded,
	// 2 space-padded.
	Pad int
}

// String describes d, e.g. "int64", "float32 big-endian", "vlen(uint8)".
func (d DType) String() string {
	order := ""
	if d.BigEndian && d.Size > 1 {
		order = " big-endian"
	}
	switch d.Class {
	case FixedPoint:
		if d.Signed {
			return fmt.Sprintf("int%d%s", 8*d.Size, order)
		}
		return fmt.Sprintf("uint%d%s", 8*d.Size, order)
	case Float:
		return fmt.Sprintf("float%d%s", 8*d.Size, order)
	case String:
		return fmt.Sprintf("string[%d]", d.Size)
	case Opaque:
		return fmt.Sprintf("opaque[%d]", d.Size)
	case VarLen:
		if d.VarString {
			return "vlen string"
		}
		return "vlen(" + d.Base.String() + ")"
	}
	return fmt.Sprintf("class %d", d.Class)
}

// Dataset is a dataset's metadata; its Read methods read the data.
type Dataset struct {
	Name  string // path given to File.Dataset
	Shape []int  // empty for a scalar
	DType DType

	f       *File
	layout  layout
	filters []filter
}

// layout is a parsed data layout message.
type layout struct {
	class     int    // 0 compact, 1 contiguous, 2 chunked
	compact   []byte // class 0
	addr      uint64 // class 1: data; class 2: B-tree or the single chunk
	size      uint64 // class 1: bytes; single chunk: filtered bytes
	chunk     []int  // class 2: chunk dimensions (without the element size)
	single    bool   // class 2: one chunk, no index (layout version 4)
	chunkMask uint32 // single filtered chunk: filters skipped
}

// filter is one entry of a filter pipeline.
type filter struct {
	id     int
	params []uint32
}

// Filter identifiers this package implements.
const (
	filterDeflate    = 1
	filterShuffle    = 2
	filterFletcher32 = 3
)

// dataset builds a Dataset from its object header.
func (f *File) dataset(name string, o *object) (*Dataset, error) {
	dsMsg, ok1 := o.find(msgDataspace)
	dtMsg, ok2 := o.find(msgDatatype)
	lMsg, ok3 := o.find(msgLayout)
	if !ok1 || !ok2 || !ok3 {
		return nil, errors.New("object is not a dataset (no dataspace, datatype or layout message)")
	}
	d := &Dataset{Name: name, f: f}
	var err error
	if d.Shape, err = f.dataspace(dsMsg.data); err != nil {
		return nil, fmt.Errorf("dataspace: %w", err)
	}
	if dtMsg.flags&0x02 != 0 {
		return nil, unsupported("shared (committed) datatype")
	}
	if d.DType, _, err = parseDType(dtMsg.data, f.sizeOffsets); err != nil {
		return nil, fmt.Errorf("datatype: %w", err)
	}
	if d.layout, err = f.parseLayout(lMsg.data, len(d.Shape), d.DType.Size); err != nil {
		return nil, fmt.Errorf("data layout: %w", err)
	}
	if m, ok := o.find(msgFilters); ok {
		if d.filters, err = parseFilters(m.data); err != nil {
			return nil, fmt.Errorf("filter pipeline: %w", err)
		}
	}
	return d, nil
}

// dataspace parses a dataspace message into a shape.
func (f *File) dataspace(data []byte) ([]int, error) {
	r := &reader{f: f, b: data}
	version, rank, _ := r.u8(), r.u8(), r.u8()
	switch version {
	case 1:
		r.skip(5)
	case 2:
		if typ := r.u8(); typ == 2 {
			return nil, unsupported("null dataspace")
		}
	default:
		if r.err == nil {
			return nil, unsupported("dataspace version %d", version)
		}
	}
	shape := make([]int, rank)
	for i := range shape {
		n := r.length()
		if n > math.MaxInt {
			return nil, fmt.Errorf("dimension %d is %d", i, n)
		}
		shape[i] = int(n)
	}
	if r.err != nil {
		return nil, r.err
	}
	if _, err := ndarray.NumElements(shape); err != nil {
		return nil, err
	}
	return shape, nil
}

// parseDType parses a datatype message and returns the type and the bytes it
// used (a variable-length type nests its base type).
func parseDType(data []byte, sizeOffsets int) (DType, int, error) {
	if len(data) < 8 {
		return DType{}, 0, errTruncated
	}
	class, b1 := Class(data[0]&0x0f), data[1]
	size := int(le32(data[4:]))
	d := DType{Class: class, Size: size}
	switch class {
	case FixedPoint:
		d.BigEndian, d.Signed = b1&1 != 0, b1&8 != 0
		if size != 1 && size != 2 && size != 4 && size != 8 {
			return DType{}, 0, unsupported("%d-byte integer", size)
		}
		return d, 12, nil
	case Float:
		if b1&0x40 != 0 {
			return DType{}, 0, unsupported("VAX float byte order")
		}
		d.BigEndian = b1&1 != 0
		if size != 2 && size != 4 && size != 8 {
			return DType{}, 0, unsupported("%d-byte float", size)
		}
		return d, 20, nil
	case String:
		d.Pad = int(b1 & 0x0f)
		return d, 8, nil
	case Opaque:
		return d, 8 + int(b1), nil
	case VarLen:
		if size != 4+sizeOffsets+4 {
			return DType{}, 0, fmt.Errorf("variable-length element of %d bytes, want %d", size, 8+sizeOffsets)
		}
		d.VarString = b1&0x0f == 1
		base, n, err := parseDType(data[8:], sizeOffsets)
		if err != nil {
			return DType{}, 0, fmt.Errorf("variable-length base type: %w", err)
		}
		d.Base = &base
		return d, 8 + n, nil
	}
	names := map[Class]string{2: "time", 4: "bitfield", 6: "compound", 7: "reference", 8: "enum", 10: "array"}
	return DType{}, 0, unsupported("datatype class %d (%s)", class, names[class])
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// parseLayout parses a data layout message (versions 3 and 4).
func (f *File) parseLayout(data []byte, rank, elemSize int) (layout, error) {
	r := &reader{f: f, b: data}
	version, class := r.u8(), r.u8()
	if r.err != nil {
		return layout{}, r.err
	}
	if version != 3 && version != 4 {
		return layout{}, unsupported("data layout message version %d", version)
	}
	l := layout{class: class}
	switch class {
	case 0:
		n := r.u16()
		l.compact = r.bytes(n)
	case 1:
		l.addr, l.size = r.addr(), r.length()
	case 2:
		var dims []uint64
		if version == 3 {
			nd := r.u8()
			l.addr = r.addr()
			for range nd {
				dims = append(dims, r.u32())
			}
		} else {
			flags, nd, enc := r.u8(), r.u8(), r.u8()
			for range nd {
				dims = append(dims, r.uint(min(enc, 8)))
			}
			index := r.u8()
			if r.err == nil && index != 1 {
				return layout{}, unsupported("chunk index type %d (written by libver 'latest'; only v1 B-tree and single-chunk indexes are read)", index)
			}
			l.single = true
			if flags&0x02 != 0 {
				l.size = r.length()
				l.chunkMask = uint32(r.u32())
			}
			l.addr = r.addr()
		}
		if r.err != nil {
			return layout{}, r.err
		}
		if len(dims) != rank+1 || dims[rank] != uint64(elemSize) {
			return layout{}, fmt.Errorf("chunk dimensions %v do not match rank %d and element size %d", dims, rank, elemSize)
		}
		for _, c := range dims[:rank] {
			if c == 0 || c > math.MaxInt32 {
				return layout{}, fmt.Errorf("chunk dimension %d", c)
			}
			l.chunk = append(l.chunk, int(c))
		}
		if _, err := ndarray.NumElements(append(l.chunk, elemSize)); err != nil {
			return layout{}, fmt.Errorf("chunk dimensions %v: %w", l.chunk, err)
		}
	case 3:
		return layout{}, unsupported("virtual dataset layout")
	default:
		return layout{}, fmt.Errorf("layout class %d", class)
	}
	if r.err != nil {
		return layout{}, r.err
	}
	return l, nil
}

// parseFilters parses a filter pipeline message (versions 1 and 2).
func parseFilters(data []byte) ([]filter, error) {
	r := &reader{b: data}
	version, n := r.u8(), r.u8()
	if version == 1 {
		r.skip(6)
	} else if r.err == nil && version != 2 {
		return nil, unsupported("filter pipeline version %d", version)
	}
	var out []filter
	for range n {
		fl := filter{id: r.u16()}
		nameLen := 0
		if version == 1 || fl.id >= 256 {
			nameLen = r.u16()
		}
		r.skip(2) // flags
		nvals := r.u16()
		if version == 1 {
			nameLen = (nameLen + 7) &^ 7
		}
		r.skip(nameLen)
		for range nvals {
			fl.params = append(fl.params, uint32(r.u32()))
		}
		if version == 1 && nvals%2 == 1 {
			r.skip(4)
		}
		if r.err != nil {
			return nil, r.err
		}
		switch fl.id {
		case filterDeflate, filterShuffle, filterFletcher32:
		default:
			names := map[int]string{4: "szip", 5: "nbit", 6: "scaleoffset", 32001: "blosc", 32004: "lz4", 32008: "bitshuffle", 32015: "zstd"}
			return nil, unsupported("filter %d (%s)", fl.id, names[fl.id])
		}
		out = append(out, fl)
	}
	return out, nil
}

// NumElements returns the product of the dataset's shape (1 for a scalar).
func (d *Dataset) NumElements() int {
	n, _ := ndarray.NumElements(d.Shape) // checked when the dataspace was read
	return n
}

// raw returns the dataset's elements, d.DType.Size bytes each, in C order.
func (d *Dataset) raw() ([]byte, error) {
	f := d.f
	hi, total := bits.Mul64(uint64(d.NumElements()), uint64(d.DType.Size))
	// Deflate expands at most about 1032-fold; a claim beyond that (plus
	// slack for unwritten, fill-valued chunks) is a corrupt dataspace.
	if limit := 1100*uint64(len(f.data)) + 1<<20; hi != 0 || total > limit {
		return nil, fmt.Errorf("dataset claims %d elements of %d bytes, more than a %d-byte file can hold", d.NumElements(), d.DType.Size, len(f.data))
	}
	switch d.layout.class {
	case 0:
		if uint64(len(d.layout.compact)) != total {
			return nil, fmt.Errorf("compact data is %d bytes, want %d", len(d.layout.compact), total)
		}
		return d.layout.compact, nil
	case 1:
		if f.undefined(d.layout.addr) {
			return make([]byte, total), nil // never written: fill value 0
		}
		if d.layout.size < total {
			return nil, fmt.Errorf("contiguous data is %d bytes, want %d", d.layout.size, total)
		}
		r := f.at(d.layout.addr)
		b := r.bytes(int(total))
		if r.err != nil {
			return nil, fmt.Errorf("contiguous data at %#x: %w", d.layout.addr, r.err)
		}
		return b, nil
	}
	return d.chunked(int(total))
}

// chunked assembles a chunked dataset of total bytes.
func (d *Dataset) chunked(total int) ([]byte, error) {
	f, l := d.f, d.layout
	out := make([]byte, total)
	chunkBytes := d.DType.Size
	for _, c := range l.chunk {
		chunkBytes *= c
	}
	place := func(offsets []int, stored []byte, mask uint32) error {
		data, err := d.unfilter(stored, mask, chunkBytes)
		if err != nil {
			return fmt.Errorf("chunk at %v: %w", offsets, err)
		}
		d.copyChunk(out, data, offsets)
		return nil
	}
	if f.undefined(l.addr) || total == 0 {
		return out, nil // no chunk written: fill value 0
	}
	if l.single {
		size := l.size
		if len(d.filters) == 0 {
			size = uint64(chunkBytes)
		}
		r := f.at(l.addr)
		if size > uint64(len(f.data)) {
			return nil, errTruncated
		}
		stored := r.bytes(int(size))
		if r.err != nil {
			return nil, fmt.Errorf("single chunk: %w", r.err)
		}
		return out, place(make([]int, len(l.chunk)), stored, l.chunkMask)
	}
	rank := len(l.chunk)
	seen := map[string]bool{} // chunk offsets already placed
	err := f.walkBTree(l.addr, 1, 8+8*(rank+1), func(key []byte, child uint64) error {
		size, mask := le32(key), le32(key[4:])
		offsets := make([]int, rank)
		for k := range offsets {
			o := uint64(le32(key[8+8*k:])) | uint64(le32(key[12+8*k:]))<<32
			if o >= uint64(max(d.Shape[k], 1)) || o%uint64(l.chunk[k]) != 0 {
				return fmt.Errorf("chunk offset %d in dimension %d is outside shape %v or off the chunk grid %v", o, k, d.Shape, l.chunk)
			}
			offsets[k] = int(o)
		}
		if seen[string(key[8:])] {
			return fmt.Errorf("chunk at %v listed twice", offsets)
		}
		seen[string(key[8:])] = true
		r := f.at(child)
		stored := r.bytes(int(size))
		if r.err != nil {
			return fmt.Errorf("chunk at %v: %w", offsets, r.err)
		}
		return place(offsets, stored, mask)
	})
	if err != nil {
		return nil, fmt.Errorf("chunk B-tree: %w", err)
	}
	return out, nil
}

// copyChunk copies a decoded chunk whose first element sits at offsets into
// the C-order dataset buffer, clipping the parts of edge chunks that lie
// outside the dataset. It visits only the rows that land in the dataset, so
// its work is bounded by the dataset's size, not the chunk's.
func (d *Dataset) copyChunk(out, chunk []byte, offsets []int) {
	es, c, shape := d.DType.Size, d.layout.chunk, d.Shape
	rank := len(c)
	if rank == 0 {
		copy(out, chunk)
		return
	}
	ext := make([]int, rank) // extent of the chunk inside the dataset
	for k := range ext {
		ext[k] = min(c[k], shape[k]-offsets[k])
		if ext[k] <= 0 {
			return
		}
	}
	run := ext[rank-1] * es
	idx := make([]int, rank-1)
	for {
		src, dst := 0, 0
		for k := range rank - 1 {
			src = src*c[k] + idx[k]
			dst = dst*shape[k] + offsets[k] + idx[k]
		}
		src = src * c[rank-1] * es
		dst = (dst*shape[rank-1] + offsets[rank-1]) * es
		copy(out[dst:dst+run], chunk[src:src+run])
		k := rank - 2
		for ; k >= 0; k-- {
			if idx[k]++; idx[k] < ext[k] {
				break
			}
			idx[k] = 0
		}
		if k < 0 {
			return
		}
	}
}

// unfilter undoes the filter pipeline on one stored chunk (in reverse order
// of application, skipping filters set in mask) and checks the result is
// want bytes.
func (d *Dataset) unfilter(data []byte, mask uint32, want int) ([]byte, error) {
	for i := len(d.filters) - 1; i >= 0; i-- {
		if mask&(1<<uint(i)) != 0 {
			continue
		}
		switch fl := d.filters[i]; fl.id {
		case filterDeflate:
			var err error
			if data, err = inflate(data, want); err != nil {
				return nil, fmt.Errorf("deflate: %w", err)
			}
		case filterShuffle:
			data = unshuffle(data, d.DType.Size)
		case filterFletcher32:
			if len(data) < 4 {
				return nil, errors.New("fletcher32: chunk shorter than its checksum")
			}
			data = data[:len(data)-4]
		}
	}
	if len(data) != want {
		return nil, fmt.Errorf("decoded chunk is %d bytes, want %d", len(data), want)
	}
	return data, nil
}

// unshuffle undoes the shuffle filter: the stored chunk holds byte 0 of
// every element, then byte 1 of every element, and so on; trailing bytes
// that do not fill an element are stored as they are.
func unshuffle(data []byte, size int) []byte {
	if size <= 1 {
		return data
	}
	n := len(data) / size
	out := make([]byte, len(data))
	for j := range size {
		for i := range n {
			out[i*size+j] = data[j*n+i]
		}
	}
	copy(out[n*size:], data[n*size:])
	return out
}

// ReadArray reads an integer or float dataset as an array in C order.
func (d *Dataset) ReadArray() (*ndarray.Array, error) {
	var kind ndarray.Kind
	switch {
	case d.DType.Class == Float:
		kind = ndarray.Float
	case d.DType.Class == FixedPoint && d.DType.Signed:
		kind = ndarray.Int
	case d.DType.Class == FixedPoint:
		kind = ndarray.Uint
	default:
		return nil, d.f.wrap(fmt.Errorf("dataset %q: %s elements are not numbers", d.Name, d.DType))
	}
	dt, err := ndarray.NewDType(kind, d.DType.Size, d.DType.BigEndian)
	if err != nil {
		return nil, d.f.wrap(fmt.Errorf("dataset %q: %w", d.Name, err))
	}
	raw, err := d.raw()
	if err != nil {
		return nil, d.f.wrap(fmt.Errorf("dataset %q: %w", d.Name, err))
	}
	a, err := ndarray.New(dt, d.Shape, raw, false)
	if err != nil {
		return nil, d.f.wrap(fmt.Errorf("dataset %q: %w", d.Name, err))
	}
	return a, nil
}

// ReadFloat32 reads a numeric dataset converted to float32, in C order.
func (d *Dataset) ReadFloat32() ([]float32, error) {
	a, err := d.ReadArray()
	if err != nil {
		return nil, err
	}
	return a.Float32s()
}

// ReadInt64 reads an integer dataset converted to int64, in C order.
func (d *Dataset) ReadInt64() ([]int64, error) {
	a, err := d.ReadArray()
	if err != nil {
		return nil, err
	}
	v, err := a.Int64s()
	if err != nil {
		return nil, d.f.wrap(fmt.Errorf("dataset %q: %w", d.Name, err))
	}
	return v, nil
}

// ReadVarBytes reads one byte string per element, in C order: for a
// variable-length sequence of 1-byte integers (h5py.vlen_dtype(np.uint8))
// or variable-length string, the stored bytes; for a fixed-length string
// (numpy |S), the bytes without their padding (trailing NULs or spaces, or
// everything from the first NUL of a NUL-terminated string), as numpy reads
// them; for opaque elements (numpy np.void), all bytes of the element.
// The slices are copies.
func (d *Dataset) ReadVarBytes() ([][]byte, error) {
	out, err := d.readVarBytes()
	if err != nil {
		return nil, d.f.wrap(fmt.Errorf("dataset %q: %w", d.Name, err))
	}
	return out, nil
}

func (d *Dataset) readVarBytes() ([][]byte, error) {
	dt := d.DType
	if dt.Class == VarLen && !dt.VarString && dt.Base.Size != 1 {
		return nil, fmt.Errorf("ReadVarBytes of a sequence of %d-byte elements (%s)", dt.Base.Size, dt)
	}
	if dt.Class != VarLen && dt.Class != String && dt.Class != Opaque {
		return nil, fmt.Errorf("ReadVarBytes of %s elements", dt)
	}
	raw, err := d.raw()
	if err != nil {
		return nil, err
	}
	n := d.NumElements()
	out := make([][]byte, n)
	heaps := map[uint64]map[uint32][]byte{}
	for i := range n {
		el := raw[i*dt.Size : (i+1)*dt.Size]
		switch dt.Class {
		case VarLen:
			r := &reader{f: d.f, b: el}
			length, coll, index := r.u32(), r.addr(), uint32(r.u32())
			if length == 0 {
				out[i] = []byte{}
				continue
			}
			objects, ok := heaps[coll]
			if !ok {
				if objects, err = d.f.globalHeap(coll); err != nil {
					return nil, fmt.Errorf("element %d: %w", i, err)
				}
				heaps[coll] = objects
			}
			obj, ok := objects[index]
			if !ok {
				return nil, fmt.Errorf("element %d: no object %d in the global heap at %#x", i, index, coll)
			}
			if uint64(len(obj)) < length {
				return nil, fmt.Errorf("element %d: %d bytes, but its heap object holds %d", i, length, len(obj))
			}
			out[i] = bytes.Clone(obj[:length])
		case String:
			s := el
			switch dt.Pad {
			case 0:
				s = []byte(cstring(el))
			case 1:
				s = bytes.TrimRight(el, "\x00")
			case 2:
				s = bytes.TrimRight(el, " ")
			}
			out[i] = bytes.Clone(s)
		case Opaque:
			out[i] = bytes.Clone(el)
		}
	}
	return out, nil
}

// globalHeap parses the global heap collection at addr: object index →
// object bytes.
func (f *File) globalHeap(addr uint64) (map[uint32][]byte, error) {
	r := f.at(addr)
	if err := r.signature("GCOL"); err != nil {
		return nil, fmt.Errorf("global heap at %#x: %w", addr, err)
	}
	r.skip(4) // version, reserved
	size := r.length()
	if r.err != nil {
		return nil, fmt.Errorf("global heap at %#x: %w", addr, r.err)
	}
	start := r.p - 8 - f.sizeLengths
	if size > uint64(len(f.data)-start) {
		return nil, fmt.Errorf("global heap at %#x: %w", addr, errTruncated)
	}
	r.b = f.data[:start+int(size)]
	objects := map[uint32][]byte{}
	for len(r.b)-r.p >= 8+f.sizeLengths {
		index := uint32(r.u16())
		r.skip(6) // reference count, reserved
		n := r.length()
		if index == 0 { // free space: the rest of the collection
			break
		}
		if n > uint64(len(r.b)-r.p) {
			return nil, fmt.Errorf("global heap at %#x: object %d of %d bytes runs past the collection", addr, index, n)
		}
		objects[index] = r.bytes(int(n))
		r.skip(min(int((n+7)&^7-n), len(r.b)-r.p)) // padding to 8 bytes
	}
	if r.err != nil {
		return nil, fmt.Errorf("global heap at %#x: %w", addr, r.err)
	}
	return objects, nil
}

// inflate decompresses a zlib stream (HDF5's deflate filter) that must
// yield at most want bytes, so a corrupt chunk cannot expand without limit.
func inflate(data []byte, want int) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, int64(want)+1))
	if err != nil {
		return nil, err
	}
	if len(out) > want {
		return nil, fmt.Errorf("expands past the %d-byte chunk", want)
	}
	return out, nil
}
