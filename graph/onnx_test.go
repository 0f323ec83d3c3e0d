package graph

import (
	"bytes"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"bmc/graph/onnxpb"
)

// roundTripModel builds a graph that uses many ops, every attribute kind,
// initializers that are and are not graph inputs, a multi-output node and
// nodes of every phase.
func roundTripModel(t *testing.T) *Model {
	t.Helper()
	g := New("roundtrip")
	g.Doc = "a graph for round trips"
	x := g.Input("x", Float32, Shape{2, 3})
	labels := g.Input("labels", Int64, Shape{2})
	b := g.Initializer("b", Float32Tensor(Shape{4}, []float32{0.5, -1, 2, 0}), true)
	w := g.Initializer("w", Float32Tensor(Shape{3, 4}, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}), false)
	steps := g.Initializer("steps", Int64Tensor(Shape{1}, []int64{-1}), false)

	h := g.Gemm(x, w, b, false, false, 0.5, 1) // float attribute
	p := g.Softmax(h, -1)                      // int attribute
	parts := g.Split(p, 1, 1, 3)               // multi-output node
	tr := g.Transpose(parts[1], 1, 0)          // ints attribute
	padded := g.Pad(tr, 0, 1, 0, 0)            // string attribute
	k := g.Constant(Float32Tensor(Shape{2, 2}, []float32{1, -2, 3, -4}))
	// A floats attribute: the IR keeps attributes a rule does not read.
	noted := g.Apply("Identity", []*Value{k}, Attrs{"note": []float32{0.25, -1.5}}, 1)[0]
	// Slice steps from an int64 initializer.
	rev := g.Apply("Slice", []*Value{x, g.ConstInts(-1), g.ConstInts(-100), g.ConstInts(1), steps}, nil, 1)[0]
	oh := g.OneHot(labels, 4)
	loss := g.Neg(g.ReduceMean(g.Mul(oh, g.Log(p)), false, 1))

	g.SetPhase(PhaseBackward)
	grad := g.Sub(p, oh)
	g.SetPhase(PhaseOptimizer)
	pop := g.Scope("sgd")
	upd := g.Sub(h, g.Mul(grad, g.ConstFloat(0.1)))
	pop()
	g.SetPhase(PhaseMethod)
	mask := g.Where(g.Greater(upd, g.ConstFloat(0)), upd, g.Expand(g.ConstFloat(0), Shape{2, 4}))

	g.Output("loss", loss)
	g.Output("head", parts[0])
	g.Output("padded", padded)
	g.Output("noted", noted)
	g.Output("rev", rev)
	g.Output("mask", mask)
	g.Output("bias", b)
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	return &Model{Graph: g, Meta: map[string]string{"dataset": "synth-av", "seed": "7", "empty": ""}}
}

func names(vs []*Value) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Name() + ":" + typeOf(v)
	}
	return out
}

