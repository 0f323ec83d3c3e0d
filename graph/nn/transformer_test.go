package nn_test

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/graph"
	"bmc/graph/nn"
	"bmc/internal/onnxcheck"
	"bmc/runtime"
)

// transformerFixture is one file written by tools/fixtures/transformer/make.py:
// a PyTorch encoder's eval-mode output for formula weights and a formula
// input, and its state_dict keys at the small and the full configuration.
type transformerFixture struct {
	Kind        string     `json:"kind"`
	InputShape  []int64    `json:"input_shape"`
	OutputShape []int64    `json:"output_shape"`
	Output      []float64  `json:"output"`
	Keys        []keyShape `json:"keys"`
	FullKeys    []keyShape `json:"full_keys"`
}

type keyShape struct {
	Name  string  `json:"name"`
	Shape []int64 `json:"shape"`
}

func readFixture(t *testing.T, kind string) transformerFixture {
	t.Helper()
	path := filepath.Join("testdata", "transformer", kind+".json")
	var f transformerFixture
	readJSON(t, path, &f)
	if f.Kind != kind || len(f.Keys) == 0 || len(f.Output) == 0 {
		t.Fatalf("%s: kind %q, %d keys, %d outputs: not a %s fixture", path, f.Kind, len(f.Keys), len(f.Output), kind)
	}
	return f
}

// backboneCase is one encoder at the fixture's small configuration and at
// its full size.
type backboneCase struct {
	name   string
	kind   string
	sample graph.Shape // one sample's shape when not the fixture's

	options     nn.Options
	full        nn.Options
	fullShape   graph.Shape // one sample at full size
	tokens      bool        // int64 token ids instead of floats
	vocab       int64
	description string
}

func backboneCases() []backboneCase {
	return []backboneCase{
		{kind: "transformer", description: "CMU-MOSEI transformer, d_model 32, 2 heads, ff 48, 2 layers",
			options: nn.Options{"d_model": 32, "heads": 2, "ff": 48, "layers": 2},
			full:    nil, fullShape: graph.Shape{50, 74}},
		{kind: "vit_b_16", description: "ViT, image 32, patch 16, width 32, 2 layers, 2 heads, MLP 64",
			options: nn.Options{"width": 32, "layers": 2, "heads": 2, "mlp": 64},
			full:    nil, fullShape: graph.Shape{3, 224, 224}},
		{name: "vit_b_16/clip", kind: "vit_b_16", description: "ViT on a one-frame clip (3, 1, 32, 32)", sample: graph.Shape{3, 1, 32, 32},
			options: nn.Options{"width": 32, "layers": 2, "heads": 2, "mlp": 64},
			full:    nil, fullShape: graph.Shape{3, 1, 224, 224}},
		{kind: "bert", description: "BERT text encoder, vocab 50, hidden 32, 2 layers, 2 heads, ff 64, 8 tokens, out 24",
			options: nn.Options{"vocab": 50, "hidden": 32, "layers": 2, "heads": 2, "ff": 64, "max_len": 64, "out": 24},
			full:    nil, fullShape: graph.Shape{1, 40}, tokens: true, vocab: 50},
	}
}

func (tc backboneCase) caseName() string {
	if tc.name != "" {
		return tc.name
	}
	return tc.kind
}

// sampleShape is one sample's input shape.
func (tc backboneCase) sampleShape(f transformerFixture) graph.Shape {
	if tc.sample != nil {
		return tc.sample
	}
	return f.InputShape[1:]
}

