package compile_test

import (
	"math"
	"testing"

	"bmc/compile"
	"bmc/graph"
	"bmc/runtime"
)

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

func TestSGDMatchesPyTorchSemantics(t *testing.T) {
	p0 := []float64{0.5, -1.25, 2, 0.125}
	grads := [][]float64{{0.1, -0.2, 0.3, 0}, {-0.4, 0.5, 0.05, 1}, {0.2, 0.2, -0.7, -0.3}}
	tests := []compile.OptimizerConfig{
		{Name: "sgd", LR: 0.1},
		{Name: "sgd", LR: 0.05, WeightDecay: 0.01},
		{Name: "sgd", LR: 0.1, Momentum: 0.9, WeightDecay: 1e-4},
		{Name: "sgd", LR: 0.1, Momentum: 0.9, WeightDecay: 0.01, Nesterov: true},
	}
	for _, o := range tests {
		g := graph.New("sgd")
		shape := graph.Shape{4}
		p := g.Input("p", graph.Float32, shape)
		grad := g.Input("grad", graph.Float32, shape)
		lr := g.Input("lr", graph.Float32, graph.Shape{1})
		var slots []*graph.Value
		for _, s := range o.Slots() {
			slots = append(slots, g.Input(s, graph.Float32, shape))
		}
		np, next := o.Apply(g, p, grad, slots, lr)
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
		ins := append([]string{"p", "grad", "lr"}, o.Slots()...)
		sess, err := runtime.NewSession(data, ins, outs, runtime.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		tensors := map[string]*runtime.Tensor{}
		for _, name := range append(ins, outs...) {
			s := []int64{4}
			if name == "lr" {
				s = []int64{1}
			}
			if tensors[name], err = runtime.NewFloat32(s); err != nil {
				t.Fatal(err)
			}
		}
		for i, v := range p0 {
			tensors["p"].F32[i] = float32(v)
		}
		tensors["lr"].F32[0] = float32(o.LR)
		for _, gstep := range grads {
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
