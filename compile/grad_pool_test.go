package compile_test

import (
	"fmt"
	"math"
	"testing"

	"bmc/compile"
	"bmc/graph"
	"bmc/runtime"
)

// maxPoolGradReference is PyTorch's max-pool backward over [N, C, H, W]:
// each output's gradient goes to the first maximum of its window in
// row-major order (padding never wins), and windows sharing that element
// add up. Finite differences cannot check the choice among ties, which is
// what ReLU's zeros before ResNet's max pool make common.
func maxPoolGradReference(x []float32, xs graph.Shape, dy []float32, ys graph.Shape, k, s, p, d [2]int64) []float64 {
	dx := make([]float64, len(x))
	h, w := xs[2], xs[3]
	for nc := range xs[0] * xs[1] {
		for oh := range ys[2] {
			for ow := range ys[3] {
				best, at := float32(math.Inf(-1)), int64(-1)
				for i := range k[0] {
					for j := range k[1] {
						r, c := oh*s[0]-p[0]+i*d[0], ow*s[1]-p[1]+j*d[1]
						if r < 0 || r >= h || c < 0 || c >= w {
							continue
						}
						if v := x[nc*h*w+r*w+c]; at < 0 || v > best {
							best, at = v, nc*h*w+r*w+c
						}
					}
				}
				dx[at] += float64(dy[(nc*ys[2]+oh)*ys[3]+ow])
			}
		}
	}
	return dx
}

// The max-pool gradient picks the first of tied maxima, as PyTorch does,
// and sums windows that share their maximum, for geometries with overlap,
// dilation, asymmetric pads and a window too large for the tap lowering
// (which scatters through the indices instead).
func TestMaxPoolGradientTiesMatchPyTorch(t *testing.T) {
	for _, tc := range []struct {
		name       string
		x          graph.Shape
		k, s, p, d [2]int64
	}{
		{"3x3-s2-p1 (ResNet stem)", graph.Shape{2, 3, 9, 8}, [2]int64{3, 3}, [2]int64{2, 2}, [2]int64{1, 1}, [2]int64{1, 1}},
		{"3x3-s1", graph.Shape{1, 2, 6, 5}, [2]int64{3, 3}, [2]int64{1, 1}, [2]int64{0, 0}, [2]int64{1, 1}},
		{"2x3-s1x2-dilated", graph.Shape{1, 2, 7, 9}, [2]int64{2, 3}, [2]int64{1, 2}, [2]int64{1, 0}, [2]int64{2, 2}},
		{"6x5 window (scatter)", graph.Shape{1, 2, 9, 9}, [2]int64{6, 5}, [2]int64{2, 2}, [2]int64{2, 1}, [2]int64{1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := graph.New("pool")
			x := g.Input("x", graph.Float32, tc.x)
			attrs := graph.Attrs{"kernel_shape": tc.k[:], "strides": tc.s[:], "dilations": tc.d[:], "pads": []int64{tc.p[0], tc.p[1], tc.p[0], tc.p[1]}}
			y := g.Apply("MaxPool", []*graph.Value{x}, attrs, 1)[0]
			dy := g.Input("dy", graph.Float32, y.Shape())
			grads, err := compile.GradientsWithSeed(g, y, dy, []*graph.Value{x})
			if err != nil {
				t.Fatal(err)
			}
			g.Output("dx", grads[0])
			data, err := graph.Marshal(&graph.Model{Graph: g})
			if err != nil {
				t.Fatal(err)
			}
			sess, err := runtime.NewSession(data, []string{"x", "dy"}, []string{"dx"}, runtime.Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			xt, dyt, dxt := newFloats(t, tc.x), newFloats(t, y.Shape()), newFloats(t, tc.x)
			// Values from {−1, 0, 1, 2}: many ties, negative windows, whole
			// windows of equal values.
			for i := range xt.F32 {
				xt.F32[i] = float32((i*7+i/5)%4 - 1)
			}
			for i := range dyt.F32 {
				dyt.F32[i] = float32(i%11) + 0.25
			}
			if err := sess.Run([]*runtime.Tensor{xt, dyt}, []*runtime.Tensor{dxt}); err != nil {
				t.Fatal(err)
			}
			want := maxPoolGradReference(xt.F32, tc.x, dyt.F32, y.Shape(), tc.k, tc.s, tc.p, tc.d)
			for i, v := range want {
				if float64(dxt.F32[i]) != v {
					t.Fatalf("dx[%d] = %v, want %v (first of tied maxima)", i, dxt.F32[i], v)
				}
			}
		})
	}
}

func newFloats(t *testing.T, s graph.Shape) *runtime.Tensor {
	t.Helper()
	v, err := runtime.NewFloat32(s)
	if err != nil {
		t.Fatal(fmt.Errorf("tensor %v: %w", s, err))
	}
	t.Cleanup(func() { v.Close() })
	return v
}
