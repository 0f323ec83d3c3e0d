package graph

import (
	"fmt"
	"strconv"
	"strings"
)

// DType is a tensor element type. Its values are those of ONNX's
// TensorProto.DataType, so it converts to and from the file format directly.
type DType int32

// The element types bmc graphs use.
const (
	Undefined DType = 0
	Float32   DType = 1
	Uint8     DType = 2
	Int8      DType = 3
	Int32     DType = 6
	Int64     DType = 7
	Bool      DType = 9
	Float64   DType = 11
)

// String returns the lower-case type name, as in "float32".
func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Uint8:
		return "uint8"
	case Int8:
		return "int8"
	case Int32:
		return "int32"
	case Int64:
		return "int64"
	case Bool:
		return "bool"
	case Float64:
		return "float64"
	}
	return "dtype(" + strconv.Itoa(int(d)) + ")"
}

// Size is the number of bytes of one element, 0 for an unknown type.
func (d DType) Size() int {
	switch d {
	case Uint8, Int8, Bool:
		return 1
	case Int32, Float32:
		return 4
	case Int64, Float64:
		return 8
	}
	return 0
}

// IsFloat reports whether d is a floating-point type (one that carries gradients).
func (d DType) IsFloat() bool { return d == Float32 || d == Float64 }

// Shape is a static tensor shape; every dimension is known at build time.
type Shape []int64

// Size is the number of elements (1 for a scalar).
func (s Shape) Size() int64 {
	n := int64(1)
	for _, d := range s {
		n *= d
	}
	return n
}

// Rank is the number of dimensions.
func (s Shape) Rank() int { return len(s) }

// Equal reports whether two shapes are identical.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy that does not share memory with s.
func (s Shape) Clone() Shape {
	if s == nil {
		return Shape{}
	}
	return append(Shape{}, s...)
}

// String formats the shape as [2 3 4].
func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// Tensor is constant data: a Constant node's value or an initializer.
// Exactly one of the typed slices is used, chosen by DType.
type Tensor struct {
	DType   DType
	Shape   Shape
	Float32 []float32
	Int64   []int64
}

// Float32Tensor returns a float32 tensor; it panics never, but Validate
// reports a length that does not match the shape.
func Float32Tensor(shape Shape, v []float32) *Tensor {
	return &Tensor{DType: Float32, Shape: shape.Clone(), Float32: v}
}

// Int64Tensor returns an int64 tensor.
func Int64Tensor(shape Shape, v []int64) *Tensor {
	return &Tensor{DType: Int64, Shape: shape.Clone(), Int64: v}
}

// Validate checks that the data length matches the shape and type.
func (t *Tensor) Validate() error {
	var n int
	switch t.DType {
	case Float32:
		n = len(t.Float32)
	case Int64:
		n = len(t.Int64)
	default:
		return fmt.Errorf("constant tensors of type %v are not supported (want float32 or int64)", t.DType)
	}
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("tensor shape %v has a negative dimension", t.Shape)
		}
	}
	if int64(n) != t.Shape.Size() {
		return fmt.Errorf("tensor of shape %v needs %d elements, has %d", t.Shape, t.Shape.Size(), n)
	}
	return nil
}

// Ints returns the tensor's values as int64 (int64 tensors only).
func (t *Tensor) Ints() ([]int64, bool) {
	if t == nil || t.DType != Int64 {
		return nil, false
	}
	return t.Int64, true
}
