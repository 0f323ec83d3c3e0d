package compile_test

import (
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

	"bmc/compile"
	"bmc/graph"
	"bmc/graph/nn"
	"bmc/runtime"
)

// The Conv backward benchmarks run every candidate lowering of a Conv's
// gradients through ONNX Runtime (CPU, 2 threads) at the sizes of the two
// ResNet18 backbones of the AV benchmark: batch 8, one 3×112×112 frame and a
// 1×256×64 spectrogram. Sessions run on one thread, and besides the wall
// time they report the CPU time per run (cpu-ms/op) and fwd-GFLOP/cpu-s, the
// forward Conv's FLOPs (2·MACs) per CPU second, so every form of one layer
// is compared on the same useful work even on a shared machine. Results: docs/performance.md, "Conv
// backward lowerings".

// convLayer is one Conv of the backbones.
type convLayer struct {
	name   string
	x, w   graph.Shape
	stride int64
	pad    int64
}

func (l convLayer) opts() graph.ConvOpts {
	return graph.ConvOpts{Strides: []int64{l.stride, l.stride}, Pads: []int64{l.pad, l.pad, l.pad, l.pad}}
}

// resnetLayers are the distinct Conv shapes of ResNet18 on both inputs.
func resnetLayers() []convLayer {
	var layers []convLayer
	for _, in := range []struct {
		name string
		c    int64
		h, w int64
	}{{"visual", 3, 112, 112}, {"audio", 1, 256, 64}} {
		h, w := in.h/2, in.w/2 // after the stem
		layers = append(layers, convLayer{in.name + "/stem-7x7-s2", graph.Shape{8, in.c, in.h, in.w}, graph.Shape{64, in.c, 7, 7}, 2, 3})
		h, w = h/2, w/2 // after the max pool
		ch := int64(64)
		for stage := range 4 {
			if stage > 0 {
				layers = append(layers,
					convLayer{fmt.Sprintf("%s/l%d-3x3-s2-%d", in.name, stage+1, 2*ch), graph.Shape{8, ch, h, w}, graph.Shape{2 * ch, ch, 3, 3}, 2, 1},
					convLayer{fmt.Sprintf("%s/l%d-1x1-s2-%d", in.name, stage+1, 2*ch), graph.Shape{8, ch, h, w}, graph.Shape{2 * ch, ch, 1, 1}, 2, 0})
				ch *= 2
				h, w = (h+1)/2, (w+1)/2
			}
			layers = append(layers, convLayer{fmt.Sprintf("%s/l%d-3x3-s1-%d", in.name, stage+1, ch), graph.Shape{8, ch, h, w}, graph.Shape{ch, ch, 3, 3}, 1, 1})
		}
	}
	return layers
}

// lowering builds one form of a layer's forward or gradient computation
// from the graph inputs x, w and dy (the output gradient).
type lowering struct {
	name  string
	build func(g *graph.Graph, l convLayer, x, w, dy *graph.Value) (*graph.Value, error)
}

func bmcGrad(wrt int) func(g *graph.Graph, l convLayer, x, w, dy *graph.Value) (*graph.Value, error) {
	return func(g *graph.Graph, l convLayer, x, w, dy *graph.Value) (*graph.Value, error) {
		y := g.Conv(x, w, nil, l.opts())
		grads, err := compile.GradientsWithSeed(g, y, dy, []*graph.Value{x, w}[wrt:wrt+1])
		if err != nil {
			return nil, err
		}
		return grads[0], nil
	}
}

