// Package torchpt reads files written by torch.save, the format CREMA-D
// ships its audio filterbanks in, without Python.
//
// Two layouts are understood:
//
//   - the zip format (torch ≥ 1.6 default): <prefix>/data.pkl is a pickle
//     whose tensors refer by persistent id to storages stored raw in
//     <prefix>/data/<key>, with an optional <prefix>/byteorder;
//   - the legacy format (_use_new_zipfile_serialization=False): five pickles
//     one after another (magic number, protocol version, system info, the
//     object, the storage keys), then each storage as an int64 element count
//     and its raw bytes.
//
// The older tar-based format is not supported. Tensors decode as
// *ndarray.Array in C order: views (storage offset, strides, transposes)
// are copied out of their storage. Other values decode as package pickle
// describes; state dicts (OrderedDict) are *pickle.Dict.
package torchpt

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"path"
	"strings"

	"bmc/formats/ndarray"
	"bmc/formats/pickle"
)

// ReadFile decodes the torch.save file at path. Errors name the file.
func ReadFile(path string) (any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("torchpt: %w", err)
	}
	v, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("torchpt: %s: %w", path, err)
	}
	return v, nil
}

// ReadTensor reads a file holding a single tensor, such as a CREMA-D
// filterbank.
func ReadTensor(path string) (*ndarray.Array, error) {
	v, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	a, ok := v.(*ndarray.Array)
	if !ok {
		return nil, fmt.Errorf("torchpt: %s: holds a %T, not a single tensor", path, v)
	}
	return a, nil
}

// ReadTensors reads a file holding a dict (or OrderedDict) of tensors keyed
// by strings, such as a state dict.
func ReadTensors(path string) (map[string]*ndarray.Array, error) {
	v, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	d, ok := v.(*pickle.Dict)
	if !ok {
		return nil, fmt.Errorf("torchpt: %s: holds a %T, not a dict of tensors", path, v)
	}
	out := make(map[string]*ndarray.Array, len(d.Keys))
	for i, k := range d.Keys {
		name, ok := k.(string)
		a, isTensor := d.Values[i].(*ndarray.Array)
		if !ok || !isTensor {
			return nil, fmt.Errorf("torchpt: %s: entry %d (%v) is not a string key with a tensor value", path, i, k)
		}
		out[name] = a
	}
	return out, nil
}

// Decode decodes a whole torch.save file held in data.
func Decode(data []byte) (any, error) {
	var l loader
	var v any
	var err error
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		v, err = l.decodeZip(data)
	case bytes.HasPrefix(data, []byte{0x80, 0x02}):
		v, err = l.decodeLegacy(data)
	default:
		return nil, errors.New("neither a zip nor a legacy torch.save file")
	}
	if err != nil {
		return nil, err
	}
	return l.materialize(v)
}

// storage is one untyped run of elements that tensors view.
type storage struct {
	key   string
	dtype ndarray.DType
	numel int
	data  []byte // numel*dtype.Size bytes once loaded
}

// tensor is a view of a storage, materialized after all storages are read.
type tensor struct {
	storage *storage
	offset  int
	size    []int
	stride  []int
}

// loader holds the storages of one file by key.
type loader struct {
	storages map[string]*storage
	// fetch reads a storage's bytes at persistent-load time (zip format);
	// nil when the bytes follow the pickle (legacy format).
	fetch func(s *storage) error
}

// storageDType maps torch's typed storage classes to element types.
func storageDType(class string) (ndarray.DType, bool) {
	switch class {
	case "torch.FloatStorage":
		return ndarray.DType{Kind: ndarray.Float, Size: 4}, true
	case "torch.DoubleStorage":
		return ndarray.DType{Kind: ndarray.Float, Size: 8}, true
	case "torch.HalfStorage":
		return ndarray.DType{Kind: ndarray.Float, Size: 2}, true
	case "torch.LongStorage":
		return ndarray.DType{Kind: ndarray.Int, Size: 8}, true
	case "torch.IntStorage":
		return ndarray.DType{Kind: ndarray.Int, Size: 4}, true
	case "torch.ShortStorage":
		return ndarray.DType{Kind: ndarray.Int, Size: 2}, true
	case "torch.CharStorage":
		return ndarray.DType{Kind: ndarray.Int, Size: 1}, true
	case "torch.ByteStorage":
		return ndarray.DType{Kind: ndarray.Uint, Size: 1}, true
	case "torch.BoolStorage":
		return ndarray.DType{Kind: ndarray.Bool, Size: 1}, true
	}
	return ndarray.DType{}, false
}

