package nn_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"bmc/flops"
	"bmc/gradcheck"
	"bmc/graph"
	"bmc/graph/nn"
)

// mmtmCase is one MMTM block on two modalities: audio images [B, 3, 2, 2]
// and visual clips of T = 3 frames folded into the batch, [B·3, 4, 2, 1].
type mmtmCase struct {
	names  []string
	shapes []graph.Shape // activations, [B·T, C, H, W]
	frames []int64
	batch  int64
}

func newMMTMCase() mmtmCase {
	return mmtmCase{names: []string{"audio", "visual"}, shapes: []graph.Shape{{2, 3, 2, 2}, {6, 4, 2, 1}}, frames: []int64{1, 3}, batch: 2}
}

func (mc mmtmCase) widths() [][]int64 {
	out := make([][]int64, len(mc.shapes))
	for i, s := range mc.shapes {
		out[i] = []int64{s[1]}
	}
	return out
}

func (mc mmtmCase) layout(t *testing.T) (nn.Coupling, []nn.Param, []nn.Buffer) {
	t.Helper()
	cp, err := nn.NewCoupling(nn.CouplingMMTM, nil)
	if err != nil {
		t.Fatal(err)
	}
	params, buffers, err := cp.Layout(mc.names, mc.widths())
	if err != nil {
		t.Fatal(err)
	}
	return cp, params, buffers
}

// graphOf builds the block as a graph whose inputs are the activations,
// the parameters and buffers by name and the curation flags; its outputs
// are the coupled activations ("out/<m>") and the buffers' next values.
func (mc mmtmCase) graphOf(t *testing.T, mode nn.Mode) *graph.Graph {
	t.Helper()
	cp, params, buffers := mc.layout(t)
	g := graph.New("mmtm")
	var h []*graph.Value
	for i, s := range mc.shapes {
		h = append(h, g.Input("h/"+mc.names[i], graph.Float32, s))
	}
	b := nn.Bindings{Params: map[string]*graph.Value{}, Buffers: map[string]*graph.Value{}}
	for _, p := range params {
		b.Params[p.Name] = g.Input(p.Name, graph.Float32, p.Shape)
	}
	for _, buf := range buffers {
		b.Buffers[buf.Name] = g.Input(buf.Name, graph.Float32, buf.Shape)
	}
	b.UpdateBuffer = func(name string, v *graph.Value) { g.Output(name+":next", v) }
	b.Input = func(name string, shape graph.Shape, _ []float32, _ string) *graph.Value {
		return g.Input("input/"+name, graph.Float32, shape)
	}
	out, err := cp.Forward(nn.NewCtx(g, b, mode), 0, mc.names, h, mc.frames)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if !o.Shape().Equal(mc.shapes[i]) {
			t.Fatalf("coupled %s is %v, want %v", mc.names[i], o.Shape(), mc.shapes[i])
		}
		g.Output("out/"+mc.names[i], o)
	}
	return g
}