func convLowerings() []lowering {
	return []lowering{
		{"forward", func(g *graph.Graph, l convLayer, x, w, _ *graph.Value) (*graph.Value, error) {
			return g.Conv(x, w, nil, l.opts()), nil
		}},
		// bmc's rule: a Conv of the flipped dY for stride 1, a ConvTranspose
		// otherwise.
		{"dX/bmc", bmcGrad(0)},
		// The textbook input gradient: one ConvTranspose with the forward's
		// geometry and the output padding that restores the input size.
		{"dX/convtranspose", func(g *graph.Graph, l convLayer, x, w, dy *graph.Value) (*graph.Value, error) {
			var outPad []int64
			for i := range 2 {
				outPad = append(outPad, x.Shape()[2+i]-(l.stride*(dy.Shape()[2+i]-1)+w.Shape()[2+i]-2*l.pad))
			}
			return g.ConvTranspose(dy, w, l.opts(), outPad), nil
		}},
		// bmc's rule: per-tap gathered im2col and MatMuls, one Gemm over an
		// element-gathered im2col for small maps, or a Conv for the stems.
		{"dW/bmc", bmcGrad(1)},
		// The textbook weight gradient: a Conv of the channel-transposed
		// input with the channel-transposed output gradient as its kernel
		// (dilation = stride), cropped to the kernel size.
		{"dW/conv-transposed", func(g *graph.Graph, l convLayer, x, w, dy *graph.Value) (*graph.Value, error) {
			k := w.Shape()[2:]
			c := g.Conv(g.Transpose(x, 1, 0, 2, 3), g.Transpose(dy, 1, 0, 2, 3), nil,
				graph.ConvOpts{Dilations: []int64{l.stride, l.stride}, Pads: []int64{l.pad, l.pad, l.pad, l.pad}})
			c = g.Slice(c, []int64{0, 0}, []int64{k[0], k[1]}, []int64{2, 3}, nil)
			return g.Transpose(c, 1, 0, 2, 3), nil
		}},
		// im2col by a depthwise Conv with a one-hot kernel per tap, then the
		// same Gemm as bmc's rule.
		{"dW/onehot-conv-im2col-gemm", func(g *graph.Graph, l convLayer, x, w, dy *graph.Value) (*graph.Value, error) {
			ws := w.Shape()
			m, c, kh, kw := ws[0], ws[1], ws[2], ws[3]
			taps := kh * kw
			onehot := make([]float32, c*taps*taps)
			for ch := range c {
				for t := range taps {
					onehot[(ch*taps+t)*taps+t] = 1
				}
			}
			kernel := g.ConstFloats(graph.Shape{c * taps, 1, kh, kw}, onehot)
			o := l.opts()
			o.Group = c
			cols := g.Conv(x, kernel, nil, o) // [N, C·K, OH, OW]
			ys := dy.Shape()
			np := ys[0] * ys[2] * ys[3]
			colsT := g.Reshape(g.Transpose(cols, 1, 0, 2, 3), c*taps, np)
			dyT := g.Reshape(g.Transpose(dy, 1, 0, 2, 3), m, np)
			return g.Reshape(g.Gemm(dyT, colsT, nil, false, true, 1, 1), ws...), nil
		}},
	}
}

// BenchmarkConvBackward times every lowering of every ResNet18 layer:
// go test -run '^$' -bench ConvBackward -benchtime 10x ./compile
func BenchmarkConvBackward(b *testing.B) {
	for _, l := range resnetLayers() {
		for _, low := range convLowerings() {
			if low.name[:2] == "dX" && l.x[1] <= 3 {
				continue // a stem's input is data: its gradient is never built
			}
			b.Run(l.name+"/"+low.name, func(b *testing.B) { benchLowering(b, l, low) })
		}
	}
}

// BenchmarkConvBackwardLarge runs the forward and bmc's gradients, and the
// ConvTranspose input gradient, at the shape of the measurements in the
// project's ONNX Runtime notes (a 64→64 3×3 Conv on [32, 64, 56, 56]):
// go test -run '^$' -bench ConvBackwardLarge -benchtime 3x ./compile
func BenchmarkConvBackwardLarge(b *testing.B) {
	l := convLayer{"b32-64ch-56x56", graph.Shape{32, 64, 56, 56}, graph.Shape{64, 64, 3, 3}, 1, 1}
	for _, low := range convLowerings() {
		switch low.name {
		case "forward", "dX/bmc", "dX/convtranspose", "dW/bmc":
			b.Run(l.name+"/"+low.name, func(b *testing.B) { benchLowering(b, l, low) })
		}
	}
}

func benchLowering(b *testing.B, l convLayer, low lowering) {
	g := graph.New("shape")
	ys := g.Conv(g.Input("x", graph.Float32, l.x), g.Input("w", graph.Float32, l.w), nil, l.opts()).Shape()
	if err := g.Err(); err != nil {
		b.Fatal(err)
	}
	g = graph.New("bench")
	x := g.Input("x", graph.Float32, l.x)
	w := g.Input("w", graph.Float32, l.w)
	dy := g.Input("dy", graph.Float32, ys)
	out, err := low.build(g, l, x, w, dy)
	if err != nil {
		b.Fatal(err)
	}
	runBench(b, g, []*graph.Value{out}, nil, 2*ys.Size()*l.w[1:].Size())
}

// runBench runs the graph computing outs on one ORT thread (see
// benchSession) and reports CPU time and, when fwdFLOPs is known, forward
// FLOPs per CPU second.
func runBench(b *testing.B, g *graph.Graph, outs []*graph.Value, values map[string][]float32, fwdFLOPs int64) {
	run := benchSession(b, g, outs, values)
	// Collect the garbage of earlier benchmarks now, so that the Go
	// collector's background work is not counted as this graph's CPU time.
	debug.FreeOSMemory()
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for range b.N {
		run()
	}
	b.StopTimer()
	cpu := (cpuTime(b) - cpu0).Seconds() / float64(b.N)
	b.ReportMetric(cpu*1e3, "cpu-ms/op")
	if fwdFLOPs > 0 {
		b.ReportMetric(float64(fwdFLOPs)/cpu/1e9, "fwd-GFLOP/cpu-s")
	}
}

