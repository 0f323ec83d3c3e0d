package graph

import (
	"errors"
	"strings"
	"testing"
)

// convShapeCases are the valid shape-rule cases of the conv, pool and index
// ops; TestShapeRules runs them with the others.
func convShapeCases() []shapeCase {
	return []shapeCase{
		{"Conv 2-D stride 2 pad 3 (ResNet stem)", single(func(g *Graph) *Value {
			return g.Conv(in(g, Float32, 8, 3, 112, 112), in(g, Float32, 64, 3, 7, 7), nil, ConvOpts{Strides: []int64{2, 2}, Pads: []int64{3, 3, 3, 3}})
		}), []string{"float32[8 64 56 56]"}},
		{"Conv 2-D with bias, asymmetric pads", single(func(g *Graph) *Value {
			return g.Conv(in(g, Float32, 2, 4, 5, 6), in(g, Float32, 3, 4, 3, 3), in(g, Float32, 3), ConvOpts{Pads: []int64{1, 0, 0, 2}})
		}), []string{"float32[2 3 4 6]"}},
		{"Conv dilation 2", single(func(g *Graph) *Value {
			return g.Conv(in(g, Float32, 1, 2, 9, 9), in(g, Float32, 4, 2, 3, 3), nil, ConvOpts{Dilations: []int64{2, 2}})
		}), []string{"float32[1 4 5 5]"}},
		{"Conv groups", single(func(g *Graph) *Value {
			return g.Conv(in(g, Float32, 2, 6, 5, 5), in(g, Float32, 4, 3, 3, 3), nil, ConvOpts{Group: 2, Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}})
		}), []string{"float32[2 4 3 3]"}},
		{"Conv 1-D (floor rounding)", single(func(g *Graph) *Value {
			return g.Conv(in(g, Float32, 2, 5, 10), in(g, Float32, 7, 5, 3), nil, ConvOpts{Strides: []int64{3}})
		}), []string{"float32[2 7 3]"}},
		{"ConvTranspose stride 2 output_padding 1", single(func(g *Graph) *Value {
			return g.ConvTranspose(in(g, Float32, 2, 4, 3, 3), in(g, Float32, 4, 5, 3, 3), ConvOpts{Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}}, []int64{1, 1})
		}), []string{"float32[2 5 6 6]"}},
		{"ConvTranspose groups", single(func(g *Graph) *Value {
			return g.ConvTranspose(in(g, Float32, 1, 4, 3, 3), in(g, Float32, 4, 3, 2, 2), ConvOpts{Group: 2}, nil)
		}), []string{"float32[1 6 4 4]"}},
		{"MaxPool 3x3 s2 p1 with indices", func(g *Graph) []*Value {
			y, i := g.MaxPoolWithIndices(in(g, Float32, 8, 64, 56, 56), PoolOpts{Kernel: []int64{3, 3}, Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}})
			return []*Value{y, i}
		}, []string{"float32[8 64 28 28]", "int64[8 64 28 28]"}},
		{"MaxPool 1-D without indices", single(func(g *Graph) *Value {
			return g.MaxPool(in(g, Float32, 2, 3, 7), PoolOpts{Kernel: []int64{2}, Strides: []int64{2}})
		}), []string{"float32[2 3 3]"}},
		{"AveragePool count_include_pad", single(func(g *Graph) *Value {
			return g.AveragePool(in(g, Float32, 1, 2, 5, 5), PoolOpts{Kernel: []int64{3, 3}, Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}, CountIncludePad: true})
		}), []string{"float32[1 2 3 3]"}},
		{"GlobalAveragePool", single(func(g *Graph) *Value { return g.GlobalAveragePool(in(g, Float32, 2, 3, 4, 5)) }), []string{"float32[2 3 1 1]"}},
		{"Gather embedding", single(func(g *Graph) *Value { return g.Gather(in(g, Float32, 10, 4), in(g, Int64, 2, 3), 0) }), []string{"float32[2 3 4]"}},
		{"Gather axis -1 scalar index", single(func(g *Graph) *Value { return g.Gather(in(g, Float32, 2, 5), in(g, Int64), -1) }), []string{"float32[2]"}},
		{"GatherElements", single(func(g *Graph) *Value { return g.GatherElements(in(g, Float32, 3, 4), in(g, Int64, 2, 7), 1) }), []string{"float32[2 7]"}},
		{"ScatterElements add", single(func(g *Graph) *Value {
			return g.ScatterElements(in(g, Float32, 5, 3), in(g, Int64, 6, 3), in(g, Float32, 6, 3), 0, true)
		}), []string{"float32[5 3]"}},
	}
}

