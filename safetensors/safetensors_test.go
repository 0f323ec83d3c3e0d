package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"testing"
)

// withHeader returns a file made of the length prefix, header (unpadded)
// and data.
func withHeader(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// sameTensor reports whether a and b hold the same dtype, shape and bytes,
// treating nil and empty slices alike.
func sameTensor(a, b Tensor) bool {
	return a.DType == b.DType && slices.Equal(a.Shape, b.Shape) && bytes.Equal(a.Data, b.Data)
}

func sameFile(t *testing.T, got, want File) {
	t.Helper()
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("got %d tensors, want %d", len(got.Tensors), len(want.Tensors))
	}
	for name, w := range want.Tensors {
		g, ok := got.Tensors[name]
		if !ok {
			t.Fatalf("tensor %q missing", name)
		}
		if !sameTensor(g, w) {
			t.Errorf("tensor %q = %+v, want %+v", name, g, w)
		}
	}
	if len(got.Metadata) != len(want.Metadata) {
		t.Fatalf("metadata = %v, want %v", got.Metadata, want.Metadata)
	}
	for k, v := range want.Metadata {
		if got.Metadata[k] != v {
			t.Errorf("metadata[%q] = %q, want %q", k, got.Metadata[k], v)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		file File
	}{
		{"empty", File{}},
		{"empty with metadata", File{Metadata: map[string]string{"format": "pt", "note": `a "quoted" <b> é`}}},
		{"f32 matrix", File{Tensors: map[string]Tensor{
			"w": Float32s([]int64{2, 3}, []float32{1, -2, 3.5, float32(math.Inf(1)), 0, -0.125}),
		}}},
		{"i64", File{Tensors: map[string]Tensor{
			"ids": Int64s([]int64{3}, []int64{math.MinInt64, -1, math.MaxInt64}),
		}}},
		{"f64 i32 bool u8", File{Tensors: map[string]Tensor{
			"d": {DType: F64, Shape: []int64{1}, Data: binary.LittleEndian.AppendUint64(nil, math.Float64bits(math.Pi))},
			"i": {DType: I32, Shape: []int64{2}, Data: []byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}},
			"b": {DType: BOOL, Shape: []int64{3}, Data: []byte{1, 0, 1}},
			"u": {DType: U8, Shape: []int64{1, 5}, Data: []byte{0, 1, 2, 254, 255}},
		}}},
		{"scalar", File{Tensors: map[string]Tensor{
			"s": Float32s([]int64{}, []float32{42}),
			"n": Int64s(nil, []int64{7}),
		}}},
		{"zero-size tensors", File{Tensors: map[string]Tensor{
			"a": Float32s([]int64{0, 3}, nil),
			"b": Int64s([]int64{2}, []int64{5, 6}),
			"c": {DType: U8, Shape: []int64{4, 0}},
		}}},
		{"metadata and tensors", File{
			Tensors:  map[string]Tensor{"x": Float32s([]int64{1}, []float32{1})},
			Metadata: map[string]string{"epoch": "3"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Encode(&buf, tc.file); err != nil {
				t.Fatalf("Encode: %v", err)
			}
			enc := buf.Bytes()
			n := binary.LittleEndian.Uint64(enc)
			if n%8 != 0 {
				t.Errorf("header length %d is not a multiple of 8", n)
			}
			got, err := Decode(enc)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			sameFile(t, got, tc.file)

			// Encoding is deterministic.
			var again bytes.Buffer
			if err := Encode(&again, got); err != nil {
				t.Fatalf("re-Encode: %v", err)
			}
			if !bytes.Equal(again.Bytes(), enc) {
				t.Errorf("re-encoding differs:\n%q\n%q", again.Bytes(), enc)
			}
		})
	}
}

// knownFile is a tiny file built by hand: one F32 tensor "a" = [1, -2.5].
func knownFile() []byte {
	header := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}` + "  " // 54 bytes + 2 of padding
	b := []byte{56, 0, 0, 0, 0, 0, 0, 0}
	b = append(b, header...)
	return append(b, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0)
}

func TestKnownBytes(t *testing.T) {
	f, err := Decode(knownFile())
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	a, ok := f.Tensors["a"]
	if !ok || len(f.Tensors) != 1 || f.Metadata != nil {
		t.Fatalf("Decode = %+v, want just tensor a", f)
	}
	v, err := a.AsFloat32()
	if err != nil {
		t.Fatalf("AsFloat32: %v", err)
	}
	if !slices.Equal(v, []float32{1, -2.5}) || !slices.Equal(a.Shape, []int64{2}) {
		t.Errorf("a = %v shape %v, want [1 -2.5] shape [2]", v, a.Shape)
	}

	var buf bytes.Buffer
	if err := Encode(&buf, File{Tensors: map[string]Tensor{"a": Float32s([]int64{2}, []float32{1, -2.5})}}); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if !bytes.Equal(buf.Bytes(), knownFile()) {
		t.Errorf("Encode =\n%q\nwant\n%q", buf.Bytes(), knownFile())
	}
}

func TestEncodeOrdersByName(t *testing.T) {
	f := File{Tensors: map[string]Tensor{
		"b": {DType: U8, Shape: []int64{1}, Data: []byte{'B'}},
		"a": {DType: U8, Shape: []int64{2}, Data: []byte{'A', 'A'}},
		"c": {DType: U8, Shape: []int64{1}, Data: []byte{'C'}},
	}}
	var buf bytes.Buffer
	if err := Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	n := binary.LittleEndian.Uint64(out)
	header := string(out[8 : 8+n])
	wantHeader := `{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},` +
		`"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]},` +
		`"c":{"dtype":"U8","shape":[1],"data_offsets":[3,4]}}`
	if strings.TrimRight(header, " ") != wantHeader {
		t.Errorf("header = %q, want %q", header, wantHeader)
	}
	if data := string(out[8+n:]); data != "AABC" {
		t.Errorf("data = %q, want %q", data, "AABC")
	}
}