func TestONNXRoundTrip(t *testing.T) {
	m := roundTripModel(t)
	data, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, again) {
		t.Errorf("Marshal(Unmarshal(data)) differs from data (%d vs %d bytes)", len(again), len(data))
	}

	g, h := m.Graph, back.Graph
	if h.Name != g.Name || h.Doc != g.Doc {
		t.Errorf("graph %q (doc %q), want %q (doc %q)", h.Name, h.Doc, g.Name, g.Doc)
	}
	if !maps.Equal(back.Meta, m.Meta) {
		t.Errorf("Meta = %v, want %v", back.Meta, m.Meta)
	}
	if got, want := names(h.Inputs()), names(g.Inputs()); !slices.Equal(got, want) {
		t.Errorf("inputs = %v, want %v", got, want)
	}
	if got, want := names(h.Outputs()), names(g.Outputs()); !slices.Equal(got, want) {
		t.Errorf("outputs = %v, want %v", got, want)
	}

	type init struct {
		name    string
		data    *Tensor
		isInput bool
	}
	inits := func(g *Graph) map[string]init {
		out := map[string]init{}
		for _, in := range g.Initializers() {
			out[in.Value.Name()] = init{in.Value.Name(), in.Data, slices.Contains(g.Inputs(), in.Value)}
		}
		return out
	}
	if got, want := inits(h), inits(g); !reflect.DeepEqual(got, want) {
		t.Errorf("initializers = %+v, want %+v", got, want)
	}
	// Plain initializers are build-time constants; one that is also an
	// input is an overridable default, which shape rules must not fold.
	for _, in := range h.Initializers() {
		isInput := slices.Contains(h.Inputs(), in.Value)
		if (in.Value.Const() != nil) == isInput {
			t.Errorf("initializer %s (input %v) has constant data %v after decoding", in.Value.Name(), isInput, in.Value.Const() != nil)
		}
	}

	if len(h.Nodes()) != len(g.Nodes()) {
		t.Fatalf("%d nodes, want %d", len(h.Nodes()), len(g.Nodes()))
	}
	phases := map[string]bool{}
	for i, want := range g.Nodes() {
		got := h.Nodes()[i]
		if got.Op != want.Op || got.Name != want.Name || got.Phase != want.Phase {
			t.Errorf("node %d is %s %s (%s), want %s %s (%s)", i, got.Op, got.Name, got.Phase, want.Op, want.Name, want.Phase)
		}
		if !maps.EqualFunc(got.Attrs, want.Attrs, func(a, b any) bool { return reflect.DeepEqual(a, b) }) {
			t.Errorf("node %s attrs = %#v, want %#v", want.Name, got.Attrs, want.Attrs)
		}
		if g, w := names(got.Inputs), names(want.Inputs); !slices.Equal(g, w) {
			t.Errorf("node %s inputs = %v, want %v", want.Name, g, w)
		}
		if g, w := names(got.Outputs), names(want.Outputs); !slices.Equal(g, w) {
			t.Errorf("node %s outputs = %v, want %v", want.Name, g, w)
		}
		phases[got.Phase] = true
	}
	for _, p := range []string{PhaseForward, PhaseBackward, PhaseOptimizer, PhaseMethod} {
		if !phases[p] {
			t.Errorf("no decoded node is in phase %s", p)
		}
	}
	kinds := map[reflect.Type]bool{}
	for _, n := range h.Nodes() {
		for _, v := range n.Attrs {
			kinds[reflect.TypeOf(v)] = true
		}
	}
	for _, v := range []any{int64(0), []int64{}, float32(0), []float32{}, "", &Tensor{}} {
		if !kinds[reflect.TypeOf(v)] {
			t.Errorf("no decoded attribute has type %T", v)
		}
	}
}

// TestONNXRoundTripInitializerOrder declares a graph-input initializer after
// one that is not an input, which Decode must not reorder.
func TestONNXRoundTripInitializerOrder(t *testing.T) {
	g := New("order")
	w := g.Initializer("w", Float32Tensor(Shape{2}, []float32{1, 2}), false)
	b := g.Initializer("b", Float32Tensor(Shape{2}, []float32{3, 4}), true)
	g.Output("y", g.Add(w, b))
	data, err := Marshal(&Model{Graph: g})
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range back.Graph.Initializers() {
		got = append(got, in.Value.Name())
	}
	if want := []string{"w", "b"}; !slices.Equal(got, want) {
		t.Errorf("decoded initializers are %v, want %v", got, want)
	}
	again, err := Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, again) {
		t.Errorf("Marshal(Unmarshal(data)) differs from data")
	}
}

