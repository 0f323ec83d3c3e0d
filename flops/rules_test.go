package flops_test

import (
	"strings"
	"testing"

	"bmc/flops"
	"bmc/graph"
)

func TestEveryGraphOpHasRule(t *testing.T) {
	ops := graph.Ops()
	if len(ops) == 0 {
		t.Fatal("graph.Ops() is empty")
	}
	for _, op := range ops {
		if !flops.HasRule(op) {
			t.Errorf("op %s has no FLOP rule", op)
		}
	}
	if flops.HasRule("LSTM") {
		t.Error("HasRule(LSTM) = true for an op bmc graphs do not have")
	}
}

// in declares a float32 graph input.
func in(g *graph.Graph, name string, shape ...int64) *graph.Value {
	return g.Input(name, graph.Float32, graph.Shape(shape))
}

// lastNode is the node that produced v.
func lastNode(t *testing.T, g *graph.Graph, v *graph.Value) *graph.Node {
	t.Helper()
	if err := g.Err(); err != nil {
		t.Fatalf("building the graph: %v", err)
	}
	n := v.Producer()
	if n == nil {
		t.Fatalf("%s has no producer", v.Name())
	}
	return n
}

func TestNodeCost(t *testing.T) {
	tests := []struct {
		name  string
		build func(g *graph.Graph) *graph.Value
		want  flops.Cost
	}{
		// Products: one K-long dot product per output element, 2 FLOPs per MAC.
		{"MatMul batched [2,3,4]x[4,5]", func(g *graph.Graph) *graph.Value {
			return g.MatMul(in(g, "a", 2, 3, 4), in(g, "b", 4, 5))
		}, flops.Cost{FLOPs: 2 * 2 * 3 * 4 * 5, MACs: 2 * 3 * 4 * 5}},
		{"MatMul [3,4]x[4,5]", func(g *graph.Graph) *graph.Value {
			return g.MatMul(in(g, "a", 3, 4), in(g, "b", 4, 5))
		}, flops.Cost{FLOPs: 2 * 3 * 4 * 5, MACs: 3 * 4 * 5}},
		{"Gemm no bias", func(g *graph.Graph) *graph.Value {
			return g.Gemm(in(g, "a", 3, 4), in(g, "b", 4, 5), nil, false, false, 1, 1)
		}, flops.Cost{FLOPs: 2 * 3 * 4 * 5, MACs: 3 * 4 * 5}},
		{"Gemm transB with bias (nn.Linear)", func(g *graph.Graph) *graph.Value {
			return g.Gemm(in(g, "x", 3, 4), in(g, "w", 5, 4), in(g, "b", 5), false, true, 1, 1)
		}, flops.Cost{FLOPs: 2*3*4*5 + 3*5, MACs: 3 * 4 * 5}},
		{"Gemm transA takes K from A's rows", func(g *graph.Graph) *graph.Value {
			return g.Gemm(in(g, "a", 4, 3), in(g, "b", 4, 5), nil, true, false, 1, 1)
		}, flops.Cost{FLOPs: 2 * 3 * 4 * 5, MACs: 3 * 4 * 5}},
		{"Gemm alpha≠1 without bias", func(g *graph.Graph) *graph.Value {
			return g.Gemm(in(g, "a", 3, 4), in(g, "b", 4, 5), nil, false, false, 2, 1)
		}, flops.Cost{FLOPs: 2*3*4*5 + 3*5, MACs: 3 * 4 * 5}},
		{"Gemm alpha≠1, beta≠1 with bias", func(g *graph.Graph) *graph.Value {
			// 2MNK products + MN alpha scalings + MN bias adds + MN beta scalings.
			return g.Gemm(in(g, "a", 3, 4), in(g, "b", 4, 5), in(g, "c", 3, 5), false, false, 2, 0.5)
		}, flops.Cost{FLOPs: 2*3*4*5 + 3*5 + 3*5 + 3*5, MACs: 3 * 4 * 5}},

		// Softmax: rows·(5L−2); LogSoftmax: rows·(5L−1).
		{"Softmax axis 1 of [2,5,3]", func(g *graph.Graph) *graph.Value {
			return g.Softmax(in(g, "x", 2, 5, 3), 1)
		}, flops.Cost{FLOPs: (2 * 3) * (5*5 - 2)}},
		{"Softmax axis -1 of [2,5,3]", func(g *graph.Graph) *graph.Value {
			return g.Softmax(in(g, "x", 2, 5, 3), -1)
		}, flops.Cost{FLOPs: (2 * 5) * (5*3 - 2)}},
		{"LogSoftmax axis -1 of [4,6]", func(g *graph.Graph) *graph.Value {
			return g.LogSoftmax(in(g, "x", 4, 6), -1)
		}, flops.Cost{FLOPs: 4 * (5*6 - 1)}},
		{"LogSoftmax axis 0 of [4,6]", func(g *graph.Graph) *graph.Value {
			return g.LogSoftmax(in(g, "x", 4, 6), 0)
		}, flops.Cost{FLOPs: 6 * (5*4 - 1)}},
		// LayerNormalization: rows·(6N+3), with a bias rows·(7N+3).
		{"LayerNormalization last axis of [2,3,4] with bias", func(g *graph.Graph) *graph.Value {
			return g.LayerNorm(in(g, "x", 2, 3, 4), in(g, "s", 4), in(g, "b", 4), 1e-5)
		}, flops.Cost{FLOPs: 6 * (7*4 + 3)}},
		{"LayerNormalization two axes of [2,3,4] without bias", func(g *graph.Graph) *graph.Value {
			return g.LayerNorm(in(g, "x", 2, 3, 4), in(g, "s", 3, 4), nil, 1e-5)
		}, flops.Cost{FLOPs: 2 * (6*12 + 3)}},

		// Reductions: in − out adds; a mean also divides once per output.
		{"ReduceSum axis 1 of [4,6]", func(g *graph.Graph) *graph.Value {
			return g.ReduceSum(in(g, "x", 4, 6), false, 1)
		}, flops.Cost{FLOPs: 24 - 4}},
		{"ReduceSum keepdims axis 0 of [4,6]", func(g *graph.Graph) *graph.Value {
			return g.ReduceSum(in(g, "x", 4, 6), true, 0)
		}, flops.Cost{FLOPs: 24 - 6}},
		{"ReduceSum all of [4,6]", func(g *graph.Graph) *graph.Value {
			return g.ReduceSum(in(g, "x", 4, 6), false)
		}, flops.Cost{FLOPs: 24 - 1}},
		{"ReduceMean axis 1 of [4,6]", func(g *graph.Graph) *graph.Value {
			return g.ReduceMean(in(g, "x", 4, 6), false, 1)
		}, flops.Cost{FLOPs: 24}},
		{"ReduceMean all of [7]", func(g *graph.Graph) *graph.Value {
			return g.ReduceMean(in(g, "x", 7), false)
		}, flops.Cost{FLOPs: 7}},
		{"ReduceMax axis 1 of [4,6]", func(g *graph.Graph) *graph.Value {
			return g.ReduceMax(in(g, "x", 4, 6), false, 1)
		}, flops.Cost{FLOPs: 24 - 4}},
		{"ReduceMin all of [4,6]", func(g *graph.Graph) *graph.Value {
			return g.ReduceMin(in(g, "x", 4, 6), false)
		}, flops.Cost{FLOPs: 24 - 1}},
		{"ReduceSumSquare axis 1 of [4,6]", func(g *graph.Graph) *graph.Value {
			// 24 squares + 20 adds.
			return g.Apply("ReduceSumSquare", []*graph.Value{in(g, "x", 4, 6)}, graph.Attrs{"axes": []int64{1}, "keepdims": int64(0)}, 1)[0]
		}, flops.Cost{FLOPs: 24 + 20}},
		{"ReduceL2 axis 1 of [4,6]", func(g *graph.Graph) *graph.Value {
			// 24 squares + 20 adds + 4 square roots.
			return g.Apply("ReduceL2", []*graph.Value{in(g, "x", 4, 6)}, graph.Attrs{"axes": []int64{1}, "keepdims": int64(0)}, 1)[0]
		}, flops.Cost{FLOPs: 24 + 20 + 4}},
		{"ArgMax axis 1 of [4,6]", func(g *graph.Graph) *graph.Value {
			return g.ArgMax(in(g, "x", 4, 6), 1, false)
		}, flops.Cost{FLOPs: 24 - 4}},

		// Variadic: (inputs − 1) per output element; Mean one more.
		{"Sum of 3 inputs", func(g *graph.Graph) *graph.Value {
			return g.Sum(in(g, "a", 2, 3), in(g, "b", 2, 3), in(g, "c", 2, 3))
		}, flops.Cost{FLOPs: 2 * 6}},
		{"Sum of 2 broadcast inputs", func(g *graph.Graph) *graph.Value {
			return g.Sum(in(g, "a", 2, 3), in(g, "b", 3))
		}, flops.Cost{FLOPs: 6}},
		{"Max of 2 inputs", func(g *graph.Graph) *graph.Value {
			return g.Max(in(g, "a", 2, 3), in(g, "b", 2, 3))
		}, flops.Cost{FLOPs: 6}},
		{"Min of 3 inputs", func(g *graph.Graph) *graph.Value {
			return g.Min(in(g, "a", 5), in(g, "b", 5), in(g, "c", 5))
		}, flops.Cost{FLOPs: 10}},
		{"Mean of 3 inputs", func(g *graph.Graph) *graph.Value {
			return g.Apply("Mean", []*graph.Value{in(g, "a", 2, 3), in(g, "b", 2, 3), in(g, "c", 2, 3)}, nil, 1)[0]
		}, flops.Cost{FLOPs: 3 * 6}},

		// Clip: one comparison per bound present.
		{"Clip with lower bound", func(g *graph.Graph) *graph.Value {
			return g.Clip(in(g, "x", 2, 3), g.ConstFloat(0), nil)
		}, flops.Cost{FLOPs: 6}},
		{"Clip with upper bound only", func(g *graph.Graph) *graph.Value {
			return g.Clip(in(g, "x", 2, 3), nil, g.ConstFloat(1))
		}, flops.Cost{FLOPs: 6}},
		{"Clip with both bounds", func(g *graph.Graph) *graph.Value {
			return g.Clip(in(g, "x", 2, 3), g.ConstFloat(0), g.ConstFloat(1))
		}, flops.Cost{FLOPs: 12}},
		{"Clip without bounds", func(g *graph.Graph) *graph.Value {
			return g.Clip(in(g, "x", 2, 3), nil, nil)
		}, flops.Cost{}},

		// Elementwise: one per output element (after broadcasting).
		{"Add broadcast", func(g *graph.Graph) *graph.Value {
			return g.Add(in(g, "a", 2, 3), in(g, "b", 3))
		}, flops.Cost{FLOPs: 6}},
		{"Mul by scalar", func(g *graph.Graph) *graph.Value {
			return g.Mul(in(g, "a", 4, 5), g.ConstFloat(2))
		}, flops.Cost{FLOPs: 20}},
		{"Div", func(g *graph.Graph) *graph.Value { return g.Div(in(g, "a", 4), in(g, "b", 4)) }, flops.Cost{FLOPs: 4}},
		{"Pow", func(g *graph.Graph) *graph.Value {
			return g.Apply("Pow", []*graph.Value{in(g, "a", 4), in(g, "b", 4)}, nil, 1)[0]
		}, flops.Cost{FLOPs: 4}},
		{"Relu", func(g *graph.Graph) *graph.Value { return g.Relu(in(g, "x", 3, 3)) }, flops.Cost{FLOPs: 9}},
		{"Exp", func(g *graph.Graph) *graph.Value { return g.Exp(in(g, "x", 3, 3)) }, flops.Cost{FLOPs: 9}},
		{"Sqrt", func(g *graph.Graph) *graph.Value { return g.Sqrt(in(g, "x", 5)) }, flops.Cost{FLOPs: 5}},
		{"Tanh", func(g *graph.Graph) *graph.Value { return g.Tanh(in(g, "x", 5)) }, flops.Cost{FLOPs: 5}},
		{"Greater", func(g *graph.Graph) *graph.Value {
			return g.Greater(in(g, "x", 2, 3), g.ConstFloat(0))
		}, flops.Cost{FLOPs: 6}},

		// Data movement, selection, casts and boolean logic are free.
		{"Constant", func(g *graph.Graph) *graph.Value { return g.ConstFloats(graph.Shape{4}, []float32{1, 2, 3, 4}) }, flops.Cost{}},
		{"Reshape", func(g *graph.Graph) *graph.Value { return g.Reshape(in(g, "x", 2, 3), 3, 2) }, flops.Cost{}},
		{"Transpose", func(g *graph.Graph) *graph.Value { return g.Transpose(in(g, "x", 2, 3), 1, 0) }, flops.Cost{}},
		{"Concat", func(g *graph.Graph) *graph.Value { return g.Concat(1, in(g, "a", 2, 3), in(g, "b", 2, 4)) }, flops.Cost{}},
		{"Split", func(g *graph.Graph) *graph.Value { return g.Split(in(g, "x", 2, 6), 1, 2, 4)[0] }, flops.Cost{}},
		{"Slice", func(g *graph.Graph) *graph.Value {
			return g.Slice(in(g, "x", 4), []int64{1}, []int64{3}, nil, nil)
		}, flops.Cost{}},
		{"Squeeze", func(g *graph.Graph) *graph.Value { return g.Squeeze(in(g, "x", 1, 3), 0) }, flops.Cost{}},
		{"Unsqueeze", func(g *graph.Graph) *graph.Value { return g.Unsqueeze(in(g, "x", 3), 0) }, flops.Cost{}},
		{"Expand", func(g *graph.Graph) *graph.Value { return g.Expand(in(g, "x", 1, 3), graph.Shape{4, 3}) }, flops.Cost{}},
		{"Pad", func(g *graph.Graph) *graph.Value { return g.Pad(in(g, "x", 2, 3), 0, 1, 0, 1) }, flops.Cost{}},
		{"OneHot", func(g *graph.Graph) *graph.Value {
			return g.OneHot(g.Input("y", graph.Int64, graph.Shape{8}), 5)
		}, flops.Cost{}},
		{"Where", func(g *graph.Graph) *graph.Value {
			x := in(g, "x", 2, 3)
			return g.Where(g.Greater(x, g.ConstFloat(0)), x, g.ConstFloat(0))
		}, flops.Cost{}},
		{"Cast", func(g *graph.Graph) *graph.Value { return g.Cast(in(g, "x", 2, 3), graph.Int64) }, flops.Cost{}},
		{"Identity", func(g *graph.Graph) *graph.Value { return g.Identity(in(g, "x", 2, 3)) }, flops.Cost{}},
		{"Or", func(g *graph.Graph) *graph.Value {
			return g.Or(g.Input("a", graph.Bool, graph.Shape{4}), g.Input("b", graph.Bool, graph.Shape{4}))
		}, flops.Cost{}},
		{"Not", func(g *graph.Graph) *graph.Value {
			return g.Apply("Not", []*graph.Value{g.Input("a", graph.Bool, graph.Shape{4})}, nil, 1)[0]
		}, flops.Cost{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := graph.New("t")
			n := lastNode(t, g, tc.build(g))
			got, err := flops.NodeCost(n)
			if err != nil {
				t.Fatalf("NodeCost(%s): %v", n.Op, err)
			}
			if got != tc.want {
				t.Errorf("NodeCost(%s) = %+v, want %+v", n.Op, got, tc.want)
			}
		})
	}
}

