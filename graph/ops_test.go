package graph

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// in declares a fresh graph input of the given type and shape.
func in(g *Graph, dtype DType, dims ...int64) *Value {
	return g.Input("in"+string(rune('a'+len(g.Inputs()))), dtype, Shape(dims))
}

// typeOf formats a value's type as ShapeError does, e.g. "float32[2 3]".
func typeOf(v *Value) string { return v.DType().String() + v.Shape().String() }

type shapeCase struct {
	name  string
	build func(g *Graph) []*Value
	want  []string // typeOf of each output
}

// single wraps a one-output builder.
func single(f func(g *Graph) *Value) func(g *Graph) []*Value {
	return func(g *Graph) []*Value { return []*Value{f(g)} }
}

func validShapeCases() []shapeCase {
	cases := []shapeCase{
		// Broadcasting arithmetic.
		{"Add broadcast", single(func(g *Graph) *Value { return g.Add(in(g, Float32, 3, 1), in(g, Float32, 1, 4)) }), []string{"float32[3 4]"}},
		{"Add rank extension", single(func(g *Graph) *Value { return g.Add(in(g, Float32, 4), in(g, Float32, 2, 3, 4)) }), []string{"float32[2 3 4]"}},
		{"Add scalar", single(func(g *Graph) *Value { return g.Add(in(g, Float32, 2, 3), in(g, Float32)) }), []string{"float32[2 3]"}},
		{"Sub trailing", single(func(g *Graph) *Value { return g.Sub(in(g, Float32, 2, 3), in(g, Float32, 3)) }), []string{"float32[2 3]"}},
		{"Mul int64", single(func(g *Graph) *Value { return g.Mul(in(g, Int64, 5), in(g, Int64, 1)) }), []string{"int64[5]"}},
		{"Div both sides", single(func(g *Graph) *Value { return g.Div(in(g, Float32, 2, 1, 4), in(g, Float32, 3, 1)) }), []string{"float32[2 3 4]"}},
		{"Pow", single(func(g *Graph) *Value {
			return g.Apply("Pow", []*Value{in(g, Float32, 2, 3), in(g, Float32)}, nil, 1)[0]
		}), []string{"float32[2 3]"}},
		{"Max of three", single(func(g *Graph) *Value {
			return g.Max(in(g, Float32, 3, 1), in(g, Float32, 1, 4), in(g, Float32, 4))
		}), []string{"float32[3 4]"}},
		{"Min of one", single(func(g *Graph) *Value { return g.Min(in(g, Float32, 2)) }), []string{"float32[2]"}},
		{"Sum of two", single(func(g *Graph) *Value { return g.Sum(in(g, Float32, 2, 3), in(g, Float32, 2, 1)) }), []string{"float32[2 3]"}},
		{"Mean", single(func(g *Graph) *Value {
			return g.Apply("Mean", []*Value{in(g, Float64, 2), in(g, Float64, 3, 1)}, nil, 1)[0]
		}), []string{"float64[3 2]"}},

		// Comparisons and logic give bool.
		{"Greater", single(func(g *Graph) *Value { return g.Greater(in(g, Float32, 3, 1), in(g, Float32, 4)) }), []string{"bool[3 4]"}},
		{"Less", single(func(g *Graph) *Value { return g.Less(in(g, Float32, 2), in(g, Float32)) }), []string{"bool[2]"}},
		{"Equal int64", single(func(g *Graph) *Value { return g.Equal(in(g, Int64, 2, 1), in(g, Int64, 1, 5)) }), []string{"bool[2 5]"}},
		{"GreaterOrEqual", single(func(g *Graph) *Value { return g.GreaterOrEqual(in(g, Float32, 2, 3), in(g, Float32, 2, 3)) }), []string{"bool[2 3]"}},
		{"LessOrEqual", single(func(g *Graph) *Value { return g.LessOrEqual(in(g, Int32, 4), in(g, Int32, 1)) }), []string{"bool[4]"}},
		{"And", single(func(g *Graph) *Value { return g.And(in(g, Bool, 2, 1), in(g, Bool, 3)) }), []string{"bool[2 3]"}},
		{"Or", single(func(g *Graph) *Value { return g.Or(in(g, Bool, 2), in(g, Bool, 2)) }), []string{"bool[2]"}},
		{"Xor", single(func(g *Graph) *Value {
			return g.Apply("Xor", []*Value{in(g, Bool, 1), in(g, Bool, 4)}, nil, 1)[0]
		}), []string{"bool[4]"}},
		{"Not", single(func(g *Graph) *Value { return g.Apply("Not", []*Value{in(g, Bool, 2, 2)}, nil, 1)[0] }), []string{"bool[2 2]"}},

		// Selection, casts and clipping.
		{"Where broadcast", single(func(g *Graph) *Value {
			return g.Where(in(g, Bool, 3, 1), in(g, Float32, 1, 4), in(g, Float32, 4))
		}), []string{"float32[3 4]"}},
		{"Where shape from condition", single(func(g *Graph) *Value {
			return g.Where(in(g, Bool, 2, 3), in(g, Int64), in(g, Int64))
		}), []string{"int64[2 3]"}},
		{"Cast to int64", single(func(g *Graph) *Value { return g.Cast(in(g, Float32, 2, 3), Int64) }), []string{"int64[2 3]"}},
		{"Cast bool to float32", single(func(g *Graph) *Value { return g.Cast(in(g, Bool, 4), Float32) }), []string{"float32[4]"}},
		{"Clip both bounds", single(func(g *Graph) *Value {
			return g.Clip(in(g, Float32, 2, 3), g.ConstFloat(-1), g.ConstFloat(1))
		}), []string{"float32[2 3]"}},
		{"Clip upper bound only", single(func(g *Graph) *Value { return g.Clip(in(g, Float32, 5), nil, g.ConstFloat(1)) }), []string{"float32[5]"}},
		{"Clip no bounds", single(func(g *Graph) *Value { return g.Clip(in(g, Float32, 5), nil, nil) }), []string{"float32[5]"}},

		// Matrix products.
		{"MatMul 2-D", single(func(g *Graph) *Value { return g.MatMul(in(g, Float32, 2, 3), in(g, Float32, 3, 5)) }), []string{"float32[2 5]"}},
		{"MatMul batched against 2-D", single(func(g *Graph) *Value { return g.MatMul(in(g, Float32, 2, 3, 4), in(g, Float32, 4, 5)) }), []string{"float32[2 3 5]"}},
		{"MatMul batch broadcast", single(func(g *Graph) *Value {
			return g.MatMul(in(g, Float32, 1, 3, 4), in(g, Float32, 6, 4, 5))
		}), []string{"float32[6 3 5]"}},
		{"MatMul batch rank extension", single(func(g *Graph) *Value {
			return g.MatMul(in(g, Float64, 7, 1, 2, 3), in(g, Float64, 5, 3, 4))
		}), []string{"float64[7 5 2 4]"}},
		{"Gemm plain", single(func(g *Graph) *Value {
			return g.Gemm(in(g, Float32, 2, 3), in(g, Float32, 3, 4), nil, false, false, 1, 1)
		}), []string{"float32[2 4]"}},
		{"Gemm transA", single(func(g *Graph) *Value {
			return g.Gemm(in(g, Float32, 3, 2), in(g, Float32, 3, 4), nil, true, false, 1, 1)
		}), []string{"float32[2 4]"}},
		{"Gemm transB with bias", single(func(g *Graph) *Value {
			return g.Gemm(in(g, Float32, 2, 3), in(g, Float32, 4, 3), in(g, Float32, 4), false, true, 0.5, 2)
		}), []string{"float32[2 4]"}},
		{"Gemm transA transB column bias", single(func(g *Graph) *Value {
			return g.Gemm(in(g, Float32, 3, 2), in(g, Float32, 4, 3), in(g, Float32, 2, 1), true, true, 1, 1)
		}), []string{"float32[2 4]"}},

		// Reductions.
		{"ReduceSum keepdims", single(func(g *Graph) *Value { return g.ReduceSum(in(g, Float32, 2, 3, 4), true, 1) }), []string{"float32[2 1 4]"}},
		{"ReduceSum negative axis", single(func(g *Graph) *Value { return g.ReduceSum(in(g, Float32, 2, 3, 4), false, -1) }), []string{"float32[2 3]"}},
		{"ReduceSum two axes", single(func(g *Graph) *Value { return g.ReduceSum(in(g, Int64, 2, 3, 4), false, -1, 0) }), []string{"int64[3]"}},
		{"ReduceSum all to scalar", single(func(g *Graph) *Value { return g.ReduceSum(in(g, Float32, 2, 3, 4), false) }), []string{"float32[]"}},
		{"ReduceSum all keepdims", single(func(g *Graph) *Value { return g.ReduceSum(in(g, Float32, 2, 3, 4), true) }), []string{"float32[1 1 1]"}},
		{"ReduceSum noop_with_empty_axes", single(func(g *Graph) *Value {
			return g.Apply("ReduceSum", []*Value{in(g, Float32, 2, 3)}, Attrs{"noop_with_empty_axes": int64(1)}, 1)[0]
		}), []string{"float32[2 3]"}},
		{"ReduceMean keepdims", single(func(g *Graph) *Value { return g.ReduceMean(in(g, Float32, 2, 3, 4), true, 0, -1) }), []string{"float32[1 3 1]"}},
		{"ReduceMean drop", single(func(g *Graph) *Value { return g.ReduceMean(in(g, Float32, 2, 3, 4), false, 0, -1) }), []string{"float32[3]"}},
		{"ReduceMean all", single(func(g *Graph) *Value { return g.ReduceMean(in(g, Float32, 2, 3), false) }), []string{"float32[]"}},
		{"ReduceMax", single(func(g *Graph) *Value { return g.ReduceMax(in(g, Float32, 2, 3), false, -2) }), []string{"float32[3]"}},
		{"ReduceMin", single(func(g *Graph) *Value { return g.ReduceMin(in(g, Float32, 2, 3), true, 1) }), []string{"float32[2 1]"}},
		{"ReduceProd", single(func(g *Graph) *Value {
			return g.Apply("ReduceProd", []*Value{in(g, Float32, 2, 3)}, Attrs{"axes": []int64{1}, "keepdims": int64(0)}, 1)[0]
		}), []string{"float32[2]"}},
		{"ReduceSumSquare", single(func(g *Graph) *Value {
			return g.Apply("ReduceSumSquare", []*Value{in(g, Float32, 2, 3)}, Attrs{"axes": []int64{0}}, 1)[0]
		}), []string{"float32[1 3]"}},
		{"ReduceL2", single(func(g *Graph) *Value {
			return g.Apply("ReduceL2", []*Value{in(g, Float32, 2, 3)}, Attrs{"keepdims": int64(0)}, 1)[0]
		}), []string{"float32[]"}},
		{"ArgMax", single(func(g *Graph) *Value { return g.ArgMax(in(g, Float32, 2, 3, 4), 1, false) }), []string{"int64[2 4]"}},
		{"ArgMin defaults", single(func(g *Graph) *Value { return g.Apply("ArgMin", []*Value{in(g, Float32, 2, 3, 4)}, nil, 1)[0] }), []string{"int64[1 3 4]"}},

		// Data movement.
		{"Constant float", single(func(g *Graph) *Value { return g.ConstFloats(Shape{2, 2}, []float32{1, 2, 3, 4}) }), []string{"float32[2 2]"}},
		{"Constant int scalar", single(func(g *Graph) *Value { return g.ConstInt(7) }), []string{"int64[]"}},
		{"Reshape copy and infer", single(func(g *Graph) *Value { return g.Reshape(in(g, Float32, 2, 3, 4), 0, -1) }), []string{"float32[2 12]"}},
		{"Reshape flatten", single(func(g *Graph) *Value { return g.Reshape(in(g, Float32, 2, 3, 4), -1) }), []string{"float32[24]"}},
		{"Reshape copy in the middle", single(func(g *Graph) *Value { return g.Reshape(in(g, Int64, 2, 3, 4), 4, 0, -1) }), []string{"int64[4 3 2]"}},
		{"Reshape to scalar", single(func(g *Graph) *Value { return g.Reshape(in(g, Float32, 1, 1)) }), []string{"float32[]"}},
		{"Transpose perm", single(func(g *Graph) *Value { return g.Transpose(in(g, Float32, 2, 3, 4), 2, 0, 1) }), []string{"float32[4 2 3]"}},
		{"Transpose default perm", single(func(g *Graph) *Value { return g.Apply("Transpose", []*Value{in(g, Float32, 2, 3, 4)}, nil, 1)[0] }), []string{"float32[4 3 2]"}},
		{"Concat axis 1", single(func(g *Graph) *Value { return g.Concat(1, in(g, Float32, 2, 3), in(g, Float32, 2, 5)) }), []string{"float32[2 8]"}},
		{"Concat negative axis three inputs", single(func(g *Graph) *Value {
			return g.Concat(-2, in(g, Int64, 1, 4), in(g, Int64, 2, 4), in(g, Int64, 3, 4))
		}), []string{"int64[6 4]"}},
		{"Concat one input", single(func(g *Graph) *Value { return g.Concat(0, in(g, Float32, 3)) }), []string{"float32[3]"}},
		{"Split sizes", func(g *Graph) []*Value { return g.Split(in(g, Float32, 2, 4), 1, 1, 3) }, []string{"float32[2 1]", "float32[2 3]"}},
		{"Split with empty piece", func(g *Graph) []*Value { return g.Split(in(g, Float32, 5), -1, 0, 5, 0) }, []string{"float32[0]", "float32[5]", "float32[0]"}},
		{"Split evenly without sizes", func(g *Graph) []*Value {
			return g.Apply("Split", []*Value{in(g, Float32, 4, 6)}, Attrs{"axis": int64(-1)}, 3)
		}, []string{"float32[4 2]", "float32[4 2]", "float32[4 2]"}},
		{"Slice negative start clamped end", single(func(g *Graph) *Value {
			return g.Slice(in(g, Float32, 10), []int64{-3}, []int64{100}, nil, nil)
		}), []string{"float32[3]"}},
		{"Slice negative end", single(func(g *Graph) *Value {
			return g.Slice(in(g, Float32, 10), []int64{1}, []int64{-1}, nil, nil)
		}), []string{"float32[8]"}},
		{"Slice max int64 end with step", single(func(g *Graph) *Value {
			return g.Slice(in(g, Float32, 4, 10), []int64{0}, []int64{math.MaxInt64}, []int64{1}, []int64{3})
		}), []string{"float32[4 4]"}},
		{"Slice reversed", single(func(g *Graph) *Value {
			return g.Slice(in(g, Float32, 4, 10), []int64{-1}, []int64{math.MinInt64}, []int64{-1}, []int64{-1})
		}), []string{"float32[4 10]"}},
		{"Slice reversed step 2", single(func(g *Graph) *Value {
			return g.Slice(in(g, Float32, 4, 10), []int64{-1}, []int64{-100}, []int64{0}, []int64{-2})
		}), []string{"float32[2 10]"}},
		{"Slice empty range", single(func(g *Graph) *Value {
			return g.Slice(in(g, Float32, 4, 10), []int64{5}, []int64{2}, []int64{1}, nil)
		}), []string{"float32[4 0]"}},
		{"Slice two axes", single(func(g *Graph) *Value {
			return g.Slice(in(g, Float32, 4, 10), []int64{1, 2}, []int64{9, 3}, []int64{1, 0}, []int64{2, 1})
		}), []string{"float32[1 4]"}},
		{"Squeeze all ones", single(func(g *Graph) *Value { return g.Squeeze(in(g, Float32, 1, 3, 1)) }), []string{"float32[3]"}},
		{"Squeeze negative axis", single(func(g *Graph) *Value { return g.Squeeze(in(g, Float32, 1, 3, 1), -1) }), []string{"float32[1 3]"}},
		{"Unsqueeze both ends", single(func(g *Graph) *Value { return g.Unsqueeze(in(g, Float32, 3), 0, -1) }), []string{"float32[1 3 1]"}},
		{"Unsqueeze scalar", single(func(g *Graph) *Value { return g.Unsqueeze(in(g, Int64), 0) }), []string{"int64[1]"}},
		{"Expand", single(func(g *Graph) *Value { return g.Expand(in(g, Float32, 3, 1), Shape{2, 1, 4}) }), []string{"float32[2 3 4]"}},
		{"Expand to smaller target", single(func(g *Graph) *Value { return g.Expand(in(g, Float32, 3), Shape{1}) }), []string{"float32[3]"}},
		{"Pad", single(func(g *Graph) *Value { return g.Pad(in(g, Float32, 2, 3), 1, 0, 1, 2) }), []string{"float32[4 5]"}},
		{"Pad crop", single(func(g *Graph) *Value { return g.Pad(in(g, Float32, 2, 3), 0, -1, 0, 0) }), []string{"float32[2 2]"}},
		{"Pad with value", single(func(g *Graph) *Value {
			return g.Apply("Pad", []*Value{in(g, Float32, 3), g.ConstInts(2, 1), g.ConstFloat(7)}, nil, 1)[0]
		}), []string{"float32[6]"}},
		{"PadWith", single(func(g *Graph) *Value { return g.PadWith(in(g, Float32, 3), -1, 2, 1) }), []string{"float32[6]"}},

		// Neural-network ops.
		{"Softmax", single(func(g *Graph) *Value { return g.Softmax(in(g, Float32, 2, 3), 1) }), []string{"float32[2 3]"}},
		{"Softmax negative axis", single(func(g *Graph) *Value { return g.Softmax(in(g, Float64, 2, 3, 4), -3) }), []string{"float64[2 3 4]"}},
		{"LogSoftmax", single(func(g *Graph) *Value { return g.LogSoftmax(in(g, Float32, 2, 3), 0) }), []string{"float32[2 3]"}},
		{"OneHot last axis", single(func(g *Graph) *Value { return g.OneHot(in(g, Int64, 2, 3), 5) }), []string{"float32[2 3 5]"}},
		{"OneHot axis 0 int32", single(func(g *Graph) *Value {
			return g.Apply("OneHot", []*Value{in(g, Int32, 2, 3), g.ConstInts(4), g.ConstFloats(Shape{2}, []float32{0, 1})}, Attrs{"axis": int64(0)}, 1)[0]
		}), []string{"float32[4 2 3]"}},
		{"LayerNormalization last axis with statistics", func(g *Graph) []*Value {
			y := g.LayerNorm(in(g, Float32, 2, 3, 4), in(g, Float32, 4), in(g, Float32, 4), 1e-5)
			return y.Producer().Outputs
		}, []string{"float32[2 3 4]", "float32[2 3 1]", "float32[2 3 1]"}},
		{"LayerNormalization two axes without bias", single(func(g *Graph) *Value {
			return g.LayerNorm(in(g, Float32, 2, 3, 4), in(g, Float32, 3, 4), nil, 1e-6)
		}), []string{"float32[2 3 4]"}},
		{"LayerNormalization Y only, positive axis", single(func(g *Graph) *Value {
			return g.Apply("LayerNormalization", []*Value{in(g, Float32, 5, 2), in(g, Float32, 5, 2)}, Attrs{"axis": int64(0)}, 1)[0]
		}), []string{"float32[5 2]"}},
	}
	// Unary ops keep the shape and type.
	for _, op := range []string{"Neg", "Abs", "Relu", "Identity", "Sign"} {
		cases = append(cases, shapeCase{op + " int64", single(func(g *Graph) *Value {
			return g.Apply(op, []*Value{in(g, Int64, 2, 3)}, nil, 1)[0]
		}), []string{"int64[2 3]"}})
	}
	for _, op := range []string{"Exp", "Log", "Sqrt", "Tanh", "Sigmoid", "Erf", "Reciprocal", "Sin", "Cos"} {
		cases = append(cases, shapeCase{op, single(func(g *Graph) *Value {
			return g.Apply(op, []*Value{in(g, Float32, 2, 3)}, nil, 1)[0]
		}), []string{"float32[2 3]"}})
	}
	return append(cases, convShapeCases()...)
}

