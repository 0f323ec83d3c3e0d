package graph

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"bmc/graph/onnxpb"
	"bmc/internal/atomicfile"
)

// The ONNX level bmc reads and writes.
const (
	IRVersion = 8
	Opset     = 17
)

// Model is a graph with the model-level fields of an ONNX file.
type Model struct {
	Graph *Graph
	// Meta becomes the file's metadata_props.
	Meta map[string]string
	// DynamicDims names dimensions of graph inputs and outputs to write as
	// symbolic (dim_param) instead of their static size: DynamicDims["x"][0]
	// = "batch" writes dimension 0 of value x as "batch".
	DynamicDims map[string]map[int]string
}

// Encode converts a model to its ONNX protobuf form.
func Encode(m *Model) (*onnxpb.ModelProto, error) {
	g := m.Graph
	if g.err != nil {
		return nil, fmt.Errorf("graph %s cannot be written: %w", g.Name, g.err)
	}
	gp := &onnxpb.GraphProto{Name: proto.String(g.Name)}
	if g.Doc != "" {
		gp.DocString = proto.String(g.Doc)
	}
	valueInfo := func(v *Value, dims map[int]string) *onnxpb.ValueInfoProto {
		shape := &onnxpb.TensorShapeProto{}
		for i, d := range v.shape {
			dim := &onnxpb.TensorShapeProto_Dimension{}
			if p, ok := dims[i]; ok {
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: p}
			} else {
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}
			}
			shape.Dim = append(shape.Dim, dim)
		}
		return &onnxpb.ValueInfoProto{
			Name: proto.String(v.name),
			Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
				ElemType: proto.Int32(int32(v.dtype)), Shape: shape}}},
		}
	}
	for _, v := range g.inputs {
		gp.Input = append(gp.Input, valueInfo(v, m.DynamicDims[v.name]))
	}
	for _, v := range g.outputs {
		gp.Output = append(gp.Output, valueInfo(v, m.DynamicDims[v.name]))
	}
	for _, in := range g.initializers {
		tp, err := encodeTensor(in.Data)
		if err != nil {
			return nil, fmt.Errorf("graph %s: initializer %s: %w", g.Name, in.Value.name, err)
		}
		tp.Name = proto.String(in.Value.name)
		gp.Initializer = append(gp.Initializer, tp)
	}
	isOutput := map[*Value]bool{}
	for _, v := range g.outputs {
		isOutput[v] = true
	}
	dynamic := len(m.DynamicDims) > 0
	for _, n := range g.nodes {
		np := &onnxpb.NodeProto{OpType: proto.String(n.Op), Name: proto.String(n.Name)}
		if n.CountAs != nil {
			np.DocString = proto.String(countAsDoc + strconv.FormatInt(*n.CountAs, 10))
		}
		for _, in := range n.Inputs {
			if in == nil {
				np.Input = append(np.Input, "")
			} else {
				np.Input = append(np.Input, in.name)
			}
		}
		for _, out := range n.Outputs {
			np.Output = append(np.Output, out.name)
			// With symbolic dimensions the static intermediate shapes would
			// contradict the declared ones, so they are left to inference.
			if !isOutput[out] && !dynamic {
				gp.ValueInfo = append(gp.ValueInfo, valueInfo(out, nil))
			}
		}
		names := make([]string, 0, len(n.Attrs))
		for k := range n.Attrs {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			ap, err := encodeAttr(k, n.Attrs[k])
			if err != nil {
				return nil, fmt.Errorf("graph %s: node %s: %w", g.Name, n.Name, err)
			}
			np.Attribute = append(np.Attribute, ap)
		}
		gp.Node = append(gp.Node, np)
	}
	mp := &onnxpb.ModelProto{
		IrVersion:       proto.Int64(IRVersion),
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(Opset)}},
		ProducerName:    proto.String("bmc"),
		ProducerVersion: proto.String("0.1"),
		Graph:           gp,
	}
	keys := make([]string, 0, len(m.Meta))
	for k := range m.Meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		mp.MetadataProps = append(mp.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(m.Meta[k])})
	}
	return mp, nil
}

