package gradcheck

import (
	"hash/fnv"
	"slices"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/graph"
)

func f32(shape ...int64) Input { return Input{Shape: shape, DType: graph.Float32} }

// away fills a float input with values whose magnitude lies in [0.2, 1.2],
// keeping finite differences off kinks and poles.
func away(shape ...int64) Input {
	n := graph.Shape(shape).Size()
	v := make([]float32, n)
	for i := range v {
		m := 0.2 + float32((i*37)%11)/10
		if i%3 == 1 {
			m = -m
		}
		v[i] = m
	}
	return Input{Shape: shape, DType: graph.Float32, Floats: v}
}

// positive fills a float input with values in [0.3, 1.3].
func positive(shape ...int64) Input {
	in := away(shape...)
	for i, x := range in.Floats {
		if x < 0 {
			in.Floats[i] = -x
		}
		in.Floats[i] += 0.1
	}
	return in
}

func unaryCase(op string, in Input, f func(g *graph.Graph, x *graph.Value) *graph.Value) Case {
	return Case{Name: op, Inputs: []Input{in}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value { return f(g, x[0]) }}
}

func binaryCase(name string, a, b Input, f func(g *graph.Graph, a, b *graph.Value) *graph.Value) Case {
	return Case{Name: name, Inputs: []Input{a, b}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value { return f(g, x[0], x[1]) }}
}

// cases has at least one case per gradient rule; TestEveryRuleIsChecked
// keeps it that way.
func cases() []Case {
	return slices.Concat(baseCases(), convCases(), indexCases(), transformerCases())
}

// baseCases check the elementwise, product, reduction, shape and softmax rules.
func baseCases() []Case {
	return []Case{
		binaryCase("Add", f32(3, 4), f32(3, 4), (*graph.Graph).Add),
		binaryCase("Add/broadcast-row", f32(3, 4), f32(4), (*graph.Graph).Add),
		binaryCase("Add/broadcast-both", f32(3, 1), f32(1, 4), (*graph.Graph).Add),
		binaryCase("Sub/broadcast", f32(2, 3), f32(3), (*graph.Graph).Sub),
		binaryCase("Mul/broadcast", f32(2, 3, 4), f32(3, 1), (*graph.Graph).Mul),
		unaryCase("Mul/square", f32(2, 5), func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Mul(x, x) }),
		binaryCase("Div/broadcast", f32(2, 3), positive(2, 1), (*graph.Graph).Div),
		{Name: "Sum/three", Inputs: []Input{f32(2, 3), f32(3), f32(2, 1)}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value { return g.Sum(x...) }},
		unaryCase("Neg", f32(5), (*graph.Graph).Neg),
		unaryCase("Identity", f32(5), (*graph.Graph).Identity),
		unaryCase("Abs", away(2, 5), (*graph.Graph).Abs),
		unaryCase("Sign", away(2, 5), (*graph.Graph).Sign),
		unaryCase("Relu", away(2, 5), (*graph.Graph).Relu),
		unaryCase("Exp", f32(2, 5), (*graph.Graph).Exp),
		unaryCase("Log", positive(2, 5), (*graph.Graph).Log),
		unaryCase("Sqrt", positive(2, 5), (*graph.Graph).Sqrt),
		unaryCase("Tanh", f32(2, 5), (*graph.Graph).Tanh),
		unaryCase("Sigmoid", f32(2, 5), (*graph.Graph).Sigmoid),
		unaryCase("Reciprocal", away(2, 5), (*graph.Graph).Reciprocal),
		unaryCase("Erf", f32(2, 5), (*graph.Graph).Erf),
		unaryCase("Sin", f32(2, 5), (*graph.Graph).Sin),
		unaryCase("Cos", f32(2, 5), (*graph.Graph).Cos),
		unaryCase("Cast", f32(2, 5), func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Cast(x, graph.Float32) }),
		unaryCase("Clip", away(3, 4), func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Clip(x, g.ConstFloat(-0.5), g.ConstFloat(0.75))
		}),
		unaryCase("Clip/upper-only", away(3, 4), func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Clip(x, nil, g.ConstFloat(0.75))
		}),
		{Name: "Where/broadcast", Inputs: []Input{away(3, 4), f32(3, 4), f32(4)}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
			return g.Where(g.Greater(x[0], g.ConstFloat(0)), x[1], x[2])
		}},
		binaryCase("MatMul", f32(3, 4), f32(4, 5), (*graph.Graph).MatMul),
		binaryCase("MatMul/batched", f32(2, 3, 4), f32(2, 4, 5), (*graph.Graph).MatMul),
		binaryCase("MatMul/broadcast-B", f32(2, 3, 4), f32(4, 5), (*graph.Graph).MatMul),
		binaryCase("MatMul/broadcast-A", f32(3, 4), f32(2, 4, 5), (*graph.Graph).MatMul),
		{Name: "Gemm/linear", Inputs: []Input{f32(3, 4), f32(5, 4), f32(5)}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
			return g.Gemm(x[0], x[1], x[2], false, true, 1, 1)
		}},
		{Name: "Gemm/plain-scaled", Inputs: []Input{f32(3, 4), f32(4, 5), f32(3, 5)}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
			return g.Gemm(x[0], x[1], x[2], false, false, 0.5, 2)
		}},
		{Name: "Gemm/transA", Inputs: []Input{f32(4, 3), f32(4, 5), f32(1, 5)}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
			return g.Gemm(x[0], x[1], x[2], true, false, 1.5, 1)
		}},
		{Name: "Gemm/transA-transB", Inputs: []Input{f32(4, 3), f32(5, 4)}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
			return g.Gemm(x[0], x[1], nil, true, true, 1, 1)
		}},
		unaryCase("ReduceSum/axis-keep", f32(2, 3, 4), func(g *graph.Graph, x *graph.Value) *graph.Value { return g.ReduceSum(x, true, 1) }),
		unaryCase("ReduceSum/axes-drop", f32(2, 3, 4), func(g *graph.Graph, x *graph.Value) *graph.Value { return g.ReduceSum(x, false, 0, -1) }),
		unaryCase("ReduceSum/all", f32(2, 3), func(g *graph.Graph, x *graph.Value) *graph.Value { return g.ReduceSum(x, false) }),
		unaryCase("ReduceMean/axis-drop", f32(2, 3, 4), func(g *graph.Graph, x *graph.Value) *graph.Value { return g.ReduceMean(x, false, 2) }),
		unaryCase("ReduceMean/all-keep", f32(2, 3), func(g *graph.Graph, x *graph.Value) *graph.Value { return g.ReduceMean(x, true) }),
		unaryCase("Reshape", f32(2, 3, 4), func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Reshape(x, 0, -1) }),
		unaryCase("Squeeze", f32(2, 1, 4), func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Squeeze(x, 1) }),
		unaryCase("Unsqueeze", f32(2, 4), func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Unsqueeze(x, 0, 2) }),
		unaryCase("Transpose", f32(2, 3, 4), func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Transpose(x, 2, 0, 1) }),
		{Name: "Concat", Inputs: []Input{f32(2, 3), f32(2, 1), f32(2, 2)}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value { return g.Concat(1, x...) }},
		unaryCase("Split/unused-piece", f32(2, 6), func(g *graph.Graph, x *graph.Value) *graph.Value {
			p := g.Split(x, 1, 1, 2, 3)
			return g.Concat(1, g.Mul(p[0], g.ConstFloat(3)), p[2])
		}),
		unaryCase("Slice", f32(4, 5), func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Slice(x, []int64{1, -4}, []int64{3, 100}, []int64{0, 1}, nil)
		}),
		unaryCase("Slice/step2-offset", f32(3, 7), func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Slice(x, []int64{1}, []int64{7}, []int64{1}, []int64{2})
		}),
		unaryCase("Slice/step3-two-axes", f32(5, 8), func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Slice(x, []int64{0, 2}, []int64{5, 8}, []int64{0, 1}, []int64{2, 3})
		}),
		unaryCase("Slice/reverse", f32(2, 4, 3), func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Slice(x, []int64{3, 2}, []int64{-5, -4}, []int64{1, 2}, []int64{-1, -1})
		}),
		unaryCase("Slice/step-minus2-partial", f32(2, 9), func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Slice(x, []int64{7}, []int64{0}, []int64{1}, []int64{-2})
		}),
		unaryCase("Expand", f32(3, 1), func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Expand(x, graph.Shape{2, 3, 4}) }),
		unaryCase("Pad", f32(2, 3), func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Pad(x, 1, 0, 0, 2) }),
		unaryCase("Softmax", f32(3, 5), func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Softmax(x, 1) }),
		unaryCase("Softmax/axis0", f32(3, 5), func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Softmax(x, 0) }),
		unaryCase("LogSoftmax", f32(3, 5), func(g *graph.Graph, x *graph.Value) *graph.Value { return g.LogSoftmax(x, -1) }),
		{Name: "CrossEntropy", Inputs: []Input{f32(4, 5), {Shape: graph.Shape{4}, DType: graph.Int64, IntRange: 5}}, Build: func(g *graph.Graph, x []*graph.Value) *graph.Value {
			return compile.CrossEntropy(g, x[0], x[1])
		}},
	}
}

