package pickle

import (
	"errors"
	"fmt"

	"bmc/formats/ndarray"
)

// builtinGlobal returns the callable for a known global; fn is nil for a
// class that may only appear as an argument (numpy.ndarray). NumPy 2 moved
// numpy.core to numpy._core; both spellings are accepted.
func builtinGlobal(key string) (fn Func, ok bool) {
	switch key {
	case "_codecs.encode":
		return codecsEncode, true
	case "__builtin__.bytearray", "builtins.bytearray":
		return newBytearray, true
	case "collections.OrderedDict":
		return newOrderedDict, true
	case "numpy.ndarray":
		return nil, true
	case "numpy.dtype":
		return newDType, true
	case "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct":
		return reconstruct, true
	case "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer":
		return fromBuffer, true
	case "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar":
		return newScalar, true
	}
	return nil, false
}

// latin1 encodes s, whose code points must all be below 256, one byte per
// code point: how protocol 2 carries bytes objects from Python 3.
func latin1(s string) ([]byte, error) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, fmt.Errorf("code point %#x does not fit latin-1", r)
		}
		b = append(b, byte(r))
	}
	return b, nil
}

// codecsEncode is _codecs.encode(str, 'latin1').
func codecsEncode(args Tuple) (any, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("want 2 arguments, got %d", len(args))
	}
	s, ok1 := args[0].(string)
	enc, ok2 := args[1].(string)
	if !ok1 || !ok2 || (enc != "latin1" && enc != "latin-1") {
		return nil, fmt.Errorf("only (str, 'latin1') is supported, got (%s, %v)", typeName(args[0]), args[1])
	}
	return latin1(s)
}

// newBytearray is bytearray(), bytearray(bytes) or bytearray(str, 'latin-1').
func newBytearray(args Tuple) (any, error) {
	switch len(args) {
	case 0:
		return []byte{}, nil
	case 1:
		if b, ok := args[0].([]byte); ok {
			return append([]byte(nil), b...), nil
		}
	case 2:
		return codecsEncode(args)
	}
	return nil, fmt.Errorf("unsupported arguments %v", args)
}

// newOrderedDict is collections.OrderedDict(); items follow via SETITEMS.
func newOrderedDict(args Tuple) (any, error) {
	if len(args) != 0 {
		return nil, fmt.Errorf("want no arguments, got %d", len(args))
	}
	return &Dict{}, nil
}