func TestNodeCostUnknownOp(t *testing.T) {
	n := &graph.Node{Op: "LSTM", Name: "forward/lstm1"}
	_, err := flops.NodeCost(n)
	if err == nil || !strings.Contains(err.Error(), "LSTM") || !strings.Contains(err.Error(), "forward/lstm1") {
		t.Errorf("NodeCost(LSTM) error = %v, want one naming the op and the node", err)
	}
}

func TestCountSplitsPhasesAndCountsForwardMACs(t *testing.T) {
	g := graph.New("t")
	x, w := in(g, "x", 2, 3), in(g, "w", 3, 4)
	y := g.MatMul(x, w) // forward: 2·2·3·4 = 48 FLOPs, 24 MACs
	_ = g.Relu(y)       // forward: 8
	g.SetPhase(graph.PhaseBackward)
	_ = g.MatMul(g.Transpose(x, 1, 0), y) // backward: [3,2]x[2,4]: 48 FLOPs, MACs not counted
	g.SetPhase(graph.PhaseOptimizer)
	_ = g.Sub(w, g.Mul(w, g.ConstFloat(0.1))) // optimizer: 12 + 12
	g.SetPhase(graph.PhaseMethod)
	_ = g.Softmax(y, 1) // method: 2·(5·4−2) = 36
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	c, err := flops.Count(g)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{graph.PhaseForward: 56, graph.PhaseBackward: 48, graph.PhaseOptimizer: 24, graph.PhaseMethod: 36}
	for _, p := range flops.Phases() {
		if c.Phase[p] != want[p] {
			t.Errorf("phase %s: %d FLOPs, want %d", p, c.Phase[p], want[p])
		}
	}
	if c.Total != 56+48+24+36 {
		t.Errorf("Total = %d, want %d", c.Total, 56+48+24+36)
	}
	if c.MACs != 24 {
		t.Errorf("MACs = %d, want 24 (forward MatMul only)", c.MACs)
	}

	s := c.Scale(3)
	if s.Total != 3*c.Total || s.MACs != 3*c.MACs || s.Phase[graph.PhaseMethod] != 3*36 {
		t.Errorf("Scale(3) = %+v", s)
	}
	if c.Phase[graph.PhaseMethod] != 36 {
		t.Error("Scale modified its receiver")
	}
	sum := c.Add(s)
	if sum.Total != 4*c.Total || sum.MACs != 4*c.MACs || sum.Phase[graph.PhaseBackward] != 4*48 {
		t.Errorf("Add = %+v", sum)
	}
}

func TestPhasesOrder(t *testing.T) {
	want := []string{graph.PhaseForward, graph.PhaseBackward, graph.PhaseOptimizer, graph.PhaseMethod}
	got := flops.Phases()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Phases() = %v, want %v", got, want)
	}
}