// benchSession opens a one-thread ORT session on the graph computing outs,
// feeding the inputs it still reads after pruning from values (by name) or,
// where values has none, random numbers in [−1, 1]. It runs the graph once
// to warm up and returns a function running it again.
func benchSession(b *testing.B, g *graph.Graph, outs []*graph.Value, values map[string][]float32) func() {
	var outNames []string
	for i, o := range outs {
		outNames = append(outNames, g.Output(fmt.Sprintf("out%d", i), o).Name())
	}
	g.Prune()
	data, err := graph.Marshal(&graph.Model{Graph: g})
	if err != nil {
		b.Fatal(err)
	}
	used := map[*graph.Value]bool{}
	for _, n := range g.Nodes() {
		for _, in := range n.Inputs {
			used[in] = true
		}
	}
	closeLater := func(t *runtime.Tensor) { b.Cleanup(func() { t.Close() }) }
	var names []string
	var tensors []*runtime.Tensor
	rng := rand.New(rand.NewPCG(1, 2))
	for _, v := range g.Inputs() {
		if !used[v] {
			continue
		}
		t, err := runtime.NewFloat32(v.Shape())
		if err != nil {
			b.Fatal(err)
		}
		closeLater(t)
		if vals, ok := values[v.Name()]; ok {
			copy(t.F32, vals)
		} else {
			for i := range t.F32 {
				t.F32[i] = float32(rng.Float64()*2 - 1)
			}
		}
		names = append(names, v.Name())
		tensors = append(tensors, t)
	}
	var res []*runtime.Tensor
	for _, o := range outs {
		t, err := runtime.NewFloat32(o.Shape())
		if err != nil {
			b.Fatal(err)
		}
		closeLater(t)
		res = append(res, t)
	}
	s, err := runtime.NewSession(data, names, outNames, runtime.Options{Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	run := func() {
		if err := s.Run(tensors, res); err != nil {
			b.Fatal(err)
		}
	}
	run() // warm-up
	return run
}

// BenchmarkPoolBackward times ResNet18's 3×3 stride-2 max pool on the stem
// outputs of both inputs: forward without and with Indices, and with its
// gradient (gradMaxPool's tap lowering):
// go test -run '^$' -bench PoolBackward -benchtime 10x ./compile
func BenchmarkPoolBackward(b *testing.B) {
	pool := graph.PoolOpts{Kernel: []int64{3, 3}, Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}}
	for _, in := range []struct {
		name string
		x    graph.Shape
	}{{"visual", graph.Shape{8, 64, 56, 56}}, {"audio", graph.Shape{8, 64, 128, 32}}} {
		b.Run(in.name+"/maxpool/forward", func(b *testing.B) {
			g := graph.New("bench")
			runBench(b, g, []*graph.Value{g.MaxPool(g.Input("x", graph.Float32, in.x), pool)}, nil, 0)
		})
		b.Run(in.name+"/maxpool/forward-with-indices", func(b *testing.B) {
			g := graph.New("bench")
			y, _ := g.MaxPoolWithIndices(g.Input("x", graph.Float32, in.x), pool)
			runBench(b, g, []*graph.Value{y}, nil, 0)
		})
		b.Run(in.name+"/maxpool/forward+dX", func(b *testing.B) {
			g := graph.New("bench")
			x := g.Input("x", graph.Float32, in.x)
			y := g.MaxPool(x, pool)
			dy := g.Input("dy", graph.Float32, y.Shape())
			grads, err := compile.GradientsWithSeed(g, y, dy, []*graph.Value{x})
			if err != nil {
				b.Fatal(err)
			}
			runBench(b, g, grads, nil, 0)
		})
		b.Run(in.name+"/maxpool/forward-with-indices+dX", func(b *testing.B) {
			g := graph.New("bench")
			x := g.Input("x", graph.Float32, in.x)
			y, _ := g.MaxPoolWithIndices(x, pool)
			dy := g.Input("dy", graph.Float32, y.Shape())
			grads, err := compile.GradientsWithSeed(g, y, dy, []*graph.Value{x})
			if err != nil {
				b.Fatal(err)
			}
			runBench(b, g, grads, nil, 0)
		})
	}
}

// cpuTime is the CPU time the process has used. On a loaded machine it
// measures the work of a single-threaded session far more steadily than the
// wall clock does.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkResNet18Step compares a training-mode forward of the resnet18
// encoder (batch statistics, running statistics updated) with the same
// forward plus the backward to every encoder parameter, on each input of
// the AV benchmark at batch 8. The two graphs run alternately, so that drifts
// in a shared machine's speed hit both, and the benchmark reports the CPU
// time of each and their ratio:
// go test -run '^$' -bench ResNet18Step -benchtime 5x ./compile
func BenchmarkResNet18Step(b *testing.B) {
	for _, in := range []struct {
		name   string
		sample graph.Shape
	}{{"visual", graph.Shape{3, 112, 112}}, {"audio", graph.Shape{1, 256, 64}}} {
		b.Run(in.name, func(b *testing.B) {
			fwd := resnetSession(b, in.name, in.sample, false)
			step := resnetSession(b, in.name, in.sample, true)
			debug.FreeOSMemory()
			var fwdCPU, stepCPU time.Duration
			b.ResetTimer()
			for range b.N {
				t0 := cpuTime(b)
				fwd()
				t1 := cpuTime(b)
				step()
				fwdCPU += t1 - t0
				stepCPU += cpuTime(b) - t1
			}
			b.StopTimer()
			b.ReportMetric(fwdCPU.Seconds()*1e3/float64(b.N), "fwd-cpu-ms")
			b.ReportMetric(stepCPU.Seconds()*1e3/float64(b.N), "step-cpu-ms")
			b.ReportMetric(stepCPU.Seconds()/fwdCPU.Seconds(), "step/fwd")
		})
	}
}

// resnetSession builds the resnet18 encoder's training forward on a batch of
// 8 samples, with the backward to every encoder parameter when withGrad,
// and opens it with benchSession.
func resnetSession(b *testing.B, modality string, sample graph.Shape, withGrad bool) func() {
	m, err := nn.New(nn.ModelSpec{
		Modalities: []nn.ModalitySpec{{Name: modality, Shape: sample, Encoder: nn.EncoderSpec{Kind: "resnet18"}}},
		Classes:    2,
		Fusion:     nn.FusionConcat,
	})
	if err != nil {
		b.Fatal(err)
	}
	g := graph.New("resnet18")
	x := g.Input("x", graph.Float32, append(graph.Shape{8}, sample...))
	bind := m.GraphInputs(g)
	var outs []*graph.Value
	bind.UpdateBuffer = func(_ string, v *graph.Value) { outs = append(outs, v) }
	fwd, err := m.Forward(g, bind, map[string]*graph.Value{modality: x}, nn.Train)
	if err != nil {
		b.Fatal(err)
	}
	features := fwd.Features[modality]
	outs = append(outs, features)
	if withGrad {
		proj := g.Input("proj", graph.Float32, features.Shape())
		loss := g.ReduceSum(g.Mul(features, proj), false)
		var wrt []*graph.Value
		for _, p := range m.Params() {
			if p.Modality == modality { // the encoder's, not the head's
				wrt = append(wrt, bind.Params[p.Name])
			}
		}
		grads, err := compile.Gradients(g, loss, wrt)
		if err != nil {
			b.Fatal(err)
		}
		outs = append(outs, grads...)
	}
	return benchSession(b, g, outs, m.InitValues(1))
}

// BenchmarkGatherBackward times the gradient of an embedding lookup (BERT's
// word table [30522, 768], 8 sequences of 128 tokens) as bmc lowers it, one
// ScatterND of whole rows into zeros, against a ScatterElements with the
// indices broadcast to the gradient's shape:
// go test -run '^$' -bench GatherBackward -benchtime 10x ./compile
func BenchmarkGatherBackward(b *testing.B) {
	const vocab, width, tokens = 30522, 768, 8 * 128
	rng := rand.New(rand.NewPCG(3, 4))
	ids := make([]int64, tokens)
	for i := range ids {
		ids[i] = rng.Int64N(vocab)
	}
	build := func(g *graph.Graph) (table, idx, dy *graph.Value) {
		table = g.Input("table", graph.Float32, graph.Shape{vocab, width})
		idx = g.Constant(graph.Int64Tensor(graph.Shape{8, 128}, ids))
		dy = g.Input("dy", graph.Float32, graph.Shape{8, 128, width})
		return table, idx, dy
	}
	b.Run("bmc-scatternd", func(b *testing.B) {
		g := graph.New("bench")
		table, idx, dy := build(g)
		grads, err := compile.GradientsWithSeed(g, g.Gather(table, idx, 0), dy, []*graph.Value{table})
		if err != nil {
			b.Fatal(err)
		}
		runBench(b, g, grads, nil, 0)
	})
	b.Run("scatterelements", func(b *testing.B) {
		g := graph.New("bench")
		_, idx, dy := build(g)
		wide := g.Expand(g.Reshape(idx, tokens, 1), graph.Shape{tokens, width})
		zeros := g.Expand(g.ConstFloat(0), graph.Shape{vocab, width})
		runBench(b, g, []*graph.Value{g.ScatterElements(zeros, wide, g.Reshape(dy, tokens, width), 0, true)}, nil, 0)
	})
}