func TestShapeRules(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range validShapeCases() {
		t.Run(tc.name, func(t *testing.T) {
			g := New("t")
			outs := tc.build(g)
			if err := g.Err(); err != nil {
				t.Fatalf("Err() = %v", err)
			}
			got := make([]string, len(outs))
			for i, v := range outs {
				got[i] = typeOf(v)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("outputs are %v, want %v", got, tc.want)
			}
			p := outs[0].Producer()
			if p == nil {
				t.Fatalf("output %s has no producer", outs[0].Name())
			}
			for _, v := range outs {
				if v.Producer() != p {
					t.Errorf("output %s comes from %v, want node %s", v.Name(), v.Producer(), p.Name)
				}
			}
			covered[p.Op] = true
		})
	}
	for _, op := range Ops() {
		if !covered[op] {
			t.Errorf("op %s has no valid shape-rule case", op)
		}
	}
	for op := range covered {
		if !slices.Contains(Ops(), op) {
			t.Errorf("a case built op %s, which Ops() does not list", op)
		}
	}
}

func TestShapeRuleErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func(g *Graph)
		op    string
		want  []string // substrings of the error message
	}{
		{"MatMul inner dim", func(g *Graph) { g.MatMul(in(g, Float32, 2, 3), in(g, Float32, 4, 5)) },
			"MatMul", []string{"float32[2 3], float32[4 5]", "inner dimensions differ: 3 (last of A) vs 4"}},
		{"MatMul vector", func(g *Graph) { g.MatMul(in(g, Float32, 3), in(g, Float32, 3, 5)) },
			"MatMul", []string{"float32[3], float32[3 5]", "rank ≥ 2"}},
		{"MatMul batch dims", func(g *Graph) { g.MatMul(in(g, Float32, 2, 3, 4), in(g, Float32, 3, 4, 5)) },
			"MatMul", []string{"float32[2 3 4], float32[3 4 5]", "batch dimensions", "do not broadcast"}},
		{"MatMul ints", func(g *Graph) { g.MatMul(in(g, Int64, 2, 3), in(g, Int64, 3, 2)) },
			"MatMul", []string{"int64[2 3], int64[3 2]", "want a float type"}},
		{"Add no broadcast", func(g *Graph) { g.Add(in(g, Float32, 2, 3), in(g, Float32, 4, 3)) },
			"Add", []string{"float32[2 3], float32[4 3]", "do not broadcast", "2 in one and 4 in another"}},
		{"Add mixed types", func(g *Graph) { g.Add(in(g, Float32, 2), in(g, Int64, 2)) },
			"Add", []string{"float32[2], int64[2]", "input 1 is int64, input 0 is float32: types must match"}},
		{"Add one input", func(g *Graph) { g.Apply("Add", []*Value{in(g, Float32, 2)}, nil, 1) },
			"Add", []string{"(float32[2])", "takes 2 inputs, got 1"}},
		{"output count", func(g *Graph) { g.Apply("Add", []*Value{in(g, Float32, 2), in(g, Float32, 2)}, nil, 2) },
			"Add", []string{"the op gives 1 outputs, the node declares 2"}},
		{"Sum absent input", func(g *Graph) { g.Apply("Sum", []*Value{in(g, Float32, 2), nil}, nil, 1) },
			"Sum", []string{"float32[2], <absent>", "input 1 is absent"}},
		{"Exp on ints", func(g *Graph) { g.Exp(in(g, Int64, 2)) },
			"Exp", []string{"int64[2]", "want a float type"}},
		{"Greater mixed types", func(g *Graph) { g.Greater(in(g, Float32, 2), in(g, Int64, 2)) },
			"Greater", []string{"types must match"}},
		{"And on floats", func(g *Graph) { g.And(in(g, Bool, 2), in(g, Float32, 2)) },
			"And", []string{"bool[2], float32[2]", "input 1 is float32, want bool"}},
		{"Not on floats", func(g *Graph) { g.Apply("Not", []*Value{in(g, Float32, 2)}, nil, 1) },
			"Not", []string{"float32[2]", "want bool"}},
		{"Where non-bool condition", func(g *Graph) { g.Where(in(g, Float32, 2), in(g, Float32, 2), in(g, Float32, 2)) },
			"Where", []string{"float32[2], float32[2], float32[2]", "condition is float32, want bool"}},
		{"Where branch types", func(g *Graph) { g.Where(in(g, Bool, 2), in(g, Float32, 2), in(g, Int64, 2)) },
			"Where", []string{"bool[2], float32[2], int64[2]", "types must match"}},
		{"Where no broadcast", func(g *Graph) { g.Where(in(g, Bool, 3), in(g, Float32, 2), in(g, Float32, 2)) },
			"Where", []string{"do not broadcast"}},
		{"Cast to string", func(g *Graph) { g.Apply("Cast", []*Value{in(g, Float32, 2)}, Attrs{"to": int64(8)}, 1) },
			"Cast", []string{"float32[2]", "to=8 is not a supported type"}},
		{"Cast without to", func(g *Graph) { g.Apply("Cast", []*Value{in(g, Float32, 2)}, nil, 1) },
			"Cast", []string{"to=0 is not a supported type"}},
		{"Clip vector bound", func(g *Graph) { g.Clip(in(g, Float32, 2), in(g, Float32, 2), nil) },
			"Clip", []string{"float32[2], float32[2]", "bound 1 has shape [2], want a scalar"}},
		{"Gemm inner dim", func(g *Graph) { g.Gemm(in(g, Float32, 2, 3), in(g, Float32, 3, 4), nil, false, true, 1, 1) },
			"Gemm", []string{"float32[2 3], float32[3 4]", "inner dimensions differ after transA=0, transB=1: 3 vs 4"}},
		{"Gemm bias shape", func(g *Graph) {
			g.Gemm(in(g, Float32, 2, 3), in(g, Float32, 3, 4), in(g, Float32, 3), false, false, 1, 1)
		},
			"Gemm", []string{"float32[2 3], float32[3 4], float32[3]", "C of shape [3] does not broadcast to the output [2 4]"}},
		{"Gemm bias too big", func(g *Graph) {
			g.Gemm(in(g, Float32, 2, 3), in(g, Float32, 3, 4), in(g, Float32, 5, 2, 4), false, false, 1, 1)
		},
			"Gemm", []string{"C of shape [5 2 4] does not broadcast"}},
		{"Gemm 3-D", func(g *Graph) { g.Gemm(in(g, Float32, 1, 2, 3), in(g, Float32, 3, 4), nil, false, false, 1, 1) },
			"Gemm", []string{"float32[1 2 3], float32[3 4]", "operands A and B must be 2-D"}},
		{"Concat non-axis dim", func(g *Graph) { g.Concat(1, in(g, Float32, 2, 3), in(g, Float32, 3, 3)) },
			"Concat", []string{"float32[2 3], float32[3 3]", "input 1 differs from input 0 in dimension 0 (3 vs 2), which is not the concat axis 1"}},
		{"Concat rank", func(g *Graph) { g.Concat(0, in(g, Float32, 2, 3), in(g, Float32, 3)) },
			"Concat", []string{"input 1 has rank 1, input 0 has rank 2"}},
		{"Concat axis out of range", func(g *Graph) { g.Concat(-3, in(g, Float32, 2, 3), in(g, Float32, 2, 3)) },
			"Concat", []string{"axis -3 is out of range for rank 2"}},
		{"Concat types", func(g *Graph) { g.Concat(0, in(g, Float32, 2), in(g, Int64, 2)) },
			"Concat", []string{"types must match"}},
		{"Reshape element count", func(g *Graph) { g.Reshape(in(g, Float32, 2, 3), 4, 2) },
			"Reshape", []string{"float32[2 3], int64[2]", "target [4 2] (8 elements) does not match 6 input elements"}},
		{"Reshape cannot infer", func(g *Graph) { g.Reshape(in(g, Float32, 7), -1, 2) },
			"Reshape", []string{"cannot infer the -1 of [-1 2] from 7 elements"}},
		{"Reshape two -1", func(g *Graph) { g.Reshape(in(g, Float32, 2, 3), -1, -1) },
			"Reshape", []string{"has more than one -1"}},
		{"Reshape copy past rank", func(g *Graph) { g.Reshape(in(g, Float32, 6), 1, 0) },
			"Reshape", []string{"target dimension 1 is 0 (copy) but the input has rank 1"}},
		{"Reshape negative", func(g *Graph) { g.Reshape(in(g, Float32, 6), -2, -3) },
			"Reshape", []string{"has a negative dimension"}},
		{"Reshape non-constant shape", func(g *Graph) { g.Apply("Reshape", []*Value{in(g, Float32, 2, 3), in(g, Int64, 2)}, nil, 1) },
			"Reshape", []string{"float32[2 3], int64[2]", "the shape operand must be a constant int64 tensor"}},
		{"Reshape float shape", func(g *Graph) {
			g.Apply("Reshape", []*Value{in(g, Float32, 2, 3), g.ConstFloats(Shape{1}, []float32{6})}, nil, 1)
		},
			"Reshape", []string{"must be a constant int64 tensor"}},
		{"Reshape allowzero", func(g *Graph) {
			g.Apply("Reshape", []*Value{in(g, Float32, 2, 3), g.ConstInts(6)}, Attrs{"allowzero": int64(1)}, 1)
		},
			"Reshape", []string{"allowzero=1 is not supported"}},
		{"Transpose not a permutation", func(g *Graph) { g.Transpose(in(g, Float32, 2, 3), 0, 0) },
			"Transpose", []string{"float32[2 3]", "perm [0 0] is not a permutation of 0..1"}},
		{"Transpose perm length", func(g *Graph) { g.Transpose(in(g, Float32, 2, 3), 0, 1, 2) },
			"Transpose", []string{"perm [0 1 2] has 3 entries for rank 2"}},
		{"Split sizes do not sum", func(g *Graph) { g.Split(in(g, Float32, 5, 2), 0, 2, 2) },
			"Split", []string{"float32[5 2], int64[2]", "split [2 2] sums to 4, dimension 0 is 5"}},
		{"Split negative size", func(g *Graph) { g.Split(in(g, Float32, 5), 0, 6, -1) },
			"Split", []string{"has a negative size"}},
		{"Split uneven", func(g *Graph) { g.Apply("Split", []*Value{in(g, Float32, 5)}, nil, 2) },
			"Split", []string{"dimension 0 of size 5 does not split evenly into 2 outputs"}},
		{"Split axis out of range", func(g *Graph) { g.Split(in(g, Float32, 4), 1, 2, 2) },
			"Split", []string{"axis 1 is out of range for rank 1"}},
		{"Split outputs vs sizes", func(g *Graph) { g.Apply("Split", []*Value{in(g, Float32, 4), g.ConstInts(2, 2)}, nil, 3) },
			"Split", []string{"the op gives 2 outputs, the node declares 3"}},
		{"Slice step 0", func(g *Graph) { g.Slice(in(g, Float32, 4), []int64{0}, []int64{4}, nil, []int64{0}) },
			"Slice", []string{"step 0 on axis 0"}},
		{"Slice lengths", func(g *Graph) { g.Slice(in(g, Float32, 4), []int64{0, 1}, []int64{4}, nil, nil) },
			"Slice", []string{"starts [0 1] and ends [4] differ in length"}},
		{"Slice axis twice", func(g *Graph) { g.Slice(in(g, Float32, 4, 4), []int64{0, 1}, []int64{4, 3}, []int64{1, -1}, nil) },
			"Slice", []string{"axis -1 is sliced twice"}},
		{"Slice axis out of range", func(g *Graph) { g.Slice(in(g, Float32, 4), []int64{0}, []int64{4}, []int64{1}, nil) },
			"Slice", []string{"axis 1 is out of range for rank 1"}},
		{"Slice non-constant starts", func(g *Graph) { g.Apply("Slice", []*Value{in(g, Float32, 4), in(g, Int64, 1), g.ConstInts(2)}, nil, 1) },
			"Slice", []string{"starts must be a constant int64 tensor"}},
		{"Squeeze non-one axis", func(g *Graph) { g.Squeeze(in(g, Float32, 2, 1), 0) },
			"Squeeze", []string{"float32[2 1], int64[1]", "cannot squeeze axis 0 of size 2"}},
		{"Unsqueeze repeated axis", func(g *Graph) { g.Unsqueeze(in(g, Float32, 2), 0, -3) },
			"Unsqueeze", []string{"axis -3 is listed twice"}},
		{"Unsqueeze axis out of range", func(g *Graph) { g.Unsqueeze(in(g, Float32, 2), 2) },
			"Unsqueeze", []string{"axis 2 is out of range for rank 2"}},
		{"Expand incompatible", func(g *Graph) { g.Expand(in(g, Float32, 3), Shape{2, 4}) },
			"Expand", []string{"float32[3], int64[2]", "do not broadcast"}},
		{"Pad count", func(g *Graph) { g.Pad(in(g, Float32, 2, 3), 1, 1) },
			"Pad", []string{"float32[2 3], int64[2]", "pads [1 1] must have 2×rank = 4 entries"}},
		{"Pad negative result", func(g *Graph) { g.Pad(in(g, Float32, 2), -2, -1) },
			"Pad", []string{"make dimension 0 negative"}},
		{"Pad mode", func(g *Graph) {
			g.Apply("Pad", []*Value{in(g, Float32, 2), g.ConstInts(1, 1)}, Attrs{"mode": "reflect"}, 1)
		},
			"Pad", []string{`mode "reflect" is not supported`}},
		{"Pad value type", func(g *Graph) { g.Apply("Pad", []*Value{in(g, Float32, 2), g.ConstInts(1, 1), g.ConstInt(0)}, nil, 1) },
			"Pad", []string{"constant_value must be one float32"}},
		{"ReduceSum axis out of range", func(g *Graph) { g.ReduceSum(in(g, Float32, 2, 3), true, 2) },
			"ReduceSum", []string{"float32[2 3], int64[1]", "axis 2 is out of range for rank 2"}},
		{"ReduceMean axis twice", func(g *Graph) { g.ReduceMean(in(g, Float32, 2, 3), true, 1, -1) },
			"ReduceMean", []string{"axis -1 is listed twice"}},
		{"ReduceMean axes input", func(g *Graph) { g.Apply("ReduceMean", []*Value{in(g, Float32, 2, 3), g.ConstInts(0)}, nil, 1) },
			"ReduceMean", []string{"takes 1 inputs, got 2"}},
		{"ReduceSum non-constant axes", func(g *Graph) { g.Apply("ReduceSum", []*Value{in(g, Float32, 2, 3), in(g, Int64, 1)}, nil, 1) },
			"ReduceSum", []string{"axes must be a constant int64 tensor"}},
		{"ArgMax axis", func(g *Graph) { g.ArgMax(in(g, Float32, 2, 3), -3, true) },
			"ArgMax", []string{"axis -3 is out of range for rank 2"}},
		{"Softmax axis", func(g *Graph) { g.Softmax(in(g, Float32, 2, 3), 2) },
			"Softmax", []string{"float32[2 3]", "axis 2 is out of range for rank 2"}},
		{"LogSoftmax ints", func(g *Graph) { g.LogSoftmax(in(g, Int64, 2, 3), 1) },
			"LogSoftmax", []string{"int64[2 3]", "want a float type"}},
		{"OneHot float indices", func(g *Graph) { g.OneHot(in(g, Float32, 2), 3) },
			"OneHot", []string{"float32[2], int64[1], float32[2]", "indices are float32, want an integer type"}},
		{"OneHot zero depth", func(g *Graph) { g.OneHot(in(g, Int64, 2), 0) },
			"OneHot", []string{"depth must be one positive value, got [0]"}},
		{"OneHot non-constant depth", func(g *Graph) {
			g.Apply("OneHot", []*Value{in(g, Int64, 2), in(g, Int64, 1), g.ConstFloats(Shape{2}, []float32{0, 1})}, nil, 1)
		}, "OneHot", []string{"depth must be a constant int64 tensor"}},
		{"OneHot values shape", func(g *Graph) {
			g.Apply("OneHot", []*Value{in(g, Int64, 2), g.ConstInts(3), g.ConstFloats(Shape{3}, []float32{0, 1, 2})}, nil, 1)
		}, "OneHot", []string{"values must have shape [2] (off, on), got [3]"}},
		{"OneHot axis", func(g *Graph) {
			g.Apply("OneHot", []*Value{in(g, Int64, 2), g.ConstInts(3), g.ConstFloats(Shape{2}, []float32{0, 1})}, Attrs{"axis": int64(2)}, 1)
		}, "OneHot", []string{"axis 2 is out of range for rank 2"}},
		{"LayerNormalization scale shape", func(g *Graph) { g.LayerNorm(in(g, Float32, 2, 4), in(g, Float32, 3), nil, 1e-5) },
			"LayerNormalization", []string{"float32[2 4], float32[3]", "Scale has shape [3], want the normalised dimensions [4] (X's axes 1..1)"}},
		{"LayerNormalization bias shape", func(g *Graph) {
			g.LayerNorm(in(g, Float32, 2, 3, 4), in(g, Float32, 3, 4), in(g, Float32, 4), 1e-5)
		}, "LayerNormalization", []string{"B has shape [4], want the normalised dimensions [3 4] (X's axes 1..2)"}},
		{"LayerNormalization float64", func(g *Graph) { g.LayerNorm(in(g, Float64, 2, 4), in(g, Float64, 4), nil, 1e-5) },
			"LayerNormalization", []string{"X is float64, want float32"}},
		{"LayerNormalization axis", func(g *Graph) {
			g.Apply("LayerNormalization", []*Value{in(g, Float32, 2, 4), in(g, Float32, 4)}, Attrs{"axis": int64(2)}, 1)
		}, "LayerNormalization", []string{"axis 2 is out of range for rank 2"}},
		{"LayerNormalization epsilon", func(g *Graph) { g.LayerNorm(in(g, Float32, 2, 4), in(g, Float32, 4), nil, 0) },
			"LayerNormalization", []string{"epsilon 0 must be positive"}},
		{"LayerNormalization stash type", func(g *Graph) {
			g.Apply("LayerNormalization", []*Value{in(g, Float32, 2, 4), in(g, Float32, 4)}, Attrs{"stash_type": int64(0)}, 1)
		}, "LayerNormalization", []string{"stash_type 0 is not supported"}},
		{"LayerNormalization four outputs", func(g *Graph) {
			g.Apply("LayerNormalization", []*Value{in(g, Float32, 2, 4), in(g, Float32, 4)}, nil, 4)
		}, "LayerNormalization", []string{"has 1 to 3 outputs (Y, Mean, InvStdDev), the node declares 4"}},
		{"Constant without value", func(g *Graph) { g.Apply("Constant", nil, nil, 1) },
			"Constant", []string{"Constant needs a tensor attribute 'value'"}},
		{"Constant bad tensor", func(g *Graph) { g.Constant(Float32Tensor(Shape{2, 2}, []float32{1})) },
			"Constant", []string{"tensor of shape [2 2] needs 4 elements, has 1"}},
		{"Constant with input", func(g *Graph) {
			g.Apply("Constant", []*Value{in(g, Float32, 1)}, Attrs{"value": Float32Tensor(Shape{}, []float32{1})}, 1)
		},
			"Constant", []string{"takes 0 inputs, got 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := New("bad")
			tc.build(g)
			err := g.Err()
			var se *ShapeError
			if !errors.As(err, &se) {
				t.Fatalf("Err() = %v (%T), want a *ShapeError", err, err)
			}
			if se.Op != tc.op {
				t.Errorf("ShapeError.Op = %q, want %q", se.Op, tc.op)
			}
			msg := err.Error()
			for _, w := range append([]string{"graph bad: " + tc.op + " (node forward/" + tc.op + ")"}, tc.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			for _, n := range g.Nodes() {
				if n.Op == tc.op {
					t.Errorf("the failed %s node was added to the graph", tc.op)
				}
			}
		})
	}
}

