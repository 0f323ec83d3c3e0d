// Package gradcheck verifies bmc's gradient rules numerically: it compares
// the gradient that compile.Gradients builds with central finite differences,
// both evaluated by ONNX Runtime.
package gradcheck

import (
	"fmt"
	"math"
	"math/rand/v2"

	"bmc/compile"
	"bmc/graph"
	"bmc/runtime"
)

// Input is one input of a checked function.
type Input struct {
	Shape graph.Shape
	// DType is Float32 (differentiated) or Int64 (held fixed).
	DType graph.DType
	// Floats or Ints fix the values; random values in [−1, 1] (floats) or
	// [0, IntRange) (ints) are drawn when both are nil.
	Floats   []float32
	Ints     []int64
	IntRange int64
}

// Case is a function built from graph inputs, whose gradient is checked.
type Case struct {
	Name   string
	Inputs []Input
	Build  func(g *graph.Graph, in []*graph.Value) *graph.Value
	// Eps is the finite-difference step (default 1e-2).
	Eps float64
}

// Result is the agreement found for one differentiated input.
type Result struct {
	Input    int
	Analytic []float64
	Numeric  []float64
	// MaxErr is the largest |analytic − numeric| / (atol + rtol·|numeric|);
	// the check passes when it is at most 1.
	MaxErr float64
}

// Tolerances of the comparison: |a − n| ≤ atol·max(1, ‖n‖∞) + rtol·|n|.
const (
	atol = 1e-3
	rtol = 1e-2
)

// Check evaluates the case's gradient with respect to each float input
// against central differences of the loss Σ R⊙f(x) for a random projection R.
// It returns an error when any element disagrees beyond the tolerances.
func Check(c Case, seed uint64) ([]Result, error) { return CheckOn(c, seed, runtime.Target{}) }

// problem is what a case's checks share: the inputs and the projection R
// drawn from the seed (inputs first, then R), the forward graph f and the
// gradient graph of Σ R⊙f.
type problem struct {
	values   []*runtime.Tensor
	fwd, ana *built
	outShape graph.Shape
	proj     *runtime.Tensor
}

// newProblem draws and builds a case's problem; close it even on error.
func newProblem(c Case, seed uint64) (*problem, error) {
	p := &problem{}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	var err error
	if p.values, err = c.values(rng); err != nil {
		return p, err
	}
	if p.fwd, p.outShape, err = build(c, forwardGraph, false); err != nil {
		return p, err
	}
	if p.ana, _, err = build(c, gradientGraph, false); err != nil {
		return p, err
	}
	if p.proj, err = runtime.NewFloat32(p.outShape); err != nil {
		return p, err
	}
	for i := range p.proj.F32 {
		p.proj.F32[i] = float32(rng.Float64()*2 - 1)
	}
	return p, nil
}

// close releases the problem's tensors.
func (p *problem) close() {
	closeAll(p.values)
	p.proj.Close()
}