// mmtmReference evaluates the block in float64: the squeeze (frames
// regrouped per sample), the excitation, the gates, the running averages
// and the gated activations, the caring modality (-1: none) gated by its
// updated running average.
func (mc mmtmCase) reference(in map[string][]float32, caring int) (out, avg map[string][]float64) {
	const p = "mmtm_layers.mmtm1."
	b := int(mc.batch)
	var squeeze [][]float64 // [B][D]
	for i := range b {
		var row []float64
		for m, s := range mc.shapes {
			x := in["h/"+mc.names[m]]
			tf, c, hw := int(mc.frames[m]), int(s[1]), int(s[2]*s[3])
			for ch := range c {
				var sum float64
				for f := range tf {
					for k := range hw {
						sum += float64(x[((i*tf+f)*c+ch)*hw+k])
					}
				}
				row = append(row, sum/float64(tf*hw))
			}
		}
		squeeze = append(squeeze, row)
	}
	linear := func(x []float64, name string, outDim int) []float64 {
		w, bias := in[name+".weight"], in[name+".bias"]
		y := make([]float64, outDim)
		for o := range outDim {
			y[o] = float64(bias[o])
			for k, v := range x {
				y[o] += float64(w[o*len(x)+k]) * v
			}
		}
		return y
	}
	hidden := len(in[p+"fc_squeeze.bias"])
	out, avg = map[string][]float64{}, map[string][]float64{}
	step := float64(in[p+"step"][0])
	for m, s := range mc.shapes {
		name := mc.names[m]
		c := int(s[1])
		gates := make([][]float64, b)
		mean := make([]float64, c)
		for i := range b {
			e := linear(squeeze[i], p+"fc_squeeze", hidden)
			for k := range e {
				e[k] = math.Max(e[k], 0)
			}
			gates[i] = linear(e, p+"fc_excites."+name, c)
			for ch := range gates[i] {
				gates[i][ch] = 1 / (1 + math.Exp(-gates[i][ch]))
				mean[ch] += gates[i][ch] / float64(b)
			}
		}
		r := in[p+"running_avg_weight."+name]
		avg[name] = make([]float64, c)
		for ch := range c {
			avg[name][ch] = (mean[ch] + float64(r[ch])*step) / (step + 1)
		}
		x := in["h/"+name]
		tf, hw := int(mc.frames[m]), int(s[2]*s[3])
		o := make([]float64, len(x))
		for i := range b {
			for f := range tf {
				for ch := range c {
					gate := gates[i][ch]
					if m == caring {
						gate = avg[name][ch]
					}
					for k := range hw {
						j := ((i*tf+f)*c+ch)*hw + k
						o[j] = float64(x[j]) * gate
					}
				}
			}
		}
		out[name] = o
	}
	return out, avg
}

// The block computes MMTM's formulas (spec §4.4) in normal and curation
// mode, with the visual frames regrouped per sample by the real batch size,
// and advances the running averages and the call count.
func TestMMTMBlockMatchesTheFormulas(t *testing.T) {
	mc := newMMTMCase()
	_, params, buffers := mc.layout(t)
	rng := rand.New(rand.NewPCG(3, 4))
	in := map[string][]float32{}
	fill := func(name string, n int64, lo, hi float64) {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(lo + (hi-lo)*rng.Float64())
		}
		in[name] = v
	}
	for i, s := range mc.shapes {
		fill("h/"+mc.names[i], s.Size(), -2, 2)
	}
	for _, p := range params {
		fill(p.Name, p.Shape.Size(), -1, 1)
	}
	for _, b := range buffers {
		fill(b.Name, b.Shape.Size(), 0.2, 0.8)
	}
	in["mmtm_layers.mmtm1.step"] = []float32{3}
	g := mc.graphOf(t, nn.Train)
	for caring := -1; caring < len(mc.names); caring++ {
		flags := make([]float32, len(mc.names))
		if caring >= 0 {
			flags[caring] = 1
		}
		in["input/"+nn.MMTMCuration] = flags
		got := runORT(t, g, in, 1)
		want, avg := mc.reference(in, caring)
		for _, m := range mc.names {
			for j, v := range want[m] {
				if d := math.Abs(float64(got["out/"+m][j]) - v); d > 1e-5*max(1, math.Abs(v)) {
					t.Fatalf("caring %d: out/%s[%d] = %v, the formula gives %v", caring, m, j, got["out/"+m][j], v)
				}
			}
			for j, v := range avg[m] {
				if d := math.Abs(float64(got["mmtm_layers.mmtm1.running_avg_weight."+m+":next"][j]) - v); d > 1e-6 {
					t.Fatalf("running average of %s[%d] = %v, want %v", m, j, got["mmtm_layers.mmtm1.running_avg_weight."+m+":next"][j], v)
				}
			}
		}
		if s := got["mmtm_layers.mmtm1.step:next"]; s[0] != 4 {
			t.Errorf("step after the call %v, want 4", s)
		}
	}
	// Evaluation uses the live gates and updates nothing.
	eval := mc.graphOf(t, nn.Eval)
	delete(in, "input/"+nn.MMTMCuration)
	for _, v := range eval.Outputs() {
		if strings.HasSuffix(v.Name(), ":next") {
			t.Errorf("the evaluation graph updates %s", v.Name())
		}
	}
	eval.Prune()
	for _, n := range eval.Nodes() {
		for _, v := range n.Inputs {
			if v != nil && (strings.HasPrefix(v.Name(), "input/") || strings.Contains(v.Name(), "running_avg") || strings.HasSuffix(v.Name(), ".step")) {
				t.Errorf("the evaluation graph reads %s", v.Name())
			}
		}
	}
	got := runORT(t, eval, in, 1)
	want, _ := mc.reference(in, -1)
	for _, m := range mc.names {
		for j, v := range want[m] {
			if d := math.Abs(float64(got["out/"+m][j]) - v); d > 1e-5*max(1, math.Abs(v)) {
				t.Fatalf("eval: out/%s[%d] = %v, want %v", m, j, got["out/"+m][j], v)
			}
		}
	}
}