// modelOf wraps one encoder in a two-class model with modality "x".
func modelOf(t *testing.T, kind string, opts nn.Options, shape graph.Shape) *nn.Model {
	t.Helper()
	m, err := nn.New(nn.ModelSpec{
		Modalities: []nn.ModalitySpec{{Name: "x", Shape: shape, Encoder: nn.EncoderSpec{Kind: kind, Options: opts}}},
		Classes:    2, Fusion: nn.FusionConcat,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// encoderKeys are the modality's parameter names without the model's prefix.
func encoderKeys(m *nn.Model) []keyShape {
	var out []keyShape
	for _, p := range m.Params() {
		if p.Modality == "x" {
			out = append(out, keyShape{Name: strings.TrimPrefix(p.Name, nn.EncoderPrefix("x")), Shape: p.Shape})
		}
	}
	return out
}

func sameKeys(t *testing.T, what string, got, want []keyShape) {
	t.Helper()
	n := max(len(got), len(want))
	for i := range n {
		var g, w keyShape
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g.Name != w.Name || !slices.Equal(g.Shape, w.Shape) {
			t.Errorf("%s key %d: bmc %s %v, PyTorch %s %v", what, i, g.Name, g.Shape, w.Name, w.Shape)
		}
	}
}

func TestBackboneKeysMatchPyTorch(t *testing.T) {
	for _, tc := range backboneCases() {
		t.Run(tc.caseName(), func(t *testing.T) {
			f := readFixture(t, tc.kind)
			sameKeys(t, "small", encoderKeys(modelOf(t, tc.kind, tc.options, tc.sampleShape(f))), f.Keys)
			sameKeys(t, "full", encoderKeys(modelOf(t, tc.kind, tc.full, tc.fullShape)), f.FullKeys)
		})
	}
}

// formulaWeight is make.py's weight formula: tensor k, flat index i.
func formulaWeight(k, i int) float32 { return float32(0.3 * math.Sin(0.37*float64(i)+float64(k))) }

// TestBackbonesMatchPyTorch runs each encoder in evaluation mode on ONNX
// Runtime with make.py's formula weights and input and compares the
// features with PyTorch's.
func TestBackbonesMatchPyTorch(t *testing.T) {
	for _, tc := range backboneCases() {
		t.Run(tc.caseName(), func(t *testing.T) {
			f := readFixture(t, tc.kind)
			sample := tc.sampleShape(f)
			m := modelOf(t, tc.kind, tc.options, sample)
			g := graph.New(tc.kind)
			b := m.GraphInputs(g)
			dtype := graph.Float32
			if tc.tokens {
				dtype = graph.Int64
			}
			x := g.Input("x", dtype, append(graph.Shape{f.InputShape[0]}, sample...))
			out, err := m.Forward(g, b, map[string]*graph.Value{"x": x}, nn.Eval)
			if err != nil {
				t.Fatal(err)
			}
			g.Output("features", out.Features["x"])
			g.Prune()
			if err := g.Err(); err != nil {
				t.Fatal(err)
			}
			data, err := graph.Marshal(&graph.Model{Graph: g})
			if err != nil {
				t.Fatal(err)
			}
			index := map[string]int{}
			for k, key := range f.Keys {
				index[nn.EncoderPrefix("x")+key.Name] = k
			}
			var names []string
			var ins []*runtime.Tensor
			for _, v := range g.Inputs() {
				names = append(names, v.Name())
				switch k, ok := index[v.Name()]; {
				case v == x && tc.tokens:
					ids := make([]int64, v.Shape().Size())
					for i := range ids {
						ids[i] = (7*int64(i) + 3) % tc.vocab
					}
					ins = append(ins, int64Tensor(t, v.Shape(), ids))
				case v == x:
					vals := make([]float32, v.Shape().Size())
					for i := range vals {
						vals[i] = float32(math.Sin(0.13*float64(i) + 0.5))
					}
					ins = append(ins, tensor(t, v.Shape(), vals))
				case ok:
					vals := make([]float32, v.Shape().Size())
					for i := range vals {
						vals[i] = formulaWeight(k, i)
					}
					ins = append(ins, tensor(t, v.Shape(), vals))
				case strings.HasPrefix(v.Name(), "fusion_module."):
					ins = append(ins, tensor(t, v.Shape(), nil)) // unused: the graph ends at the features
				default:
					t.Fatalf("graph input %s is neither the data nor a parameter", v.Name())
				}
			}
			y := tensor(t, f.OutputShape, nil)
			s, err := runtime.NewSession(data, names, []string{"features"}, runtime.Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Run(ins, []*runtime.Tensor{y}); err != nil {
				t.Fatal(err)
			}
			if len(y.F32) != len(f.Output) {
				t.Fatalf("%d features, PyTorch gives %d", len(y.F32), len(f.Output))
			}
			scale := 0.0
			for _, w := range f.Output {
				scale = max(scale, math.Abs(w))
			}
			worst := 0.0
			for i, w := range f.Output {
				worst = max(worst, math.Abs(float64(y.F32[i])-w)/scale)
			}
			t.Logf("%s: max |bmc − PyTorch| / max|PyTorch| = %.2g over %d features", tc.description, worst, len(f.Output))
			if worst > 1e-4 {
				t.Errorf("features differ from PyTorch's by %.3g relative (tolerance 1e-4); first values %v vs %v", worst, y.F32[:4], f.Output[:4])
			}
		})
	}
}

func int64Tensor(t *testing.T, shape graph.Shape, vals []int64) *runtime.Tensor {
	t.Helper()
	x, err := runtime.NewInt64(shape)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	copy(x.I64, vals)
	return x
}

// TestBackboneParamsAllGetGradients differentiates Σ features⊙R of each
// encoder at its small size in training mode (dropout masks fed as a fixed
// pattern of kept and dropped elements) with respect to every parameter,
// runs the graph from the initial values and checks that each parameter's
// gradient is nonzero; the ONNX checker checks every graph. The one exception is the key bias of attention: adding a
// constant to every key's score leaves the softmax unchanged, so its
// gradient vanishes (in PyTorch too). BERT's [PAD] embedding row must get
// no gradient.
func TestBackboneParamsAllGetGradients(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for _, tc := range backboneCases() {
		t.Run(tc.caseName(), func(t *testing.T) {
			f := readFixture(t, tc.kind)
			m := modelOf(t, tc.kind, trainOptions(tc.options), tc.sampleShape(f))
			g := graph.New(tc.kind)
			b := m.GraphInputs(g)
			dtype := graph.Float32
			if tc.tokens {
				dtype = graph.Int64
			}
			x := g.Input("x", dtype, append(graph.Shape{f.InputShape[0]}, tc.sampleShape(f)...))
			out, err := m.Forward(g, b, map[string]*graph.Value{"x": x}, nn.Train)
			if err != nil {
				t.Fatal(err)
			}
			feat := out.Features["x"]
			proj := g.Input("proj", graph.Float32, feat.Shape())
			loss := g.ReduceSum(g.Mul(feat, proj), false)
			var params []nn.Param
			var wrt []*graph.Value
			for _, p := range m.Params() {
				if p.Modality == "x" {
					params = append(params, p)
					wrt = append(wrt, b.Params[p.Name])
				}
			}
			grads, err := compile.Gradients(g, loss, wrt)
			if err != nil {
				t.Fatal(err)
			}
			var outNames []string
			var outs []*runtime.Tensor
			for i, d := range grads {
				name := "grad/" + params[i].Name
				g.Output(name, d)
				outNames = append(outNames, name)
				outs = append(outs, tensor(t, params[i].Shape, nil))
			}
			g.Prune()
			data, err := graph.Marshal(&graph.Model{Graph: g})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, strings.ReplaceAll(tc.caseName(), "/", "_")+".onnx")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, path)
			init := m.InitValues(1)
			var names []string
			var ins []*runtime.Tensor
			randoms := 0
			for _, v := range g.Inputs() {
				names = append(names, v.Name())
				n := v.Shape().Size()
				switch vals, ok := init[v.Name()]; {
				case ok:
					ins = append(ins, tensor(t, v.Shape(), vals))
				case v == x && tc.tokens:
					// Every 4th token is [PAD] (id 0), whose embedding row gets no gradient.
					ids := make([]int64, n)
					for i := range ids {
						if i%4 != 3 {
							ids[i] = (5*int64(i) + 1) % tc.vocab
						}
					}
					ins = append(ins, int64Tensor(t, v.Shape(), ids))
				case strings.HasPrefix(v.Name(), "random/"):
					// A dropout mask with p = 0.1: every 10th element dropped.
					randoms++
					vals := make([]float32, n)
					for i := range vals {
						if i%10 != 3 {
							vals[i] = 1 / 0.9
						}
					}
					ins = append(ins, tensor(t, v.Shape(), vals))
				default: // the data and the projection
					vals := make([]float32, n)
					for i := range vals {
						vals[i] = float32(math.Sin(0.7*float64(i) + float64(len(names))))
					}
					ins = append(ins, tensor(t, v.Shape(), vals))
				}
			}
			if randoms == 0 {
				t.Error("the training-mode forward has no dropout mask")
			}
			s, err := runtime.NewSession(data, names, outNames, runtime.Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Run(ins, outs); err != nil {
				t.Fatal(err)
			}
			norms := make([]float64, len(outs))
			largest := 0.0
			for i, o := range outs {
				for _, v := range o.F32 {
					norms[i] = max(norms[i], math.Abs(float64(v)))
				}
				largest = max(largest, norms[i])
			}
			for i, p := range params {
				vanishes := strings.HasSuffix(p.Name, ".key.bias")
				switch {
				case vanishes && norms[i] > 1e-5*largest:
					t.Errorf("%s: max |gradient| %.3g, want ≈ 0 (softmax ignores a key bias)", p.Name, norms[i])
				case !vanishes && norms[i] == 0:
					t.Errorf("%s gets no gradient", p.Name)
				}
			}
			for i, p := range params {
				if strings.HasSuffix(p.Name, "word_embeddings.weight") {
					for j, v := range outs[i].F32[:p.Shape[1]] {
						if v != 0 {
							t.Errorf("%s[0][%d] (the [PAD] row) has gradient %v, want 0", p.Name, j, v)
						}
					}
				}
			}
			t.Logf("%d parameters, %d dropout masks; largest gradient element %.3g", len(params), randoms, largest)
		})
	}
	if err := onnxcheck.Files(paths...); err != nil {
		t.Fatal(err)
	}
}

// trainOptions sets every dropout of a small configuration to 0.1 so the
// training-mode graph has dropout masks (ViT's default is 0).
func trainOptions(o nn.Options) nn.Options {
	out := nn.Options{}
	for k, v := range o {
		out[k] = v
	}
	out["dropout"] = 0.1
	return out
}

func TestBackboneSpecErrors(t *testing.T) {
	tests := []struct {
		name  string
		kind  string
		opts  nn.Options
		out   int64
		shape graph.Shape
		want  string
	}{
		{"unknown option", "transformer", nn.Options{"depth": 2}, 0, graph.Shape{5, 6}, `encoder transformer: unknown option "depth" (valid: d_model, heads, ff, layers, dropout)`},
		{"heads do not divide", "transformer", nn.Options{"d_model": 30, "heads": 4}, 0, graph.Shape{5, 6}, "d_model 30 is not divisible by heads 4"},
		{"fractional layers", "transformer", nn.Options{"layers": 1.5}, 0, graph.Shape{5, 6}, "option layers is 1.5, want a positive integer"},
		{"dropout 1", "transformer", nn.Options{"dropout": 1}, 0, graph.Shape{5, 6}, "option dropout is 1, want a probability in [0, 1)"},
		{"out disagrees", "transformer", nil, 512, graph.Shape{5, 6}, "out is 512 but the features are 1024 wide (set option d_model instead)"},
		{"transformer flat input", "transformer", nil, 0, graph.Shape{30}, "input shape [30], want (L, d_in)"},
		{"vit two frames", "vit_b_16", nil, 0, graph.Shape{3, 2, 224, 224}, "input shape [3 2 224 224], want (3, H, W) or (3, 1, H, W)"},
		{"vit grey image", "vit_b_16", nil, 0, graph.Shape{1, 224, 224}, "want (3, H, W)"},
		{"vit patch size", "vit_b_16", nil, 0, graph.Shape{3, 200, 224}, "image 200×224 is not a multiple of the patch size 16"},
		{"vit attention dropout", "vit_b_16", nn.Options{"attention_dropout": -0.1}, 0, graph.Shape{3, 32, 32}, "option attention_dropout is -0.1"},
		{"vit out", "vit_b_16", nn.Options{"width": 64, "heads": 4}, 768, graph.Shape{3, 32, 32}, "out is 768 but the features are 64 wide (set option width instead)"},
		{"bert too long", "bert", nil, 0, graph.Shape{1, 600}, "600 tokens exceed max_len 512"},
		{"bert two rows", "bert", nil, 0, graph.Shape{2, 40}, "input shape [2 40], want token ids (L) or (1, L)"},
		{"bert proj dropout", "bert", nn.Options{"proj_dropout": 1.5}, 0, graph.Shape{40}, "option proj_dropout is 1.5"},
		{"bert unknown option", "bert", nn.Options{"pad_token": 1}, 0, graph.Shape{40}, `unknown option "pad_token"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := nn.New(nn.ModelSpec{
				Modalities: []nn.ModalitySpec{{Name: "x", Shape: tc.shape, Encoder: nn.EncoderSpec{Kind: tc.kind, Out: tc.out, Options: tc.opts}}},
				Classes:    2, Fusion: nn.FusionConcat,
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
