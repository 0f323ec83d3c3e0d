package nn

import (
	"fmt"

	"bmc/graph"
)

// bert is BalanceBenchmark's text encoder for FOOD-101 (text_encoder, spec
// §2.1): a BERT-base model (HuggingFace BertModel: absolute position
// embeddings, post-norm layers with exact GELU, LayerNorm eps 1e-12) whose
// pooler output, tanh(dense(h[CLS])), goes through Linear(hidden → out)
// and dropout. Input: int64 token ids, (L) or (1, L) per sample.
//
// Parameter names are the reference module's state_dict keys:
// textEncoder.<BertModel key> (embeddings.word_embeddings.weight,
// encoder.layer.<i>.attention.self.query.weight, …, pooler.dense.weight)
// and linear.weight, linear.bias. BertModel's tensors are initialised as
// HuggingFace's _init_weights does (weights N(0, 0.02²), biases 0,
// LayerNorm 1 and 0); linear as nn.Linear.
//
// As in the reference: token types are all 0 and no attention mask is
// passed, so [PAD] tokens are attended like any other. Token id 0 is the
// padding index of the word embeddings, whose row gets no gradient
// (nn.Embedding(padding_idx=0)); HuggingFace also zeroes that row at
// initialisation, bmc draws it like the others.
//
// Differences from the reference: its final F.dropout(p=0.5) uses the
// functional default training=True, so it drops features at evaluation
// time too (spec §7.3); bmc applies it in training only. Only the [CLS]
// token reaches the pooler, so the last layer computes the [CLS] query,
// feed-forward block and norms alone.
type bert struct {
	vocab, hidden, layers, heads, ff, maxLen, typeVocab, out int64
	dropout, projDropout                                     float64
}

func newBERT(spec EncoderSpec) (Encoder, error) {
	o := spec.Options
	valid := []string{"vocab", "hidden", "layers", "heads", "ff", "max_len", "type_vocab", "out", "dropout", "proj_dropout"}
	if err := o.Check(spec.Kind, valid, valid[:8]); err != nil {
		return nil, err
	}
	e := bert{vocab: o.Int("vocab", 30522), hidden: o.Int("hidden", 768), layers: o.Int("layers", 12), heads: o.Int("heads", 12), ff: o.Int("ff", 3072),
		maxLen: o.Int("max_len", 512), typeVocab: o.Int("type_vocab", 2), out: o.Int("out", 1024),
		dropout: o.Float("dropout", 0.1), projDropout: o.Float("proj_dropout", 0.5)}
	if e.hidden%e.heads != 0 {
		return nil, fmt.Errorf("encoder bert: hidden %d is not divisible by heads %d", e.hidden, e.heads)
	}
	for _, d := range []struct {
		key string
		p   float64
	}{{"dropout", e.dropout}, {"proj_dropout", e.projDropout}} {
		if err := checkDropout(spec.Kind, d.key, d.p); err != nil {
			return nil, err
		}
	}
	if err := checkOut(spec, e.out, "out"); err != nil {
		return nil, err
	}
	return e, nil
}

// seqLen is the number of tokens of one sample of shape in.
func (e bert) seqLen(in graph.Shape) (int64, error) {
	if in.Rank() != 1 && (in.Rank() != 2 || in[0] != 1) {
		return 0, fmt.Errorf("encoder bert: input shape %v, want token ids (L) or (1, L)", in)
	}
	l := in[in.Rank()-1]
	if l > e.maxLen {
		return 0, fmt.Errorf("encoder bert: %d tokens exceed max_len %d (the position embeddings)", l, e.maxLen)
	}
	return l, nil
}