func TestPhaseOf(t *testing.T) {
	tests := []struct{ name, want string }{
		{"forward/Relu", PhaseForward},
		{"backward/enc/MatMul", PhaseBackward},
		{"optimizer/sgd/Sub_3", PhaseOptimizer},
		{"method/Where", PhaseMethod},
		{"backward", PhaseForward},
		{"Relu_0", PhaseForward},
		{"custom/Relu", PhaseForward},
		{"Backward/Relu", PhaseForward},
		{"", PhaseForward},
	}
	for _, tc := range tests {
		if got := phaseOf(tc.name); got != tc.want {
			t.Errorf("phaseOf(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestEncodeDynamicDims(t *testing.T) {
	g := New("dyn")
	x := g.Input("x", Float32, Shape{2, 3})
	w := g.Initializer("w", Float32Tensor(Shape{3, 4}, make([]float32, 12)), false)
	h := g.MatMul(x, w)
	g.Output("y", g.Softmax(h, 1))
	g.Output("s", g.ReduceSum(h, false, 1))
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	m := &Model{Graph: g, DynamicDims: map[string]map[int]string{
		"x": {0: "batch"},
		"y": {0: "batch"},
		"s": {0: "batch"},
	}}
	mp, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	dims := func(vi *onnxpb.ValueInfoProto) []string {
		var out []string
		for _, d := range vi.GetType().GetTensorType().GetShape().GetDim() {
			switch v := d.GetValue().(type) {
			case *onnxpb.TensorShapeProto_Dimension_DimParam:
				out = append(out, v.DimParam)
			case *onnxpb.TensorShapeProto_Dimension_DimValue:
				out = append(out, strconv.FormatInt(v.DimValue, 10))
			}
		}
		return out
	}
	gp := mp.GetGraph()
	got := map[string][]string{}
	for _, vi := range append(gp.GetInput(), gp.GetOutput()...) {
		got[vi.GetName()] = dims(vi)
	}
	want := map[string][]string{
		"x": {"batch", "3"},
		"y": {"batch", "4"},
		"s": {"batch"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("declared dims = %v, want %v", got, want)
	}
	if n := len(gp.GetValueInfo()); n != 0 {
		t.Errorf("a model with dynamic dims declares %d intermediate value_info, want none", n)
	}

	// Without DynamicDims every dimension is static and intermediates are declared.
	mp, err = Encode(&Model{Graph: g})
	if err != nil {
		t.Fatal(err)
	}
	if d := dims(mp.GetGraph().GetInput()[0]); !slices.Equal(d, []string{"2", "3"}) {
		t.Errorf("static x dims = %v", d)
	}
	var vis []string
	for _, vi := range mp.GetGraph().GetValueInfo() {
		vis = append(vis, vi.GetName())
	}
	if want := []string{h.Name(), "forward/Constant"}; !slices.Equal(vis, want) {
		t.Errorf("value_info = %v, want %v", vis, want)
	}
}

func TestEncodeHeader(t *testing.T) {
	mp, err := Encode(roundTripModel(t))
	if err != nil {
		t.Fatal(err)
	}
	if mp.GetIrVersion() != IRVersion || IRVersion != 8 {
		t.Errorf("ir_version = %d, want 8", mp.GetIrVersion())
	}
	ops := mp.GetOpsetImport()
	if len(ops) != 1 || ops[0].GetDomain() != "" || ops[0].GetVersion() != 17 {
		t.Errorf("opset_import = %v, want the default domain at 17", ops)
	}
	var keys []string
	for _, e := range mp.GetMetadataProps() {
		keys = append(keys, e.GetKey())
	}
	if want := []string{"dataset", "empty", "seed"}; !slices.Equal(keys, want) {
		t.Errorf("metadata keys = %v, want sorted %v", keys, want)
	}
}

// TestDecodeRejects mutates a valid encoded model and checks the error.
func TestDecodeRejects(t *testing.T) {
	build := func(t *testing.T) *onnxpb.ModelProto {
		g := New("victim")
		x := g.Input("x", Float32, Shape{2, 3})
		w := g.Initializer("w", Float32Tensor(Shape{3, 4}, make([]float32, 12)), false)
		h := g.MatMul(x, w)
		r := g.Reshape(h, 4, 2)
		g.Output("y", g.Relu(r))
		if err := g.Err(); err != nil {
			t.Fatal(err)
		}
		mp, err := Encode(&Model{Graph: g})
		if err != nil {
			t.Fatal(err)
		}
		return mp
	}
	nodeByOp := func(t *testing.T, mp *onnxpb.ModelProto, op string) *onnxpb.NodeProto {
		for _, n := range mp.GetGraph().GetNode() {
			if n.GetOpType() == op {
				return n
			}
		}
		t.Fatalf("no %s node", op)
		return nil
	}
	tests := []struct {
		name   string
		mutate func(t *testing.T, mp *onnxpb.ModelProto)
		want   []string
	}{
		{"opset 13", func(t *testing.T, mp *onnxpb.ModelProto) {
			mp.OpsetImport[0].Version = proto.Int64(13)
		}, []string{"default-domain opset is 13", "opset 17"}},
		{"FLOP count not a number", func(t *testing.T, mp *onnxpb.ModelProto) {
			nodeByOp(t, mp, "Relu").DocString = proto.String(countAsDoc + "many")
		}, []string{"Relu", `doc string "bmc flops: many"`, "FLOP count ≥ 0"}},
		{"FLOP count negative", func(t *testing.T, mp *onnxpb.ModelProto) {
			nodeByOp(t, mp, "Relu").DocString = proto.String(countAsDoc + "-3")
		}, []string{"Relu", "FLOP count ≥ 0"}},
		{"no opset", func(t *testing.T, mp *onnxpb.ModelProto) {
			mp.OpsetImport = nil
		}, []string{"default-domain opset is -1"}},
		{"ir_version 9", func(t *testing.T, mp *onnxpb.ModelProto) {
			mp.IrVersion = proto.Int64(9)
		}, []string{"ir_version is 9", "4..8"}},
		{"ir_version 3", func(t *testing.T, mp *onnxpb.ModelProto) {
			mp.IrVersion = proto.Int64(3)
		}, []string{"ir_version is 3"}},
		{"opset domain", func(t *testing.T, mp *onnxpb.ModelProto) {
			mp.OpsetImport = append(mp.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String("com.microsoft"), Version: proto.Int64(1)})
		}, []string{`domain "com.microsoft" is not supported`}},
		{"node domain", func(t *testing.T, mp *onnxpb.ModelProto) {
			nodeByOp(t, mp, "Relu").Domain = proto.String("com.example")
		}, []string{`domain "com.example" is not supported`, "forward/Relu"}},
		{"input defined later", func(t *testing.T, mp *onnxpb.ModelProto) {
			nodes := mp.Graph.Node
			i := slices.Index(nodes, nodeByOp(t, mp, "MatMul"))
			j := slices.Index(nodes, nodeByOp(t, mp, "Reshape"))
			nodes[i], nodes[j] = nodes[j], nodes[i]
		}, []string{"Reshape forward/Reshape", `input "forward/MatMul" is not defined before it`}},
		{"input undefined", func(t *testing.T, mp *onnxpb.ModelProto) {
			nodeByOp(t, mp, "MatMul").Input[1] = "nowhere"
		}, []string{"MatMul forward/MatMul", `input "nowhere" is not defined before it`}},
		{"output not computed", func(t *testing.T, mp *onnxpb.ModelProto) {
			mp.Graph.Output[0].Name = proto.String("ghost")
		}, []string{"output ghost is not computed by the graph"}},
		{"output shape differs", func(t *testing.T, mp *onnxpb.ModelProto) {
			mp.Graph.Output[0].Type.GetTensorType().Shape.Dim[1].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 3}
		}, []string{"output y is declared float32[4 3] but computes float32[4 2]"}},
		{"output rank differs", func(t *testing.T, mp *onnxpb.ModelProto) {
			tt := mp.Graph.Output[0].Type.GetTensorType()
			tt.Shape.Dim = tt.Shape.Dim[:1]
		}, []string{"output y is declared float32[4] but computes float32[4 2]"}},
		{"output type differs", func(t *testing.T, mp *onnxpb.ModelProto) {
			mp.Graph.Output[0].Type.GetTensorType().ElemType = proto.Int32(int32(Int64))
		}, []string{"output y is declared int64[4 2] but computes float32[4 2]"}},
		{"symbolic input dim", func(t *testing.T, mp *onnxpb.ModelProto) {
			mp.Graph.Input[0].Type.GetTensorType().Shape.Dim[0].Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}
		}, []string{"input x has a symbolic dimension", "static shapes"}},
		{"input without shape", func(t *testing.T, mp *onnxpb.ModelProto) {
			mp.Graph.Input[0].Type.GetTensorType().Shape = nil
		}, []string{"input x: the shape is missing"}},
		{"input of unknown type", func(t *testing.T, mp *onnxpb.ModelProto) {
			mp.Graph.Input[0].Type.GetTensorType().ElemType = proto.Int32(8)
		}, []string{"input x: element type 8 is not supported"}},
		{"initializer raw_data length", func(t *testing.T, mp *onnxpb.ModelProto) {
			tp := mp.Graph.Initializer[0]
			tp.RawData = tp.RawData[:8]
		}, []string{"initializer w", "raw_data has 8 bytes, shape [3 4] needs 48"}},
		{"initializer float_data length", func(t *testing.T, mp *onnxpb.ModelProto) {
			tp := mp.Graph.Initializer[0]
			tp.RawData, tp.FloatData = nil, []float32{1, 2}
		}, []string{"initializer w", "tensor of shape [3 4] needs 12 elements, has 2"}},
		{"initializer external data", func(t *testing.T, mp *onnxpb.ModelProto) {
			mp.Graph.Initializer[0].DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
		}, []string{"initializer w", "external data is not supported"}},
		{"constant raw_data length", func(t *testing.T, mp *onnxpb.ModelProto) {
			a := nodeByOp(t, mp, "Constant").Attribute[0]
			a.T.RawData = append(a.T.RawData, 0)
		}, []string{"attribute value", "raw_data has 17 bytes, shape [2] needs 16"}},
		{"constant breaks reshape", func(t *testing.T, mp *onnxpb.ModelProto) {
			a := nodeByOp(t, mp, "Constant").Attribute[0]
			a.T.RawData[0] = 5 // target [5 2]
		}, []string{"Reshape (node forward/Reshape)", "float32[2 4], int64[2]", "target [5 2] (10 elements) does not match 8 input elements"}},
		{"unknown op", func(t *testing.T, mp *onnxpb.ModelProto) {
			nodeByOp(t, mp, "Relu").OpType = proto.String("Gelu")
		}, []string{"op Gelu is not supported"}},
		{"duplicate output name", func(t *testing.T, mp *onnxpb.ModelProto) {
			nodeByOp(t, mp, "Relu").Output[0] = "x"
		}, []string{`output name "x" is already used`}},
		{"unsupported attribute type", func(t *testing.T, mp *onnxpb.ModelProto) {
			n := nodeByOp(t, mp, "Relu")
			n.Attribute = append(n.Attribute, &onnxpb.AttributeProto{Name: proto.String("g"), Type: onnxpb.AttributeProto_GRAPH.Enum()})
		}, []string{"attribute g has unsupported type GRAPH"}},
		{"no graph", func(t *testing.T, mp *onnxpb.ModelProto) {
			mp.Graph = nil
		}, []string{"the model has no graph"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mp := build(t)
			if _, err := Decode(mp); err != nil {
				t.Fatalf("the unmutated model does not decode: %v", err)
			}
			tc.mutate(t, mp)
			data, err := proto.Marshal(mp)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Unmarshal(data)
			if err == nil {
				t.Fatalf("Unmarshal accepted the model (graph %d nodes)", len(m.Graph.Nodes()))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDecodeAccepts(t *testing.T) {
	g := New("ok")
	x := g.Input("x", Float32, Shape{2, 3})
	g.Output("y", g.Relu(x))
	tests := []struct {
		name   string
		mutate func(mp *onnxpb.ModelProto)
	}{
		{"ai.onnx domain", func(mp *onnxpb.ModelProto) { mp.OpsetImport[0].Domain = proto.String("ai.onnx") }},
		{"ir_version 4", func(mp *onnxpb.ModelProto) { mp.IrVersion = proto.Int64(4) }},
		{"symbolic output dim", func(mp *onnxpb.ModelProto) {
			mp.Graph.Output[0].Type.GetTensorType().Shape.Dim[0].Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "n"}
		}},
		{"unnamed node", func(mp *onnxpb.ModelProto) { mp.Graph.Node[0].Name = nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mp, err := Encode(&Model{Graph: g})
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(mp)
			m, err := Decode(mp)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if out := m.Graph.Outputs(); len(out) != 1 || typeOf(out[0]) != "float32[2 3]" {
				t.Errorf("outputs = %v", names(out))
			}
		})
	}
}

func TestUnmarshalGarbage(t *testing.T) {
	if _, err := Unmarshal([]byte{0xff, 0xff, 0xff}); err == nil || !strings.Contains(err.Error(), "not an ONNX model") {
		t.Errorf("Unmarshal(garbage) error = %v", err)
	}
	if _, err := ReadFile(t.TempDir() + "/missing.onnx"); err == nil {
		t.Error("ReadFile of a missing file succeeded")
	}
}

func TestWriteFileReadFile(t *testing.T) {
	m := roundTripModel(t)
	path := t.TempDir() + "/m.onnx"
	if err := WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	back, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Marshal(m)
	got, err := Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the model read back differs from the one written")
	}

	bad := New("bad")
	bad.MatMul(bad.Input("a", Float32, Shape{2}), bad.Input("b", Float32, Shape{2}))
	if err := WriteFile(path, &Model{Graph: bad}); err == nil || !strings.Contains(err.Error(), "cannot be written") {
		t.Errorf("WriteFile of a failed graph: err = %v", err)
	}
	if _, err := ReadFile(path); err != nil {
		t.Errorf("a failed WriteFile damaged the existing file: %v", err)
	}
}
