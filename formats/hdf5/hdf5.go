// Package hdf5 is a read-only, pure-Go reader for the HDF5 files h5py writes
// for BalancedAV videos (a dataset "video" holding one encoded JPEG per
// frame) and for plain numeric datasets. It implements the part of the
// format those files use and reports anything else as an unsupported
// feature, naming it and the file.
//
// Supported:
//   - superblock versions 0, 1, 2 and 3 (h5py's default libver 'earliest'
//     writes 0; 'latest' writes 3);
//   - object headers versions 1 and 2, with continuation blocks;
//   - groups as symbol tables (v1 B-tree of symbol-table nodes, local heap)
//     and as compact link messages (hard links);
//   - dataspaces (scalar and simple), datatypes fixed-point (1, 2, 4, 8
//     bytes, either byte order), floating point (2, 4, 8 bytes),
//     fixed-length strings, opaque, and variable-length sequences and
//     strings (global heap collections);
//   - data layouts compact, contiguous, and chunked indexed by a v1 B-tree
//     (layout message version 3) or holding a single chunk (version 4), with
//     the deflate (gzip), shuffle and fletcher32 filters.
//
// Not supported: dense link storage (fractal heaps, groups of more than 8
// links written with libver 'latest'), chunk indexes other than the v1
// B-tree and single chunk (libver 'latest' chunked datasets), compound,
// enum, array, reference and bitfield datatypes, shared (committed)
// datatypes, external and virtual storage, and filters other than the three
// above. Checksums of version-2 structures are not verified.
//
// The whole file is read into memory by Open.
package hdf5

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// signature opens an HDF5 superblock, at offset 0, 512, 1024, 2048, ...
const signature = "\x89HDF\r\n\x1a\n"

// File is an open HDF5 file held in memory.
type File struct {
	name        string // for errors
	data        []byte
	sizeOffsets int    // bytes per address
	sizeLengths int    // bytes per length
	base        uint64 // absolute offset that addresses are relative to
	root        uint64 // object header address of the root group
	eof         uint64 // end-of-file address recorded in the superblock
}

// Open reads the HDF5 file at path and parses its superblock.
func Open(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hdf5: %w", err)
	}
	return FromBytes(path, data)
}

// FromBytes parses an HDF5 file held in data; name identifies it in errors.
func FromBytes(name string, data []byte) (*File, error) {
	f := &File{name: name, data: data}
	if err := f.readSuperblock(); err != nil {
		return nil, f.wrap(err)
	}
	// The library records the file's length; a shorter file lost its tail.
	if end := f.base + f.eof; end < f.base || end > uint64(len(data)) {
		return nil, f.wrap(fmt.Errorf("file truncated: the superblock records %d bytes, the file has %d", end, len(data)))
	}
	return f, nil
}

// wrap prefixes err with the package and file name.
func (f *File) wrap(err error) error {
	return fmt.Errorf("hdf5: %s: %w", f.name, err)
}

// errTruncated is returned when a structure runs past the end of the file.
var errTruncated = errors.New("file truncated or corrupt: structure runs past the end of the file")

// unsupported names a format feature this package does not read.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("unsupported HDF5 feature: %s", fmt.Sprintf(format, args...))
}

// undefined reports whether addr is the all-ones "undefined address".
func (f *File) undefined(addr uint64) bool {
	return addr == ^uint64(0)>>(64-8*f.sizeOffsets)
}

// reader decodes little-endian fields from a byte slice. The first read past
// the end records errTruncated and makes every later read return zeros, so a
// structure is parsed straight through and checked once.
type reader struct {
	f   *File
	b   []byte
	p   int
	err error
}

// at returns a reader positioned at file address addr (relative to the base
// address).
func (f *File) at(addr uint64) *reader {
	r := &reader{f: f, b: f.data}
	abs := addr + f.base
	if abs < addr || abs > uint64(len(f.data)) {
		r.err = errTruncated
		return r
	}
	r.p = int(abs)
	return r
}

// bytes returns the next n bytes (sharing the file's memory).
func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b)-r.p {
		if r.err == nil {
			r.err = errTruncated
		}
		return nil // the caller checks r.err before using the bytes
	}
	b := r.b[r.p : r.p+n]
	r.p += n
	return b
}

func (r *reader) skip(n int) { r.bytes(n) }