func (e bert) Layout(prefix string, in graph.Shape) (Layout, error) {
	if _, err := e.seqLen(in); err != nil {
		return Layout{}, err
	}
	p := prefix + "textEncoder."
	normal := Init{Kind: InitNormal, Std: 0.02}
	l := Layout{Out: e.out, Params: []Param{
		{Name: p + "embeddings.word_embeddings.weight", Shape: graph.Shape{e.vocab, e.hidden}, Init: normal},
		{Name: p + "embeddings.position_embeddings.weight", Shape: graph.Shape{e.maxLen, e.hidden}, Init: normal},
		{Name: p + "embeddings.token_type_embeddings.weight", Shape: graph.Shape{e.typeVocab, e.hidden}, Init: normal},
	}}
	l.Params = append(l.Params, LayerNormParams(p+"embeddings.LayerNorm.", e.hidden)...)
	for i := range e.layers {
		lp := fmt.Sprintf("%sencoder.layer.%d.", p, i)
		for _, name := range []string{"attention.self.query.", "attention.self.key.", "attention.self.value.", "attention.output.dense."} {
			l.Params = append(l.Params, bertLinearParams(lp+name, e.hidden, e.hidden)...)
		}
		l.Params = append(l.Params, LayerNormParams(lp+"attention.output.LayerNorm.", e.hidden)...)
		l.Params = append(l.Params, bertLinearParams(lp+"intermediate.dense.", e.hidden, e.ff)...)
		l.Params = append(l.Params, bertLinearParams(lp+"output.dense.", e.ff, e.hidden)...)
		l.Params = append(l.Params, LayerNormParams(lp+"output.LayerNorm.", e.hidden)...)
	}
	l.Params = append(l.Params, bertLinearParams(p+"pooler.dense.", e.hidden, e.hidden)...)
	l.Params = append(l.Params, LinearParams(prefix+"linear.", e.hidden, e.out)...)
	return l, nil
}

// bertLinearParams is a Linear inside BertModel: weight N(0, 0.02²), bias 0.
func bertLinearParams(prefix string, in, out int64) []Param {
	return []Param{
		{Name: prefix + "weight", Shape: graph.Shape{out, in}, Init: Init{Kind: InitNormal, Std: 0.02}},
		{Name: prefix + "bias", Shape: graph.Shape{out}, Init: Init{Kind: InitConstant}},
	}
}

func (bert) takesTokens() {}

func (e bert) Forward(c *Ctx, prefix string, x *graph.Value) (*graph.Value, error) {
	g := c.G
	s := x.Shape()
	if s.Rank() < 1 {
		return nil, fmt.Errorf("encoder bert: input %v has no batch axis", s)
	}
	l, err := e.seqLen(s[1:])
	if err != nil {
		return nil, err
	}
	p := prefix + "textEncoder."
	ids := g.Reshape(x, -1, l)
	words := g.Gather(c.Param(p+"embeddings.word_embeddings.weight"), ids, 0) // [B, L, H]
	// nn.Embedding(padding_idx=0): the [PAD] row gets no gradient.
	pad := g.Unsqueeze(g.Equal(ids, g.ConstInt(0)), 2)
	words = g.Where(pad, g.StopGradient(words), words)
	pos := g.Slice(c.Param(p+"embeddings.position_embeddings.weight"), []int64{0}, []int64{l}, nil, nil)
	typ := g.Slice(c.Param(p+"embeddings.token_type_embeddings.weight"), []int64{0}, []int64{1}, nil, nil)
	h := g.Add(g.Add(words, typ), pos)
	h = c.Dropout(LayerNorm(c, p+"embeddings.LayerNorm.", h, 1e-12), e.dropout)
	for i := range e.layers {
		lp := fmt.Sprintf("%sencoder.layer.%d.", p, i)
		pop := layerScope(g, prefix, lp)
		h = e.layer(c, lp, h, i == e.layers-1)
		pop()
	}
	cls := g.Reshape(firstToken(g, h), -1, e.hidden)
	pooled := g.Tanh(Linear(g, cls, c.Param(p+"pooler.dense.weight"), c.Param(p+"pooler.dense.bias")))
	out := Linear(g, pooled, c.Param(prefix+"linear.weight"), c.Param(prefix+"linear.bias"))
	return c.Dropout(out, e.projDropout), g.Err()
}

// layer is HuggingFace's BertLayer (post-norm); with clsOnly it returns only
// the [CLS] token's output, [B, 1, hidden].
func (e bert) layer(c *Ctx, p string, x *graph.Value, clsOnly bool) *graph.Value {
	g := c.G
	q := x
	if clsOnly {
		q = firstToken(g, x)
	}
	lin := func(name string, v *graph.Value) *graph.Value {
		return linearTokens(g, v, c.Param(p+name+"weight"), c.Param(p+name+"bias"))
	}
	ctx := Attend(c, lin("attention.self.query.", q), lin("attention.self.key.", x), lin("attention.self.value.", x), e.heads, e.dropout)
	a := LayerNorm(c, p+"attention.output.LayerNorm.", g.Add(c.Dropout(lin("attention.output.dense.", ctx), e.dropout), q), 1e-12)
	i := GELU(g, lin("intermediate.dense.", a))
	return LayerNorm(c, p+"output.LayerNorm.", g.Add(c.Dropout(lin("output.dense.", i), e.dropout), a), 1e-12)
}
