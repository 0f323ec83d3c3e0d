package nn_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"bmc/gradcheck"
	"bmc/graph"
	"bmc/graph/nn"
)

// sharedSpec has three modalities of feature widths 2, 3 and 1 (so the
// head is Linear(3 → 4) and two of them are padded) under the shared head.
func sharedSpec(opt nn.Options) nn.ModelSpec { return sharedSpecWith(opt, mlp(3, 5)) }

// sharedSpecWith is sharedSpec with modality b's encoder given.
func sharedSpecWith(opt nn.Options, b nn.EncoderSpec) nn.ModelSpec {
	return nn.ModelSpec{
		Modalities: []nn.ModalitySpec{
			{Name: "a", Shape: graph.Shape{3}, Encoder: linear(2)},
			{Name: "b", Shape: graph.Shape{4}, Encoder: b},
			{Name: "c", Shape: graph.Shape{2}, Encoder: linear(1)},
		},
		Classes: 4, Fusion: nn.FusionShared, FusionOptions: opt,
	}
}

func TestSharedHeadRejectsBadOptions(t *testing.T) {
	tests := []struct {
		opt  nn.Options
		want string
	}{
		{nn.Options{"colour": 1}, `unknown option "colour"`},
		{nn.Options{nn.SharedMean: 2}, "mean is 2, want 0 or 1"},
		{nn.Options{nn.SharedMean: 1, nn.SharedEntropyGate: 1}, "exclude each other"},
		{nn.Options{nn.SharedGateEntropies: 2}, "needs entropy_gate=1"},
		{nn.Options{nn.SharedEntropyGate: 1, nn.SharedGateEntropies: 1.5}, "positive integer"},
		{nn.Options{nn.SharedEntropyGate: 1, nn.SharedGateEntropies: 4}, "gate_entropies is 4, the model has 3 modalities"},
		{nn.Options{nn.SharedBoostRate: 0}, "boost_rate is 0, want a finite initial value > 0"},
		{nn.Options{nn.SharedBoostRate: math.Inf(1)}, "want a finite initial value"},
	}
	for _, tc := range tests {
		_, err := nn.New(sharedSpec(tc.opt))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "fusion shared") {
			t.Errorf("options %v: error %v, want one naming fusion shared and %q", tc.opt, err, tc.want)
		}
	}
}

func TestSharedHeadParams(t *testing.T) {
	m, err := nn.New(sharedSpec(nn.Options{nn.SharedBoostRate: 0.01}))
	if err != nil {
		t.Fatal(err)
	}
	shapes := map[string]graph.Shape{}
	for _, p := range m.Params() {
		if p.Modality == "" {
			shapes[p.Name] = p.Shape
		}
	}
	want := map[string]graph.Shape{nn.HeadWeight: {4, 3}, nn.HeadBias: {4}, nn.BoostRateParam: {1}}
	if len(shapes) != len(want) {
		t.Fatalf("head parameters %v, want %v", shapes, want)
	}
	for k, s := range want {
		if !shapes[k].Equal(s) {
			t.Errorf("%s has shape %v, want %v", k, shapes[k], s)
		}
	}
	if v := m.InitValues(1)[nn.BoostRateParam]; len(v) != 1 || v[0] != 0.01 {
		t.Errorf("boost_rate starts at %v, want [0.01]", v)
	}
	plain, _ := nn.New(sharedSpec(nil))
	for _, p := range plain.Params() {
		if p.Name == nn.BoostRateParam {
			t.Error("a shared head without the boost_rate option has a boost rate")
		}
	}
}

// runGraph runs g in ONNX Runtime with the values given by input name and
// random normal values, times scale, for the others, and returns every
// output by name.
func runGraph(t *testing.T, g *graph.Graph, given map[string][]float32, seed uint64, scale float64) map[string][]float32 {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 5))
	in := map[string][]float32{}
	for _, v := range g.Inputs() {
		vs, ok := given[v.Name()]
		if !ok {
			vs = make([]float32, v.Shape().Size())
			for i := range vs {
				vs[i] = float32(scale * rng.NormFloat64())
			}
		}
		in[v.Name()] = vs
	}
	return runORT(t, g, in, 1)
}

