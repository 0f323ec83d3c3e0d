package nn

import (
	"fmt"
	"math"

	"bmc/graph"
)

// vit is torchvision's vit_b_16 without its classification head: the
// encoder's output for the class token, [B, width]. Input (3, H, W) or
// (3, 1, H, W) (a one-frame clip in bmc's (C, T, H, W) video layout), H and
// W multiples of the patch size.
//
// The patch embedding, torchvision's Conv2d(3, width, patch, stride patch),
// is built as a reshape/transpose of the image into patches and one Gemm;
// conv_proj.weight keeps the Conv2d shape [width, 3, patch, patch] so
// torchvision weights load unchanged. Then the class token is prepended,
// encoder.pos_embedding added, and layers × pre-norm blocks (ln_1,
// self_attention, residual; ln_2, mlp Linear–GELU–Linear, residual; eps
// 1e-6) and encoder.ln applied. Parameter names are torchvision's
// state_dict keys without heads.*.
//
// Only the class token leaves the encoder, so the last block computes the
// class token's query, MLP and norms alone; keys and values still cover
// every token.
//
// The reference lists ViT_B (torchvision vit_b_16 with its 1000-way head)
// but its processing path adds a spurious dimension and no experiment uses
// it (spec §2.1); bmc offers the class-token feature as the encoder output.
type vit struct {
	patch, width, layers, heads, mlp int64
	dropout, attentionDropout        float64
}

func newViT(spec EncoderSpec) (Encoder, error) {
	o := spec.Options
	valid := []string{"patch", "width", "layers", "heads", "mlp", "dropout", "attention_dropout"}
	if err := o.Check(spec.Kind, valid, valid[:5]); err != nil {
		return nil, err
	}
	e := vit{patch: o.Int("patch", 16), width: o.Int("width", 768), layers: o.Int("layers", 12), heads: o.Int("heads", 12), mlp: o.Int("mlp", 3072),
		dropout: o.Float("dropout", 0), attentionDropout: o.Float("attention_dropout", 0)}
	if e.width%e.heads != 0 {
		return nil, fmt.Errorf("encoder vit_b_16: width %d is not divisible by heads %d", e.width, e.heads)
	}
	for _, d := range []struct {
		key string
		p   float64
	}{{"dropout", e.dropout}, {"attention_dropout", e.attentionDropout}} {
		if err := checkDropout(spec.Kind, d.key, d.p); err != nil {
			return nil, err
		}
	}
	if err := checkOut(spec, e.width, "width"); err != nil {
		return nil, err
	}
	return e, nil
}

// grid is the number of patches along H and W of one sample of shape in.
func (e vit) grid(in graph.Shape) (nh, nw int64, err error) {
	ok := in.Rank() == 3 || (in.Rank() == 4 && in[1] == 1)
	if !ok || in[0] != 3 {
		return 0, 0, fmt.Errorf("encoder vit_b_16: input shape %v, want (3, H, W) or (3, 1, H, W)", in)
	}
	h, w := in[in.Rank()-2], in[in.Rank()-1]
	if h%e.patch != 0 || w%e.patch != 0 {
		return 0, 0, fmt.Errorf("encoder vit_b_16: image %d×%d is not a multiple of the patch size %d", h, w, e.patch)
	}
	return h / e.patch, w / e.patch, nil
}

func (e vit) Layout(prefix string, in graph.Shape) (Layout, error) {
	nh, nw, err := e.grid(in)
	if err != nil {
		return Layout{}, err
	}
	fanIn := 3 * e.patch * e.patch
	l := Layout{Out: e.width, Params: []Param{
		{Name: prefix + "class_token", Shape: graph.Shape{1, 1, e.width}, Init: Init{Kind: InitConstant}},
		{Name: prefix + "conv_proj.weight", Shape: graph.Shape{e.width, 3, e.patch, e.patch},
			Init: Init{Kind: InitTruncNormal, Std: math.Sqrt(1 / float64(fanIn)), Lo: -2, Hi: 2}},
		{Name: prefix + "conv_proj.bias", Shape: graph.Shape{e.width}, Init: Init{Kind: InitConstant}},
		{Name: prefix + "encoder.pos_embedding", Shape: graph.Shape{1, nh*nw + 1, e.width}, Init: Init{Kind: InitNormal, Std: 0.02}},
	}}
	for i := range e.layers {
		p := fmt.Sprintf("%sencoder.layers.encoder_layer_%d.", prefix, i)
		l.Params = append(l.Params, LayerNormParams(p+"ln_1.", e.width)...)
		l.Params = append(l.Params, MultiHeadAttentionParams(p+"self_attention.", e.width)...)
		l.Params = append(l.Params, LayerNormParams(p+"ln_2.", e.width)...)
		l.Params = append(l.Params, vitMLPParams(p+"mlp.0.", e.width, e.mlp)...)
		l.Params = append(l.Params, vitMLPParams(p+"mlp.3.", e.mlp, e.width)...)
	}
	l.Params = append(l.Params, LayerNormParams(prefix+"encoder.ln.", e.width)...)
	return l, nil
}

