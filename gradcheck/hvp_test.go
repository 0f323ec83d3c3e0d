package gradcheck

import (
	"slices"
	"testing"

	"bmc/compile"
	"bmc/graph"
	"bmc/graph/nn"
	"bmc/methods"
)

// Every gradient rule emits ops that have gradient rules themselves, and
// differentiating each case's gradient graph again gives its Hessian-vector
// product: checked against central differences of the gradient graph.
func TestSecondOrderOfEveryRule(t *testing.T) {
	for _, c := range slices.Concat(cases(), batchNormCases()) {
		t.Run(c.Name, func(t *testing.T) {
			res, err := CheckHVP(c, seedOf(c))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Analytic) == 0 {
				t.Fatal("no Hessian-vector product compared")
			}
		})
	}
}

// A Hessian-vector product that misses a path of the gradient graph must be
// caught: for x²·stop(x) the gradient graph computes 2x·stop(x), whose
// differences give 4x, while the second pass, stopped again, gives 2x.
func TestCheckHVPCatchesWrongSecondDerivative(t *testing.T) {
	c := unaryCase("Mul/stopped", positive(6), func(g *graph.Graph, x *graph.Value) *graph.Value {
		return g.Mul(g.Mul(x, x), g.StopGradient(x))
	})
	if _, err := CheckHVP(c, 1); err == nil {
		t.Fatal("a second derivative missing half its value passed the check")
	}
}

// lfmModelCase is LFM's L_tot = a0·CE(z, y) + a1·L_al (the Jensen–Shannon
// alignment of the unimodal logits) of a two-modality model in training
// mode: modality x has the encoder under test, modality y a small MLP. The
// case's inputs are x ([batch, sample...], token ids below vocab when vocab
// > 0), y, the labels and every parameter, drawn as the model initialises
// them; batch-norm statistics are constants.
func lfmModelCase(name string, enc nn.EncoderSpec, sample graph.Shape, vocab, batch int64) Case {
	fail := func(err error) Case {
		return Case{Name: name, Build: func(g *graph.Graph, _ []*graph.Value) *graph.Value {
			g.Fail(err)
			return nil
		}}
	}
	m, err := nn.New(nn.ModelSpec{Classes: 3, Fusion: nn.FusionConcat, Modalities: []nn.ModalitySpec{
		{Name: "x", Shape: sample, Encoder: enc},
		{Name: "y", Shape: graph.Shape{4}, Encoder: nn.EncoderSpec{Kind: "mlp", Hidden: []int64{5}, Out: 3}},
	}})
	if err != nil {
		return fail(err)
	}
	init := m.InitValues(7)
	x := f32(append(graph.Shape{batch}, sample...)...)
	if vocab > 0 {
		x = Input{Shape: append(graph.Shape{batch}, sample...), DType: graph.Int64, IntRange: vocab}
	}
	labels := make([]int64, batch)
	for i := range labels {
		labels[i] = int64(i % 3)
	}
	inputs := []Input{x, f32(batch, 4), ints(graph.Shape{batch}, labels...)}
	for _, p := range m.Params() {
		inputs = append(inputs, Input{Shape: p.Shape, DType: graph.Float32, Floats: init[p.Name]})
	}
	return Case{Name: name, Inputs: inputs, Build: func(g *graph.Graph, in []*graph.Value) *graph.Value {
		b := nn.Bindings{Params: map[string]*graph.Value{}, Buffers: map[string]*graph.Value{}}
		for i, p := range m.Params() {
			b.Params[p.Name] = in[3+i]
		}
		for _, buf := range m.Buffers() {
			b.Buffers[buf.Name] = g.ConstFloats(buf.Shape, init[buf.Name])
		}
		out, err := m.Forward(g, b, map[string]*graph.Value{"x": in[0], "y": in[1]}, nn.Train)
		if err != nil {
			g.Fail(err)
			return nil
		}
		ce := compile.CrossEntropy(g, out.Logits, in[2])
		align := methods.LFMAlignment(g, out.Unimodal, m.ModalityNames(), false)
		return g.Add(g.Mul(ce, g.ConstFloat(0.6)), g.Mul(align, g.ConstFloat(0.4)))
	}}
}

// The Hessian-vector product of LFM's loss through every encoder kind the
// model supports, at tiny sizes in training mode, against central
// differences of the gradient graph over all parameters at once, element by
// element. The steps suit each network's curvature: ViT's class token and
// ResNet18's batch norm over few values curve sharply (ResNet18 at 64×64,
// where layer4's maps are 2×2; at 32×32 its 1×1 maps normalise 4 values per
// channel and no float32 step resolves the curvature).
func TestEncoderHVP(t *testing.T) {
	tests := []struct {
		name   string
		enc    nn.EncoderSpec
		sample graph.Shape
		vocab  int64
		batch  int64
		eps    float64
	}{
		{"mlp", nn.EncoderSpec{Kind: "mlp", Hidden: []int64{6}, Out: 4}, graph.Shape{5}, 0, 4, 1e-3},
		{"resnet18", nn.EncoderSpec{Kind: "resnet18"}, graph.Shape{1, 64, 64}, 0, 4, 1e-3},
		{"resnet18-frames", nn.EncoderSpec{Kind: "resnet18"}, graph.Shape{3, 2, 64, 64}, 0, 2, 1e-3},
		{"transformer", nn.EncoderSpec{Kind: "transformer", Options: nn.Options{"d_model": 8, "heads": 2, "ff": 12, "layers": 2, "dropout": 0}}, graph.Shape{3, 5}, 0, 4, 1e-3},
		{"vit_b_16", nn.EncoderSpec{Kind: "vit_b_16", Options: nn.Options{"patch": 2, "width": 8, "heads": 2, "mlp": 12, "layers": 2}}, graph.Shape{3, 4, 4}, 0, 4, 1e-4},
		{"bert", nn.EncoderSpec{Kind: "bert", Options: nn.Options{"vocab": 9, "hidden": 8, "heads": 2, "ff": 12, "layers": 2, "max_len": 6, "out": 5, "dropout": 0, "proj_dropout": 0}}, graph.Shape{1, 5}, 9, 4, 1e-3},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := lfmModelCase(tc.name, tc.enc, tc.sample, tc.vocab, tc.batch)
			c.Eps = tc.eps
			res, err := CheckHVP(c, uint64(50+i))
			t.Logf("%d elements, relative error %.2g, worst element %.2g of the tolerance", len(res.Analytic), res.RelErr, res.MaxErr)
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
