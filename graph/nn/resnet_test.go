package nn_test

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bmc/graph"
	"bmc/graph/nn"
	"bmc/runtime"
)

// resnetFixture is one file written by tools/fixtures/resnet/make.py:
// torchvision's resnet18 trunk with formula weights, run in float64.
type resnetFixture struct {
	Sample    graph.Shape `json:"sample"`
	Batch     int64       `json:"batch"`
	StateDict []struct {
		Key    string      `json:"key"`
		Shape  graph.Shape `json:"shape"`
		Buffer bool        `json:"buffer"`
	} `json:"state_dict"`
	Eval              []float64            `json:"eval"`
	Train             []float64            `json:"train"`
	RunningAfterTrain map[string][]float64 `json:"running_after_train"`
}

func readResNetFixture(t *testing.T, name string) resnetFixture {
	t.Helper()
	path := filepath.Join("testdata", "resnet", name+".json")
	var f resnetFixture
	readJSON(t, path, &f)
	if int64(len(f.Eval)) != f.Batch*nn.ResNet18Features || len(f.Train) != len(f.Eval) {
		t.Fatalf("%s: %d eval and %d train values for batch %d", path, len(f.Eval), len(f.Train), f.Batch)
	}
	return f
}

// resnetModel is a one-modality classifier whose encoder is resnet18.
func resnetModel(t *testing.T, modality string, sample graph.Shape) *nn.Model {
	t.Helper()
	m, err := nn.New(nn.ModelSpec{
		Modalities: []nn.ModalitySpec{{Name: modality, Shape: sample, Encoder: nn.EncoderSpec{Kind: "resnet18"}}},
		Classes:    2,
		Fusion:     nn.FusionConcat,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type resnetKey struct {
	key   string
	shape string
}

// The parameters and buffers are torchvision's state_dict, key for key and
// shape for shape, in the same order (num_batches_tracked aside).
func TestResNet18StateDictKeys(t *testing.T) {
	for _, name := range []string{"video", "audio"} {
		t.Run(name, func(t *testing.T) {
			f := readResNetFixture(t, name)
			m := resnetModel(t, "x", f.Sample)
			prefix := nn.EncoderPrefix("x")
			var wantParams, wantBuffers, gotParams, gotBuffers []resnetKey
			for _, e := range f.StateDict {
				ks := resnetKey{e.Key, e.Shape.String()}
				if e.Buffer {
					wantBuffers = append(wantBuffers, ks)
				} else {
					wantParams = append(wantParams, ks)
				}
			}
			for _, p := range m.Params() {
				if key, ok := strings.CutPrefix(p.Name, prefix); ok {
					gotParams = append(gotParams, resnetKey{key, p.Shape.String()})
				}
			}
			for _, b := range m.Buffers() {
				key, _ := strings.CutPrefix(b.Name, prefix)
				gotBuffers = append(gotBuffers, resnetKey{key, b.Shape.String()})
			}
			if !slices.Equal(gotParams, wantParams) {
				t.Errorf("parameters differ from torchvision's:\n got  %v\n want %v", gotParams, wantParams)
			}
			if !slices.Equal(gotBuffers, wantBuffers) {
				t.Errorf("buffers differ from torchvision's:\n got  %v\n want %v", gotBuffers, wantBuffers)
			}
		})
	}
}

// fixtureHash is make.py's u(i, k) = ((2654435761·i + 40503·k) mod 2³²)/2³¹ − 1,
// which spreads i = 0, 1, … over [−1, 1).
func fixtureHash(i, k int) float64 {
	h := (2654435761*uint64(i) + 40503*uint64(k)) % (1 << 32)
	return float64(h)/(1<<31) - 1
}

// resnetFormulaValues sets every tensor as make.py does: tensor k of the
// state_dict at flat index i from s = fixtureHash(i, k).
func resnetFormulaValues(t *testing.T, f resnetFixture, prefix string) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for k, e := range f.StateDict {
		v := make([]float32, e.Shape.Size())
		for i := range v {
			s := fixtureHash(i, k)
			var x float64
			switch {
			case strings.HasSuffix(e.Key, "running_mean"):
				x = 0.1 * s
			case strings.HasSuffix(e.Key, "running_var"):
				x = 1 + 0.25*(1+s)
			case e.Shape.Rank() == 4:
				x = math.Sqrt(6/float64(e.Shape[1]*e.Shape[2]*e.Shape[3])) * s
			case strings.HasSuffix(e.Key, "weight"):
				x = 1 + 0.1*s
			case strings.HasSuffix(e.Key, "bias"):
				x = 0.1 * s
			default:
				t.Fatalf("no formula for %s", e.Key)
			}
			v[i] = float32(x)
		}
		out[prefix+e.Key] = v
	}
	return out
}

func resnetFormulaInput(n int64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(fixtureHash(i, 1000003))
	}
	return v
}

// The resnet18 encoder reproduces torchvision's resnet18 trunk with
// BalanceBenchmark's pooling, in training mode (batch statistics, running
// statistics updated) and evaluation mode, run by ONNX Runtime.
func TestResNet18MatchesTorchvision(t *testing.T) {
	for _, name := range []string{"video", "audio"} {
		f := readResNetFixture(t, name)
		for _, mode := range []nn.Mode{nn.Eval, nn.Train} {
			t.Run(name+"/"+map[nn.Mode]string{nn.Train: "train", nn.Eval: "eval"}[mode], func(t *testing.T) {
				m := resnetModel(t, "x", f.Sample)
				prefix := nn.EncoderPrefix("x")
				g := graph.New("resnet18")
				x := g.Input("x", graph.Float32, append(graph.Shape{f.Batch}, f.Sample...))
				b := m.GraphInputs(g)
				b.UpdateBuffer = func(name string, v *graph.Value) { g.Output("next/"+name, v) }
				out, err := m.Forward(g, b, map[string]*graph.Value{"x": x}, mode)
				if err != nil {
					t.Fatal(err)
				}
				g.Output("features", out.Features["x"])
				in := resnetFormulaValues(t, f, prefix)
				in["x"] = resnetFormulaInput(x.Shape().Size())
				for _, p := range m.Params() {
					if _, ok := in[p.Name]; !ok {
						in[p.Name] = make([]float32, p.Shape.Size()) // the fusion head
					}
				}
				got := runORT(t, g, in, 2)
				want := f.Eval
				if mode == nn.Train {
					want = f.Train
				}
				worst := maxRelErr(got["features"], want)
				if worst > 1e-4 {
					t.Errorf("features differ from torchvision by %.3g of their largest magnitude (limit 1e-4)", worst)
				}
				t.Logf("largest feature difference: %.3g of the largest magnitude", worst)
				if mode != nn.Train {
					return
				}
				if n := len(m.Buffers()); len(got)-1 != n {
					t.Errorf("training forward updated %d buffers, the model has %d", len(got)-1, n)
				}
				for key, w := range f.RunningAfterTrain {
					v, ok := got["next/"+prefix+key]
					if !ok {
						t.Errorf("no update of %s", key)
						continue
					}
					if worst := maxRelErr(v, w); worst > 1e-4 {
						t.Errorf("%s after one step differs from torchvision by %.3g of its largest magnitude", key, worst)
					}
				}
			})
		}
	}
}

// maxRelErr is max_i |got_i − want_i| / max_i |want_i|.
func maxRelErr(got []float32, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var scale, worst float64
	for i := range want {
		scale = max(scale, math.Abs(want[i]))
		worst = max(worst, math.Abs(float64(got[i])-want[i]))
	}
	return worst / scale
}

func TestResNet18Rejects(t *testing.T) {
	tests := []struct {
		name   string
		shape  graph.Shape
		encode nn.EncoderSpec
		want   string
	}{
		{"option", graph.Shape{3, 32, 32}, nn.EncoderSpec{Kind: "resnet18", Options: nn.Options{"width": 2}}, `encoder resnet18: unknown option "width"`},
		{"out", graph.Shape{3, 32, 32}, nn.EncoderSpec{Kind: "resnet18", Out: 256}, "out is 256, the encoder gives 512 features"},
		{"hidden", graph.Shape{3, 32, 32}, nn.EncoderSpec{Kind: "resnet18", Hidden: []int64{64}}, "leave hidden empty"},
		{"flat sample", graph.Shape{3, 1024}, nn.EncoderSpec{Kind: "resnet18"}, "sample shape [3 1024]: want (C, H, W) or (C, T, H, W)"},
		{"rank 5 sample", graph.Shape{3, 2, 2, 8, 8}, nn.EncoderSpec{Kind: "resnet18"}, "want (C, H, W) or (C, T, H, W)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := nn.New(nn.ModelSpec{
				Modalities: []nn.ModalitySpec{{Name: "visual", Shape: tc.shape, Encoder: tc.encode}},
				Classes:    2, Fusion: nn.FusionConcat,
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "modality visual") {
				t.Errorf("error %q does not name the modality", err)
			}
		})
	}
}

