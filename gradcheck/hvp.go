package gradcheck

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"bmc/graph"
	"bmc/runtime"
)

// HVPResult is the agreement of a case's Hessian-vector product with
// central differences of its gradient, over every float input at once.
type HVPResult struct {
	// Analytic and Numeric list H·v for the float inputs, concatenated in
	// input order.
	Analytic, Numeric []float64
	// MaxErr is Compare(Analytic, Numeric): at most 1 means every element
	// agrees within the tolerances.
	MaxErr float64
	// RelErr is ‖Analytic − Numeric‖₂ / ‖Numeric‖₂.
	RelErr float64
}

// CheckHVP checks second derivatives. For the loss L = Σ R⊙f(x) +
// ½·Σ (R⊙f(x))² with a random projection R (the square makes the gradient
// that reaches f depend on x, so each rule is also differentiated with
// respect to its incoming gradient) and a random direction v over every
// float input (each input's part scaled to its root mean square, so a step
// moves a deep network's weights by ε of their size), it compares the
// Hessian-vector product autodiff builds by differentiating the gradient
// graph again, ∇(∇L · v), with the central difference of the gradient graph
// (∇L(x + εv) − ∇L(x − εv)) / 2ε, both run by ONNX Runtime.
//
// The difference holds the gradient graph's piecewise pattern at its value
// at x (freezePattern: every comparison, index and sign, the ReLU masks and
// the max-pool positions), which is the piece whose derivative autodiff
// takes: a ReLU whose input crosses 0 within ±εv would otherwise make the
// difference jump by O(1/ε). Other kinked ops (Abs, Clip, Max) are left as
// they are.
//
// It returns an error when an element disagrees beyond the tolerances of
// Check.
func CheckHVP(c Case, seed uint64) (HVPResult, error) {
	var res HVPResult
	rng := rand.New(rand.NewPCG(seed, 0x2545f4914f6cdd1d))
	eps := c.step()
	values, err := c.values(rng)
	defer closeAll(values)
	if err != nil {
		return res, err
	}
	gg, grad, outShape, err := buildGraph(c, gradientGraph, true)
	if err != nil {
		return res, err
	}
	hvp, _, err := build(c, hvpGraph, true)
	if err != nil {
		return res, err
	}
	frozen, pattern := freezePattern(gg)
	var probes, frozenInputs []string
	for k, v := range pattern {
		name := fmt.Sprintf("probe/%d", k)
		gg.Output(name, v)
		probes = append(probes, name)
		frozenInputs = append(frozenInputs, frozenInput(k))
	}
	probeBytes, err := graph.Marshal(&graph.Model{Graph: gg})
	if err != nil {
		return res, err
	}
	frozenBytes, err := graph.Marshal(&graph.Model{Graph: frozen})
	if err != nil {
		return res, err
	}

	var closers []*runtime.Tensor
	defer func() { closeAll(closers) }()
	alloc := func(shape graph.Shape) (*runtime.Tensor, error) {
		t, err := runtime.NewFloat32(shape)
		if err == nil {
			closers = append(closers, t)
		}
		return t, err
	}
	proj, err := alloc(outShape)
	if err != nil {
		return res, err
	}
	for i := range proj.F32 {
		proj.F32[i] = float32(rng.Float64()*2 - 1)
	}
	var dirs, grads, prods, held []*runtime.Tensor
	for _, i := range grad.floatInputs {
		shape := c.Inputs[i].Shape
		v, err := alloc(shape)
		if err != nil {
			return res, err
		}
		scale := rms(values[i].F32)
		for j := range v.F32 {
			v.F32[j] = float32(scale * (rng.Float64()*2 - 1))
		}
		dirs = append(dirs, v)
		for _, list := range []*[]*runtime.Tensor{&grads, &prods} {
			t, err := alloc(shape)
			if err != nil {
				return res, err
			}
			*list = append(*list, t)
		}
	}
	for _, v := range pattern {
		t, err := alloc(v.Shape())
		if err != nil {
			return res, err
		}
		held = append(held, t)
	}

	session := func(what string, model []byte, inputs, outputs []string) (*runtime.Session, error) {
		s, err := runtime.NewSession(model, inputs, outputs, runtime.Options{Threads: 1})
		if err != nil {
			return nil, fmt.Errorf("%s: %s graph: %w", c.Name, what, err)
		}
		return s, nil
	}
	hsess, err := session("Hessian-vector-product", hvp.bytes, hvp.inputs, hvp.outputs)
	if err != nil {
		return res, err
	}
	defer hsess.Close()
	psess, err := session("gradient", probeBytes, grad.inputs, append(append([]string{}, grad.outputs...), probes...))
	if err != nil {
		return res, err
	}
	defer psess.Close()
	fsess, err := session("frozen gradient", frozenBytes, append(append([]string{}, grad.inputs...), frozenInputs...), grad.outputs)
	if err != nil {
		return res, err
	}
	defer fsess.Close()

	gin := append(append([]*runtime.Tensor{}, values...), proj)
	if err := hsess.Run(append(append([]*runtime.Tensor{}, gin...), dirs...), prods); err != nil {
		return res, fmt.Errorf("%s: run Hessian-vector-product graph: %w", c.Name, err)
	}
	if err := psess.Run(gin, append(append([]*runtime.Tensor{}, grads...), held...)); err != nil {
		return res, fmt.Errorf("%s: run gradient graph: %w", c.Name, err)
	}
	for _, p := range prods {
		for _, x := range p.F32 {
			res.Analytic = append(res.Analytic, float64(x))
		}
	}

	// The gradient at x ± εv, with the discrete values of x.
	gradAt := func(sign float64) ([]float64, error) {
		orig := make([][]float32, len(dirs))
		for k, i := range grad.floatInputs {
			x := values[i].F32
			orig[k] = append([]float32{}, x...)
			for j := range x {
				x[j] += float32(sign * eps * float64(dirs[k].F32[j]))
			}
		}
		err := fsess.Run(append(append([]*runtime.Tensor{}, gin...), held...), grads)
		for k, i := range grad.floatInputs {
			copy(values[i].F32, orig[k])
		}
		if err != nil {
			return nil, fmt.Errorf("%s: run gradient graph: %w", c.Name, err)
		}
		var out []float64
		for _, t := range grads {
			for _, x := range t.F32 {
				out = append(out, float64(x))
			}
		}
		return out, nil
	}
	plus, err := gradAt(1)
	if err != nil {
		return res, err
	}
	minus, err := gradAt(-1)
	if err != nil {
		return res, err
	}
	res.Numeric = make([]float64, len(plus))
	var diff, norm float64
	for j := range plus {
		res.Numeric[j] = (plus[j] - minus[j]) / (2 * eps)
		d := res.Analytic[j] - res.Numeric[j]
		diff += d * d
		norm += res.Numeric[j] * res.Numeric[j]
	}
	res.MaxErr = Compare(res.Analytic, res.Numeric)
	res.RelErr = math.Sqrt(diff / norm)
	if norm == 0 {
		res.RelErr = math.Sqrt(diff)
	}
	if !(res.MaxErr <= 1) {
		return res, fmt.Errorf("%s: Hessian-vector product mismatch (error %.3g of tolerance, %.3g relative): analytic %v, numeric %v", c.Name, res.MaxErr, res.RelErr, brief(res.Analytic), brief(res.Numeric))
	}
	return res, nil
}