// CheckOn is Check with both graphs run on a target (a device and a
// precision) instead of the CPU.
func CheckOn(c Case, seed uint64, target runtime.Target) ([]Result, error) {
	eps := c.step()
	pr, err := newProblem(c, seed)
	defer pr.close()
	if err != nil {
		return nil, err
	}
	values, fwd, ana, outShape, proj := pr.values, pr.fwd, pr.ana, pr.outShape, pr.proj

	opt := runtime.Options{Threads: 1, Target: target}
	fsess, err := runtime.NewSession(fwd.bytes, fwd.inputs, fwd.outputs, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: forward graph: %w", c.Name, err)
	}
	defer fsess.Close()
	asess, err := runtime.NewSession(ana.bytes, ana.inputs, ana.outputs, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: gradient graph: %w", c.Name, err)
	}
	defer asess.Close()

	// Analytic gradients.
	var gradOut []*runtime.Tensor
	for _, i := range ana.floatInputs {
		t, err := runtime.NewFloat32(c.Inputs[i].Shape)
		if err != nil {
			return nil, err
		}
		defer t.Close()
		gradOut = append(gradOut, t)
	}
	if err := asess.Run(append(append([]*runtime.Tensor{}, values...), proj), gradOut); err != nil {
		return nil, fmt.Errorf("%s: run gradient graph: %w", c.Name, err)
	}

	out, err := runtime.NewFloat32(outShape)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	loss := func() (float64, error) {
		if err := fsess.Run(values, []*runtime.Tensor{out}); err != nil {
			return 0, err
		}
		var s float64
		for k, o := range out.F32 {
			s += float64(proj.F32[k]) * float64(o)
		}
		return s, nil
	}

	var results []Result
	var failures []string
	for gi, i := range ana.floatInputs {
		x := values[i].F32
		r := Result{Input: i, Analytic: make([]float64, len(x)), Numeric: make([]float64, len(x))}
		for j := range x {
			orig := x[j]
			x[j] = orig + float32(eps)
			plus, err := loss()
			if err != nil {
				return nil, fmt.Errorf("%s: run forward graph: %w", c.Name, err)
			}
			x[j] = orig - float32(eps)
			minus, err := loss()
			if err != nil {
				return nil, fmt.Errorf("%s: run forward graph: %w", c.Name, err)
			}
			// The step actually taken in float32.
			h := float64(orig+float32(eps)) - float64(orig-float32(eps))
			x[j] = orig
			r.Numeric[j] = (plus - minus) / h
			r.Analytic[j] = float64(gradOut[gi].F32[j])
		}
		r.MaxErr = Compare(r.Analytic, r.Numeric)
		if r.MaxErr > 1 {
			failures = append(failures, fmt.Sprintf("input %d: analytic %v vs numeric %v (error %.3g of tolerance)", i, brief(r.Analytic), brief(r.Numeric), r.MaxErr))
		}
		results = append(results, r)
	}
	if failures != nil {
		return results, fmt.Errorf("%s: gradient mismatch: %v", c.Name, failures)
	}
	return results, nil
}

// Compare returns the largest |a−n| / (atol·max(1, ‖n‖∞) + rtol·|n|) over
// the elements; at most 1 means agreement.
func Compare(analytic, numeric []float64) float64 {
	scale := 1.0
	for _, v := range numeric {
		scale = max(scale, math.Abs(v))
	}
	worst := 0.0
	for j := range numeric {
		e := math.Abs(analytic[j]-numeric[j]) / (atol*scale + rtol*math.Abs(numeric[j]))
		if math.IsNaN(e) {
			return math.Inf(1)
		}
		worst = max(worst, e)
	}
	return worst
}

func brief(v []float64) []float64 {
	if len(v) > 6 {
		return v[:6]
	}
	return v
}

type built struct {
	bytes       []byte
	inputs      []string
	outputs     []string
	floatInputs []int
}

// Orders of the graphs build makes.
const (
	forwardGraph  = iota // f itself
	gradientGraph        // ∇ of Σ proj⊙f with respect to every float input
	hvpGraph             // ∇ of Σ_i ⟨∇_i, v_i⟩: the Hessian-vector products
)

// build makes the case's graph of an order: the plain function, the
// gradients of the loss Σ proj⊙f with respect to every float input, or,
// with one more input v_i per float input, the gradients of Σ_i ⟨grad_i,
// v_i⟩ (the gradient graph differentiated again). A quadratic loss adds
// ½·Σ (proj⊙f)², so that the gradient flowing into f depends on the inputs
// and a second derivative also differentiates each rule with respect to
// its incoming gradient.
func build(c Case, order int, quadratic bool) (*built, graph.Shape, error) {
	g, b, shape, err := buildGraph(c, order, quadratic)
	if err != nil {
		return nil, nil, err
	}
	if b.bytes, err = graph.Marshal(&graph.Model{Graph: g}); err != nil {
		return nil, nil, err
	}
	return b, shape, nil
}