// seedOf draws a case's inputs from its name, so that adding a case leaves
// the others' inputs as they were.
func seedOf(c Case) uint64 {
	h := fnv.New64a()
	h.Write([]byte(c.Name))
	return h.Sum64()
}

func TestGradientRules(t *testing.T) {
	for _, c := range cases() {
		t.Run(c.Name, func(t *testing.T) {
			res, err := Check(c, seedOf(c))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if len(r.Analytic) == 0 {
					t.Fatalf("input %d: no gradient values compared", r.Input)
				}
			}
		})
	}
}

func TestEveryRuleIsChecked(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range cases() {
		ops, err := OpsOf(c)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		head, _, _ := strings.Cut(c.Name, "/")
		if !slices.Contains(ops, head) && head != "CrossEntropy" {
			t.Errorf("case %s does not use op %s", c.Name, head)
		}
		for _, op := range ops {
			covered[op] = true
		}
	}
	for _, op := range compile.GradientOps() {
		if !covered[op] {
			t.Errorf("gradient rule of %s has no numerical check", op)
		}
	}
}

// A gradient that misses a path must be caught: x·stop(x) has derivative 2x,
// the analytic side sees only x.
func TestCheckCatchesWrongGradient(t *testing.T) {
	c := unaryCase("Mul/stopped", positive(6), func(g *graph.Graph, x *graph.Value) *graph.Value {
		return g.Mul(x, g.StopGradient(x))
	})
	if _, err := Check(c, 1); err == nil {
		t.Fatal("a gradient missing half its value passed the check")
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		name   string
		a, n   []float64
		passes bool
	}{
		{"equal", []float64{1, -2, 3}, []float64{1, -2, 3}, true},
		{"within rtol", []float64{100.5}, []float64{100}, true},
		{"beyond rtol", []float64{103}, []float64{100}, false},
		{"small absolute noise", []float64{1e-4}, []float64{0}, true},
		{"sign flip", []float64{-0.5}, []float64{0.5}, false},
	}
	for _, tt := range tests {
		if got := Compare(tt.a, tt.n) <= 1; got != tt.passes {
			t.Errorf("%s: passes = %v, want %v", tt.name, got, tt.passes)
		}
	}
}