// Convolutions are Kaiming-normal (fan_out, relu), BN weights N(1, 0.02),
// BN biases 0, running mean 0 and variance 1; the input channels come from
// the sample shape.
func TestResNet18Init(t *testing.T) {
	m := resnetModel(t, "flow", graph.Shape{2, 3, 64, 64})
	prefix := nn.EncoderPrefix("flow")
	var convs, norms int
	for _, p := range m.Params() {
		key, ok := strings.CutPrefix(p.Name, prefix)
		if !ok {
			continue
		}
		if p.Modality != "flow" {
			t.Errorf("%s has modality %q", p.Name, p.Modality)
		}
		switch {
		case p.Shape.Rank() == 4:
			convs++
			want := math.Sqrt(2 / float64(p.Shape[0]*p.Shape[2]*p.Shape[3]))
			if p.Init.Kind != nn.InitNormal || p.Init.Mean != 0 || math.Abs(p.Init.Std-want) > 1e-12 {
				t.Errorf("%s: init %+v, want N(0, %v²)", key, p.Init, want)
			}
		case strings.HasSuffix(key, "weight"):
			norms++
			if p.Init != (nn.Init{Kind: nn.InitNormal, Mean: 1, Std: 0.02}) {
				t.Errorf("%s: init %+v, want N(1, 0.02²)", key, p.Init)
			}
		default:
			if p.Init != (nn.Init{Kind: nn.InitConstant}) {
				t.Errorf("%s: init %+v, want 0", key, p.Init)
			}
		}
	}
	// 1 stem + 16 block convolutions + 3 downsamples, each with its BN.
	if convs != 20 || norms != 20 {
		t.Errorf("%d convolutions and %d batch norms, want 20 and 20", convs, norms)
	}
	if w := m.Params()[0]; w.Name != prefix+"conv1.weight" || !w.Shape.Equal(graph.Shape{64, 2, 7, 7}) {
		t.Errorf("first parameter %s %v, want conv1.weight [64 2 7 7] (2 flow channels)", w.Name, w.Shape)
	}
	vals := m.InitValues(3)
	for _, b := range m.Buffers() {
		want := float32(0)
		if strings.HasSuffix(b.Name, "running_var") {
			want = 1
		}
		for _, v := range vals[b.Name] {
			if v != want {
				t.Fatalf("%s starts at %v, want %v", b.Name, v, want)
			}
		}
	}
	w := vals[prefix+"layer3.0.conv1.weight"] // N(0, 2/(256·9))
	var sq float64
	for _, v := range w {
		sq += float64(v) * float64(v)
	}
	if std, want := math.Sqrt(sq/float64(len(w))), math.Sqrt(2.0/(256*9)); math.Abs(std-want) > 0.02*want {
		t.Errorf("layer3.0.conv1.weight draws with std %v, want %v", std, want)
	}
}