// buildGraph is build without the encoding: the graph and its IO names.
func buildGraph(c Case, order int, quadratic bool) (*graph.Graph, *built, graph.Shape, error) {
	g := graph.New(c.Name)
	var ins []*graph.Value
	b := &built{}
	for i, in := range c.Inputs {
		name := fmt.Sprintf("x%d", i)
		ins = append(ins, g.Input(name, in.DType, in.Shape))
		b.inputs = append(b.inputs, name)
		if in.DType == graph.Float32 {
			b.floatInputs = append(b.floatInputs, i)
		}
	}
	y := c.Build(g, ins)
	if err := g.Err(); err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	if y.DType() != graph.Float32 {
		return nil, nil, nil, fmt.Errorf("%s: the function returns %v, want float32", c.Name, y.DType())
	}
	shape := y.Shape().Clone()
	if shape.Rank() == 0 {
		y = g.Reshape(y, 1)
		shape = graph.Shape{1}
	}
	outputs := func(prefix string, vals []*graph.Value) {
		for k, d := range vals {
			name := fmt.Sprintf("%s%d", prefix, b.floatInputs[k])
			g.Output(name, d)
			b.outputs = append(b.outputs, name)
		}
	}
	if order == forwardGraph {
		g.Output("y", y)
		b.outputs = []string{"y"}
	} else {
		proj := g.Input("proj", graph.Float32, shape)
		b.inputs = append(b.inputs, "proj")
		py := g.Mul(y, proj)
		loss := g.ReduceSum(py, false)
		if quadratic {
			loss = g.Add(loss, g.Mul(g.ReduceSum(g.Mul(py, py), false), g.ConstFloat(0.5)))
		}
		var wrt []*graph.Value
		for _, i := range b.floatInputs {
			wrt = append(wrt, ins[i])
		}
		grads, err := compile.Gradients(g, loss, wrt)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", c.Name, err)
		}
		if order == gradientGraph {
			outputs("grad", grads)
		} else {
			var dots []*graph.Value
			for k, d := range grads {
				name := fmt.Sprintf("v%d", b.floatInputs[k])
				v := g.Input(name, graph.Float32, d.Shape())
				b.inputs = append(b.inputs, name)
				dots = append(dots, g.ReduceSum(g.Mul(d, v), false))
			}
			hvp, err := compile.Gradients(g, g.Sum(dots...), wrt)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("%s: second order: %w", c.Name, err)
			}
			outputs("hvp", hvp)
		}
	}
	return g, b, shape, nil
}

// step is the case's finite-difference step.
func (c Case) step() float64 {
	if c.Eps == 0 {
		return 1e-2
	}
	return c.Eps
}

// values draws the case's inputs (closeAll releases them, also after an
// error).
func (c Case) values(rng *rand.Rand) ([]*runtime.Tensor, error) {
	var values []*runtime.Tensor
	for i, in := range c.Inputs {
		t, err := newInput(in, rng)
		if err != nil {
			return values, fmt.Errorf("%s: input %d: %w", c.Name, i, err)
		}
		values = append(values, t)
	}
	return values, nil
}

func closeAll(ts []*runtime.Tensor) {
	for _, t := range ts {
		t.Close()
	}
}

func newInput(in Input, rng *rand.Rand) (*runtime.Tensor, error) {
	switch in.DType {
	case graph.Float32:
		t, err := runtime.NewFloat32(in.Shape)
		if err != nil {
			return nil, err
		}
		if in.Floats != nil {
			if len(in.Floats) != len(t.F32) {
				t.Close()
				return nil, fmt.Errorf("%d values for shape %v", len(in.Floats), in.Shape)
			}
			copy(t.F32, in.Floats)
		} else {
			for i := range t.F32 {
				t.F32[i] = float32(rng.Float64()*2 - 1)
			}
		}
		return t, nil
	case graph.Int64:
		t, err := runtime.NewInt64(in.Shape)
		if err != nil {
			return nil, err
		}
		if in.Ints != nil {
			if len(in.Ints) != len(t.I64) {
				t.Close()
				return nil, fmt.Errorf("%d values for shape %v", len(in.Ints), in.Shape)
			}
			copy(t.I64, in.Ints)
		} else {
			if in.IntRange <= 0 {
				t.Close()
				return nil, fmt.Errorf("random int input needs IntRange > 0")
			}
			for i := range t.I64 {
				t.I64[i] = rng.Int64N(in.IntRange)
			}
		}
		return t, nil
	}
	return nil, fmt.Errorf("input type %v is not supported", in.DType)
}

// OpsOf lists the ops of a case's forward graph.
func OpsOf(c Case) ([]string, error) {
	g := graph.New(c.Name)
	var ins []*graph.Value
	for i, in := range c.Inputs {
		ins = append(ins, g.Input(fmt.Sprintf("x%d", i), in.DType, in.Shape))
	}
	c.Build(g, ins)
	if err := g.Err(); err != nil {
		return nil, err
	}
	var ops []string
	for _, n := range g.Nodes() {
		ops = append(ops, n.Op)
	}
	return ops, nil
}
