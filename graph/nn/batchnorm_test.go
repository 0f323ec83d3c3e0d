package nn_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"bmc/graph"
	"bmc/graph/nn"
	"bmc/runtime"
)

// runORT runs g in ONNX Runtime (threads intra-op threads) with the given
// float32 inputs, by name, and returns every output by name.
func runORT(t *testing.T, g *graph.Graph, in map[string][]float32, threads int) map[string][]float32 {
	t.Helper()
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	data, err := graph.Marshal(&graph.Model{Graph: g})
	if err != nil {
		t.Fatal(err)
	}
	var inNames, outNames []string
	var ins, outs []*runtime.Tensor
	for _, v := range g.Inputs() {
		vals, ok := in[v.Name()]
		if !ok {
			t.Fatalf("no value for graph input %s", v.Name())
		}
		if int64(len(vals)) != v.Shape().Size() {
			t.Fatalf("input %s: %d values for shape %v", v.Name(), len(vals), v.Shape())
		}
		inNames = append(inNames, v.Name())
		ins = append(ins, tensor(t, v.Shape(), vals))
	}
	for _, v := range g.Outputs() {
		outNames = append(outNames, v.Name())
		outs = append(outs, tensor(t, v.Shape(), nil))
	}
	s, err := runtime.NewSession(data, inNames, outNames, runtime.Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Run(ins, outs); err != nil {
		t.Fatal(err)
	}
	got := map[string][]float32{}
	for i, name := range outNames {
		got[name] = outs[i].F32
	}
	return got
}

// torchBatchNorm evaluates PyTorch's BatchNorm2d training-mode formulas in
// float64 for x [n, c, hw] (flattened spatial axes): the output with the
// biased batch variance, and the running statistics after the update with
// the unbiased one.
func torchBatchNorm(x []float32, n, c, hw int, gamma, beta, rm, rv []float64) (y []float64, nextMean, nextVar []float64) {
	y = make([]float64, len(x))
	nextMean, nextVar = make([]float64, c), make([]float64, c)
	count := float64(n * hw)
	for ch := range c {
		var sum, sq float64
		for i := range n {
			for p := range hw {
				sum += float64(x[(i*c+ch)*hw+p])
			}
		}
		mean := sum / count
		for i := range n {
			for p := range hw {
				d := float64(x[(i*c+ch)*hw+p]) - mean
				sq += d * d
			}
		}
		biased := sq / count
		for i := range n {
			for p := range hw {
				k := (i*c+ch)*hw + p
				y[k] = (float64(x[k])-mean)/math.Sqrt(biased+1e-5)*gamma[ch] + beta[ch]
			}
		}
		nextMean[ch] = 0.9*rm[ch] + 0.1*mean
		nextVar[ch] = 0.9*rv[ch] + 0.1*sq/(count-1)
	}
	return y, nextMean, nextVar
}

// batchNormTrainGraph is BatchNormTrain on x [n, c, h, w] with its
// parameters and running statistics as inputs and y, next_mean and
// next_var as outputs.
func batchNormTrainGraph(n, c, h, w int64) *graph.Graph {
	g := graph.New("bn")
	x := g.Input("x", graph.Float32, graph.Shape{n, c, h, w})
	gamma := g.Input("gamma", graph.Float32, graph.Shape{c})
	beta := g.Input("beta", graph.Float32, graph.Shape{c})
	rm := g.Input("running_mean", graph.Float32, graph.Shape{c})
	rv := g.Input("running_var", graph.Float32, graph.Shape{c})
	y, nm, nv := nn.BatchNormTrain(g, x, gamma, beta, rm, rv)
	g.Output("y", y)
	g.Output("next_mean", nm)
	g.Output("next_var", nv)
	return g
}

// Two training steps: the second starts from the running statistics the
// first returned, and both match PyTorch's formulas.
func TestBatchNormTrainMatchesPyTorch(t *testing.T) {
	const n, c, h, w = 3, 4, 5, 2
	g := batchNormTrainGraph(n, c, h, w)

	rng := rand.New(rand.NewPCG(5, 6))
	in := map[string][]float32{
		"gamma": {1.2, 0.8, -0.5, 1}, "beta": {0.1, -0.3, 0, 2},
		"running_mean": {0, 0, 0, 0}, "running_var": {1, 1, 1, 1},
	}
	wantMean, wantVar := []float64{0, 0, 0, 0}, []float64{1, 1, 1, 1}
	f64 := func(v []float32) []float64 {
		out := make([]float64, len(v))
		for i, e := range v {
			out[i] = float64(e)
		}
		return out
	}
	for step := range 2 {
		xs := make([]float32, n*c*h*w)
		for i := range xs {
			// Channel-dependent offsets and spreads, as real activations have.
			ch := (i / (h * w)) % c
			xs[i] = float32(float64(ch)*1.5 - 1 + rng.NormFloat64()*(0.5+float64(ch)))
		}
		in["x"] = xs
		got := runORT(t, g, in, 1)
		var wantY []float64
		wantY, wantMean, wantVar = torchBatchNorm(xs, n, c, h*w, f64(in["gamma"]), f64(in["beta"]), wantMean, wantVar)
		for i, v := range got["y"] {
			if d := math.Abs(float64(v) - wantY[i]); d > 1e-5*max(1, math.Abs(wantY[i])) {
				t.Fatalf("step %d: y[%d] = %v, PyTorch formula %v", step, i, v, wantY[i])
			}
		}
		for ch := range c {
			if d := math.Abs(float64(got["next_mean"][ch]) - wantMean[ch]); d > 1e-6*max(1, math.Abs(wantMean[ch])) {
				t.Errorf("step %d: running_mean[%d] = %v, PyTorch formula %v", step, ch, got["next_mean"][ch], wantMean[ch])
			}
			if d := math.Abs(float64(got["next_var"][ch]) - wantVar[ch]); d > 1e-6*max(1, wantVar[ch]) {
				t.Errorf("step %d: running_var[%d] = %v, PyTorch formula %v", step, ch, got["next_var"][ch], wantVar[ch])
			}
		}
		in["running_mean"], in["running_var"] = got["next_mean"], got["next_var"]
	}
}

func TestBatchNormEvalUsesRunningStats(t *testing.T) {
	const n, c, h, w = 2, 3, 2, 2
	g := graph.New("bn_eval")
	x := g.Input("x", graph.Float32, graph.Shape{n, c, h, w})
	gamma := g.Input("gamma", graph.Float32, graph.Shape{c})
	beta := g.Input("beta", graph.Float32, graph.Shape{c})
	rm := g.Input("running_mean", graph.Float32, graph.Shape{c})
	rv := g.Input("running_var", graph.Float32, graph.Shape{c})
	g.Output("y", nn.BatchNormEval(g, x, gamma, beta, rm, rv))
	in := map[string][]float32{
		"gamma": {1.5, -0.5, 1}, "beta": {0.25, 1, -1},
		"running_mean": {0.5, -2, 0}, "running_var": {4, 0.25, 1},
		"x": make([]float32, n*c*h*w),
	}
	for i := range in["x"] {
		in["x"][i] = float32(i%7) - 3
	}
	got := runORT(t, g, in, 1)
	for i, v := range got["y"] {
		ch := (i / (h * w)) % c
		want := (float64(in["x"][i])-float64(in["running_mean"][ch]))/math.Sqrt(float64(in["running_var"][ch])+1e-5)*float64(in["gamma"][ch]) + float64(in["beta"][ch])
		if math.Abs(float64(v)-want) > 1e-5*max(1, math.Abs(want)) {
			t.Fatalf("y[%d] = %v, want %v", i, v, want)
		}
	}
}

// A channel of equal values has variance 0, but the one-pass E[x²] − μ²
// rounds to a negative number in float32 for some values (11.1, 123.4 and
// 3333.3 here); below −eps that made √(σ² + eps) NaN (an AMCo run on the
// CREMA-D fixture at batch 2 stopped on it). The clamped variance gives
// y ≈ β on such a channel and a running variance that never drops.
func TestBatchNormTrainConstantChannel(t *testing.T) {
	const n, c, h, w = 2, 2, 3, 3
	g := batchNormTrainGraph(n, c, h, w)
	for _, value := range []float32{3.3, 11.1, 123.4, 1234.567, 3333.3} {
		in := map[string][]float32{
			"gamma": {2, -1}, "beta": {0.5, -0.25}, "running_mean": {0, 0}, "running_var": {1, 1},
			"x": make([]float32, n*c*h*w),
		}
		for i := range in["x"] {
			in["x"][i] = value
		}
		got := runORT(t, g, in, 1)
		for i, v := range got["y"] {
			ch := (i / (h * w)) % c
			// x·scale and μ·scale cancel to a few float32 ulps of x·scale,
			// scale = γ/√eps.
			tol := 1e-6 * float64(value) * math.Abs(float64(in["gamma"][ch])) / math.Sqrt(1e-5)
			if want := float64(in["beta"][ch]); math.IsNaN(float64(v)) || math.Abs(float64(v)-want) > tol {
				t.Fatalf("x all %v: y[%d] = %v, want β = %v within %.2g", value, i, v, want, tol)
			}
		}
		// running_var = 0.9·1 + 0.1·(batch variance ≥ 0), the rounding of
		// E[x²] − μ² aside.
		for i, v := range got["next_var"] {
			if v < 0.9 || float64(v) > 0.9+1e-6*float64(value)*float64(value) {
				t.Fatalf("x all %v: running_var[%d] = %v, want 0.9 (a variance of 0, rounded up at most)", value, i, v)
			}
		}
	}
}

func TestBatchNormRejects(t *testing.T) {
	tests := []struct {
		name  string
		shape graph.Shape
		train bool
		want  string
	}{
		{"rank 3", graph.Shape{2, 3, 4}, true, "want [N, C, H, W]"},
		{"rank 3 eval", graph.Shape{2, 3, 4}, false, "want [N, C, H, W]"},
		{"one value per channel", graph.Shape{1, 3, 1, 1}, true, "more than one value per channel"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := graph.New("bn")
			x := g.Input("x", graph.Float32, tc.shape)
			p := g.Input("p", graph.Float32, graph.Shape{3})
			if tc.train {
				nn.BatchNormTrain(g, x, p, p, p, p)
			} else {
				nn.BatchNormEval(g, x, p, p, p, p)
			}
			if err := g.Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	g := graph.New("bn")
	x := g.Input("x", graph.Float32, graph.Shape{1, 3, 1, 1})
	p := g.Input("p", graph.Float32, graph.Shape{3})
	nn.BatchNormEval(g, x, p, p, p, p)
	if err := g.Err(); err != nil {
		t.Errorf("eval with one value per channel: %v", err)
	}
}