func encodeTensor(t *Tensor) (*onnxpb.TensorProto, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	tp := &onnxpb.TensorProto{Dims: append([]int64{}, t.Shape...), DataType: proto.Int32(int32(t.DType))}
	switch t.DType {
	case Float32:
		raw := make([]byte, 4*len(t.Float32))
		for i, f := range t.Float32 {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
		}
		tp.RawData = raw
	case Int64:
		raw := make([]byte, 8*len(t.Int64))
		for i, v := range t.Int64 {
			binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
		}
		tp.RawData = raw
	}
	return tp, nil
}

func encodeAttr(name string, v any) (*onnxpb.AttributeProto, error) {
	ap := &onnxpb.AttributeProto{Name: proto.String(name)}
	typ := func(t onnxpb.AttributeProto_AttributeType) *onnxpb.AttributeProto_AttributeType { return &t }
	switch x := v.(type) {
	case int64:
		ap.Type, ap.I = typ(onnxpb.AttributeProto_INT), proto.Int64(x)
	case []int64:
		ap.Type, ap.Ints = typ(onnxpb.AttributeProto_INTS), append([]int64{}, x...)
	case float32:
		ap.Type, ap.F = typ(onnxpb.AttributeProto_FLOAT), proto.Float32(x)
	case []float32:
		ap.Type, ap.Floats = typ(onnxpb.AttributeProto_FLOATS), append([]float32{}, x...)
	case string:
		ap.Type, ap.S = typ(onnxpb.AttributeProto_STRING), []byte(x)
	case *Tensor:
		tp, err := encodeTensor(x)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", name, err)
		}
		ap.Type, ap.T = typ(onnxpb.AttributeProto_TENSOR), tp
	default:
		return nil, fmt.Errorf("attribute %s has unsupported Go type %T", name, v)
	}
	return ap, nil
}

