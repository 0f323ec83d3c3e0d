package nn_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"bmc/graph"
	"bmc/graph/nn"
	"bmc/internal/onnxcheck"
	"bmc/runtime"
)

func mlp(out int64, hidden ...int64) nn.EncoderSpec {
	return nn.EncoderSpec{Kind: "mlp", Hidden: hidden, Out: out}
}

func linear(out int64) nn.EncoderSpec { return nn.EncoderSpec{Kind: "linear", Out: out} }

// twoModalities is audio [2 3] and visual [5], both MLP encoders with one
// hidden layer of 8 and 4 features.
func twoModalities(classes int64) nn.ModelSpec {
	return nn.ModelSpec{
		Modalities: []nn.ModalitySpec{
			{Name: "audio", Shape: graph.Shape{2, 3}, Encoder: mlp(4, 8)},
			{Name: "visual", Shape: graph.Shape{5}, Encoder: mlp(4, 8)},
		},
		Classes: classes,
		Fusion:  nn.FusionConcat,
	}
}

func TestNewRejects(t *testing.T) {
	valid := func() nn.ModelSpec { return twoModalities(3) }
	tests := []struct {
		name   string
		mutate func(s *nn.ModelSpec)
		want   string
	}{
		{"no modalities", func(s *nn.ModelSpec) { s.Modalities = nil }, "no modalities"},
		{"one class", func(s *nn.ModelSpec) { s.Classes = 1 }, "classes is 1, want at least 2"},
		{"zero classes", func(s *nn.ModelSpec) { s.Classes = 0 }, "classes is 0"},
		{"unknown fusion", func(s *nn.ModelSpec) { s.Fusion = "film" }, `fusion "film" is not available (available: concat, shared)`},
		{"empty fusion", func(s *nn.ModelSpec) { s.Fusion = "" }, `fusion "" is not available`},
		{"bad encoder kind", func(s *nn.ModelSpec) { s.Modalities[1].Encoder.Kind = "conv" }, `modality visual: encoder kind "conv" is not available (available: ` + strings.Join(nn.EncoderKinds(), ", ") + ")"},
		{"duplicate modality", func(s *nn.ModelSpec) { s.Modalities[1].Name = "audio" }, `modality name "audio" is empty or repeated`},
		{"empty modality name", func(s *nn.ModelSpec) { s.Modalities[0].Name = "" }, `modality name "" is empty or repeated`},
		{"scalar input", func(s *nn.ModelSpec) { s.Modalities[0].Shape = graph.Shape{} }, "modality audio has input shape []"},
		{"empty input", func(s *nn.ModelSpec) { s.Modalities[0].Shape = graph.Shape{3, 0} }, "modality audio has input shape [3 0]"},
		{"no features", func(s *nn.ModelSpec) { s.Modalities[0].Encoder.Out = 0 }, "modality audio: encoder out is 0"},
		{"hidden width", func(s *nn.ModelSpec) { s.Modalities[0].Encoder.Hidden = []int64{8, 0} }, "modality audio: hidden width 0"},
		{"linear with hidden", func(s *nn.ModelSpec) { s.Modalities[0].Encoder.Kind = "linear" }, "modality audio: a linear encoder has no hidden layers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := valid()
			tc.mutate(&s)
			m, err := nn.New(s)
			if err == nil {
				t.Fatalf("New accepted the spec (%d params)", len(m.Params()))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
	if _, err := nn.New(valid()); err != nil {
		t.Errorf("New(valid spec): %v", err)
	}
}

func TestParamsAreStateDictKeys(t *testing.T) {
	const classes = 3
	m, err := nn.New(twoModalities(classes))
	if err != nil {
		t.Fatal(err)
	}
	type param struct {
		name     string
		shape    graph.Shape
		modality string
		bound    float64
	}
	want := []param{
		{"modality_encoder.audio.0.weight", graph.Shape{8, 6}, "audio", 1 / math.Sqrt(6)},
		{"modality_encoder.audio.0.bias", graph.Shape{8}, "audio", 1 / math.Sqrt(6)},
		{"modality_encoder.audio.2.weight", graph.Shape{4, 8}, "audio", 1 / math.Sqrt(8)},
		{"modality_encoder.audio.2.bias", graph.Shape{4}, "audio", 1 / math.Sqrt(8)},
		{"modality_encoder.visual.0.weight", graph.Shape{8, 5}, "visual", 1 / math.Sqrt(5)},
		{"modality_encoder.visual.0.bias", graph.Shape{8}, "visual", 1 / math.Sqrt(5)},
		{"modality_encoder.visual.2.weight", graph.Shape{4, 8}, "visual", 1 / math.Sqrt(8)},
		{"modality_encoder.visual.2.bias", graph.Shape{4}, "visual", 1 / math.Sqrt(8)},
		{"fusion_module.fc_out.weight", graph.Shape{classes, 8}, "", 1 / math.Sqrt(8)},
		{"fusion_module.fc_out.bias", graph.Shape{classes}, "", 1 / math.Sqrt(8)},
	}
	var got []param
	for _, p := range m.Params() {
		if p.Init.Kind != "uniform" {
			t.Errorf("%s: init kind %q, want uniform", p.Name, p.Init.Kind)
		}
		got = append(got, param{p.Name, p.Shape, p.Modality, p.Init.Bound})
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("params:\n got %v\nwant %v", got, want)
	}
	if names := m.ModalityNames(); !slices.Equal(names, []string{"audio", "visual"}) {
		t.Errorf("ModalityNames() = %v", names)
	}

	// Params returns a copy.
	ps := m.Params()
	ps[0].Name = "changed"
	if m.Params()[0].Name != want[0].name {
		t.Error("modifying the result of Params changed the model")
	}
}

func TestLinearEncoderParams(t *testing.T) {
	m, err := nn.New(nn.ModelSpec{
		Modalities: []nn.ModalitySpec{
			{Name: "text", Shape: graph.Shape{7}, Encoder: linear(3)},
			{Name: "img", Shape: graph.Shape{2, 2}, Encoder: mlp(5, 6, 4)},
		},
		Classes: 2, Fusion: nn.FusionConcat,
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range m.Params() {
		got = append(got, p.Name+p.Shape.String())
	}
	want := []string{
		"modality_encoder.text.0.weight[3 7]", "modality_encoder.text.0.bias[3]",
		"modality_encoder.img.0.weight[6 4]", "modality_encoder.img.0.bias[6]",
		"modality_encoder.img.2.weight[4 6]", "modality_encoder.img.2.bias[4]",
		"modality_encoder.img.4.weight[5 4]", "modality_encoder.img.4.bias[5]",
		"fusion_module.fc_out.weight[2 8]", "fusion_module.fc_out.bias[2]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("params:\n got %v\nwant %v", got, want)
	}
}

func TestInitValues(t *testing.T) {
	m, err := nn.New(twoModalities(3))
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := m.InitValues(1), m.InitValues(1), m.InitValues(2)
	if !reflect.DeepEqual(a, b) {
		t.Error("InitValues(1) differs between calls")
	}
	if len(a) != len(m.Params()) {
		t.Errorf("InitValues has %d entries, want %d", len(a), len(m.Params()))
	}
	for _, p := range m.Params() {
		v, ok := a[p.Name]
		if !ok {
			t.Errorf("InitValues has no %s", p.Name)
			continue
		}
		if int64(len(v)) != p.Shape.Size() {
			t.Errorf("%s has %d values, want %d", p.Name, len(v), p.Shape.Size())
		}
		bound := float32(p.Init.Bound)
		if want := float32(1 / math.Sqrt(float64(p.Shape[len(p.Shape)-1]))); p.Shape.Rank() == 2 && bound != want {
			t.Errorf("%s: bound %v, want 1/sqrt(fan_in) = %v", p.Name, bound, want)
		}
		for i, x := range v {
			if !(x >= -bound && x <= bound) {
				t.Errorf("%s[%d] = %v is outside ±%v", p.Name, i, x, bound)
				break
			}
		}
		if slices.Equal(v, c[p.Name]) {
			t.Errorf("%s is the same for seeds 1 and 2", p.Name)
		}
		if slices.Equal(v, make([]float32, len(v))) {
			t.Errorf("%s is all zero", p.Name)
		}
	}
	// Different parameters of the same shape get different streams.
	if slices.Equal(a["modality_encoder.audio.2.weight"], a["modality_encoder.visual.2.weight"]) {
		t.Error("the audio and visual output layers have the same initial values")
	}

	// Adding a modality changes no value of the encoders already there.
	one := twoModalities(3)
	one.Modalities = one.Modalities[:1]
	m1, err := nn.New(one)
	if err != nil {
		t.Fatal(err)
	}
	a1 := m1.InitValues(1)
	for _, p := range m1.Params() {
		if p.Modality == "audio" && !slices.Equal(a1[p.Name], a[p.Name]) {
			t.Errorf("%s changed when a modality was added", p.Name)
		}
	}
}

func TestInitValuesUniform(t *testing.T) {
	const in, out = 1024, 256
	m, err := nn.New(nn.ModelSpec{
		Modalities: []nn.ModalitySpec{{Name: "big", Shape: graph.Shape{in}, Encoder: linear(out)}},
		Classes:    2, Fusion: nn.FusionConcat,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, seed := range []uint64{0, 42} {
		v := m.InitValues(seed)["modality_encoder.big.0.weight"]
		bound := 1 / math.Sqrt(in)
		var sum, sq, maxAbs float64
		bins := make([]int, 10)
		for _, x := range v {
			f := float64(x)
			sum += f
			sq += f * f
			maxAbs = max(maxAbs, math.Abs(f))
			bins[min(int((f/bound+1)/2*10), 9)]++
		}
		n := float64(len(v))
		mean, variance := sum/n, sq/n
		// For U(−a, a): mean 0, variance a²/3; the standard error of the
		// mean is a/√(3n) ≈ 0.0011a here.
		if math.Abs(mean) > 0.01*bound {
			t.Errorf("seed %d: mean %.3g, want within %.3g of 0", seed, mean, 0.01*bound)
		}
		if want := bound * bound / 3; math.Abs(variance-want) > 0.02*want {
			t.Errorf("seed %d: variance %.4g, want %.4g ± 2%%", seed, variance, want)
		}
		if maxAbs < 0.999*bound || maxAbs > bound {
			t.Errorf("seed %d: max |w| = %.6g, want just under the bound %.6g", seed, maxAbs, bound)
		}
		for i, c := range bins {
			if want := n / 10; math.Abs(float64(c)-want) > 0.03*want {
				t.Errorf("seed %d: bin %d holds %d values, want %.0f ± 3%%", seed, i, c, want)
			}
		}
	}
}

// forwardGraph builds the model's forward pass with every parameter and
// modality as a graph input, and declares features, logits and unimodal
// logits as outputs.
func forwardGraph(t *testing.T, m *nn.Model, batch int64) (*graph.Graph, nn.Outputs) {
	t.Helper()
	g := graph.New("forward")
	inputs := map[string]*graph.Value{}
	for _, mod := range m.Spec.Modalities {
		inputs[mod.Name] = g.Input(mod.Name, graph.Float32, append(graph.Shape{batch}, mod.Shape...))
	}
	out, err := m.Forward(g, m.GraphInputs(g), inputs, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	g.Output("logits", out.Logits)
	for _, name := range m.ModalityNames() {
		g.Output("logits_"+name, out.Unimodal[name])
		g.Output("features_"+name, out.Features[name])
	}
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	return g, out
}

func threeModalities() nn.ModelSpec {
	return nn.ModelSpec{
		Modalities: []nn.ModalitySpec{
			{Name: "a", Shape: graph.Shape{3}, Encoder: linear(2)},
			{Name: "b", Shape: graph.Shape{2, 2, 2}, Encoder: mlp(3, 5, 4)},
			{Name: "c", Shape: graph.Shape{4}, Encoder: linear(1)},
		},
		Classes: 4, Fusion: nn.FusionConcat,
	}
}

func oneModality() nn.ModelSpec {
	return nn.ModelSpec{
		Modalities: []nn.ModalitySpec{{Name: "only", Shape: graph.Shape{3}, Encoder: mlp(2, 4)}},
		Classes:    2, Fusion: nn.FusionConcat,
	}
}

func TestForwardShapes(t *testing.T) {
	tests := []struct {
		name  string
		spec  nn.ModelSpec
		batch int64
	}{
		{"two mlp", twoModalities(3), 5},
		{"three mixed", threeModalities(), 2},
		{"one modality", oneModality(), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := nn.New(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			_, out := forwardGraph(t, m, tc.batch)
			c := tc.spec.Classes
			if s := out.Logits.Shape(); !s.Equal(graph.Shape{tc.batch, c}) {
				t.Errorf("logits shape %v, want [%d %d]", s, tc.batch, c)
			}
			if len(out.Features) != len(tc.spec.Modalities) || len(out.Unimodal) != len(tc.spec.Modalities) {
				t.Errorf("%d features and %d unimodal logits for %d modalities", len(out.Features), len(out.Unimodal), len(tc.spec.Modalities))
			}
			for _, mod := range tc.spec.Modalities {
				if s := out.Features[mod.Name].Shape(); !s.Equal(graph.Shape{tc.batch, mod.Encoder.Out}) {
					t.Errorf("features of %s: shape %v, want [%d %d]", mod.Name, s, tc.batch, mod.Encoder.Out)
				}
				if s := out.Unimodal[mod.Name].Shape(); !s.Equal(graph.Shape{tc.batch, c}) {
					t.Errorf("unimodal logits of %s: shape %v, want [%d %d]", mod.Name, s, tc.batch, c)
				}
			}
		})
	}
}

func TestForwardErrors(t *testing.T) {
	m, err := nn.New(twoModalities(3))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		drop string // a parameter or modality left unbound
		want string
	}{
		{"missing input", "visual", "no input for modality visual"},
		{"missing parameter", "modality_encoder.visual.2.bias", "parameter modality_encoder.visual.2.bias is not bound"},
		{"missing head parameter", "fusion_module.fc_out.weight", "parameter fusion_module.fc_out.weight is not bound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := graph.New("f")
			inputs := map[string]*graph.Value{}
			for _, mod := range m.Spec.Modalities {
				inputs[mod.Name] = g.Input(mod.Name, graph.Float32, append(graph.Shape{2}, mod.Shape...))
			}
			b := m.GraphInputs(g)
			delete(inputs, tc.drop)
			delete(b.Params, tc.drop)
			_, err := m.Forward(g, b, inputs, nn.Train)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Forward error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// reference computes the features and fused logits of a concat model in Go.
func reference(m *nn.Model, vals map[string][]float32, x map[string][]float32, batch int) (feats map[string][][]float64, logits [][]float64) {
	linearLayer := func(h [][]float64, w, b []float32, in, out int) [][]float64 {
		y := make([][]float64, len(h))
		for i := range h {
			y[i] = make([]float64, out)
			for o := range out {
				y[i][o] = float64(b[o])
				for k := range in {
					y[i][o] += h[i][k] * float64(w[o*in+k])
				}
			}
		}
		return y
	}
	feats = map[string][][]float64{}
	cat := make([][]float64, batch)
	for _, mod := range m.Spec.Modalities {
		in := int(mod.Shape.Size())
		h := make([][]float64, batch)
		for i := range h {
			for k := range in {
				h[i] = append(h[i], float64(x[mod.Name][i*in+k]))
			}
		}
		widths := append(append([]int64{int64(in)}, mod.Encoder.Hidden...), mod.Encoder.Out)
		for l := 1; l < len(widths); l++ {
			prefix := fmt.Sprintf("modality_encoder.%s.%d.", mod.Name, 2*(l-1))
			h = linearLayer(h, vals[prefix+"weight"], vals[prefix+"bias"], int(widths[l-1]), int(widths[l]))
			if mod.Encoder.Kind == "mlp" {
				for i := range h {
					for j := range h[i] {
						h[i][j] = max(h[i][j], 0)
					}
				}
			}
		}
		feats[mod.Name] = h
		for i := range cat {
			cat[i] = append(cat[i], h[i]...)
		}
	}
	c := int(m.Spec.Classes)
	logits = linearLayer(cat, vals["fusion_module.fc_out.weight"], vals["fusion_module.fc_out.bias"], len(cat[0]), c)
	return feats, logits
}

func TestForwardInONNXRuntime(t *testing.T) {
	tests := []struct {
		name  string
		spec  nn.ModelSpec
		batch int64
		seed  uint64
	}{
		{"two mlp", twoModalities(3), 4, 1},
		{"three mixed", threeModalities(), 3, 7},
		{"one modality", oneModality(), 2, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := nn.New(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			g, _ := forwardGraph(t, m, tc.batch)
			data, err := graph.Marshal(&graph.Model{Graph: g})
			if err != nil {
				t.Fatal(err)
			}
			vals := m.InitValues(tc.seed)
			rng := rand.New(rand.NewPCG(tc.seed, 99))
			x := map[string][]float32{}
			var inNames []string
			var ins []*runtime.Tensor
			for _, v := range g.Inputs() {
				vs, ok := vals[v.Name()]
				if !ok {
					vs = make([]float32, v.Shape().Size())
					for i := range vs {
						vs[i] = float32(rng.NormFloat64())
					}
					x[v.Name()] = vs
				}
				inNames = append(inNames, v.Name())
				ins = append(ins, tensor(t, v.Shape(), vs))
			}
			var outNames []string
			var outs []*runtime.Tensor
			for _, v := range g.Outputs() {
				outNames = append(outNames, v.Name())
				outs = append(outs, tensor(t, v.Shape(), nil))
			}
			s, err := runtime.NewSession(data, inNames, outNames, runtime.Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Run(ins, outs); err != nil {
				t.Fatal(err)
			}
			got := map[string][]float32{}
			for i, name := range outNames {
				got[name] = outs[i].F32
			}

			feats, want := reference(m, vals, x, int(tc.batch))
			c := int(tc.spec.Classes)
			z := got["logits"]
			for i := range int(tc.batch) {
				for j := range c {
					if d := math.Abs(float64(z[i*c+j]) - want[i][j]); d > 1e-4 {
						t.Errorf("z[%d][%d] = %v, reference %v", i, j, z[i*c+j], want[i][j])
					}
					var sum float64
					for _, name := range m.ModalityNames() {
						sum += float64(got["logits_"+name][i*c+j])
					}
					if d := math.Abs(sum - float64(z[i*c+j])); d > 1e-5 {
						t.Errorf("Σ_m z_m[%d][%d] = %v, z = %v", i, j, sum, z[i*c+j])
					}
				}
			}
			for _, mod := range tc.spec.Modalities {
				f, d := got["features_"+mod.Name], int(mod.Encoder.Out)
				for i := range int(tc.batch) {
					for j := range d {
						if diff := math.Abs(float64(f[i*d+j]) - feats[mod.Name][i][j]); diff > 1e-4 {
							t.Errorf("features of %s [%d][%d] = %v, reference %v", mod.Name, i, j, f[i*d+j], feats[mod.Name][i][j])
						}
					}
				}
			}
		})
	}
}

func TestForwardFilesPassONNXChecker(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i, spec := range []nn.ModelSpec{twoModalities(3), threeModalities(), oneModality()} {
		m, err := nn.New(spec)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := forwardGraph(t, m, 2)
		p := filepath.Join(dir, fmt.Sprintf("forward%d.onnx", i))
		if err := graph.WriteFile(p, &graph.Model{Graph: g}); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	if err := onnxcheck.Files(paths...); err != nil {
		t.Fatal(err)
	}
}

func tensor(t *testing.T, shape graph.Shape, vals []float32) *runtime.Tensor {
	t.Helper()
	x, err := runtime.NewFloat32(shape)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	copy(x.F32, vals)
	return x
}
