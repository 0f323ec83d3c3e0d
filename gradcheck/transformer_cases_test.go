package gradcheck

import (
	"bmc/graph"
	"bmc/graph/nn"
)

// transformerCases check the layer-normalization rule, in every form the
// op takes, and the compositions the transformer encoders are built from.
func transformerCases() []Case {
	return []Case{
		attentionCase("Softmax/multi-head-self-attention", 3, 4, false),
		attentionCase("Softmax/multi-head-attention-last-query", 3, 4, true),
		attentionCase("Softmax/multi-head-attention-scaled-scores", 2, 8, false),
		unaryCase("Erf/gelu", f32(3, 5), nn.GELU),
		encoderCase("LayerNormalization/mosei-transformer", "transformer",
			nn.Options{"d_model": 4, "heads": 2, "ff": 6, "layers": 2, "dropout": 0}, graph.Shape{3, 2}, 0),
		encoderCase("LayerNormalization/vit", "vit_b_16",
			nn.Options{"patch": 2, "width": 4, "heads": 2, "mlp": 6, "layers": 2}, graph.Shape{3, 4, 2}, 0),
		encoderCase("LayerNormalization/bert", "bert",
			nn.Options{"vocab": 7, "hidden": 4, "heads": 2, "ff": 6, "layers": 2, "max_len": 5, "out": 3, "dropout": 0, "proj_dropout": 0}, graph.Shape{1, 4}, 7),
		{Name: "LayerNormalization/last-axis", Inputs: []Input{f32(3, 5), f32(5), f32(5)}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
			return g.LayerNorm(x[0], x[1], x[2], 1e-5)
		}},
		{Name: "LayerNormalization/two-axes-no-bias", Inputs: []Input{f32(2, 3, 4), f32(3, 4)}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
			return g.LayerNorm(x[0], x[1], nil, 1e-12)
		}},
		// The statistics outputs reach the loss (as they do in a second
		// derivative, through the first one's rule).
		{Name: "LayerNormalization/statistics", Inputs: []Input{f32(2, 3, 4), f32(4), f32(4)}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
			out := g.Apply("LayerNormalization", x, graph.Attrs{"axis": int64(-1), "epsilon": float32(1e-5)}, 3)
			return g.Add(g.Add(out[0], g.Mul(out[1], g.ConstFloat(0.7))), g.Mul(out[2], g.ConstFloat(-0.3)))
		}},
		{Name: "LayerNormalization/statistics-only", Inputs: []Input{f32(3, 2, 4), f32(2, 4)}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
			out := g.Apply("LayerNormalization", x, graph.Attrs{"axis": int64(1)}, 3)
			return g.Mul(out[1], out[2])
		}},
		// A node without the statistics outputs: the rule recomputes them.
		{Name: "LayerNormalization/y-only", Inputs: []Input{f32(2, 3, 4), f32(4), f32(4)}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
			return g.Apply("LayerNormalization", x, graph.Attrs{"axis": int64(-1), "epsilon": float32(1e-6)}, 1)[0]
		}},
		// Every axis normalised: no leading axes to sum the scale's gradient over.
		{Name: "LayerNormalization/all-axes", Inputs: []Input{f32(3, 4), f32(3, 4), f32(3, 4)}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
			return g.Apply("LayerNormalization", x, graph.Attrs{"axis": int64(0)}, 3)[0]
		}},
	}
}

// attentionCase binds a tiny nn.MultiheadAttention's parameters (width e,
// 2 heads) to the case's inputs, x [2, l, e] first, and checks the gradient
// of the whole block in training mode without dropout. With lastQuery only
// the last token queries (the packed weights are split). Sequences shorter
// than the head width scale the scores instead of the queries.
func attentionCase(name string, l, e int64, lastQuery bool) Case {
	return Case{Name: name, Inputs: []Input{f32(2, l, e), f32(3*e, e), f32(3 * e), f32(e, e), f32(e)}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
		c := nn.NewCtx(g, nn.Bindings{Params: map[string]*graph.Value{
			"in_proj_weight": x[1], "in_proj_bias": x[2], "out_proj.weight": x[3], "out_proj.bias": x[4],
		}}, nn.Train)
		q := x[0]
		if lastQuery {
			q = g.Slice(x[0], []int64{l - 1}, []int64{l}, []int64{1}, nil)
		}
		return nn.MultiHeadAttention(c, "", q, x[0], 2, 0)
	}}
}

// encoderCase checks the gradient of a whole encoder, at a tiny size in
// training mode with every dropout at 0, with respect to its input (float
// kinds) and every parameter: the model's parameters are the case's inputs
// after the data, which is [2, sample...] (token ids below vocab for BERT).
// Two stacked layer norms over 4 features curve sharply, so the finite
// difference step is 2e-3 (at 1e-2 its truncation error exceeded the
// tolerance; from 5e-3 to 1e-3 the worst element stays under 0.4 of it).
func encoderCase(name, kind string, opts nn.Options, sample graph.Shape, vocab int64) Case {
	m, err := nn.New(nn.ModelSpec{
		Modalities: []nn.ModalitySpec{{Name: "x", Shape: sample, Encoder: nn.EncoderSpec{Kind: kind, Options: opts}}},
		Classes:    2, Fusion: nn.FusionConcat,
	})
	if err != nil {
		return Case{Name: name, Build: func(g *graph.Graph, _ []*graph.Value) *graph.Value {
			g.Fail(err)
			return nil
		}}
	}
	data := f32(append(graph.Shape{2}, sample...)...)
	if vocab > 0 {
		data = Input{Shape: append(graph.Shape{2}, sample...), DType: graph.Int64, IntRange: vocab}
	}
	inputs := []Input{data}
	for _, p := range m.Params() {
		inputs = append(inputs, f32(p.Shape...))
	}
	return Case{Name: name, Inputs: inputs, Eps: 2e-3, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
		b := nn.Bindings{Params: map[string]*graph.Value{}}
		for i, p := range m.Params() {
			b.Params[p.Name] = x[i+1]
		}
		out, err := m.Forward(g, b, map[string]*graph.Value{"x": x[0]}, nn.Train)
		if err != nil {
			g.Fail(err)
		}
		return out.Features["x"]
	}}
}