// Marshal encodes a model as ONNX file bytes.
func Marshal(m *Model) ([]byte, error) {
	mp, err := Encode(m)
	if err != nil {
		return nil, err
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(mp)
}

// WriteFile writes a model atomically: a reader never sees half a file.
func WriteFile(path string, m *Model) error {
	data, err := Marshal(m)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.WriteBytes(path, data)
}

// Decode rebuilds a model from its protobuf form, re-running every op's shape
// rule, so a file that bmc could not have written is rejected with the node
// and rule that fail.
func Decode(mp *onnxpb.ModelProto) (*Model, error) {
	if v := mp.GetIrVersion(); v > IRVersion || v < 4 {
		return nil, fmt.Errorf("ir_version is %d, bmc reads 4..%d", v, IRVersion)
	}
	opset := int64(-1)
	for _, o := range mp.GetOpsetImport() {
		if o.GetDomain() != "" && o.GetDomain() != "ai.onnx" {
			return nil, fmt.Errorf("opset_import: domain %q is not supported (only the default domain)", o.GetDomain())
		}
		opset = o.GetVersion()
	}
	if opset != Opset {
		return nil, fmt.Errorf("opset_import: default-domain opset is %d, bmc reads opset %d", opset, Opset)
	}
	gp := mp.GetGraph()
	if gp == nil {
		return nil, fmt.Errorf("the model has no graph")
	}
	g := New(gp.GetName())
	g.Doc = gp.GetDocString()
	m := &Model{Graph: g, Meta: map[string]string{}}
	for _, e := range mp.GetMetadataProps() {
		m.Meta[e.GetKey()] = e.GetValue()
	}
	byName := map[string]*Value{}
	// Initializers in file order; those that are also inputs join the inputs
	// below, in the file's input order.
	for _, tp := range gp.GetInitializer() {
		t, err := decodeTensor(tp)
		if err != nil {
			return nil, fmt.Errorf("initializer %s: %w", tp.GetName(), err)
		}
		byName[tp.GetName()] = g.Initializer(tp.GetName(), t, false)
		if g.err != nil {
			return nil, g.err
		}
	}
	for _, vi := range gp.GetInput() {
		if v, ok := byName[vi.GetName()]; ok {
			v.konst = nil // an overridable default, not a constant
			g.inputs = append(g.inputs, v)
			continue
		}
		dtype, shape, err := decodeValueInfo(vi)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", vi.GetName(), err)
		}
		if slices.Contains(shape, -1) {
			return nil, fmt.Errorf("input %s has a symbolic dimension (%v); bmc graphs have static shapes", vi.GetName(), shape)
		}
		byName[vi.GetName()] = g.Input(vi.GetName(), dtype, shape)
	}
	for i, np := range gp.GetNode() {
		if d := np.GetDomain(); d != "" && d != "ai.onnx" {
			return nil, fmt.Errorf("node %d (%s): domain %q is not supported", i, np.GetName(), d)
		}
		var ins []*Value
		for _, name := range np.GetInput() {
			if name == "" {
				ins = append(ins, nil)
				continue
			}
			v, ok := byName[name]
			if !ok {
				return nil, fmt.Errorf("node %d (%s %s): input %q is not defined before it", i, np.GetOpType(), np.GetName(), name)
			}
			ins = append(ins, v)
		}
		attrs := Attrs{}
		for _, ap := range np.GetAttribute() {
			v, err := decodeAttr(ap)
			if err != nil {
				return nil, fmt.Errorf("node %d (%s %s): %w", i, np.GetOpType(), np.GetName(), err)
			}
			attrs[ap.GetName()] = v
		}
		name := np.GetName()
		if name == "" {
			name = fmt.Sprintf("%s_%d", np.GetOpType(), i)
		}
		outs := g.addNode(np.GetOpType(), ins, attrs, len(np.GetOutput()), name, phaseOf(name), np.GetOutput())
		if g.err != nil {
			return nil, g.err
		}
		if doc, ok := strings.CutPrefix(np.GetDocString(), countAsDoc); ok && len(outs) > 0 {
			flops, err := strconv.ParseInt(doc, 10, 64)
			if err != nil || flops < 0 {
				return nil, fmt.Errorf("node %d (%s %s): doc string %q: want %sN with N a FLOP count ≥ 0", i, np.GetOpType(), name, np.GetDocString(), countAsDoc)
			}
			outs[0].SetCountAs(flops)
		}
		for _, o := range outs {
			byName[o.name] = o
		}
	}
	for _, vi := range gp.GetOutput() {
		v, ok := byName[vi.GetName()]
		if !ok {
			return nil, fmt.Errorf("output %s is not computed by the graph", vi.GetName())
		}
		dtype, shape, err := decodeValueInfo(vi)
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", vi.GetName(), err)
		}
		if dtype != v.dtype || !sameDeclared(shape, v.shape) {
			return nil, fmt.Errorf("output %s is declared %v%v but computes %v%v", vi.GetName(), dtype, shape, v.dtype, v.shape)
		}
		g.outputs = append(g.outputs, v)
	}
	return m, nil
}

// sameDeclared compares a declared shape (−1 for a symbolic dimension) with
// an inferred one.
func sameDeclared(declared, inferred Shape) bool {
	if len(declared) != len(inferred) {
		return false
	}
	for i := range declared {
		if declared[i] >= 0 && declared[i] != inferred[i] {
			return false
		}
	}
	return true
}

// countAsDoc starts the doc string of a node whose FLOPs are set
// (Node.CountAs); ONNX Runtime ignores doc strings.
const countAsDoc = "bmc flops: "

// phaseOf reads the phase a bmc node name starts with.
func phaseOf(nodeName string) string {
	p, _, ok := strings.Cut(nodeName, "/")
	if ok {
		switch p {
		case PhaseForward, PhaseBackward, PhaseOptimizer, PhaseMethod:
			return p
		}
	}
	return PhaseForward
}

