package graph_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"bmc/graph"
	"bmc/internal/onnxcheck"
	"bmc/runtime"
)

// These tests check bmc's files with implementations that are not bmc's:
// ONNX Runtime runs them and onnx.checker (full_check) validates them.

const ortTol = 1e-5

// ortRun loads model bytes in ONNX Runtime, feeds inputs (name → tensor) in
// the order of inNames and returns the outputs, allocated with outShapes.
func ortRun(t *testing.T, model []byte, inNames []string, ins []*runtime.Tensor, outNames []string, outShapes [][]int64) []*runtime.Tensor {
	t.Helper()
	s, err := runtime.NewSession(model, inNames, outNames, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatalf("ONNX Runtime: %v", err)
	}
	defer s.Close()
	outs := make([]*runtime.Tensor, len(outShapes))
	for i, shape := range outShapes {
		outs[i] = newF32(t, shape, nil)
	}
	if err := s.Run(ins, outs); err != nil {
		t.Fatalf("ONNX Runtime run: %v", err)
	}
	return outs
}

func newF32(t *testing.T, shape []int64, vals []float32) *runtime.Tensor {
	t.Helper()
	x, err := runtime.NewFloat32(shape)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	copy(x.F32, vals)
	return x
}

func newI64(t *testing.T, shape []int64, vals []int64) *runtime.Tensor {
	t.Helper()
	x, err := runtime.NewInt64(shape)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	copy(x.I64, vals)
	return x
}

// matrix is a row-major float64 reference tensor.
type matrix [][]float64

func (m matrix) flat() []float64 {
	var out []float64
	for _, r := range m {
		out = append(out, r...)
	}
	return out
}

func rows(vals []float32, r, c int) matrix {
	m := make(matrix, r)
	for i := range m {
		m[i] = make([]float64, c)
		for j := range m[i] {
			m[i][j] = float64(vals[i*c+j])
		}
	}
	return m
}

func matmul(a, b matrix) matrix {
	out := make(matrix, len(a))
	for i := range a {
		out[i] = make([]float64, len(b[0]))
		for j := range out[i] {
			for k := range b {
				out[i][j] += a[i][k] * b[k][j]
			}
		}
	}
	return out
}

func logSoftmaxRow(r []float64) []float64 {
	mx := math.Inf(-1)
	for _, v := range r {
		mx = max(mx, v)
	}
	var s float64
	for _, v := range r {
		s += math.Exp(v - mx)
	}
	out := make([]float64, len(r))
	for i, v := range r {
		out[i] = v - mx - math.Log(s)
	}
	return out
}

func checkClose(t *testing.T, name string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s has %d values, want %d", name, len(got), len(want))
		return
	}
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); !(d <= tol) {
			t.Errorf("%s[%d] = %v, want %v (|diff| %.3g > %g)", name, i, got[i], want[i], d, tol)
		}
	}
}

var (
	ortX      = []float32{0.5, -1, 2, -0.25, 1.5, 0}
	ortW      = []float32{0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8, 0.9, 1.0, -1.1, 0.2}
	ortB      = []float32{0.1, -0.2, 0.3, 0}
	ortLabels = []int64{2, 0}
)

type ortOutput struct {
	name  string
	shape []int64
}