func TestFirstErrorWins(t *testing.T) {
	g := New("g")
	a := in(g, Float32, 2, 3)
	b := in(g, Float32, 4, 5)
	bad := g.MatMul(a, b)
	first := g.Err()
	if first == nil {
		t.Fatal("MatMul of [2 3] and [4 5] did not fail")
	}
	nodes := len(g.Nodes())

	// A broken op, a valid op, a multi-output op and an op using a
	// placeholder: all return placeholders and none replaces the error.
	later := []*Value{
		g.Concat(0, a, in(g, Int64, 1)),
		g.Relu(a),
		g.ConstFloat(1),
		g.Add(bad, bad),
	}
	later = append(later, g.Split(a, 1, 1, 2)...)
	later = append(later, g.Apply("NoSuchOp", []*Value{a}, nil, 1)...)
	for i, v := range append(later, bad) {
		if v == nil || v.Name() != "<invalid>" || v.Producer() != nil {
			t.Errorf("value %d after the error is %v, want a placeholder", i, v)
		}
	}
	if got := len(g.Nodes()); got != nodes {
		t.Errorf("graph has %d nodes after the error, want %d", got, nodes)
	}
	if g.Err() != first {
		t.Errorf("Err() = %v, want the first error %v", g.Err(), first)
	}
	g.Fail(errors.New("later"))
	if g.Err() != first {
		t.Errorf("after Fail, Err() = %v, want the first error %v", g.Err(), first)
	}
	var se *ShapeError
	if !errors.As(g.Err(), &se) || se.Op != "MatMul" {
		t.Errorf("Err() = %v, want the MatMul ShapeError", g.Err())
	}
	if _, err := Marshal(&Model{Graph: g}); err == nil || !strings.Contains(err.Error(), "inner dimensions differ") {
		t.Errorf("Marshal of a failed graph: err = %v, want the graph's error", err)
	}
}