func decodeValueInfo(vi *onnxpb.ValueInfoProto) (DType, Shape, error) {
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return 0, nil, fmt.Errorf("only tensor values are supported")
	}
	dtype := DType(tt.GetElemType())
	if dtype.Size() == 0 {
		return 0, nil, fmt.Errorf("element type %d is not supported", tt.GetElemType())
	}
	if tt.GetShape() == nil {
		return 0, nil, fmt.Errorf("the shape is missing (bmc needs static shapes)")
	}
	shape := Shape{}
	for _, d := range tt.GetShape().GetDim() {
		if _, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
			shape = append(shape, d.GetDimValue())
		} else {
			shape = append(shape, -1)
		}
	}
	return dtype, shape, nil
}

func decodeTensor(tp *onnxpb.TensorProto) (*Tensor, error) {
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return nil, fmt.Errorf("external data is not supported")
	}
	t := &Tensor{DType: DType(tp.GetDataType()), Shape: append(Shape{}, tp.GetDims()...)}
	n := int(t.Shape.Size())
	raw := tp.GetRawData()
	switch t.DType {
	case Float32:
		if raw != nil {
			if len(raw) != 4*n {
				return nil, fmt.Errorf("raw_data has %d bytes, shape %v needs %d", len(raw), t.Shape, 4*n)
			}
			t.Float32 = make([]float32, n)
			for i := range t.Float32 {
				t.Float32[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		} else {
			t.Float32 = append([]float32{}, tp.GetFloatData()...)
		}
	case Int64:
		if raw != nil {
			if len(raw) != 8*n {
				return nil, fmt.Errorf("raw_data has %d bytes, shape %v needs %d", len(raw), t.Shape, 8*n)
			}
			t.Int64 = make([]int64, n)
			for i := range t.Int64 {
				t.Int64[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
			}
		} else {
			t.Int64 = append([]int64{}, tp.GetInt64Data()...)
		}
	default:
		return nil, fmt.Errorf("tensor type %v is not supported (float32 and int64 are)", t.DType)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}

func decodeAttr(ap *onnxpb.AttributeProto) (any, error) {
	switch ap.GetType() {
	case onnxpb.AttributeProto_INT:
		return ap.GetI(), nil
	case onnxpb.AttributeProto_INTS:
		return append([]int64{}, ap.GetInts()...), nil
	case onnxpb.AttributeProto_FLOAT:
		return ap.GetF(), nil
	case onnxpb.AttributeProto_FLOATS:
		return append([]float32{}, ap.GetFloats()...), nil
	case onnxpb.AttributeProto_STRING:
		return string(ap.GetS()), nil
	case onnxpb.AttributeProto_TENSOR:
		t, err := decodeTensor(ap.GetT())
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", ap.GetName(), err)
		}
		return t, nil
	}
	return nil, fmt.Errorf("attribute %s has unsupported type %v", ap.GetName(), ap.GetType())
}

// Unmarshal parses ONNX file bytes.
func Unmarshal(data []byte) (*Model, error) {
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, mp); err != nil {
		return nil, fmt.Errorf("not an ONNX model: %w", err)
	}
	return Decode(mp)
}

// ReadFile reads an ONNX file.
func ReadFile(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ReadInitializers reads the initializers of an ONNX file by name, without
// decoding its graph (which may use ops bmc does not know).
func ReadInitializers(path string) (map[string]*Tensor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, mp); err != nil {
		return nil, fmt.Errorf("%s: not an ONNX model: %w", path, err)
	}
	out := map[string]*Tensor{}
	for _, tp := range mp.GetGraph().GetInitializer() {
		t, err := decodeTensor(tp)
		if err != nil {
			return nil, fmt.Errorf("%s: initializer %s: %w", path, tp.GetName(), err)
		}
		out[tp.GetName()] = t
	}
	return out, nil
}