// mixedModel uses MatMul, Gemm, Softmax, LogSoftmax, ReduceSum, ReduceMean,
// Split, Concat, Slice, Pad, Expand, OneHot, Where and Cast. Its weight w is
// bound for good, its bias b is bound as an overridable default.
func mixedModel(t *testing.T) (*graph.Model, []ortOutput) {
	t.Helper()
	g := graph.New("mixed")
	x := g.Input("x", graph.Float32, graph.Shape{2, 3})
	w := g.Input("w", graph.Float32, graph.Shape{3, 4})
	b := g.Input("b", graph.Float32, graph.Shape{4})
	labels := g.Input("labels", graph.Int64, graph.Shape{2})
	if err := g.BindInput(w, graph.Float32Tensor(graph.Shape{3, 4}, ortW), false); err != nil {
		t.Fatal(err)
	}
	if err := g.BindInput(b, graph.Float32Tensor(graph.Shape{4}, ortB), true); err != nil {
		t.Fatal(err)
	}

	mm := g.MatMul(x, w)
	gm := g.Gemm(x, g.Transpose(w, 1, 0), b, false, true, 0.5, 2) // 0.5·x·w + 2b
	lsm := g.LogSoftmax(gm, -1)
	rm := g.ReduceMean(mm, true, -1)
	parts := g.Split(mm, 1, 1, 3)
	cat := g.Concat(1, parts[1], parts[0])
	sl := g.Slice(cat, []int64{-1}, []int64{-100}, []int64{1}, []int64{-2})
	oh := g.OneHot(labels, 4)
	outs := map[string]*graph.Value{
		"sm":  g.Softmax(gm, 1),
		"lsm": lsm,
		"rs":  g.ReduceSum(mm, false, 1),
		"rm":  rm,
		"cat": cat,
		"sl":  sl,
		"pd":  g.Pad(sl, 0, 1, 0, 0),
		"ex":  g.Expand(rm, graph.Shape{2, 3}),
		"oh":  oh,
		"wh":  g.Where(g.Greater(x, g.ConstFloat(0)), x, g.Expand(rm, graph.Shape{2, 3})),
		"ct":  g.Cast(labels, graph.Float32),
		"nll": g.Neg(g.ReduceSum(g.Mul(oh, lsm), false, 1)),
	}
	var order []ortOutput
	for _, name := range []string{"sm", "lsm", "rs", "rm", "cat", "sl", "pd", "ex", "oh", "wh", "ct", "nll"} {
		v := g.Output(name, outs[name])
		order = append(order, ortOutput{name, v.Shape()})
	}
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	return &graph.Model{Graph: g, Meta: map[string]string{"purpose": "test"}}, order
}

// mixedReference computes mixedModel's outputs in float64.
func mixedReference(x, w, b []float32, labels []int64) map[string][]float64 {
	xm, wm := rows(x, 2, 3), rows(w, 3, 4)
	mm := matmul(xm, wm)
	ref := map[string]matrix{}
	for _, name := range []string{"sm", "lsm", "rs", "rm", "cat", "sl", "pd", "ex", "oh", "wh", "ct", "nll"} {
		ref[name] = make(matrix, 2)
	}
	for i := range 2 {
		gm := make([]float64, 4)
		var sum float64
		for j := range 4 {
			gm[j] = 0.5*mm[i][j] + 2*float64(b[j])
			sum += mm[i][j]
		}
		lsm := logSoftmaxRow(gm)
		mean := sum / 4
		cat := []float64{mm[i][1], mm[i][2], mm[i][3], mm[i][0]}
		sl := []float64{cat[3], cat[1]}
		for j := range 4 {
			ref["sm"][i] = append(ref["sm"][i], math.Exp(lsm[j]))
			oh := 0.0
			if int64(j) == labels[i] {
				oh = 1
			}
			ref["oh"][i] = append(ref["oh"][i], oh)
		}
		ref["lsm"][i] = lsm
		ref["rs"][i] = []float64{sum}
		ref["rm"][i] = []float64{mean}
		ref["cat"][i] = cat
		ref["sl"][i] = sl
		ref["pd"][i] = []float64{0, sl[0], sl[1]}
		ref["ex"][i] = []float64{mean, mean, mean}
		for k := range 3 {
			v := xm[i][k]
			if v <= 0 {
				v = mean
			}
			ref["wh"][i] = append(ref["wh"][i], v)
		}
		ref["ct"][i] = []float64{float64(labels[i])}
		ref["nll"][i] = []float64{-lsm[labels[i]]}
	}
	out := map[string][]float64{}
	for k, m := range ref {
		out[k] = m.flat()
	}
	return out
}