// A sample of one frame (C, 1, H, W) is encoded as the image (C, H, W), and
// the evaluation graph has no batch-size constant: written with a symbolic
// batch, it runs at another batch size with the same per-sample results.
func TestResNet18FramesAndSymbolicBatch(t *testing.T) {
	const batch = 2
	features := func(sample graph.Shape) (*graph.Graph, map[string][]float32) {
		m := resnetModel(t, "visual", sample)
		g := graph.New("resnet18")
		x := g.Input("x", graph.Float32, append(graph.Shape{batch}, sample...))
		out, err := m.Forward(g, m.GraphInputs(g), map[string]*graph.Value{"visual": x}, nn.Eval)
		if err != nil {
			t.Fatal(err)
		}
		g.Output("features", out.Features["visual"])
		in := m.InitValues(7)
		in["x"] = resnetFormulaInput(x.Shape().Size())
		return g, in
	}
	g3, in := features(graph.Shape{3, 24, 20})
	g4, _ := features(graph.Shape{3, 1, 24, 20})
	image, frame := runORT(t, g3, in, 2)["features"], runORT(t, g4, in, 2)["features"]
	for i := range image {
		if d := math.Abs(float64(image[i] - frame[i])); d > 1e-6*max(1, math.Abs(float64(image[i]))) {
			t.Fatalf("feature %d: image %v, one-frame sample %v", i, image[i], frame[i])
		}
	}

	// Two frames at batch 2, then at batch 3 through a symbolic batch axis.
	g, in := features(graph.Shape{3, 2, 24, 20})
	want := runORT(t, g, in, 2)["features"]
	data, err := graph.Marshal(&graph.Model{Graph: g, DynamicDims: map[string]map[int]string{"x": {0: "batch"}, "features": {0: "batch"}}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var ins []*runtime.Tensor
	for _, v := range g.Inputs() {
		shape, vals := v.Shape(), in[v.Name()]
		if v.Name() == "x" {
			// Batch 3: the two samples, then the first again.
			shape = append(graph.Shape{3}, shape[1:]...)
			vals = append(slices.Clone(vals), vals[:len(vals)/batch]...)
		}
		names = append(names, v.Name())
		ins = append(ins, tensor(t, shape, vals))
	}
	out := tensor(t, graph.Shape{3, nn.ResNet18Features}, nil)
	s, err := runtime.NewSession(data, names, []string{"features"}, runtime.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Run(ins, []*runtime.Tensor{out}); err != nil {
		t.Fatalf("batch 3 through a graph built at batch 2: %v", err)
	}
	for i, w := range append(slices.Clone(want), want[:nn.ResNet18Features]...) {
		if d := math.Abs(float64(out.F32[i] - w)); d > 1e-5*max(1, math.Abs(float64(w))) {
			t.Fatalf("feature %d at batch 3: %v, at batch 2: %v", i, out.F32[i], w)
		}
	}
}
