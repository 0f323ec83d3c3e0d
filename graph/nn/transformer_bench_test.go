package nn_test

import (
	"math"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/flops"
	"bmc/graph"
	"bmc/graph/nn"
	"bmc/runtime"
)

// BenchmarkMOSEIEncoderStep times forward + backward (gradients of every
// parameter) of the CMU-MOSEI text encoder at the reference's size
// (d_model 1024, 4 heads, ff 2048, 2 layers; 50 tokens of 300 features),
// batch 8, on 2 ORT threads, and reports the graph's GFLOP/s.
func BenchmarkMOSEIEncoderStep(b *testing.B) {
	const batch, l, in = 8, 50, 300
	m, err := nn.New(nn.ModelSpec{
		Modalities: []nn.ModalitySpec{{Name: "x", Shape: graph.Shape{l, in}, Encoder: nn.EncoderSpec{Kind: "transformer"}}},
		Classes:    2, Fusion: nn.FusionConcat,
	})
	if err != nil {
		b.Fatal(err)
	}
	g := graph.New("mosei-step")
	bind := m.GraphInputs(g)
	x := g.Input("x", graph.Float32, graph.Shape{batch, l, in})
	out, err := m.Forward(g, bind, map[string]*graph.Value{"x": x}, nn.Train)
	if err != nil {
		b.Fatal(err)
	}
	loss := g.ReduceSum(out.Features["x"], false)
	var params []nn.Param
	var wrt []*graph.Value
	for _, p := range m.Params() {
		if p.Modality == "x" {
			params = append(params, p)
			wrt = append(wrt, bind.Params[p.Name])
		}
	}
	grads, err := compile.Gradients(g, loss, wrt)
	if err != nil {
		b.Fatal(err)
	}
	var outNames []string
	var outs []*runtime.Tensor
	for i, d := range grads {
		outNames = append(outNames, "grad/"+params[i].Name)
		g.Output(outNames[i], d)
		outs = append(outs, benchTensor(b, params[i].Shape, nil))
	}
	g.Prune()
	count, err := flops.Count(g)
	if err != nil {
		b.Fatal(err)
	}
	data, err := graph.Marshal(&graph.Model{Graph: g})
	if err != nil {
		b.Fatal(err)
	}
	init := m.InitValues(1)
	var names []string
	var ins []*runtime.Tensor
	for _, v := range g.Inputs() {
		names = append(names, v.Name())
		vals, ok := init[v.Name()]
		if !ok {
			vals = make([]float32, v.Shape().Size())
			for i := range vals {
				if strings.HasPrefix(v.Name(), "random/") {
					vals[i] = float32(i%10/9) / 0.9 // a dropout mask
				} else {
					vals[i] = float32(math.Sin(float64(i)))
				}
			}
		}
		ins = append(ins, benchTensor(b, v.Shape(), vals))
	}
	s, err := runtime.NewSession(data, names, outNames, runtime.Options{Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	for range b.N {
		if err := s.Run(ins, outs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(count.Total)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(float64(count.Total)/1e9, "GFLOP/op")
}

func benchTensor(b *testing.B, shape graph.Shape, vals []float32) *runtime.Tensor {
	t, err := runtime.NewFloat32(shape)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { t.Close() })
	copy(t.F32, vals)
	return t
}