// sharedReference is the shared head in float64 on the features: z_m and
// the fused logits the options select.
func sharedReference(opt nn.Options, feats [][]float32, widths []int, w, b []float32, boost float64, batch, classes int) (uni [][]float64, fused []float64) {
	width := len(w) / classes
	uni = make([][]float64, len(feats))
	for m, f := range feats {
		uni[m] = make([]float64, batch*classes)
		for i := range batch {
			for c := range classes {
				s := float64(b[c])
				for j := range widths[m] {
					s += float64(f[i*widths[m]+j]) * float64(w[c*width+j])
				}
				uni[m][i*classes+c] = s
			}
		}
	}
	fused = make([]float64, batch*classes)
	for i := range batch {
		gate := make([]float64, len(feats))
		for m := range feats {
			gate[m] = 1
			if opt[nn.SharedMean] == 1 {
				gate[m] = 1 / float64(len(feats))
			}
		}
		if opt[nn.SharedEntropyGate] == 1 {
			h := make([]float64, len(feats))
			for m := range feats {
				for _, p := range softmax(uni[m][i*classes : (i+1)*classes]) {
					h[m] -= p * math.Log(p)
				}
			}
			first := int(opt.Int(nn.SharedGateEntropies, int64(len(feats))))
			hmax := slices.Max(h[:first])
			var total float64
			for m := range feats {
				gate[m] = math.Exp(hmax - h[m])
				total += gate[m]
			}
			for m := range gate {
				gate[m] /= total
			}
		}
		for c := range classes {
			for m := range feats {
				fused[i*classes+c] += gate[m] * uni[m][i*classes+c]
			}
			fused[i*classes+c] *= boost
		}
	}
	return uni, fused
}

