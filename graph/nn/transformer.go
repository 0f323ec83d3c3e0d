package nn

import (
	"fmt"
	"math"

	"bmc/graph"
)

// transformer is BalanceBenchmark's CMU-MOSEI encoder (Transformer_Encoder,
// spec §2.1): input (L, d_in) per sample; Conv1d(d_in → d_model, kernel 1,
// no bias), a per-token linear map built here as one Gemm; layers ×
// nn.TransformerEncoderLayer(d_model, heads, ff, dropout, ReLU, post-norm,
// eps 1e-5); no positional encoding, no mask; the feature is the last time
// step's output, [B, d_model].
//
// Parameter names are the reference module's state_dict keys: conv.weight
// [d_model, d_in, 1] and transformer.layers.<i>.{self_attn.*, linear1.*,
// linear2.*, norm1.*, norm2.*}.
//
// Only the last time step leaves the encoder, so the last layer computes
// the queries, the feed-forward block and the norms of that step alone;
// keys and values still cover every step, so the feature is the same.
//
// PyTorch's nn.TransformerEncoder deep-copies one initialised layer, so the
// reference's layers start equal; bmc draws each layer independently from
// the same distributions.
type transformer struct {
	dModel, heads, ff, layers int64
	dropout                   float64
}

func newTransformer(spec EncoderSpec) (Encoder, error) {
	o := spec.Options
	if err := o.Check(spec.Kind, []string{"d_model", "heads", "ff", "layers", "dropout"}, []string{"d_model", "heads", "ff", "layers"}); err != nil {
		return nil, err
	}
	e := transformer{dModel: o.Int("d_model", 1024), heads: o.Int("heads", 4), ff: o.Int("ff", 2048), layers: o.Int("layers", 2), dropout: o.Float("dropout", 0.1)}
	if e.dModel%e.heads != 0 {
		return nil, fmt.Errorf("encoder transformer: d_model %d is not divisible by heads %d", e.dModel, e.heads)
	}
	if err := checkDropout(spec.Kind, "dropout", e.dropout); err != nil {
		return nil, err
	}
	if err := checkOut(spec, e.dModel, "d_model"); err != nil {
		return nil, err
	}
	return e, nil
}

func (e transformer) Layout(prefix string, in graph.Shape) (Layout, error) {
	if in.Rank() != 2 {
		return Layout{}, fmt.Errorf("encoder transformer: input shape %v, want (L, d_in)", in)
	}
	dIn := in[1]
	l := Layout{Out: e.dModel}
	// Conv1d's kaiming_uniform_(a=√5): U(±1/√fan_in), fan_in = d_in·1.
	l.Params = append(l.Params, Param{Name: prefix + "conv.weight", Shape: graph.Shape{e.dModel, dIn, 1}, Init: Init{Kind: InitUniform, Bound: 1 / math.Sqrt(float64(dIn))}})
	for i := range e.layers {
		p := fmt.Sprintf("%stransformer.layers.%d.", prefix, i)
		l.Params = append(l.Params, MultiHeadAttentionParams(p+"self_attn.", e.dModel)...)
		l.Params = append(l.Params, LinearParams(p+"linear1.", e.dModel, e.ff)...)
		l.Params = append(l.Params, LinearParams(p+"linear2.", e.ff, e.dModel)...)
		l.Params = append(l.Params, LayerNormParams(p+"norm1.", e.dModel)...)
		l.Params = append(l.Params, LayerNormParams(p+"norm2.", e.dModel)...)
	}
	return l, nil
}

func (e transformer) Forward(c *Ctx, prefix string, x *graph.Value) (*graph.Value, error) {
	g := c.G
	s := x.Shape()
	if s.Rank() != 3 {
		return nil, fmt.Errorf("encoder transformer: input %v, want [B, L, d_in]", s)
	}
	w := g.Reshape(c.Param(prefix+"conv.weight"), e.dModel, s[2])
	h := linearTokens(g, x, w, nil)
	for i := range e.layers {
		p := fmt.Sprintf("%stransformer.layers.%d.", prefix, i)
		q := h
		if i == e.layers-1 {
			q = lastToken(g, h)
		}
		pop := layerScope(g, prefix, p)
		h = e.layer(c, p, q, h)
		pop()
	}
	return g.Reshape(h, -1, e.dModel), g.Err()
}

// layer is nn.TransformerEncoderLayer (post-norm) for the tokens q
// attending over kv (q is kv, or kv's last token):
// x = norm1(q + dropout(attn)); x = norm2(x + dropout(linear2(dropout(relu(linear1(x)))))).
func (e transformer) layer(c *Ctx, p string, q, kv *graph.Value) *graph.Value {
	g := c.G
	a := MultiHeadAttention(c, p+"self_attn.", q, kv, e.heads, e.dropout)
	x := LayerNorm(c, p+"norm1.", g.Add(q, c.Dropout(a, e.dropout)), 1e-5)
	f := c.Dropout(g.Relu(linearTokens(g, x, c.Param(p+"linear1.weight"), c.Param(p+"linear1.bias"))), e.dropout)
	f = linearTokens(g, f, c.Param(p+"linear2.weight"), c.Param(p+"linear2.bias"))
	return LayerNorm(c, p+"norm2.", g.Add(x, c.Dropout(f, e.dropout)), 1e-5)
}
