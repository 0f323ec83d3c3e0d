package nn_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/gradcheck"
	"bmc/graph"
	"bmc/graph/nn"
	"bmc/internal/onnxcheck"
)

// cosineModel is a model with the cosine head (options opt) over the given
// modalities.
func cosineModel(t *testing.T, spec nn.ModelSpec, opt nn.Options) *nn.Model {
	t.Helper()
	spec.Fusion = nn.FusionCosine
	spec.FusionOptions = opt
	m, err := nn.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// cosineLogits evaluates MMCosine's z_m = s·normalize(φ_m)·normalize(W_m)ᵀ
// in float64 from features [B·d_m] and the head weight [C, Σd].
func cosineLogits(feat []float32, w []float32, classes, total, offset, width, batch int, s float64) []float64 {
	out := make([]float64, batch*classes)
	for i := range batch {
		var fn float64
		for k := range width {
			fn += float64(feat[i*width+k]) * float64(feat[i*width+k])
		}
		fn = math.Max(math.Sqrt(fn), 1e-12)
		for c := range classes {
			var wn, dot float64
			for k := range width {
				wk := float64(w[c*total+offset+k])
				wn += wk * wk
				dot += wk * float64(feat[i*width+k])
			}
			out[i*classes+c] = s * dot / (fn * math.Max(math.Sqrt(wn), 1e-12))
		}
	}
	return out
}

// The cosine head's logits in ONNX Runtime are the formula's, for 2 and 3
// modalities; the fused logits are their sum; there is no bias; a zero
// feature row gives zero logits.
func TestCosineFusionInONNXRuntime(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  nn.ModelSpec
		opt   nn.Options
		batch int
		scale float64
	}{
		{"two mlp, default scale", twoModalities(3), nil, 4, 15},
		{"three mixed", threeModalities(), nn.Options{"scale": 2.5}, 3, 2.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := cosineModel(t, tc.spec, tc.opt)
			for _, p := range m.Params() {
				if strings.HasPrefix(p.Name, "fusion_module.") && p.Name != "fusion_module.fc_out.weight" {
					t.Errorf("the cosine head has parameter %s; it has only the weight", p.Name)
				}
			}
			g, _ := forwardGraph(t, m, int64(tc.batch))
			in := m.InitValues(3)
			rng := rand.New(rand.NewPCG(5, 6))
			for _, v := range g.Inputs() {
				if _, ok := in[v.Name()]; !ok {
					x := make([]float32, v.Shape().Size())
					for i := range x {
						x[i] = float32(rng.NormFloat64())
					}
					in[v.Name()] = x
				}
			}
			// The first sample of the first modality is all zeros: with
			// ReLU or linear encoders and a zero bias its feature is zero.
			first := m.Spec.Modalities[0]
			clear(in[first.Name][:first.Shape.Size()])
			for _, p := range m.Params() {
				if p.Modality == first.Name && p.Shape.Rank() == 1 {
					clear(in[p.Name])
				}
			}
			got := runORT(t, g, in, 1)
			classes := int(m.Spec.Classes)
			var total int
			for _, w := range m.FeatureWidths() {
				total += int(w)
			}
			sum := make([]float64, tc.batch*classes)
			offset := 0
			for i, name := range m.ModalityNames() {
				width := int(m.FeatureWidths()[i])
				want := cosineLogits(got["features_"+name], in["fusion_module.fc_out.weight"], classes, total, offset, width, tc.batch, tc.scale)
				for k, v := range got["logits_"+name] {
					if !near64(float64(v), want[k], 1e-5) {
						t.Fatalf("z_%s[%d] = %v, the formula gives %v", name, k, v, want[k])
					}
					if math.Abs(want[k]) > tc.scale*(1+1e-6) {
						t.Fatalf("z_%s[%d] = %v exceeds the scale %v", name, k, want[k], tc.scale)
					}
					sum[k] += float64(v)
				}
				offset += width
			}
			for k := range classes {
				if z := got["logits_"+first.Name][k]; z != 0 {
					t.Errorf("zero feature row: z_%s[0][%d] = %v, want 0", first.Name, k, z)
				}
			}
			for k, v := range got["logits"] {
				if !near64(float64(v), sum[k], 1e-5) {
					t.Fatalf("z[%d] = %v, Σ_m z_m = %v", k, v, sum[k])
				}
			}
		})
	}
}