func TestConvAndIndexShapeErrors(t *testing.T) {
	s2 := []int64{2, 2}
	tests := []struct {
		name  string
		build func(g *Graph)
		op    string
		want  []string
	}{
		{"Conv rank-2 input", func(g *Graph) { g.Conv(in(g, Float32, 2, 3), in(g, Float32, 4, 3), nil, ConvOpts{}) },
			"Conv", []string{"N×C×spatial with 1 to 3 spatial axes, got rank 2"}},
		{"Conv channel mismatch", func(g *Graph) { g.Conv(in(g, Float32, 1, 3, 5, 5), in(g, Float32, 4, 2, 3, 3), nil, ConvOpts{}) },
			"Conv", []string{"weight expects 2 input channels per group, the input has 3 channels in 1 groups"}},
		{"Conv group does not divide", func(g *Graph) {
			g.Conv(in(g, Float32, 1, 4, 5, 5), in(g, Float32, 3, 2, 3, 3), nil, ConvOpts{Group: 2})
		}, "Conv", []string{"group 2 must divide the input channels 4 and the output channels 3"}},
		{"Conv kernel larger than padded input", func(g *Graph) {
			g.Conv(in(g, Float32, 1, 1, 2, 2), in(g, Float32, 1, 1, 5, 5), nil, ConvOpts{Pads: []int64{1, 1, 1, 1}})
		}, "Conv", []string{"padded length 4 is shorter than the dilated kernel 5"}},
		{"Conv bias shape", func(g *Graph) {
			g.Conv(in(g, Float32, 1, 2, 5, 5), in(g, Float32, 4, 2, 3, 3), in(g, Float32, 3), ConvOpts{})
		}, "Conv", []string{"bias has shape [3], want [4]"}},
		{"Conv strides length", func(g *Graph) {
			g.Conv(in(g, Float32, 1, 2, 5, 5), in(g, Float32, 4, 2, 3, 3), nil, ConvOpts{Strides: []int64{2}})
		}, "Conv", []string{"strides [2] must have 2 entries"}},
		{"Conv negative pad", func(g *Graph) {
			g.Conv(in(g, Float32, 1, 2, 5, 5), in(g, Float32, 4, 2, 3, 3), nil, ConvOpts{Pads: []int64{-1, 0, 0, 0}})
		}, "Conv", []string{"pads [-1 0 0 0] must be ≥ 0"}},
		{"Conv auto_pad", func(g *Graph) {
			g.Apply("Conv", []*Value{in(g, Float32, 1, 2, 5, 5), in(g, Float32, 4, 2, 3, 3)}, Attrs{"auto_pad": "SAME_UPPER"}, 1)
		}, "Conv", []string{`auto_pad "SAME_UPPER" is not supported`}},
		{"Conv int input", func(g *Graph) { g.Conv(in(g, Int64, 1, 2, 5, 5), in(g, Int64, 4, 2, 3, 3), nil, ConvOpts{}) },
			"Conv", []string{"want a float type"}},
		{"ConvTranspose output_padding too large", func(g *Graph) {
			g.ConvTranspose(in(g, Float32, 1, 4, 3, 3), in(g, Float32, 4, 2, 3, 3), ConvOpts{Strides: s2}, []int64{2, 0})
		}, "ConvTranspose", []string{"output_padding [2 0] must lie in [0, max(stride, dilation))"}},
		{"ConvTranspose channel mismatch", func(g *Graph) {
			g.ConvTranspose(in(g, Float32, 1, 4, 3, 3), in(g, Float32, 3, 2, 3, 3), ConvOpts{}, nil)
		}, "ConvTranspose", []string{"weight has 3 input channels, the input has 4"}},
		{"MaxPool pad not smaller than kernel", func(g *Graph) {
			g.MaxPoolWithIndices(in(g, Float32, 1, 1, 6, 6), PoolOpts{Kernel: s2, Pads: []int64{2, 0, 0, 0}})
		}, "MaxPool", []string{"pads [2 0 0 0] must be smaller than the kernel [2 2]"}},
		{"MaxPool kernel rank", func(g *Graph) { g.MaxPool(in(g, Float32, 1, 1, 6, 6), PoolOpts{Kernel: []int64{2}}) },
			"MaxPool", []string{"kernel_shape [2] must have one entry per spatial axis (2)"}},
		{"MaxPool ceil_mode", func(g *Graph) {
			g.Apply("MaxPool", []*Value{in(g, Float32, 1, 1, 6, 6)}, Attrs{"kernel_shape": s2, "ceil_mode": int64(1)}, 1)
		}, "MaxPool", []string{"ceil_mode=1 is not supported"}},
		{"AveragePool indices output", func(g *Graph) {
			g.Apply("AveragePool", []*Value{in(g, Float32, 1, 1, 6, 6)}, Attrs{"kernel_shape": s2}, 2)
		}, "AveragePool", []string{"has 2 outputs, want 1"}},
		{"AveragePool dilations", func(g *Graph) {
			g.Apply("AveragePool", []*Value{in(g, Float32, 1, 1, 6, 6)}, Attrs{"kernel_shape": s2, "dilations": s2}, 1)
		}, "AveragePool", []string{"AveragePool has no dilations at opset 17"}},
		{"GlobalAveragePool rank 2", func(g *Graph) { g.GlobalAveragePool(in(g, Float32, 2, 3)) },
			"GlobalAveragePool", []string{"got rank 2"}},
		{"Gather float indices", func(g *Graph) { g.Gather(in(g, Float32, 10, 4), in(g, Float32, 3), 0) },
			"Gather", []string{"indices are float32, want int64 or int32"}},
		{"Gather axis", func(g *Graph) { g.Gather(in(g, Float32, 10, 4), in(g, Int64, 3), 2) },
			"Gather", []string{"axis 2 is out of range for rank 2"}},
		{"GatherElements rank", func(g *Graph) { g.GatherElements(in(g, Float32, 3, 4), in(g, Int64, 3), 0) },
			"GatherElements", []string{"indices have rank 1, data has rank 2"}},
		{"GatherElements too wide", func(g *Graph) { g.GatherElements(in(g, Float32, 3, 4), in(g, Int64, 2, 5), 0) },
			"GatherElements", []string{"indices dimension 1 is 5, larger than data's 4"}},
		{"ScatterElements updates shape", func(g *Graph) {
			g.ScatterElements(in(g, Float32, 5, 3), in(g, Int64, 2, 3), in(g, Float32, 2, 2), 0, false)
		}, "ScatterElements", []string{"updates have shape [2 2], indices [2 3]"}},
		{"ScatterElements reduction", func(g *Graph) {
			g.Apply("ScatterElements", []*Value{in(g, Float32, 5), in(g, Int64, 2), in(g, Float32, 2)}, Attrs{"reduction": "mul"}, 1)
		}, "ScatterElements", []string{`reduction "mul" is not supported`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := New("bad")
			tc.build(g)
			var se *ShapeError
			if !errors.As(g.Err(), &se) {
				t.Fatalf("Err() = %v, want a *ShapeError", g.Err())
			}
			if se.Op != tc.op {
				t.Errorf("ShapeError.Op = %q, want %q", se.Op, tc.op)
			}
			msg := se.Error()
			for _, w := range append([]string{"graph bad: " + tc.op + " (node forward/" + tc.op + ")"}, tc.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}
