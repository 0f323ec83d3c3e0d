package flops_test

import (
	"testing"

	"bmc/compile"
	"bmc/flops"
	"bmc/graph"
)

func idx(g *graph.Graph, name string, shape ...int64) *graph.Value {
	return g.Input(name, graph.Int64, graph.Shape(shape))
}

// Hand-derived costs: a Conv output element is a dot product of
// (C_in/group)·kH·kW taps (one MAC, 2 FLOPs each) plus one bias add.
func TestConvAndIndexCost(t *testing.T) {
	tests := []struct {
		name  string
		build func(g *graph.Graph) *graph.Value
		want  flops.Cost
	}{
		{"ResNet stem 7x7 s2 no bias", func(g *graph.Graph) *graph.Value {
			return g.Conv(in(g, "x", 8, 3, 112, 112), in(g, "w", 64, 3, 7, 7), nil, graph.ConvOpts{Strides: []int64{2, 2}, Pads: []int64{3, 3, 3, 3}})
		}, flops.Cost{MACs: 8 * 64 * 56 * 56 * 3 * 49, FLOPs: 2 * 8 * 64 * 56 * 56 * 3 * 49}},
		{"Conv with bias", func(g *graph.Graph) *graph.Value {
			// Output [2,3,4,6]: 144 elements, 4·3·3 = 36 taps each.
			return g.Conv(in(g, "x", 2, 4, 5, 6), in(g, "w", 3, 4, 3, 3), in(g, "b", 3), graph.ConvOpts{Pads: []int64{1, 0, 0, 2}})
		}, flops.Cost{MACs: 144 * 36, FLOPs: 2*144*36 + 144}},
		{"Conv groups", func(g *graph.Graph) *graph.Value {
			// Output [2,4,3,3] = 72 elements, C_in/group = 3, 9 taps.
			return g.Conv(in(g, "x", 2, 6, 5, 5), in(g, "w", 4, 3, 3, 3), nil, graph.ConvOpts{Group: 2, Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}})
		}, flops.Cost{MACs: 72 * 27, FLOPs: 2 * 72 * 27}},
		{"Conv 1-D", func(g *graph.Graph) *graph.Value {
			// Output [2,7,3] = 42 elements, 5·3 taps.
			return g.Conv(in(g, "x", 2, 5, 10), in(g, "w", 7, 5, 3), in(g, "b", 7), graph.ConvOpts{Strides: []int64{3}})
		}, flops.Cost{MACs: 42 * 15, FLOPs: 2*42*15 + 42}},
		{"ConvTranspose", func(g *graph.Graph) *graph.Value {
			// Input [2,4,3,3] = 72 elements, each times 5·9 taps.
			return g.ConvTranspose(in(g, "x", 2, 4, 3, 3), in(g, "w", 4, 5, 3, 3), graph.ConvOpts{Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}}, []int64{1, 1})
		}, flops.Cost{MACs: 72 * 45, FLOPs: 2 * 72 * 45}},
		{"MaxPool 3x3: 8 comparisons per output", func(g *graph.Graph) *graph.Value {
			y, _ := g.MaxPoolWithIndices(in(g, "x", 8, 64, 56, 56), graph.PoolOpts{Kernel: []int64{3, 3}, Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}})
			return y
		}, flops.Cost{FLOPs: 8 * 64 * 28 * 28 * 8}},
		{"AveragePool 2x2: 3 adds and a divide per output", func(g *graph.Graph) *graph.Value {
			return g.AveragePool(in(g, "x", 1, 2, 6, 6), graph.PoolOpts{Kernel: []int64{2, 2}, Strides: []int64{2, 2}})
		}, flops.Cost{FLOPs: 1 * 2 * 3 * 3 * 4}},
		{"GlobalAveragePool: in − out adds, out divides", func(g *graph.Graph) *graph.Value {
			return g.GlobalAveragePool(in(g, "x", 2, 3, 4, 5))
		}, flops.Cost{FLOPs: 2*3*4*5 - 2*3 + 2*3}},
		{"Gather moves data", func(g *graph.Graph) *graph.Value {
			return g.Gather(in(g, "e", 10, 4), idx(g, "i", 2, 3), 0)
		}, flops.Cost{}},
		{"GatherElements moves data", func(g *graph.Graph) *graph.Value {
			return g.GatherElements(in(g, "x", 3, 4), idx(g, "i", 3, 2), 1)
		}, flops.Cost{}},
		{"ScatterElements none moves data", func(g *graph.Graph) *graph.Value {
			return g.ScatterElements(in(g, "x", 5, 3), idx(g, "i", 6, 3), in(g, "u", 6, 3), 0, false)
		}, flops.Cost{}},
		{"ScatterElements add: one add per update", func(g *graph.Graph) *graph.Value {
			return g.ScatterElements(in(g, "x", 5, 3), idx(g, "i", 6, 3), in(g, "u", 6, 3), 0, true)
		}, flops.Cost{FLOPs: 18}},
		{"ScatterND add: one add per update element", func(g *graph.Graph) *graph.Value {
			return g.ScatterND(in(g, "x", 10, 4), idx(g, "i", 2, 3, 1), in(g, "u", 2, 3, 4), true)
		}, flops.Cost{FLOPs: 2 * 3 * 4}},
		{"ScatterND none moves data", func(g *graph.Graph) *graph.Value {
			return g.ScatterND(in(g, "x", 10, 4), idx(g, "i", 2, 1), in(g, "u", 2, 4), false)
		}, flops.Cost{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := graph.New("t")
			n := lastNode(t, g, tt.build(g))
			got, err := flops.NodeCost(n)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("cost = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// A max-pool gradient counts K−1 comparisons per output (the window's
// maximum, found again) and one add per dY, whether it is lowered tap by
// tap (a 3×3 window: its Equal and one-hot ConvTranspose carry CountAs) or
// through the indices (a 6×6 window); the counts survive a file round trip.
func TestMaxPoolGradientCountsTheMath(t *testing.T) {
	for _, tc := range []struct {
		name   string
		x      graph.Shape
		kernel []int64
	}{
		{"3x3 taps", graph.Shape{2, 3, 9, 8}, []int64{3, 3}},
		{"6x6 scatter", graph.Shape{2, 3, 12, 12}, []int64{6, 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := graph.New("pool")
			x := in(g, "x", tc.x...)
			y := g.MaxPool(x, graph.PoolOpts{Kernel: tc.kernel, Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}})
			g.SetPhase(graph.PhaseBackward)
			dy := g.Input("dy", graph.Float32, y.Shape())
			grads, err := compile.GradientsWithSeed(g, y, dy, []*graph.Value{x})
			if err != nil {
				t.Fatal(err)
			}
			g.Output("y", y)
			g.Output("dx", grads[0])
			g.Prune()
			k := graph.Shape(tc.kernel).Size()
			forward := (k - 1) * y.Shape().Size()
			want := forward + k*y.Shape().Size()
			data, err := graph.Marshal(&graph.Model{Graph: g})
			if err != nil {
				t.Fatal(err)
			}
			back, err := graph.Unmarshal(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, gr := range []*graph.Graph{g, back.Graph} {
				c, err := flops.Count(gr)
				if err != nil {
					t.Fatal(err)
				}
				if c.Total != want || c.Phase[graph.PhaseBackward] != want-forward {
					t.Errorf("counted %d (backward %d), want %d: (K−1)·|Y| forward, K·|Y| backward", c.Total, c.Phase[graph.PhaseBackward], want)
				}
			}
		})
	}
}