func near64(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

// The gradient of the whole model with the cosine head (fused and unimodal
// logits) agrees with central differences, with respect to the inputs and
// every parameter.
func TestCosineFusionGradient(t *testing.T) {
	m := cosineModel(t, threeModalities(), nn.Options{"scale": 3})
	var inputs []gradcheck.Input
	for _, mod := range m.Spec.Modalities {
		inputs = append(inputs, gradcheck.Input{Shape: append(graph.Shape{2}, mod.Shape...), DType: graph.Float32})
	}
	for _, p := range m.Params() {
		inputs = append(inputs, gradcheck.Input{Shape: p.Shape, DType: graph.Float32})
	}
	c := gradcheck.Case{Name: "cosine-fusion", Inputs: inputs, Eps: 2e-3, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
		data := map[string]*graph.Value{}
		for i, mod := range m.Spec.Modalities {
			data[mod.Name] = x[i]
		}
		b := nn.Bindings{Params: map[string]*graph.Value{}}
		for i, p := range m.Params() {
			b.Params[p.Name] = x[len(m.Spec.Modalities)+i]
		}
		out, err := m.Forward(g, b, data, nn.Train)
		if err != nil {
			g.Fail(err)
			return nil
		}
		all := []*graph.Value{out.Logits}
		for _, name := range m.ModalityNames() {
			all = append(all, out.Unimodal[name])
		}
		return g.Concat(1, all...)
	}}
	res, err := gradcheck.Check(c, 11)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(inputs) {
		t.Fatalf("%d inputs compared, want %d", len(res), len(inputs))
	}
}

// An all-zero feature row has PyTorch's finite gradient, not 0/0: the
// norm's bound is applied before the square root, so at φ = 0 the
// normalisation is φ/1e-12 and d(Σ z)/dφ = s·Σ_c W_m[c]/‖W_m[c]‖/1e-12.
// Linear encoders with zero inputs and biases make every feature zero; the
// gradient reaches their biases unmasked (a ReLU would hide a NaN).
func TestCosineFusionZeroFeatureGradient(t *testing.T) {
	spec := twoModalities(3)
	for i := range spec.Modalities {
		spec.Modalities[i].Encoder = linear(4)
	}
	m := cosineModel(t, spec, nil)
	g := graph.New("zero")
	bind := m.GraphInputs(g)
	data := map[string]*graph.Value{}
	const batch = 2
	for _, mod := range m.Spec.Modalities {
		data[mod.Name] = g.Input(mod.Name, graph.Float32, append(graph.Shape{batch}, mod.Shape...))
	}
	out, err := m.Forward(g, bind, data, nn.Train)
	if err != nil {
		t.Fatal(err)
	}
	var wrt []*graph.Value
	for _, p := range m.Params() {
		wrt = append(wrt, bind.Params[p.Name])
	}
	grads, err := compile.Gradients(g, g.ReduceSum(out.Logits, false), wrt)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range m.Params() {
		g.Output("grad/"+p.Name, grads[i])
	}
	in := m.InitValues(1)
	for _, mod := range m.Spec.Modalities {
		in[mod.Name] = make([]float32, batch*mod.Shape.Size())
	}
	for _, p := range m.Params() {
		if p.Shape.Rank() == 1 {
			clear(in[p.Name])
		}
	}
	got := runORT(t, g, in, 1)
	w := in["fusion_module.fc_out.weight"]
	classes, total := int(m.Spec.Classes), 8
	for i, name := range m.ModalityNames() {
		bias := got["grad/modality_encoder."+name+".0.bias"]
		for k := range 4 {
			var want float64
			for c := range classes {
				var norm float64
				for j := range 4 {
					norm += float64(w[c*total+4*i+j]) * float64(w[c*total+4*i+j])
				}
				want += float64(w[c*total+4*i+k]) / math.Sqrt(norm)
			}
			want *= batch * 15 / 1e-12
			if !near64(float64(bias[k]), want, 1e-4) {
				t.Errorf("d(Σz)/d bias_%s[%d] = %v at zero features, PyTorch's normalize gives %v", name, k, bias[k], want)
			}
		}
	}
	for name, v := range got {
		for k, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("%s[%d] = %v with zero features", name, k, x)
			}
		}
	}
	for k, x := range got["grad/fusion_module.fc_out.weight"] {
		if x != 0 {
			t.Fatalf("head weight gradient [%d] = %v with zero features, want 0", k, x)
		}
	}
}

// Bad options are errors; the graph passes the ONNX checker.
func TestCosineFusionRejects(t *testing.T) {
	for _, tc := range []struct {
		opts nn.Options
		want string
	}{
		{nn.Options{"scale": 0}, "option scale is 0, want a finite number > 0"},
		{nn.Options{"scale": -2}, "option scale is -2"},
		{nn.Options{"scale": 1e300}, "option scale is 1e+300"},
		{nn.Options{"scal": 1}, `unknown option "scal" (valid: scale)`},
	} {
		spec := twoModalities(3)
		spec.Fusion, spec.FusionOptions = nn.FusionCosine, tc.opts
		if _, err := nn.New(spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("options %v: error %v, want %q", tc.opts, err, tc.want)
		}
	}
	g, _ := forwardGraph(t, cosineModel(t, twoModalities(3), nil), 2)
	path := t.TempDir() + "/cosine.onnx"
	if err := graph.WriteFile(path, &graph.Model{Graph: g}); err != nil {
		t.Fatal(err)
	}
	if err := onnxcheck.Files(path); err != nil {
		t.Error(err)
	}
}