// newDType is numpy.dtype(descr, align, copy), e.g. ('f4', False, True);
// the byte order arrives later through BUILD (setDTypeState).
func newDType(args Tuple) (any, error) {
	if len(args) == 0 {
		return nil, errors.New("no type descriptor")
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("type descriptor is a %s, not a str", typeName(args[0]))
	}
	d, err := ndarray.ParseDescr(s)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// setDTypeState applies numpy.dtype.__setstate__'s state
// (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]).
func setDTypeState(d *ndarray.DType, state any) error {
	t, ok := state.(Tuple)
	if !ok || len(t) < 5 {
		return fmt.Errorf("numpy.dtype state: want a tuple of 8 or 9, got %s", typeName(state))
	}
	if t[2] != nil || t[3] != nil || t[4] != nil {
		return errors.New("numpy.dtype state: structured or subarray dtypes are not supported")
	}
	order, ok := t[1].(string)
	if !ok {
		return fmt.Errorf("numpy.dtype state: byte order is a %s, not a str", typeName(t[1]))
	}
	switch order {
	case "<", "=", "|":
		d.BigEndian = false
	case ">":
		d.BigEndian = d.Size > 1 && d.Kind != ndarray.Object
	default:
		return fmt.Errorf("numpy.dtype state: byte order %q not one of < > = |", order)
	}
	return nil
}

// arrayState is an ndarray from _reconstruct, empty until BUILD gives it
// its state.
type arrayState struct {
	array *ndarray.Array
	built bool
}

// reconstruct is numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b').
func reconstruct(args Tuple) (any, error) {
	if len(args) != 3 {
		return nil, fmt.Errorf("want 3 arguments, got %d", len(args))
	}
	if g, ok := args[0].(*Global); !ok || g.Name != "numpy.ndarray" {
		return nil, fmt.Errorf("class %s is not numpy.ndarray (subclasses are not supported)", typeName(args[0]))
	}
	return &arrayState{array: &ndarray.Array{}}, nil
}

// setState is ndarray.__setstate__: ([version,] shape, dtype, is_fortran, data),
// where data is the raw bytes, or a list of the elements of an object array.
func (a *arrayState) setState(state any) error {
	t, ok := state.(Tuple)
	if ok && len(t) == 5 {
		t = t[1:]
	}
	if !ok || len(t) != 4 {
		return fmt.Errorf("numpy array state: want a tuple of 4 or 5, got %s", typeName(state))
	}
	shape, err := intTuple(t[0])
	if err != nil {
		return fmt.Errorf("numpy array state: shape: %w", err)
	}
	d, ok := t[1].(*ndarray.DType)
	if !ok {
		return fmt.Errorf("numpy array state: dtype is a %s", typeName(t[1]))
	}
	fortran, ok := t[2].(bool)
	if !ok {
		return fmt.Errorf("numpy array state: is_fortran is a %s, not a bool", typeName(t[2]))
	}
	var arr *ndarray.Array
	switch data := t[3].(type) {
	case []byte:
		arr, err = ndarray.New(*d, shape, data, fortran)
	case string:
		arr, err = ndarray.New(*d, shape, []byte(data), fortran)
	case *List:
		arr, err = objectArray(*d, shape, data.Items, fortran)
	default:
		err = fmt.Errorf("data is a %s", typeName(t[3]))
	}
	if err != nil {
		return fmt.Errorf("numpy array state: %w", err)
	}
	*a.array = *arr
	a.built = true
	return nil
}

// objectArray builds a dtype-object array from its pickled elements.
func objectArray(d ndarray.DType, shape []int, items []any, fortran bool) (*ndarray.Array, error) {
	if d.Kind != ndarray.Object {
		return nil, fmt.Errorf("element list given for a %s array", d)
	}
	n, err := ndarray.NumElements(shape)
	if err != nil {
		return nil, err
	}
	if len(items) != n {
		return nil, fmt.Errorf("%d objects for shape %v", len(items), shape)
	}
	if fortran && len(shape) > 1 {
		return nil, errors.New("Fortran-order object arrays are not supported")
	}
	return &ndarray.Array{DType: d, Shape: shape, Objects: items}, nil
}

// fromBuffer is numpy.core.numeric._frombuffer(buf, dtype, shape, order),
// protocol 5's in-band form of an array.
func fromBuffer(args Tuple) (any, error) {
	if len(args) != 4 {
		return nil, fmt.Errorf("want 4 arguments, got %d", len(args))
	}
	buf, ok := args[0].([]byte)
	if !ok {
		return nil, fmt.Errorf("buffer is a %s, not bytes", typeName(args[0]))
	}
	d, ok := args[1].(*ndarray.DType)
	if !ok {
		return nil, fmt.Errorf("dtype is a %s", typeName(args[1]))
	}
	shape, err := intTuple(args[2])
	if err != nil {
		return nil, fmt.Errorf("shape: %w", err)
	}
	order, ok := args[3].(string)
	if !ok || (order != "C" && order != "F") {
		return nil, fmt.Errorf("order %v is not 'C' or 'F'", args[3])
	}
	return ndarray.New(*d, shape, buf, order == "F")
}

// newScalar is numpy.core.multiarray.scalar(dtype, bytes): a NumPy scalar,
// returned as a 0-d array.
func newScalar(args Tuple) (any, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("want 2 arguments, got %d", len(args))
	}
	d, ok := args[0].(*ndarray.DType)
	if !ok {
		return nil, fmt.Errorf("dtype is a %s", typeName(args[0]))
	}
	var raw []byte
	switch b := args[1].(type) {
	case []byte:
		raw = b
	case string: // protocol 2 from Python 2
		raw = []byte(b)
	default:
		return nil, fmt.Errorf("value is a %s; only non-object scalars are supported", typeName(args[1]))
	}
	return ndarray.New(*d, nil, raw, false)
}

// intTuple converts a tuple of non-negative ints (a shape).
func intTuple(v any) ([]int, error) {
	t, ok := v.(Tuple)
	if !ok {
		return nil, fmt.Errorf("want a tuple, got %s", typeName(v))
	}
	out := make([]int, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok || n < 0 || int64(int(n)) != n {
			return nil, fmt.Errorf("dimension %d is %v, not a non-negative int", i, x)
		}
		out[i] = int(n)
	}
	return out, nil
}
