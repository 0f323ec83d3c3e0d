package nn

import (
	"fmt"
	"math"
	"strings"

	"bmc/graph"
)

// Building blocks of the transformer encoders: multi-head attention, layer
// normalisation, GELU and token-wise linear layers. Token tensors are
// [B, L, E]: B sequences of L tokens of width E.

// MultiHeadAttention is PyTorch's nn.MultiheadAttention without masks:
// queries q [B, Lq, E] attend over kv [B, L, E] (self-attention when q is kv)
// with the packed in-projection in_proj_weight [3E, E], in_proj_bias [3E]
// and the out-projection out_proj.weight [E, E], out_proj.bias [E] under
// prefix. In training, dropout drops attention weights. It returns
// [B, Lq, E].
//
// When q is not kv (an encoder's last layer computing only the tokens it
// outputs), the packed weights are split into the query part and the
// key-value part, so the other queries are never computed.
func MultiHeadAttention(c *Ctx, prefix string, q, kv *graph.Value, heads int64, dropout float64) *graph.Value {
	g := c.G
	e := q.Shape()[2]
	w, b := c.Param(prefix+"in_proj_weight"), c.Param(prefix+"in_proj_bias")
	var qp, kp, vp *graph.Value
	if q == kv {
		qkv := g.Split(linearTokens(g, q, w, b), 2, e, e, e)
		qp, kp, vp = qkv[0], qkv[1], qkv[2]
	} else {
		ws, bs := g.Split(w, 0, e, 2*e), g.Split(b, 0, e, 2*e)
		qp = linearTokens(g, q, ws[0], bs[0])
		k := g.Split(linearTokens(g, kv, ws[1], bs[1]), 2, e, e)
		kp, vp = k[0], k[1]
	}
	ctx := Attend(c, qp, kp, vp, heads, dropout)
	return linearTokens(g, ctx, c.Param(prefix+"out_proj.weight"), c.Param(prefix+"out_proj.bias"))
}

// MultiHeadAttentionParams lays out nn.MultiheadAttention(E, heads) under
// prefix as PyTorch initialises it: in_proj_weight Xavier-uniform, the
// biases zero, out_proj.weight nn.Linear's U(±1/√E).
func MultiHeadAttentionParams(prefix string, e int64) []Param {
	return []Param{
		{Name: prefix + "in_proj_weight", Shape: graph.Shape{3 * e, e}, Init: XavierUniform(e, 3*e)},
		{Name: prefix + "in_proj_bias", Shape: graph.Shape{3 * e}, Init: Init{Kind: InitConstant}},
		{Name: prefix + "out_proj.weight", Shape: graph.Shape{e, e}, Init: Init{Kind: InitUniform, Bound: 1 / math.Sqrt(float64(e))}},
		{Name: prefix + "out_proj.bias", Shape: graph.Shape{e}, Init: Init{Kind: InitConstant}},
	}
}

// Attend is scaled dot-product attention over projected queries q
// [B, Lq, E], keys k and values v [B, L, E], split into heads of width
// E/heads: softmax(q·kᵀ/√d)·v per head, with dropout on the attention
// weights in training. It returns the heads' outputs concatenated,
// [B, Lq, E]. The 1/√d scale multiplies the queries or the scores,
// whichever is smaller (PyTorch scales the queries, HuggingFace's BERT the
// scores; the results agree to rounding).
func Attend(c *Ctx, q, k, v *graph.Value, heads int64, dropout float64) *graph.Value {
	g := c.G
	s := q.Shape()
	e := s[2]
	l := k.Shape()[1]
	if e%heads != 0 {
		g.Fail(fmt.Errorf("attention: width %d is not divisible by %d heads", e, heads))
		return q
	}
	d := e / heads
	scale := g.ConstFloat(float32(1 / math.Sqrt(float64(d))))
	// [B, L, E] → [B, H, L, d] (keys: [B, H, d, L]). Reshapes copy the
	// batch axis (0) so an exported model takes any batch size.
	qh := g.Transpose(g.Reshape(q, 0, 0, heads, d), 0, 2, 1, 3)
	kh := g.Transpose(g.Reshape(k, 0, 0, heads, d), 0, 2, 3, 1)
	vh := g.Transpose(g.Reshape(v, 0, 0, heads, d), 0, 2, 1, 3)
	scaleScores := l < d
	if !scaleScores {
		qh = g.Mul(qh, scale)
	}
	scores := g.MatMul(qh, kh)
	if scaleScores {
		scores = g.Mul(scores, scale)
	}
	p := c.Dropout(g.Softmax(scores, -1), dropout)
	out := g.MatMul(p, vh) // [B, H, Lq, d]
	return g.Reshape(g.Transpose(out, 0, 2, 1, 3), 0, 0, e)
}

// linearTokens is nn.Linear applied to every token of x [B, L, in]:
// x·Wᵀ + b, [B, L, out], as one Gemm over the B·L tokens.
func linearTokens(g *graph.Graph, x, w, b *graph.Value) *graph.Value {
	s := x.Shape()
	out := w.Shape()[0]
	y := Linear(g, g.Reshape(x, -1, s[2]), w, b)
	return g.Reshape(y, -1, s[1], out)
}

// LayerNorm is nn.LayerNorm over the last axis of x, with weight and bias
// under prefix.
func LayerNorm(c *Ctx, prefix string, x *graph.Value, eps float32) *graph.Value {
	return c.G.LayerNorm(x, c.Param(prefix+"weight"), c.Param(prefix+"bias"), eps)
}

// LayerNormParams lays out nn.LayerNorm(n) under prefix: weight 1, bias 0.
func LayerNormParams(prefix string, n int64) []Param {
	return []Param{
		{Name: prefix + "weight", Shape: graph.Shape{n}, Init: Init{Kind: InitConstant, Value: 1}},
		{Name: prefix + "bias", Shape: graph.Shape{n}, Init: Init{Kind: InitConstant}},
	}
}

// GELU is the exact Gaussian error linear unit, 0.5·x·(1 + erf(x/√2)), as
// PyTorch's nn.GELU() computes it (opset 17 has no Gelu op).
func GELU(g *graph.Graph, x *graph.Value) *graph.Value {
	e := g.Erf(g.Mul(x, g.ConstFloat(float32(1/math.Sqrt2))))
	return g.Mul(g.Mul(x, g.ConstFloat(0.5)), g.Add(e, g.ConstFloat(1)))
}

// XavierUniform is nn.init.xavier_uniform_ for a weight with the given fans:
// U(±√(6/(fan_in + fan_out))).
func XavierUniform(fanIn, fanOut int64) Init {
	return Init{Kind: InitUniform, Bound: math.Sqrt(6 / float64(fanIn+fanOut))}
}

// lastToken is x[:, L−1:L], [B, 1, E].
func lastToken(g *graph.Graph, x *graph.Value) *graph.Value {
	l := x.Shape()[1]
	return g.Slice(x, []int64{l - 1}, []int64{l}, []int64{1}, nil)
}

// firstToken is x[:, 0:1], [B, 1, E].
func firstToken(g *graph.Graph, x *graph.Value) *graph.Value {
	return g.Slice(x, []int64{0}, []int64{1}, []int64{1}, nil)
}

// layerScope names the nodes of one layer after its state_dict path
// without the encoder's prefix (the model already scopes the encoder).
func layerScope(g *graph.Graph, prefix, path string) (pop func()) {
	return g.Scope(strings.TrimSuffix(strings.TrimPrefix(path, prefix), "."))
}