func (l *loader) options() pickle.Options {
	g := map[string]pickle.Func{
		"torch._utils._rebuild_tensor_v2": rebuildTensor,
		"torch._utils._rebuild_tensor":    rebuildTensor,
		"torch._utils._rebuild_parameter": rebuildParameter,
	}
	// Every storage class torch names is admitted, so that an unsupported
	// one (bfloat16, complex, quantized) fails in persistentLoad with a
	// message naming it rather than as an unknown global.
	for _, name := range []string{
		"Float", "Double", "Half", "Long", "Int", "Short", "Char", "Byte", "Bool",
		"BFloat16", "ComplexFloat", "ComplexDouble", "QInt8", "QUInt8", "QInt32",
	} {
		g["torch."+name+"Storage"] = nil
	}
	return pickle.Options{Globals: g, PersistentLoad: l.persistentLoad}
}

// persistentLoad resolves ('storage', StorageClass, key, location, numel
// [, view_metadata]).
func (l *loader) persistentLoad(pid any) (any, error) {
	t, ok := pid.(pickle.Tuple)
	if !ok || len(t) < 5 || t[0] != "storage" {
		return nil, fmt.Errorf("persistent id %v is not a ('storage', …) tuple", pid)
	}
	if len(t) > 5 && t[5] != nil {
		return nil, errors.New("legacy storage views (view_metadata) are not supported")
	}
	cls, ok := t[1].(*pickle.Global)
	if !ok {
		return nil, fmt.Errorf("storage type is a %T", t[1])
	}
	dtype, ok := storageDType(cls.Name)
	if !ok {
		return nil, fmt.Errorf("storage type %s is not supported", cls.Name)
	}
	key, ok1 := t[2].(string)
	numel, ok2 := t[4].(int64)
	if !ok1 || !ok2 || numel < 0 || numel > math.MaxInt/8 {
		return nil, fmt.Errorf("storage key %v or size %v invalid", t[2], t[4])
	}
	if s, ok := l.storages[key]; ok {
		if s.dtype.Kind != dtype.Kind || s.dtype.Size != dtype.Size || s.numel != int(numel) {
			return nil, fmt.Errorf("storage %q used with two types or sizes", key)
		}
		return s, nil
	}
	s := &storage{key: key, dtype: dtype, numel: int(numel)}
	if l.fetch != nil {
		if err := l.fetch(s); err != nil {
			return nil, err
		}
	}
	if l.storages == nil {
		l.storages = map[string]*storage{}
	}
	l.storages[key] = s
	return s, nil
}

// rebuildTensor is torch._utils._rebuild_tensor_v2(storage, storage_offset,
// size, stride, requires_grad, backward_hooks[, metadata]) and the older
// _rebuild_tensor(storage, storage_offset, size, stride).
func rebuildTensor(args pickle.Tuple) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("want at least 4 arguments, got %d", len(args))
	}
	s, ok := args[0].(*storage)
	if !ok {
		return nil, fmt.Errorf("storage is a %T", args[0])
	}
	offset, ok := args[1].(int64)
	if !ok || offset < 0 || offset > int64(s.numel) {
		return nil, fmt.Errorf("storage offset %v outside a storage of %d elements", args[1], s.numel)
	}
	size, err := ints(args[2])
	if err != nil {
		return nil, fmt.Errorf("size: %w", err)
	}
	stride, err := ints(args[3])
	if err != nil {
		return nil, fmt.Errorf("stride: %w", err)
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("size %v and stride %v differ in rank", size, stride)
	}
	return &tensor{storage: s, offset: int(offset), size: size, stride: stride}, nil
}

// rebuildParameter is torch._utils._rebuild_parameter(data, requires_grad,
// backward_hooks): an nn.Parameter, kept as its tensor.
func rebuildParameter(args pickle.Tuple) (any, error) {
	if len(args) < 1 {
		return nil, errors.New("no tensor argument")
	}
	if _, ok := args[0].(*tensor); !ok {
		return nil, fmt.Errorf("data is a %T, not a tensor", args[0])
	}
	return args[0], nil
}