func TestDecodeMalformed(t *testing.T) {
	f32 := func(offsets string) string {
		return `{"dtype":"F32","shape":[2],"data_offsets":` + offsets + `}`
	}
	eight := make([]byte, 8)
	tests := []struct {
		name  string
		input []byte
		want  string // substring of the error
	}{
		{"empty input", nil, "shorter than the 8-byte"},
		{"7 bytes", []byte{1, 2, 3, 4, 5, 6, 7}, "shorter than the 8-byte"},
		{"header beyond file", append([]byte{100, 0, 0, 0, 0, 0, 0, 0}, "{}"...), "exceeds the 2 bytes"},
		{"absurd header length", binary.LittleEndian.AppendUint64(nil, 1<<62), "exceeds the 104857600-byte limit"},
		{"max uint64 header length", binary.LittleEndian.AppendUint64(nil, math.MaxUint64), "limit"},
		{"truncated JSON", withHeader(`{"a":`, nil), "not valid JSON"},
		{"empty header", withHeader(``, nil), "not valid JSON"},
		{"JSON array", withHeader(`[1,2]`, nil), "not a JSON object"},
		{"JSON null", withHeader(`null`, nil), "not a JSON object"},
		{"JSON string", withHeader(`"x"`, nil), "not a JSON object"},
		{"trailing JSON", withHeader(`{} {}`, nil), "trailing data"},
		{"invalid UTF-8", withHeader("{\"\xff\":1}", nil), "UTF-8"},
		{"duplicate name", withHeader(`{"a":`+f32(`[0,8]`)+`,"a":`+f32(`[0,8]`)+`}`, eight), `duplicate key "a"`},
		{"entry not object", withHeader(`{"a":1}`, nil), `tensor "a": entry is not a JSON object`},
		{"entry null", withHeader(`{"a":null}`, nil), `tensor "a": entry is not a JSON object`},
		{"missing dtype", withHeader(`{"a":{"shape":[2],"data_offsets":[0,8]}}`, eight), `tensor "a": missing dtype`},
		{"missing shape", withHeader(`{"a":{"dtype":"F32","data_offsets":[0,8]}}`, eight), `tensor "a": missing shape`},
		{"missing data_offsets", withHeader(`{"a":{"dtype":"F32","shape":[2]}}`, eight), `tensor "a": missing data_offsets`},
		{"dtype not string", withHeader(`{"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}`, eight), `tensor "a": dtype 4`},
		{"unknown dtype", withHeader(`{"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,8]}}`, eight), `tensor "a": unknown dtype "F8_E4M3"`},
		{"negative dim", withHeader(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, eight), `tensor "a": shape [-2]: dimension 0 is negative`},
		{"fractional dim", withHeader(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}`, eight), `tensor "a": shape [1.5]`},
		{"shape not array", withHeader(`{"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}`, eight), `tensor "a": shape 2`},
		{"shape overflow", withHeader(`{"a":{"dtype":"U8","shape":[4611686018427387904,4],"data_offsets":[0,8]}}`, eight), "overflows"},
		{"one offset", withHeader(`{"a":`+f32(`[8]`)+`}`, eight), `tensor "a": data_offsets [8]: want 2 numbers`},
		{"three offsets", withHeader(`{"a":`+f32(`[0,4,8]`)+`}`, eight), `want 2 numbers`},
		{"decreasing offsets", withHeader(`{"a":`+f32(`[8,0]`)+`}`, eight), `tensor "a": data_offsets [8 0]: want 0 <= begin <= end`},
		{"negative offset", withHeader(`{"a":`+f32(`[-8,0]`)+`}`, eight), `want 0 <= begin <= end`},
		{"string offsets", withHeader(`{"a":`+f32(`["0","8"]`)+`}`, eight), `tensor "a": data_offsets`},
		{"span too short", withHeader(`{"a":`+f32(`[0,4]`)+`}`, eight[:4]), `tensor "a": data_offsets [0 4] span 4 bytes, want 8`},
		{"span too long", withHeader(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}`, eight), `span 8 bytes, want 4`},
		{"offsets past buffer", withHeader(`{"a":`+f32(`[0,8]`)+`}`, eight[:4]), `tensor "a": data_offsets [0 8] lie outside the 4-byte data buffer`},
		{"overlap", withHeader(`{"a":`+f32(`[0,8]`)+`,"b":`+f32(`[4,12]`)+`}`, make([]byte, 12)), `tensor "b" at [4, 12] overlaps tensor "a"`},
		{"same span twice", withHeader(`{"a":`+f32(`[0,8]`)+`,"b":`+f32(`[0,8]`)+`}`, eight), `overlaps`},
		{"gap", withHeader(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, make([]byte, 12)), "bytes [4, 8) are not used"},
		{"gap at start", withHeader(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), "bytes [0, 4) are not used"},
		{"unused tail", withHeader(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, eight), "bytes [4, 8) are not used"},
		{"data but no tensors", withHeader(`{}`, eight[:3]), "bytes [0, 3) are not used"},
		{"metadata values not strings", withHeader(`{"__metadata__":{"k":1}}`, nil), "__metadata__: want an object of strings"},
		{"metadata array", withHeader(`{"__metadata__":["k"]}`, nil), "__metadata__: want an object of strings"},
		{"metadata string", withHeader(`{"__metadata__":"k"}`, nil), "__metadata__: want an object of strings"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Decode(tc.input)
			if err == nil {
				t.Fatalf("Decode = %+v, want error containing %q", f, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		check func(t *testing.T, f File)
	}{
		{"unpadded header and unknown entry fields", withHeader(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":true}}`, []byte{9}),
			func(t *testing.T, f File) {
				if got := f.Tensors["a"].Data; !bytes.Equal(got, []byte{9}) {
					t.Errorf("a = %v, want [9]", got)
				}
			}},
		{"null metadata", withHeader(`{"__metadata__":null}`, nil),
			func(t *testing.T, f File) {
				if f.Metadata != nil || len(f.Tensors) != 0 {
					t.Errorf("got %+v, want an empty file", f)
				}
			}},
		{"tensors listed out of data order", withHeader(`{"z":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2}),
			func(t *testing.T, f File) {
				if f.Tensors["z"].Data[0] != 1 || f.Tensors["a"].Data[0] != 2 {
					t.Errorf("got %+v", f.Tensors)
				}
			}},
		{"zero-size tensor inside the buffer", withHeader(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"e":{"dtype":"F32","shape":[0],"data_offsets":[1,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2}),
			func(t *testing.T, f File) {
				if len(f.Tensors) != 3 || len(f.Tensors["e"].Data) != 0 {
					t.Errorf("got %+v", f.Tensors)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Decode(tc.input)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			tc.check(t, f)
		})
	}
}

func TestDecodedDataCapped(t *testing.T) {
	in := withHeader(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2})
	f, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	a := f.Tensors["a"]
	_ = append(a.Data, 99) // must not overwrite b
	if f.Tensors["b"].Data[0] != 2 {
		t.Errorf("appending to a overwrote b")
	}
}

func TestEncodeInvalid(t *testing.T) {
	tests := []struct {
		name string
		file File
		want string
	}{
		{"short data", File{Tensors: map[string]Tensor{"w": Float32s([]int64{2, 2}, []float32{1, 2, 3})}},
			`tensor "w": data is 12 bytes, want 16`},
		{"long data", File{Tensors: map[string]Tensor{"w": Int64s([]int64{}, []int64{1, 2})}},
			`tensor "w": data is 16 bytes, want 8`},
		{"unknown dtype", File{Tensors: map[string]Tensor{"w": {DType: "F8_E4M3", Shape: []int64{1}, Data: []byte{0, 0}}}},
			`tensor "w": unknown dtype "F8_E4M3"`},
		{"empty dtype", File{Tensors: map[string]Tensor{"w": {Shape: []int64{1}, Data: []byte{0}}}},
			`tensor "w": unknown dtype ""`},
		{"negative dim", File{Tensors: map[string]Tensor{"w": {DType: U8, Shape: []int64{-1}}}},
			`tensor "w": shape [-1]: dimension 0 is negative`},
		{"reserved name", File{Tensors: map[string]Tensor{"__metadata__": {DType: U8, Shape: []int64{1}, Data: []byte{0}}}},
			`reserved`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Encode(&buf, tc.file)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Encode error = %v, want it to contain %q", err, tc.want)
			}
			if buf.Len() != 0 {
				t.Errorf("Encode wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	tests := []struct {
		name    string
		tensor  Tensor
		wantF32 []float32
		wantI64 []int64
		f32Err  bool
		i64Err  bool
	}{
		{"f32", Float32s([]int64{3}, []float32{0.5, -1, 2}), []float32{0.5, -1, 2}, nil, false, true},
		{"i64", Int64s([]int64{2}, []int64{-3, 4}), nil, []int64{-3, 4}, true, false},
		{"f32 scalar", Float32s(nil, []float32{7}), []float32{7}, nil, false, true},
		{"f32 length mismatch", Float32s([]int64{4}, []float32{1}), nil, nil, true, true},
		{"i64 length mismatch", Int64s([]int64{1}, []int64{1, 2}), nil, nil, true, true},
		{"f32 ragged bytes", Tensor{DType: F32, Shape: []int64{1}, Data: []byte{1, 2, 3}}, nil, nil, true, true},
		{"u8", Tensor{DType: U8, Shape: []int64{1}, Data: []byte{1}}, nil, nil, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := tc.tensor.AsFloat32()
			if (err != nil) != tc.f32Err || !slices.Equal(f, tc.wantF32) {
				t.Errorf("AsFloat32 = %v, %v; want %v, error %v", f, err, tc.wantF32, tc.f32Err)
			}
			i, err := tc.tensor.AsInt64()
			if (err != nil) != tc.i64Err || !slices.Equal(i, tc.wantI64) {
				t.Errorf("AsInt64 = %v, %v; want %v, error %v", i, err, tc.wantI64, tc.i64Err)
			}
		})
	}
}

func TestNumElements(t *testing.T) {
	tests := []struct {
		shape []int64
		want  int64
	}{
		{nil, 1},
		{[]int64{}, 1},
		{[]int64{5}, 5},
		{[]int64{2, 3, 4}, 24},
		{[]int64{2, 0, 4}, 0},
	}
	for _, tc := range tests {
		if got := (Tensor{Shape: tc.shape}).NumElements(); got != tc.want {
			t.Errorf("NumElements(%v) = %d, want %d", tc.shape, got, tc.want)
		}
	}
}

func TestFloat32sCopiesShape(t *testing.T) {
	shape := []int64{2}
	tensor := Float32s(shape, []float32{1, 2})
	shape[0] = 9
	if tensor.Shape[0] != 2 {
		t.Errorf("Float32s aliased its shape argument")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(knownFile())
	f.Add(withHeader(`{}`, nil))
	f.Add(withHeader(`{"__metadata__":{"a":"b"}}`, nil))
	f.Add(withHeader(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"I64","shape":[],"data_offsets":[1,9]}}`, make([]byte, 9)))
	f.Add(withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)))
	f.Add(withHeader(`{"a":{"dtype":"BOOL","shape":[0,-1],"data_offsets":[0,0]}}`, nil))
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Decode(data)
		if err != nil {
			return
		}
		// Whatever decodes must encode and decode back to the same file.
		var buf bytes.Buffer
		if err := Encode(&buf, file); err != nil {
			t.Fatalf("Encode of a decoded file: %v", err)
		}
		again, err := Decode(buf.Bytes())
		if err != nil {
			t.Fatalf("Decode of a re-encoded file: %v", err)
		}
		sameFile(t, again, file)
	})
}