func softmax(z []float64) []float64 {
	out := make([]float64, len(z))
	top := slices.Max(z)
	var s float64
	for i, v := range z {
		out[i] = math.Exp(v - top)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

// Every fusion of the shared head, run in ONNX Runtime, equals the formula
// evaluated in Go on the features it produced.
func TestSharedHeadForwardInONNXRuntime(t *testing.T) {
	const batch, classes = 5, 4
	for _, opt := range []nn.Options{
		nil,
		{nn.SharedMean: 1},
		{nn.SharedEntropyGate: 1},
		{nn.SharedEntropyGate: 1, nn.SharedGateEntropies: 2},
		{nn.SharedBoostRate: 0.37},
		{nn.SharedEntropyGate: 1, nn.SharedBoostRate: 0.5},
	} {
		m, err := nn.New(sharedSpec(opt))
		if err != nil {
			t.Fatal(err)
		}
		g, _ := forwardGraph(t, m, batch)
		vals := m.InitValues(3)
		got := runGraph(t, g, vals, 11, 3)
		var feats [][]float32
		var widths []int
		for _, name := range m.ModalityNames() {
			feats = append(feats, got["features_"+name])
			widths = append(widths, len(got["features_"+name])/batch)
		}
		boost := 1.0
		if v, ok := opt[nn.SharedBoostRate]; ok {
			boost = float64(float32(v))
		}
		uni, fused := sharedReference(opt, feats, widths, vals[nn.HeadWeight], vals[nn.HeadBias], boost, batch, classes)
		for k, name := range m.ModalityNames() {
			for i, v := range got["logits_"+name] {
				if math.Abs(float64(v)-uni[k][i]) > 1e-5 {
					t.Fatalf("options %v: z_%s[%d] = %v, the head gives %v", opt, name, i, v, uni[k][i])
				}
			}
		}
		for i, v := range got["logits"] {
			if math.Abs(float64(v)-fused[i]) > 1e-5*math.Max(1, math.Abs(fused[i])) {
				t.Fatalf("options %v: z[%d] = %v, the formula gives %v", opt, i, v, fused[i])
			}
		}
		if opt[nn.SharedEntropyGate] == 1 {
			// The gate must matter on this data: it differs from the mean.
			_, avg := sharedReference(nn.Options{nn.SharedMean: 1}, feats, widths, vals[nn.HeadWeight], vals[nn.HeadBias], boost, batch, classes)
			var diff float64
			for i := range avg {
				diff = max(diff, math.Abs(avg[i]-fused[i]))
			}
			if diff < 1e-2 {
				t.Errorf("options %v: the gated fusion is within %g of the mean; the test checks nothing", opt, diff)
			}
		}
	}
}

// A one-modality forward reads that encoder and the head only, and gives
// the features and logits of the full forward.
func TestForwardModalityRunsOneEncoder(t *testing.T) {
	const batch = 3
	m, err := nn.New(sharedSpec(nil))
	if err != nil {
		t.Fatal(err)
	}
	vals := m.InitValues(5)
	x := map[string][]float32{}
	rng := rand.New(rand.NewPCG(2, 2))
	for _, mod := range m.Spec.Modalities {
		v := make([]float32, batch*int(mod.Shape.Size()))
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		x[mod.Name] = v
		vals[mod.Name] = v
	}
	full, _ := forwardGraph(t, m, batch)
	want := runGraph(t, full, vals, 1, 1)

	g := graph.New("one")
	in := g.Input("b", graph.Float32, graph.Shape{batch, 4})
	feat, logits, err := m.ForwardModality(g, m.GraphInputs(g), "b", in, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	g.Output("features_b", feat)
	g.Output("logits_b", logits)
	g.Prune()
	for _, n := range g.Nodes() {
		for _, v := range n.Inputs {
			if v != nil && (strings.HasPrefix(v.Name(), nn.EncoderPrefix("a")) || strings.HasPrefix(v.Name(), nn.EncoderPrefix("c"))) {
				t.Errorf("node %s reads %s of another modality", n.Name, v.Name())
			}
		}
	}
	got := runGraph(t, g, vals, 1, 1)
	for _, k := range []string{"features_b", "logits_b"} {
		for i, v := range got[k] {
			if v != want[k][i] {
				t.Fatalf("%s[%d] = %v alone, %v in the full forward", k, i, v, want[k][i])
			}
		}
	}

	concat, _ := nn.New(twoModalities(3))
	g2 := graph.New("concat")
	if _, _, err := concat.ForwardModality(g2, concat.GraphInputs(g2), "audio", g2.Input("audio", graph.Float32, graph.Shape{1, 2, 3}), nn.Eval); err == nil || !strings.Contains(err.Error(), "fusion concat has no unimodal head") {
		t.Errorf("concat: %v", err)
	}
	if _, _, err := m.ForwardModality(g, m.GraphInputs(g), "d", in, nn.Eval); err == nil || !strings.Contains(err.Error(), "no modality d (modalities: a, b, c)") {
		t.Errorf("unknown modality: %v", err)
	}
}

// The gradient of the whole shared-head model (encoders, padding, the
// entropy gate, the boost rate) with respect to its inputs and parameters
// agrees with central differences.
func TestSharedHeadGradient(t *testing.T) {
	for i, opt := range []nn.Options{
		{nn.SharedEntropyGate: 1},
		{nn.SharedEntropyGate: 1, nn.SharedGateEntropies: 2},
		{nn.SharedMean: 1, nn.SharedBoostRate: 0.3},
	} {
		// Linear encoders: no ReLU kinks for the differences to cross.
		m, err := nn.New(sharedSpecWith(opt, linear(3)))
		if err != nil {
			t.Fatal(err)
		}
		const batch = 2
		var inputs []gradcheck.Input
		for _, mod := range m.Spec.Modalities {
			inputs = append(inputs, gradcheck.Input{Shape: append(graph.Shape{batch}, mod.Shape...), DType: graph.Float32})
		}
		params := m.Params()
		for _, p := range params {
			in := gradcheck.Input{Shape: p.Shape, DType: graph.Float32}
			if p.Name == nn.BoostRateParam {
				in.Floats = []float32{0.7}
			}
			inputs = append(inputs, in)
		}
		c := gradcheck.Case{Name: "shared", Inputs: inputs, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
			n := len(m.Spec.Modalities)
			data := map[string]*graph.Value{}
			for k, mod := range m.Spec.Modalities {
				// Larger inputs give the gate unequal weights.
				data[mod.Name] = g.Mul(x[k], g.ConstFloat(3))
			}
			bind := nn.Bindings{Params: map[string]*graph.Value{}}
			for k, p := range params {
				bind.Params[p.Name] = x[n+k]
			}
			out, err := m.Forward(g, bind, data, nn.Train)
			if err != nil {
				g.Fail(err)
				return x[0]
			}
			parts := []*graph.Value{out.Logits}
			for _, name := range m.ModalityNames() {
				parts = append(parts, out.Unimodal[name])
			}
			return g.Concat(1, parts...)
		}}
		if _, err := gradcheck.Check(c, uint64(40+i)); err != nil {
			t.Errorf("options %v: %v", opt, err)
		}
	}
}