func ints(v any) ([]int, error) {
	t, ok := v.(pickle.Tuple)
	if !ok {
		return nil, fmt.Errorf("want a tuple, got %T", v)
	}
	out := make([]int, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok || n < 0 || int64(int(n)) != n {
			return nil, fmt.Errorf("entry %d is %v, not a non-negative int", i, x)
		}
		out[i] = int(n)
	}
	return out, nil
}

// decodeZip decodes the zip format.
func (l *loader) decodeZip(data []byte) (any, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("zip: %w", err)
	}
	files := map[string]*zip.File{}
	var pkl *zip.File
	for _, f := range zr.File {
		files[f.Name] = f
		if path.Base(f.Name) == "data.pkl" && (pkl == nil || len(f.Name) < len(pkl.Name)) {
			pkl = f
		}
	}
	if pkl == nil {
		return nil, errors.New("zip has no data.pkl entry")
	}
	prefix := path.Dir(pkl.Name)
	bigEndian := false
	if f, ok := files[prefix+"/byteorder"]; ok {
		b, err := readEntry(f, 16)
		if err != nil {
			return nil, err
		}
		switch strings.TrimSpace(string(b)) {
		case "little":
		case "big":
			bigEndian = true
		default:
			return nil, fmt.Errorf("%s: %q is not little or big", f.Name, b)
		}
	}
	l.fetch = func(s *storage) error {
		f, ok := files[prefix+"/data/"+s.key]
		if !ok {
			return fmt.Errorf("storage %s/data/%s missing from the zip", prefix, s.key)
		}
		want := s.numel * s.dtype.Size
		b, err := readEntry(f, want)
		if err != nil {
			return err
		}
		if len(b) != want {
			return fmt.Errorf("%s: %d bytes, want %d (%d elements of %s)", f.Name, len(b), want, s.numel, s.dtype)
		}
		s.data = b
		s.dtype.BigEndian = bigEndian && s.dtype.Size > 1
		return nil
	}
	p, err := readEntry(pkl, int(pkl.UncompressedSize64))
	if err != nil {
		return nil, err
	}
	v, err := pickle.Decode(p, l.options())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkl.Name, err)
	}
	return v, nil
}

// readEntry reads a zip entry, refusing more than limit bytes.
func readEntry(f *zip.File, limit int) ([]byte, error) {
	if f.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d expected", f.Name, f.UncompressedSize64, limit)
	}
	r, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	return b, nil
}

// legacyMagic is the first pickle of a legacy file: the int
// 0x1950a86a20f9469cfc6c.
const legacyMagic = "119547037146038801333356"

// decodeLegacy decodes the legacy (pre-zip) format.
func (l *loader) decodeLegacy(data []byte) (any, error) {
	next := func(what string, opts pickle.Options) (any, error) {
		v, n, err := pickle.DecodeNext(data, opts)
		if err != nil {
			return nil, fmt.Errorf("%s pickle: %w", what, err)
		}
		data = data[n:]
		return v, nil
	}
	magic, err := next("magic number", pickle.Options{})
	if err != nil {
		return nil, err
	}
	if m, ok := magic.(interface{ String() string }); !ok || m.String() != legacyMagic {
		return nil, fmt.Errorf("magic number %v is not torch's", magic)
	}
	if proto, err := next("protocol version", pickle.Options{}); err != nil {
		return nil, err
	} else if proto != int64(1001) {
		return nil, fmt.Errorf("protocol version %v, want 1001", proto)
	}
	info, err := next("system info", pickle.Options{})
	if err != nil {
		return nil, err
	}
	bigEndian := false
	if d, ok := info.(*pickle.Dict); ok {
		if le, ok := d.Get("little_endian"); ok && le == false {
			bigEndian = true
		}
	}
	v, err := next("object", l.options())
	if err != nil {
		return nil, err
	}
	keys, err := next("storage keys", pickle.Options{})
	if err != nil {
		return nil, err
	}
	list, ok := keys.(*pickle.List)
	if !ok {
		return nil, fmt.Errorf("storage keys are a %T, not a list", keys)
	}
	for _, k := range list.Items {
		key, _ := k.(string)
		s, ok := l.storages[key]
		if !ok {
			return nil, fmt.Errorf("storage key %v not used by the object", k)
		}
		if len(data) < 8 {
			return nil, fmt.Errorf("storage %s: truncated before its size", key)
		}
		numel := binary.LittleEndian.Uint64(data)
		if bigEndian {
			numel = binary.BigEndian.Uint64(data)
		}
		if numel != uint64(s.numel) {
			return nil, fmt.Errorf("storage %s: %d elements on file, %d in the object", key, numel, s.numel)
		}
		n := s.numel * s.dtype.Size
		if len(data)-8 < n {
			return nil, fmt.Errorf("storage %s: truncated: %d of %d bytes", key, len(data)-8, n)
		}
		s.data, data = data[8:8+n], data[8+n:]
		s.dtype.BigEndian = bigEndian && s.dtype.Size > 1
	}
	for key, s := range l.storages {
		if s.data == nil {
			return nil, fmt.Errorf("storage %s: no data after the key list", key)
		}
	}
	return v, nil
}