func TestToFloat32Widens(t *testing.T) {
	tests := []struct {
		name string
		t    Tensor
		want []float32
	}{
		// binary16: 1.0, −2.0, 65504 (max), 2⁻²⁴ (smallest subnormal), −0, +Inf.
		{"F16", Tensor{DType: F16, Shape: []int64{6}, Data: []byte{0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, 0x00, 0x80, 0x00, 0x7c}},
			[]float32{1, -2, 65504, 1.0 / (1 << 24), float32(math.Copysign(0, -1)), float32(math.Inf(1))}},
		// bfloat16: 1.0, −0.5.
		{"BF16", Tensor{DType: BF16, Shape: []int64{2}, Data: []byte{0x80, 0x3f, 0x00, 0xbf}}, []float32{1, -0.5}},
		{"F64", Tensor{DType: F64, Shape: []int64{1}, Data: binary.LittleEndian.AppendUint64(nil, math.Float64bits(0.1))}, []float32{0.1}},
		{"F32", Float32s([]int64{2}, []float32{3, 4}), []float32{3, 4}},
	}
	for _, tc := range tests {
		got, err := tc.t.ToFloat32()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(tc.want[i]) {
				t.Errorf("%s[%d] = %v, want %v", tc.name, i, got[i], tc.want[i])
			}
		}
	}
	if _, err := (Tensor{DType: I64, Shape: []int64{1}, Data: make([]byte, 8)}).ToFloat32(); err == nil {
		t.Error("ToFloat32 of an I64 tensor succeeded")
	}
	if _, err := (Tensor{DType: F16, Shape: []int64{2}, Data: make([]byte, 3)}).ToFloat32(); err == nil {
		t.Error("ToFloat32 of a short F16 tensor succeeded")
	}
}