func TestMixedModelInONNXRuntime(t *testing.T) {
	m, outputs := mixedModel(t)
	path := filepath.Join(t.TempDir(), "mixed.onnx")
	if err := graph.WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var outNames []string
	var outShapes [][]int64
	for _, o := range outputs {
		outNames = append(outNames, o.name)
		outShapes = append(outShapes, o.shape)
	}
	bOverride := []float32{1, 0, -1, 0.5}
	tests := []struct {
		name  string
		ins   []string
		bias  []float32 // nil: the default bound by BindInput
		wantB []float32
	}{
		{"default bias", []string{"x", "labels"}, nil, ortB},
		{"overridden bias", []string{"x", "labels", "b"}, bOverride, bOverride},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ins := []*runtime.Tensor{newF32(t, []int64{2, 3}, ortX), newI64(t, []int64{2}, ortLabels)}
			if tc.bias != nil {
				ins = append(ins, newF32(t, []int64{4}, tc.bias))
			}
			got := ortRun(t, data, tc.ins, ins, outNames, outShapes)
			want := mixedReference(ortX, ortW, tc.wantB, ortLabels)
			for i, o := range outputs {
				checkClose(t, o.name, got[i].F32, want[o.name], ortTol)
			}
		})
	}

	// w was bound for good: it is no graph input that ORT lets callers feed.
	s, err := runtime.NewSession(data, []string{"x", "labels", "w"}, outNames[:1], runtime.Options{Threads: 1})
	if err == nil {
		defer s.Close()
		ins := []*runtime.Tensor{newF32(t, []int64{2, 3}, ortX), newI64(t, []int64{2}, ortLabels), newF32(t, []int64{3, 4}, ortW)}
		err = s.Run(ins, []*runtime.Tensor{newF32(t, outShapes[0], nil)})
	}
	if err == nil {
		t.Error("ONNX Runtime accepted w, bound with overridable=false, as an input")
	}
}

// dynamicModel is softmax(x·Wᵀ + b) and mean(x·Wᵀ + b) per row, with the
// batch dimension symbolic.
func dynamicModel(t *testing.T) *graph.Model {
	t.Helper()
	g := graph.New("dynamic")
	x := g.Input("x", graph.Float32, graph.Shape{2, 3})
	w := g.Initializer("w", graph.Float32Tensor(graph.Shape{4, 3}, ortW), false)
	b := g.Initializer("b", graph.Float32Tensor(graph.Shape{4}, ortB), false)
	h := g.Gemm(x, w, b, false, true, 1, 1)
	g.Output("y", g.Softmax(h, 1))
	g.Output("m", g.ReduceMean(h, false, 1))
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	return &graph.Model{Graph: g, DynamicDims: map[string]map[int]string{
		"x": {0: "batch"}, "y": {0: "batch"}, "m": {0: "batch"},
	}}
}

func TestDynamicBatchInONNXRuntime(t *testing.T) {
	data, err := graph.Marshal(dynamicModel(t))
	if err != nil {
		t.Fatal(err)
	}
	w := rows(ortW, 4, 3)
	for _, batch := range []int{2, 5} {
		x := make([]float32, batch*3)
		for i := range x {
			x[i] = float32(i%7)/3 - 1
		}
		got := ortRun(t, data, []string{"x"}, []*runtime.Tensor{newF32(t, []int64{int64(batch), 3}, x)},
			[]string{"y", "m"}, [][]int64{{int64(batch), 4}, {int64(batch)}})
		var wantY, wantM []float64
		xm := rows(x, batch, 3)
		for i := range batch {
			h := make([]float64, 4)
			var mean float64
			for j := range 4 {
				h[j] = float64(ortB[j])
				for k := range 3 {
					h[j] += xm[i][k] * w[j][k]
				}
				mean += h[j] / 4
			}
			for _, v := range logSoftmaxRow(h) {
				wantY = append(wantY, math.Exp(v))
			}
			wantM = append(wantM, mean)
		}
		checkClose(t, "y", got[0].F32, wantY, ortTol)
		checkClose(t, "m", got[1].F32, wantM, ortTol)
	}
}

func TestFilesPassONNXChecker(t *testing.T) {
	dir := t.TempDir()
	mixed, _ := mixedModel(t)

	// A graph of many ops whose only input is bound for good.
	g := graph.New("bound")
	x := g.Input("x", graph.Float32, graph.Shape{2, 2})
	if err := g.BindInput(x, graph.Float32Tensor(graph.Shape{2, 2}, []float32{1, 2, 3, 4}), false); err != nil {
		t.Fatal(err)
	}
	y := g.Sqrt(g.Abs(g.Sub(x, g.ConstFloat(2.5))))
	g.Output("y", g.Clip(g.Unsqueeze(g.Squeeze(g.Reshape(y, 1, 4), 0), 0), g.ConstFloat(0), nil))
	g.Output("am", g.ArgMax(x, 1, false))
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}

	files := map[string]*graph.Model{
		"mixed.onnx":   mixed,
		"dynamic.onnx": dynamicModel(t),
		"bound.onnx":   {Graph: g},
	}
	var paths []string
	for name, m := range files {
		p := filepath.Join(dir, name)
		if err := graph.WriteFile(p, m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		paths = append(paths, p)
	}
	if err := onnxcheck.Files(paths...); err != nil {
		t.Fatal(err)
	}
}