// maxExpanded bounds the elements of a tensor that views more elements than
// its storage holds (an expanded, stride-0 view), so a corrupt size cannot
// make the reader allocate without limit.
const maxExpanded = 1 << 20

// materialize replaces every tensor view in v with a C-order array copied
// from its storage. A tensor reached twice becomes one array.
func (l *loader) materialize(v any) (any, error) {
	done := map[*tensor]*ndarray.Array{}
	var walk func(v any) (any, error)
	walk = func(v any) (any, error) {
		switch v := v.(type) {
		case *tensor:
			if a, ok := done[v]; ok {
				return a, nil
			}
			a, err := v.array()
			if err != nil {
				return nil, err
			}
			done[v] = a
			return a, nil
		case *pickle.Dict:
			for i := range v.Values {
				x, err := walk(v.Values[i])
				if err != nil {
					return nil, fmt.Errorf("dict entry %v: %w", v.Keys[i], err)
				}
				v.Values[i] = x
			}
		case *pickle.List:
			for i := range v.Items {
				x, err := walk(v.Items[i])
				if err != nil {
					return nil, fmt.Errorf("list item %d: %w", i, err)
				}
				v.Items[i] = x
			}
		case pickle.Tuple:
			for i := range v {
				x, err := walk(v[i])
				if err != nil {
					return nil, fmt.Errorf("tuple item %d: %w", i, err)
				}
				v[i] = x
			}
		case *storage:
			return nil, fmt.Errorf("bare storage %q outside a tensor is not supported", v.key)
		}
		return v, nil
	}
	return walk(v)
}

// array copies the view out of its storage in C order.
func (t *tensor) array() (*ndarray.Array, error) {
	s := t.storage
	n, err := ndarray.NumElements(t.size)
	if err != nil {
		return nil, err
	}
	if n > s.numel && n > maxExpanded {
		return nil, fmt.Errorf("tensor of shape %v views %d elements of a %d-element storage", t.size, n, s.numel)
	}
	if n > 0 {
		last := uint64(t.offset) // highest storage index the view reaches
		for k, sz := range t.size {
			hi, lo := bits.Mul64(uint64(sz-1), uint64(t.stride[k]))
			if hi != 0 || lo > uint64(s.numel) {
				return nil, fmt.Errorf("tensor of shape %v strides %v runs past its %d-element storage", t.size, t.stride, s.numel)
			}
			last += lo
		}
		if last >= uint64(s.numel) {
			return nil, fmt.Errorf("tensor of shape %v, offset %d, strides %v runs past its %d-element storage",
				t.size, t.offset, t.stride, s.numel)
		}
	}
	es := s.dtype.Size
	out := make([]byte, n*es)
	idx := make([]int, len(t.size))
	src := t.offset
	for i := range n {
		copy(out[i*es:(i+1)*es], s.data[src*es:(src+1)*es])
		for k := len(idx) - 1; k >= 0; k-- { // next C-order index
			idx[k]++
			src += t.stride[k]
			if idx[k] < t.size[k] {
				break
			}
			src -= idx[k] * t.stride[k]
			idx[k] = 0
		}
	}
	return ndarray.New(s.dtype, t.size, out, false)
}
