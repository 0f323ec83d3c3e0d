package graph

// Attrs are a node's ONNX attributes by name. A value is one of int64,
// []int64, float32, []float32, string or *Tensor; the ONNX reader produces
// exactly these types and the op constructors set them.
type Attrs map[string]any

// Int returns an int attribute, or def when it is absent.
func (a Attrs) Int(name string, def int64) int64 {
	if v, ok := a[name].(int64); ok {
		return v
	}
	return def
}

// Ints returns an ints attribute, or nil when it is absent.
func (a Attrs) Ints(name string) []int64 {
	v, _ := a[name].([]int64)
	return v
}

// Float returns a float attribute, or def when it is absent.
func (a Attrs) Float(name string, def float32) float32 {
	if v, ok := a[name].(float32); ok {
		return v
	}
	return def
}

// String returns a string attribute, or def when it is absent.
func (a Attrs) String(name, def string) string {
	if v, ok := a[name].(string); ok {
		return v
	}
	return def
}

// Tensor returns a tensor attribute, or nil when it is absent.
func (a Attrs) Tensor(name string) *Tensor {
	v, _ := a[name].(*Tensor)
	return v
}