// frozenInput names the input that holds the k-th value of the pattern.
func frozenInput(k int) string { return fmt.Sprintf("frozen/%d", k) }

// freezePattern copies src into a graph that reads src's piecewise pattern
// from inputs (frozenInput(k), float32) instead of computing it: every
// discrete value (a bool or integer value that is not a constant, or a
// Sign), every ReLU's mask (ReLU(x) becomes x·[x > 0]) and every max pool's
// positions (the pool becomes a gather of x at them). The probes are the
// float32 values of src that the inputs are fed from, in order.
func freezePattern(src *graph.Graph) (*graph.Graph, []*graph.Value) {
	g := graph.New(src.Name + "/frozen")
	m := map[*graph.Value]*graph.Value{}
	for _, v := range src.Inputs() {
		m[v] = g.Input(v.Name(), v.DType(), v.Shape())
	}
	var probes []*graph.Value
	hold := func(probe *graph.Value) *graph.Value {
		in := g.Input(frozenInput(len(probes)), graph.Float32, probe.Shape())
		probes = append(probes, probe)
		return in
	}
	for _, n := range slices.Clone(src.Nodes()) {
		ins := make([]*graph.Value, len(n.Inputs))
		for i, in := range n.Inputs {
			if in != nil {
				ins[i] = m[in]
			}
		}
		switch n.Op {
		case "Relu":
			m[n.Outputs[0]] = g.Mul(ins[0], hold(src.Cast(src.Greater(n.Inputs[0], src.ConstFloat(0)), graph.Float32)))
			continue
		case "MaxPool":
			at := src.Apply("MaxPool", n.Inputs[:1], n.Attrs, 2)[1]
			if len(n.Outputs) == 2 {
				at = n.Outputs[1]
			}
			idx := g.Cast(hold(src.Cast(at, graph.Float32)), graph.Int64)
			y := n.Outputs[0]
			m[y] = g.Reshape(g.GatherElements(g.Reshape(ins[0], -1), g.Reshape(idx, -1), 0), y.Shape()...)
			if len(n.Outputs) == 2 {
				m[n.Outputs[1]] = idx
			}
			continue
		}
		outs := g.Apply(n.Op, ins, n.Attrs, len(n.Outputs))
		for i, o := range n.Outputs {
			if o.Const() != nil || (o.DType().IsFloat() && n.Op != "Sign") {
				m[o] = outs[i]
				continue
			}
			m[o] = g.Cast(hold(src.Cast(o, graph.Float32)), o.DType())
		}
	}
	for _, v := range src.Outputs() {
		g.Output(v.Name(), m[v])
	}
	return g, probes
}

// rms is the root mean square of x, 1 where x is all zeros: the scale of an
// input's direction.
func rms(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	if s == 0 {
		return 1
	}
	return math.Sqrt(s / float64(len(x)))
}
