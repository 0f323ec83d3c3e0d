package compile_test

import (
	"math"
	"slices"
	"testing"

	"bmc/compile"
	"bmc/graph"
	"bmc/runtime"
)

// adamwReference is PyTorch's AdamW (torch.optim.adamw, amsgrad off) in float64.
func adamwReference(o compile.OptimizerConfig, p []float64, grads [][]float64) []float64 {
	p = append([]float64{}, p...)
	m := make([]float64, len(p))
	v := make([]float64, len(p))
	for step, g := range grads {
		t := float64(step + 1)
		bc1 := 1 - math.Pow(o.Beta1, t)
		bc2 := 1 - math.Pow(o.Beta2, t)
		for i := range p {
			p[i] *= 1 - o.LR*o.WeightDecay
			m[i] = o.Beta1*m[i] + (1-o.Beta1)*g[i]
			v[i] = o.Beta2*v[i] + (1-o.Beta2)*g[i]*g[i]
			p[i] -= o.LR / bc1 * m[i] / (math.Sqrt(v[i])/math.Sqrt(bc2) + o.Eps)
		}
	}
	return p
}

// sgdReference is PyTorch's SGD (torch.optim.sgd, dampening 0) in float64:
// d = g + wd·p; buf = d on the first step, else momentum·buf + d;
// d = nesterov ? d + momentum·buf : buf; p = p − lr·d.
func sgdReference(o compile.OptimizerConfig, p []float64, grads [][]float64) []float64 {
	p = append([]float64{}, p...)
	var buf []float64
	for step, g := range grads {
		for i := range p {
			d := g[i] + o.WeightDecay*p[i]
			if o.Momentum != 0 {
				if step == 0 {
					buf = append(buf, d)
				} else {
					buf[i] = o.Momentum*buf[i] + d
				}
				if o.Nesterov {
					d += o.Momentum * buf[i]
				} else {
					d = buf[i]
				}
			}
			p[i] -= o.LR * d
		}
	}
	return p
}

func TestOptimizersMatchPyTorchSemantics(t *testing.T) {
	p0 := []float64{0.5, -1.25, 2, 0.125}
	grads := [][]float64{{0.1, -0.2, 0.3, 0}, {-0.4, 0.5, 0.05, 1}, {0.2, 0.2, -0.7, -0.3}}
	tests := []compile.OptimizerConfig{
		{Name: "sgd", LR: 0.1},
		{Name: "sgd", LR: 0.05, WeightDecay: 0.01},
		{Name: "sgd", LR: 0.1, Momentum: 0.9, WeightDecay: 1e-4},
		{Name: "sgd", LR: 0.1, Momentum: 0.9, WeightDecay: 0.01, Nesterov: true},
		{Name: "adamw", LR: 0.01, WeightDecay: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
		{Name: "adamw", LR: 0.001, WeightDecay: 0, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6},
	}
	for _, o := range tests {
		g := graph.New("sgd")
		shape := graph.Shape{4}
		p := g.Input("p", graph.Float32, shape)
		grad := g.Input("grad", graph.Float32, shape)
		in := map[string]*graph.Value{}
		for _, name := range o.InputNames() {
			in[name] = g.Input(name, graph.Float32, graph.Shape{1})
		}
		var slots []*graph.Value
		for _, s := range o.Slots() {
			slots = append(slots, g.Input(s, graph.Float32, shape))
		}
		np, next := o.Apply(g, p, grad, slots, in)
		g.Output("p_next", np)
		outs := []string{"p_next"}
		for i, s := range o.Slots() {
			g.Output(s+"_next", next[i])
			outs = append(outs, s+"_next")
		}
		data, err := graph.Marshal(&graph.Model{Graph: g})
		if err != nil {
			t.Fatal(err)
		}
		ins := append(append([]string{"p", "grad"}, o.InputNames()...), o.Slots()...)
		sess, err := runtime.NewSession(data, ins, outs, runtime.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		tensors := map[string]*runtime.Tensor{}
		for _, name := range append(ins, outs...) {
			s := []int64{4}
			if slices.Contains(o.InputNames(), name) {
				s = []int64{1}
			}
			if tensors[name], err = runtime.NewFloat32(s); err != nil {
				t.Fatal(err)
			}
		}
		for i, v := range p0 {
			tensors["p"].F32[i] = float32(v)
		}
		for step, gstep := range grads {
			for name, v := range o.Inputs(o.LR, int64(step+1)) {
				tensors[name].F32[0] = v
			}
			for i, v := range gstep {
				tensors["grad"].F32[i] = float32(v)
			}
			var in, out []*runtime.Tensor
			for _, n := range ins {
				in = append(in, tensors[n])
			}
			for _, n := range outs {
				out = append(out, tensors[n])
			}
			if err := sess.Run(in, out); err != nil {
				t.Fatal(err)
			}
			copy(tensors["p"].F32, tensors["p_next"].F32)
			for _, s := range o.Slots() {
				copy(tensors[s].F32, tensors[s+"_next"].F32)
			}
		}
		want := sgdReference(o, p0, grads)
		if o.Name == compile.AdamW {
			want = adamwReference(o, p0, grads)
		}
		for i, w := range want {
			if got := float64(tensors["p"].F32[i]); math.Abs(got-w) > 1e-6*math.Max(1, math.Abs(w)) {
				t.Errorf("%+v: p[%d] = %.8f after 3 steps, PyTorch's rule gives %.8f", o, i, got, w)
			}
		}
		sess.Close()
		for _, tt := range tensors {
			tt.Close()
		}
	}
}