// The block's gradient with respect to its activations and every parameter
// matches central differences, in both modes and in evaluation. The running
// average is detached, as in the reference; with a call count of 10⁶ the
// current batch weighs 10⁻⁶ in it, so the differences see it as the
// constant the gradient treats it as.
func TestMMTMBlockGradient(t *testing.T) {
	mc := newMMTMCase()
	cp, params, buffers := mc.layout(t)
	var inputs []gradcheck.Input
	for _, s := range mc.shapes {
		inputs = append(inputs, gradcheck.Input{Shape: s, DType: graph.Float32})
	}
	for _, p := range params {
		inputs = append(inputs, gradcheck.Input{Shape: p.Shape, DType: graph.Float32})
	}
	for i, c := range []struct {
		name   string
		mode   nn.Mode
		caring []float32
	}{
		{"train", nn.Train, []float32{0, 0}},
		{"curation-audio", nn.Train, []float32{1, 0}},
		{"curation-visual", nn.Train, []float32{0, 1}},
		{"eval", nn.Eval, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := gradcheck.Case{Name: "MMTM/" + c.name, Inputs: inputs, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
				b := nn.Bindings{Params: map[string]*graph.Value{}, Buffers: map[string]*graph.Value{}}
				for k, p := range params {
					b.Params[p.Name] = x[len(mc.shapes)+k]
				}
				for _, buf := range buffers {
					v := make([]float32, buf.Shape.Size())
					for k := range v {
						v[k] = 0.5
					}
					if strings.HasSuffix(buf.Name, ".step") {
						v[0] = 1e6
					}
					b.Buffers[buf.Name] = g.ConstFloats(buf.Shape, v)
				}
				b.Input = func(_ string, shape graph.Shape, _ []float32, _ string) *graph.Value {
					return g.ConstFloats(shape, c.caring)
				}
				out, err := cp.Forward(nn.NewCtx(g, b, c.mode), 0, mc.names, x[:len(mc.shapes)], mc.frames)
				if err != nil {
					g.Fail(err)
					return x[0]
				}
				return g.Concat(0, g.Reshape(out[0], -1), g.Reshape(out[1], -1))
			}}
			res, err := gradcheck.Check(cs, uint64(40+i))
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != len(inputs) {
				t.Fatalf("%d inputs compared, want %d", len(res), len(inputs))
			}
		})
	}
}

// One block's FLOPs, counted from its graph, equal the hand count: per
// modality the squeeze's mean and the gating's product (one per activation
// element each), the excitation Gemm and ReLU, each modality's Gemm and
// sigmoid; in training also the running average and the curation blend.
func TestMMTMBlockFLOPs(t *testing.T) {
	mc := newMMTMCase()
	var d int64
	for _, s := range mc.shapes {
		d += s[1]
	}
	b := mc.batch
	hidden := 2 * d / 4            // ⌊2D/ratio⌋, ratio 4
	eval := b * hidden * (2*d + 1) // fc_squeeze: 2D per output plus the bias
	eval += b * hidden             // ReLU
	train := int64(1)              // step + 1
	for _, s := range mc.shapes {
		c := s[1]
		eval += 2 * s.Size()           // squeeze mean (in) and x ⊙ gate (out)
		eval += b * c * (2*hidden + 1) // fc_excites.m
		eval += b * c                  // sigmoid
		// mean over the batch (B·C), r·t, +, / (C each), k·r (C), 1 − k (1),
		// (1 − k)·g and the sum (B·C each).
		train += b*c + 3*c + c + 1 + 2*b*c
	}
	for _, tc := range []struct {
		mode nn.Mode
		want int64
	}{{nn.Eval, eval}, {nn.Train, eval + train}} {
		g := mc.graphOf(t, tc.mode)
		got, err := flops.Count(g)
		if err != nil {
			t.Fatal(err)
		}
		if got.Total != tc.want {
			t.Errorf("mode %d: flops.Count %d, hand count %d", tc.mode, got.Total, tc.want)
		}
	}
}

