package gradcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"bmc/graph"
	"bmc/internal/onnxcheck"
)

// distinct fills a float input with values at least 0.05 apart (a
// permutation of 0.05·i, centred), so that finite differences never change
// which element of a pooling window is the maximum.
func distinct(shape ...int64) Input {
	n := graph.Shape(shape).Size()
	v := make([]float32, n)
	for i := range v {
		// 37 is coprime to every size used here, so i ↦ 37·i mod n is a
		// permutation.
		v[i] = 0.05 * float32((int64(i)*37)%n-n/2)
	}
	return Input{Shape: shape, DType: graph.Float32, Floats: v}
}

func convCase(name string, x, w Input, bias bool, o graph.ConvOpts) Case {
	inputs := []Input{x, w}
	if bias {
		inputs = append(inputs, f32(w.Shape[0]))
	}
	return Case{Name: name, Inputs: inputs, Build: func(g *graph.Graph, in []*graph.Value) *graph.Value {
		var b *graph.Value
		if bias {
			b = in[2]
		}
		return g.Conv(in[0], in[1], b, o)
	}}
}

// convTransposeCase checks ConvTranspose(x, w) (+ bias) with explicit pads
// and output padding, the form convInputGrad emits.
func convTransposeCase(name string, x, w Input, bias bool, o graph.ConvOpts, outPad []int64) Case {
	inputs := []Input{x, w}
	if bias {
		inputs = append(inputs, f32(w.Shape[1]*max(o.Group, 1)))
	}
	return Case{Name: name, Inputs: inputs, Build: func(g *graph.Graph, in []*graph.Value) *graph.Value {
		if !bias {
			return g.ConvTranspose(in[0], in[1], o, outPad)
		}
		y := g.ConvTranspose(in[0], in[1], o, outPad)
		return g.Apply("ConvTranspose", in, y.Producer().Attrs, 1)[0]
	}}
}

func maxPoolCase(name string, x Input, o graph.PoolOpts) Case {
	return unaryCase(name, x, func(g *graph.Graph, v *graph.Value) *graph.Value {
		y, _ := g.MaxPoolWithIndices(v, o)
		return y
	})
}

func avgPoolCase(name string, x Input, o graph.PoolOpts) Case {
	return unaryCase(name, x, func(g *graph.Graph, v *graph.Value) *graph.Value { return g.AveragePool(v, o) })
}