func TestFailNilKeepsGraphValid(t *testing.T) {
	g := New("g")
	g.Fail(nil)
	if g.Err() != nil {
		t.Fatalf("Fail(nil) set Err() = %v", g.Err())
	}
	want := errors.New("first")
	g.Fail(want)
	g.Fail(errors.New("second"))
	if g.Err() != want {
		t.Errorf("Err() = %v, want %v", g.Err(), want)
	}
}

func TestUnknownOp(t *testing.T) {
	g := New("g")
	x := in(g, Float32, 2)
	out := g.Apply("Frobnicate", []*Value{x}, nil, 2)
	err := g.Err()
	if err == nil {
		t.Fatal("Apply of an unknown op did not fail")
	}
	for _, w := range []string{"Frobnicate", "not supported"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	if len(out) != 2 || out[0].Name() != "<invalid>" || out[1].Name() != "<invalid>" {
		t.Errorf("Apply returned %v, want 2 placeholders", out)
	}
	if len(g.Nodes()) != 0 {
		t.Errorf("graph has %d nodes, want none", len(g.Nodes()))
	}
}

func TestInputFromFailedOp(t *testing.T) {
	broken := New("broken")
	bad := broken.MatMul(in(broken, Float32, 2, 3), in(broken, Float32, 2, 3))
	if broken.Err() == nil {
		t.Fatal("MatMul of [2 3] and [2 3] did not fail")
	}
	g := New("g")
	g.Relu(bad)
	if err := g.Err(); err == nil || !strings.Contains(err.Error(), "Relu input 0 comes from a failed op") {
		t.Errorf("Err() = %v, want a failed-input error", err)
	}
}

func TestBroadcast(t *testing.T) {
	tests := []struct {
		in      []Shape
		want    Shape
		wantErr bool
	}{
		{[]Shape{{3, 1}, {1, 4}}, Shape{3, 4}, false},
		{[]Shape{{}, {2, 3}}, Shape{2, 3}, false},
		{[]Shape{{5, 1, 1}, {1, 3, 1}, {2}}, Shape{5, 3, 2}, false},
		{[]Shape{{0}, {1}}, Shape{0}, false},
		{nil, Shape{}, false},
		{[]Shape{{2}, {3}}, nil, true},
		{[]Shape{{2, 1}, {1, 3}, {4, 3}}, nil, true},
	}
	for _, tc := range tests {
		got, err := Broadcast(tc.in...)
		if (err != nil) != tc.wantErr {
			t.Errorf("Broadcast(%v) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && !got.Equal(tc.want) {
			t.Errorf("Broadcast(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestNodeNamesAndScopes(t *testing.T) {
	g := New("g")
	x := in(g, Float32, 2)
	a := g.Relu(x)
	b := g.Relu(x)
	pop := g.Scope("enc")
	c := g.Relu(x)
	old := g.SetPhase(PhaseBackward)
	d := g.Relu(x)
	pop()
	e := g.Relu(x)
	if old != PhaseForward {
		t.Errorf("SetPhase returned %q, want %q", old, PhaseForward)
	}
	tests := []struct {
		v     *Value
		name  string
		phase string
	}{
		{a, "forward/Relu", PhaseForward},
		{b, "forward/Relu_1", PhaseForward},
		{c, "forward/enc/Relu", PhaseForward},
		{d, "backward/enc/Relu", PhaseBackward},
		{e, "backward/Relu", PhaseBackward},
	}
	for _, tc := range tests {
		n := tc.v.Producer()
		if n.Name != tc.name || n.Phase != tc.phase || tc.v.Name() != tc.name {
			t.Errorf("node %q (phase %q, output %q), want %q in phase %q", n.Name, n.Phase, tc.v.Name(), tc.name, tc.phase)
		}
	}
}

func TestGraphDeclarationErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func(g *Graph)
		want  string
	}{
		{"duplicate input", func(g *Graph) { g.Input("x", Float32, Shape{1}); g.Input("x", Float32, Shape{1}) }, `input name "x" is already used`},
		{"initializer named like input", func(g *Graph) {
			g.Input("x", Float32, Shape{1})
			g.Initializer("x", Float32Tensor(Shape{1}, []float32{1}), false)
		}, `initializer name "x" is already used`},
		{"invalid initializer", func(g *Graph) { g.Initializer("w", Float32Tensor(Shape{2}, []float32{1}), false) }, `initializer "w": tensor of shape [2] needs 2 elements, has 1`},
		{"initializer of unsupported type", func(g *Graph) { g.Initializer("w", &Tensor{DType: Bool, Shape: Shape{}}, false) }, "constant tensors of type bool are not supported"},
		{"output name taken", func(g *Graph) {
			x := g.Input("x", Float32, Shape{1})
			g.Input("y", Float32, Shape{1})
			g.Output("y", g.Relu(x))
		}, `output name "y" is already used`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := New("g")
			tc.build(g)
			if err := g.Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Err() = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestOutputNaming(t *testing.T) {
	g := New("g")
	x := g.Input("x", Float32, Shape{2})
	w := g.Initializer("w", Float32Tensor(Shape{2}, []float32{1, 2}), false)
	r := g.Relu(x)
	y := g.Output("y", r)
	y2 := g.Output("y2", r)  // already an output: passed through Identity
	xo := g.Output("xo", x)  // a graph input: passed through Identity
	wo := g.Output("wo", w)  // an initializer: passed through Identity
	same := g.Output("x", x) // already called x: declared as is
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	if y != r || r.Name() != "y" {
		t.Errorf("Output renamed the value to %q and returned %v, want r renamed to y", r.Name(), y)
	}
	for _, v := range []*Value{y2, xo, wo} {
		if p := v.Producer(); p == nil || p.Op != "Identity" {
			t.Errorf("output %s is produced by %v, want an Identity node", v.Name(), p)
		}
	}
	if x.Name() != "x" || w.Name() != "w" || same != x {
		t.Errorf("fixed-name values were renamed: %s, %s", x.Name(), w.Name())
	}
	var names []string
	for _, o := range g.Outputs() {
		names = append(names, o.Name())
	}
	if want := []string{"y", "y2", "xo", "wo", "x"}; !slices.Equal(names, want) {
		t.Errorf("outputs are %v, want %v", names, want)
	}
	if err := g.Rename(y2, "y"); err == nil {
		t.Error("Rename to a used name succeeded")
	}
	if err := g.Rename(y2, "z"); err != nil || y2.Name() != "z" {
		t.Errorf("Rename(y2, z) = %v, name %q", err, y2.Name())
	}
	if err := g.Rename(y2, "z"); err != nil {
		t.Errorf("Rename to the same name: %v", err)
	}
}

func TestBindInput(t *testing.T) {
	tests := []struct {
		name        string
		value       *Tensor
		overridable bool
		wantErr     string
	}{
		{"fixed", Float32Tensor(Shape{2}, []float32{1, 2}), false, ""},
		{"overridable", Float32Tensor(Shape{2}, []float32{1, 2}), true, ""},
		{"wrong shape", Float32Tensor(Shape{3}, []float32{1, 2, 3}), false, "x is float32[2], the value is float32[3]"},
		{"wrong type", Int64Tensor(Shape{2}, []int64{1, 2}), false, "x is float32[2], the value is int64[2]"},
		{"invalid tensor", Float32Tensor(Shape{2}, []float32{1}), false, "needs 2 elements, has 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := New("g")
			x := g.Input("x", Float32, Shape{2})
			err := g.BindInput(x, tc.value, tc.overridable)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("BindInput error = %v, want one containing %q", err, tc.wantErr)
				}
				if len(g.Inputs()) != 1 || len(g.Initializers()) != 0 {
					t.Errorf("a failed BindInput changed the graph")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Initializers()) != 1 || g.Initializers()[0].Value != x || g.Initializers()[0].Data != tc.value {
				t.Errorf("initializers are %v, want x bound to the value", g.Initializers())
			}
			stillInput := slices.Contains(g.Inputs(), x)
			if stillInput != tc.overridable {
				t.Errorf("x is a graph input: %v, want %v", stillInput, tc.overridable)
			}
			if known := x.Const() != nil; known == tc.overridable {
				t.Errorf("x.Const() known: %v, want %v", known, !tc.overridable)
			}
		})
	}
	g := New("g")
	x := g.Relu(g.Input("x", Float32, Shape{2}))
	if err := g.BindInput(x, Float32Tensor(Shape{2}, []float32{1, 2}), false); err == nil || !strings.Contains(err.Error(), "is not a graph input") {
		t.Errorf("BindInput of a node output: err = %v", err)
	}
}

// TestConcatAbsentInput: an omitted ("" in a file) Concat input must be an
// error, not a crash of the builder or of Decode.
func TestConcatAbsentInput(t *testing.T) {
	g := New("g")
	x := in(g, Float32, 2)
	g.Apply("Concat", []*Value{x, nil}, Attrs{"axis": int64(0)}, 1)
	if err := g.Err(); err == nil {
		t.Error("Concat with an absent input was accepted")
	}
}

// TestSliceHugeSteps: ONNX allows any non-zero int64 step; a step larger
// than the axis still takes the start element.
func TestSliceHugeSteps(t *testing.T) {
	tests := []struct {
		start, end, step int64
	}{
		{0, 10, math.MaxInt64},
		{9, -100, math.MinInt64},
		{9, -100, -math.MaxInt64},
	}
	for _, tc := range tests {
		g := New("g")
		y := g.Slice(in(g, Float32, 10), []int64{tc.start}, []int64{tc.end}, nil, []int64{tc.step})
		if g.Err() != nil || !y.Shape().Equal(Shape{1}) {
			t.Errorf("Slice [%d:%d:%d] of [10] has shape %v (err %v), want [1]", tc.start, tc.end, tc.step, y.Shape(), g.Err())
		}
	}
}

func TestBindInputTwiceIsRefused(t *testing.T) {
	g := New("bind")
	x := g.Input("x", Float32, Shape{2})
	g.Output("y", g.Neg(x))
	if err := g.BindInput(x, Float32Tensor(Shape{2}, []float32{1, 2}), true); err != nil {
		t.Fatal(err)
	}
	if err := g.BindInput(x, Float32Tensor(Shape{2}, []float32{3, 4}), true); err == nil || !strings.Contains(err.Error(), "already bound") {
		t.Fatalf("binding x twice: %v", err)
	}
}

func TestPruneRemovesWhatReachesNoOutput(t *testing.T) {
	g := New("prune")
	x := g.Input("x", Float32, Shape{2, 3})
	used := g.Relu(x)
	g.Exp(g.Neg(x)) // dead: reaches no output
	g.Output("y", g.ReduceSum(used, false, 1))
	before := len(g.Nodes())
	if removed := g.Prune(); removed != 2 {
		t.Fatalf("Prune removed %d nodes, want the 2 dead ones (Neg, Exp)", removed)
	}
	var ops []string
	for _, n := range g.Nodes() {
		ops = append(ops, n.Op)
	}
	if len(g.Nodes()) != before-2 || !slices.Contains(ops, "Relu") || slices.Contains(ops, "Exp") || slices.Contains(ops, "Neg") {
		t.Fatalf("nodes after Prune: %v", ops)
	}
	if _, err := Marshal(&Model{Graph: g}); err != nil {
		t.Fatalf("pruned graph does not encode: %v", err)
	}
	// Names of removed nodes are free again.
	if v := g.Neg(x); v.Name() != "forward/Neg" {
		t.Errorf("a new Neg is named %q, want the freed name forward/Neg", v.Name())
	}
}