// A coupled model is the plain model plus the blocks: the encoders' and the
// head's tensors keep their names, the MMTM tensors follow them named as
// the reference's mmtm_layers, and its forward costs the plain forward
// plus the four blocks.
func TestMMTMModelLayout(t *testing.T) {
	spec := nn.ModelSpec{Classes: 3, Fusion: nn.FusionConcat, Modalities: []nn.ModalitySpec{
		{Name: "audio", Shape: graph.Shape{1, 16, 12}, Encoder: nn.EncoderSpec{Kind: "resnet18"}},
		{Name: "visual", Shape: graph.Shape{3, 2, 16, 16}, Encoder: nn.EncoderSpec{Kind: "resnet18"}},
	}}
	plain, err := nn.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Coupling = nn.CouplingMMTM
	coupled, err := nn.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	names := func(ps []nn.Param) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	pp, cp := names(plain.Params()), names(coupled.Params())
	if !slices.Equal(cp[:len(pp)], pp) {
		t.Fatal("the coupled model renames or reorders the plain model's parameters")
	}
	var want []string
	for k, c := range []int{64, 128, 256, 512} {
		p := "mmtm_layers.mmtm" + string(rune('1'+k)) + "."
		want = append(want, p+"fc_squeeze.weight", p+"fc_squeeze.bias", p+"fc_excites.audio.weight", p+"fc_excites.audio.bias", p+"fc_excites.visual.weight", p+"fc_excites.visual.bias")
		for _, q := range coupled.Params()[len(pp)+6*k : len(pp)+6*k+6] {
			if q.Modality != "" {
				t.Errorf("%s has modality tag %q", q.Name, q.Modality)
			}
		}
		if s := coupled.Params()[len(pp)+6*k].Shape; !s.Equal(graph.Shape{int64(c), int64(2 * c)}) {
			t.Errorf("block %d squeeze weight %v, want [%d %d] (Linear(2C → 2·2C/4))", k+1, s, c, 2*c)
		}
	}
	if !slices.Equal(cp[len(pp):], want) {
		t.Errorf("MMTM parameters %v, want %v", cp[len(pp):], want)
	}
	if nb, np := len(coupled.Buffers()), len(plain.Buffers()); nb != np+4*3 {
		t.Errorf("%d buffers, want the plain %d plus 3 per block", nb, np)
	}
	count := func(m *nn.Model) int64 {
		g := graph.New("m")
		in := map[string]*graph.Value{}
		for _, mod := range spec.Modalities {
			in[mod.Name] = g.Input("x/"+mod.Name, graph.Float32, append(graph.Shape{2}, mod.Shape...))
		}
		out, err := m.Forward(g, m.GraphInputs(g), in, nn.Eval)
		if err != nil {
			t.Fatal(err)
		}
		g.Output("z", out.Logits)
		c, err := flops.Count(g)
		if err != nil {
			t.Fatal(err)
		}
		return c.Total
	}
	// Stage outputs: audio 16×12 → 4×3, 2×2, 1×1, 1×1; visual 16×16 → 4×4,
	// 2×2, 1×1, 1×1 in 2 frames; batch 2.
	audio := []int64{4 * 3, 2 * 2, 1, 1}
	visual := []int64{4 * 4, 2 * 2, 1, 1}
	var blocks int64
	for k, c := range []int64{64, 128, 256, 512} {
		d, h := 2*c, c
		blocks += 2*h*(2*d+1) + 2*h
		blocks += 2*2*c*audio[k] + 2*c*(2*h+1) + 2*c
		blocks += 2*2*2*c*visual[k] + 2*c*(2*h+1) + 2*c
	}
	if got := count(coupled) - count(plain); got != blocks {
		t.Errorf("the coupled forward costs %d FLOPs more than the plain one, the four blocks by hand %d", got, blocks)
	}
}