// convCases check the gradient rules of the convolution and pooling ops:
// input gradients of every geometry (stride 1; stride 2 and 3 with even and
// odd lengths, which need output padding; dilation with and without
// stride; pads beyond the kernel; 1×1 kernels; groups) and the three
// weight-gradient lowerings (the Conv form below 16 channels, the per-tap
// gathered im2col from 16 channels or with groups, the element-gathered
// im2col of small output maps), in 1-D, 2-D and 3-D.
func convCases() []Case {
	s2 := []int64{2, 2}
	p1 := []int64{1, 1, 1, 1}
	return []Case{
		convCase("Conv/3x3-s1-p1-bias", f32(2, 3, 5, 5), f32(4, 3, 3, 3), true, graph.ConvOpts{Pads: p1}),
		convCase("Conv/3x3-s2-p1-odd", f32(1, 2, 7, 6), f32(3, 2, 3, 3), false, graph.ConvOpts{Strides: s2, Pads: p1}),
		convCase("Conv/3x3-s2-asym-pads", f32(1, 2, 6, 7), f32(2, 2, 3, 3), true, graph.ConvOpts{Strides: s2, Pads: []int64{0, 1, 2, 0}}),
		convCase("Conv/stem-7x7-s2-p3", f32(1, 2, 11, 10), f32(2, 2, 7, 7), false, graph.ConvOpts{Strides: s2, Pads: []int64{3, 3, 3, 3}}),
		convCase("Conv/1x1-s2-downsample", f32(2, 3, 5, 6), f32(4, 3, 1, 1), false, graph.ConvOpts{Strides: s2}),
		convCase("Conv/1x1-s1", f32(2, 3, 4, 3), f32(5, 3, 1, 1), true, graph.ConvOpts{}),
		convCase("Conv/dilation2-p2", f32(1, 2, 7, 7), f32(2, 2, 3, 3), false, graph.ConvOpts{Dilations: s2, Pads: []int64{2, 2, 2, 2}}),
		convCase("Conv/stride2-dilation2", f32(1, 2, 9, 8), f32(2, 2, 3, 3), false, graph.ConvOpts{Strides: s2, Dilations: s2, Pads: []int64{1, 2, 2, 1}}),
		convCase("Conv/stride3-dilation2", f32(1, 1, 10, 11), f32(2, 1, 3, 2), false, graph.ConvOpts{Strides: []int64{3, 3}, Dilations: s2, Pads: []int64{2, 1, 1, 2}}),
		// Kernels larger than 4·dY with unit strides: the flipped plain Conv.
		convCase("Conv/big-kernel-s1-groups", f32(1, 4, 2, 2), f32(6, 2, 3, 3), true, graph.ConvOpts{Group: 2, Pads: p1}),
		convCase("Conv/big-kernel-s1-pad-beyond-kernel", f32(1, 8, 1, 1), f32(6, 8, 2, 2), false, graph.ConvOpts{Pads: []int64{1, 2, 1, 1}}),
		convCase("Conv/pad-beyond-kernel", f32(1, 2, 4, 4), f32(2, 2, 2, 2), true, graph.ConvOpts{Pads: []int64{2, 3, 2, 1}}),
		convCase("Conv/groups-s2", f32(1, 4, 5, 5), f32(6, 2, 3, 3), true, graph.ConvOpts{Group: 2, Strides: s2, Pads: p1}),
		convCase("Conv/depthwise", f32(2, 3, 5, 4), f32(3, 1, 3, 3), false, graph.ConvOpts{Group: 3, Pads: p1}),
		convCase("Conv/1d-s2-p1", f32(2, 3, 9), f32(4, 3, 3), true, graph.ConvOpts{Strides: []int64{2}, Pads: []int64{1, 1}}),
		convCase("Conv/1d-k5-s1", f32(1, 2, 8), f32(3, 2, 5), false, graph.ConvOpts{Pads: []int64{2, 2}}),
		// From 16 channels the weight gradient takes the gathered im2col.
		convCase("Conv/16ch-3x3-s1-p1", f32(2, 16, 4, 5), f32(3, 16, 3, 3), true, graph.ConvOpts{Pads: p1}),
		convCase("Conv/16ch-3x3-s2-dilation2", f32(1, 16, 7, 6), f32(2, 16, 3, 3), false, graph.ConvOpts{Strides: s2, Dilations: s2, Pads: []int64{2, 1, 1, 2}}),
		convCase("Conv/16ch-1x1-s2", f32(2, 16, 5, 4), f32(3, 16, 1, 1), false, graph.ConvOpts{Strides: s2}),
		convCase("Conv/16ch-1x1-s1", f32(2, 16, 2, 3), f32(3, 16, 1, 1), true, graph.ConvOpts{}),
		convCase("Conv/16ch-1x1-padded", f32(1, 16, 2, 3), f32(2, 16, 1, 1), false, graph.ConvOpts{Strides: s2, Pads: []int64{1, 0, 0, 1}}),
		convCase("Conv/16ch-1d-s2", f32(2, 16, 7), f32(3, 16, 3), false, graph.ConvOpts{Strides: []int64{2}, Pads: []int64{1, 0}}),
		// Fewer output positions (N·P) than output channels: one Gemm over an
		// element-gathered im2col.
		convCase("Conv/16ch-small-map-s2", f32(2, 16, 3, 3), f32(9, 16, 3, 3), true, graph.ConvOpts{Strides: s2, Pads: p1}),
		convCase("Conv/16ch-small-map-1d", f32(1, 16, 4), f32(5, 16, 2), false, graph.ConvOpts{Dilations: []int64{2}}),
		convCase("Conv/3d-s2", f32(1, 2, 4, 5, 4), f32(2, 2, 2, 2, 2), false, graph.ConvOpts{Strides: []int64{2, 2, 2}, Pads: []int64{0, 1, 0, 0, 0, 1}}),

		// ConvTranspose is the input gradient of Conv; its rule makes second
		// derivatives of convolutional networks possible. Its weight
		// gradient takes each of the Conv weight-gradient lowerings.
		convTransposeCase("ConvTranspose/3x3-s1-p1", f32(1, 3, 4, 4), f32(3, 2, 3, 3), false, graph.ConvOpts{Pads: p1}, nil),
		convTransposeCase("ConvTranspose/3x3-s2-p1-output-padding-bias", f32(2, 2, 3, 4), f32(2, 3, 3, 3), true, graph.ConvOpts{Strides: s2, Pads: p1}, []int64{1, 0}),
		convTransposeCase("ConvTranspose/groups-dilation2", f32(1, 4, 3, 3), f32(4, 1, 3, 3), false, graph.ConvOpts{Group: 2, Dilations: s2, Pads: p1}, nil),
		convTransposeCase("ConvTranspose/1d-s3", f32(2, 3, 4), f32(3, 2, 2), true, graph.ConvOpts{Strides: []int64{3}, Pads: []int64{0, 1}}, []int64{2}),
		convTransposeCase("ConvTranspose/16ch-s2", f32(1, 3, 3, 3), f32(3, 16, 3, 3), false, graph.ConvOpts{Strides: s2, Pads: p1}, []int64{1, 1}),
		convTransposeCase("ConvTranspose/16ch-small-map", f32(1, 9, 1, 2), f32(9, 16, 2, 2), false, graph.ConvOpts{Strides: s2}, nil),

		maxPoolCase("MaxPool/3x3-s2-p1-overlapping", distinct(2, 2, 7, 6), graph.PoolOpts{Kernel: []int64{3, 3}, Strides: s2, Pads: p1}),
		maxPoolCase("MaxPool/3x3-s1-overlapping", distinct(1, 2, 5, 5), graph.PoolOpts{Kernel: []int64{3, 3}}),
		maxPoolCase("MaxPool/2x2-s2", distinct(2, 3, 4, 4), graph.PoolOpts{Kernel: s2, Strides: s2}),
		maxPoolCase("MaxPool/1d-k3-s2", distinct(2, 3, 9), graph.PoolOpts{Kernel: []int64{3}, Strides: []int64{2}, Pads: []int64{1, 0}}),
		unaryCase("MaxPool/3d-2x2x2-s1-dilated", distinct(1, 2, 4, 5, 4), func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Apply("MaxPool", []*graph.Value{x}, graph.Attrs{"kernel_shape": []int64{2, 2, 2}, "dilations": []int64{1, 2, 1}, "pads": []int64{0, 1, 0, 1, 0, 0}}, 1)[0]
		}),
		// Windows over maxPoolTapLimit taps scatter through the indices.
		maxPoolCase("MaxPool/7x4-scatter", distinct(1, 2, 9, 8), graph.PoolOpts{Kernel: []int64{7, 4}, Strides: s2, Pads: []int64{3, 1, 2, 1}}),
		// Without the Indices output the backward recomputes them.
		unaryCase("MaxPool/without-indices-overlapping", distinct(2, 2, 7, 6), func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.MaxPool(x, graph.PoolOpts{Kernel: []int64{3, 3}, Strides: s2, Pads: p1})
		}),

		avgPoolCase("AveragePool/3x3-s2-p1-include-pad", f32(2, 2, 7, 6), graph.PoolOpts{Kernel: []int64{3, 3}, Strides: s2, Pads: p1, CountIncludePad: true}),
		avgPoolCase("AveragePool/3x3-s2-p1-exclude-pad", f32(2, 2, 7, 6), graph.PoolOpts{Kernel: []int64{3, 3}, Strides: s2, Pads: p1}),
		avgPoolCase("AveragePool/2x2-s2", f32(1, 3, 4, 5), graph.PoolOpts{Kernel: s2, Strides: s2}),
		avgPoolCase("AveragePool/1d-k3-s1-p1", f32(2, 2, 6), graph.PoolOpts{Kernel: []int64{3}, Pads: []int64{1, 1}}),

		unaryCase("GlobalAveragePool", f32(2, 3, 4, 5), (*graph.Graph).GlobalAveragePool),
		unaryCase("GlobalAveragePool/1d", f32(2, 3, 7), (*graph.Graph).GlobalAveragePool),
	}
}

// The gradient and Hessian-vector-product graphs of the conv, pool and index
// cases are valid ONNX for an independent checker (onnx.checker with full
// shape inference).
func TestConvAndIndexGradientGraphsPassChecker(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i, c := range slices.Concat(convCases(), indexCases()) {
		for _, order := range []int{gradientGraph, hvpGraph} {
			b, _, err := build(c, order, true)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, fmt.Sprintf("case%02d-order%d.onnx", i, order))
			if err := os.WriteFile(p, b.bytes, 0o644); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, p)
		}
	}
	if err := onnxcheck.Files(paths...); err != nil {
		t.Fatal(err)
	}
}