// uint reads an n-byte little-endian unsigned integer (n ≤ 8).
func (r *reader) uint(n int) uint64 {
	b := r.bytes(n)
	if r.err != nil {
		return 0
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func (r *reader) u8() int     { return int(r.uint(1)) }
func (r *reader) u16() int    { return int(r.uint(2)) }
func (r *reader) u32() uint64 { return r.uint(4) }

// addr reads a file address; length reads a file length.
func (r *reader) addr() uint64   { return r.uint(r.f.sizeOffsets) }
func (r *reader) length() uint64 { return r.uint(r.f.sizeLengths) }

// signature checks a 4-byte structure signature.
func (r *reader) signature(want string) error {
	got := r.bytes(4)
	if r.err != nil {
		return r.err
	}
	if string(got) != want {
		return fmt.Errorf("corrupt file: want signature %q, got %q", want, got)
	}
	return nil
}

// readSuperblock finds and parses the superblock.
func (f *File) readSuperblock() error {
	off := -1
	for o := 0; o+len(signature) <= len(f.data); o = max(512, 2*o) {
		if string(f.data[o:o+len(signature)]) == signature {
			off = o
			break
		}
	}
	if off < 0 {
		return errors.New("not an HDF5 file: no superblock signature")
	}
	r := &reader{f: f, b: f.data, p: off + len(signature)}
	version := r.u8()
	switch version {
	case 0, 1:
		r.skip(3) // free-space, root symbol table and shared message versions
		r.skip(1)
		f.sizeOffsets, f.sizeLengths = r.u8(), r.u8()
		r.skip(1)
		r.skip(4) // group leaf and internal node K
		r.skip(4) // file consistency flags
		if version == 1 {
			r.skip(4) // indexed storage internal node K, reserved
		}
		if err := f.checkSizes(); err != nil {
			return err
		}
		f.base = r.addr()
		r.addr() // free-space info
		f.eof = r.addr()
		r.addr() // driver info
		// Root group symbol table entry: link name offset, then header address.
		r.addr()
		f.root = r.addr()
	case 2, 3:
		f.sizeOffsets, f.sizeLengths = r.u8(), r.u8()
		r.skip(1) // file consistency flags
		if err := f.checkSizes(); err != nil {
			return err
		}
		f.base = r.addr()
		r.addr() // superblock extension
		f.eof = r.addr()
		f.root = r.addr()
	default:
		return unsupported("superblock version %d", version)
	}
	if r.err != nil {
		return fmt.Errorf("superblock: %w", r.err)
	}
	return nil
}

func (f *File) checkSizes() error {
	for _, s := range []int{f.sizeOffsets, f.sizeLengths} {
		if s != 2 && s != 4 && s != 8 {
			return fmt.Errorf("superblock: size of offsets/lengths %d is not 2, 4 or 8", s)
		}
	}
	return nil
}

// Dataset opens the dataset at a slash-separated path from the root group,
// e.g. "video" or "g/sub/nested".
func (f *File) Dataset(path string) (*Dataset, error) {
	obj, err := f.resolve(path)
	if err != nil {
		return nil, f.wrap(err)
	}
	d, err := f.dataset(path, obj)
	if err != nil {
		return nil, f.wrap(fmt.Errorf("dataset %q: %w", path, err))
	}
	return d, nil
}

// Names lists, sorted, the links of the group at a slash-separated path
// ("" or "/" for the root group).
func (f *File) Names(path string) ([]string, error) {
	obj, err := f.resolve(path)
	if err != nil {
		return nil, f.wrap(err)
	}
	links, err := f.links(obj)
	if err != nil {
		return nil, f.wrap(fmt.Errorf("group %q: %w", path, err))
	}
	names := make([]string, 0, len(links))
	for n := range links {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// resolve follows a slash-separated path of links from the root group and
// returns the object it names.
func (f *File) resolve(path string) (*object, error) {
	obj, err := f.object(f.root)
	if err != nil {
		return nil, fmt.Errorf("root group: %w", err)
	}
	parts := strings.FieldsFunc(path, func(r rune) bool { return r == '/' })
	for i, part := range parts {
		group := "/" + strings.Join(parts[:i], "/")
		links, err := f.links(obj)
		if err != nil {
			return nil, fmt.Errorf("group %q: %w", group, err)
		}
		addr, ok := links[part]
		if !ok {
			return nil, fmt.Errorf("no object %q in group %q", part, group)
		}
		if obj, err = f.object(addr); err != nil {
			return nil, fmt.Errorf("%q: %w", group+"/"+part, err)
		}
	}
	return obj, nil
}

// cstring returns b up to its first NUL.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}