// vitMLPParams is a Linear of torchvision's MLPBlock: Xavier-uniform
// weight, bias N(0, 10⁻¹²).
func vitMLPParams(prefix string, in, out int64) []Param {
	return []Param{
		{Name: prefix + "weight", Shape: graph.Shape{out, in}, Init: XavierUniform(in, out)},
		{Name: prefix + "bias", Shape: graph.Shape{out}, Init: Init{Kind: InitNormal, Std: 1e-6}},
	}
}

func (e vit) Forward(c *Ctx, prefix string, x *graph.Value) (*graph.Value, error) {
	g := c.G
	s := x.Shape()
	if s.Rank() < 1 {
		return nil, fmt.Errorf("encoder vit_b_16: input %v has no batch axis", s)
	}
	nh, nw, err := e.grid(s[1:])
	if err != nil {
		return nil, err
	}
	p, n := e.patch, nh*nw
	// [B, 3, nh·p, nw·p] → [B, nh, nw, 3, p, p] → one row of 3·p·p per patch.
	// Reshapes leave the batch axis to −1 so an exported model takes any
	// batch size.
	img := g.Reshape(x, -1, 3, nh, p, nw, p)
	patches := g.Reshape(g.Transpose(img, 0, 2, 4, 1, 3, 5), -1, 3*p*p)
	w := g.Reshape(c.Param(prefix+"conv_proj.weight"), e.width, 3*p*p)
	h := g.Reshape(Linear(g, patches, w, c.Param(prefix+"conv_proj.bias")), -1, n, e.width)
	// The class token broadcast over the batch: added to a zeroed slice of
	// h, which carries the batch axis whatever its size.
	zero := g.Mul(g.Slice(h, []int64{0}, []int64{1}, []int64{1}, nil), g.ConstFloat(0))
	cls := g.Add(zero, c.Param(prefix+"class_token"))
	h = g.Add(g.Concat(1, cls, h), c.Param(prefix+"encoder.pos_embedding"))
	h = c.Dropout(h, e.dropout)
	for i := range e.layers {
		p := fmt.Sprintf("%sencoder.layers.encoder_layer_%d.", prefix, i)
		pop := layerScope(g, prefix, p)
		h = e.block(c, p, h, i == e.layers-1)
		pop()
	}
	h = LayerNorm(c, prefix+"encoder.ln.", h, 1e-6)
	return g.Reshape(h, -1, e.width), g.Err()
}

// block is torchvision's EncoderBlock (pre-norm); with classOnly it returns
// only the class token's output, [B, 1, width].
func (e vit) block(c *Ctx, p string, x *graph.Value, classOnly bool) *graph.Value {
	g := c.G
	kv := LayerNorm(c, p+"ln_1.", x, 1e-6)
	q := kv
	if classOnly {
		x, q = firstToken(g, x), firstToken(g, kv)
	}
	a := MultiHeadAttention(c, p+"self_attention.", q, kv, e.heads, e.attentionDropout)
	x = g.Add(x, c.Dropout(a, e.dropout))
	y := LayerNorm(c, p+"ln_2.", x, 1e-6)
	y = linearTokens(g, y, c.Param(p+"mlp.0.weight"), c.Param(p+"mlp.0.bias"))
	y = c.Dropout(GELU(g, y), e.dropout)
	y = c.Dropout(linearTokens(g, y, c.Param(p+"mlp.3.weight"), c.Param(p+"mlp.3.bias")), e.dropout)
	return g.Add(x, y)
}
