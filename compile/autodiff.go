// Package compile turns a model and a method into runnable training plans:
// reverse-mode automatic differentiation over the graph IR (one gradient
// rule per op, emitting only standard ONNX ops), losses, optimizers with
// PyTorch's update semantics, and Plan assembly. It never runs a graph.
package compile

import (
	"fmt"
	"slices"
	"strings"

	"bmc/graph"
)

// gradFunc emits the gradients of a node's inputs given the gradients of its
// outputs (nil where an output does not reach the loss). It returns one
// entry per input, nil where the input gets no gradient.
type gradFunc func(b *gradBuilder, n *graph.Node, dy []*graph.Value) ([]*graph.Value, error)

// gradRule finds an op's gradient rule; the rules live in the grad_*.go file
// named like the op's family file in package graph.
func gradRule(op string) (gradFunc, bool) {
	for _, family := range gradFamilies() {
		if r, ok := family()[op]; ok {
			return r, true
		}
	}
	return nil, false
}

func gradFamilies() []func() map[string]gradFunc {
	return []func() map[string]gradFunc{elementwiseGrad, matmulGrad, reduceGrad, shapeGrad, nnGrad, convGrad, indexGrad}
}

// GradientOps lists every op that has a gradient rule, sorted.
func GradientOps() []string {
	var ops []string
	for _, family := range gradFamilies() {
		for op := range family() {
			ops = append(ops, op)
		}
	}
	slices.Sort(ops)
	return ops
}

// gradBuilder is the context gradient rules build in.
type gradBuilder struct {
	g *graph.Graph
}

// Gradients appends to g the backward pass of the scalar y and returns
// dy/dx for every x in wrt (zeros where y does not depend on x). Nodes marked
// NoGrad and non-float values stop the gradient. New nodes get the backward
// phase.
func Gradients(g *graph.Graph, y *graph.Value, wrt []*graph.Value) ([]*graph.Value, error) {
	return GradientsWithSeed(g, y, nil, wrt)
}

// GradientsWithSeed is Gradients for a y of any shape, with seed as dL/dy
// (ones when nil, which needs a y of one element).
func GradientsWithSeed(g *graph.Graph, y, seed *graph.Value, wrt []*graph.Value) ([]*graph.Value, error) {
	if err := g.Err(); err != nil {
		return nil, err
	}
	if !y.DType().IsFloat() {
		return nil, fmt.Errorf("autodiff: %s is %v, not a float", y.Name(), y.DType())
	}
	old := g.SetPhase(graph.PhaseBackward)
	defer g.SetPhase(old)
	b := &gradBuilder{g: g}
	if seed == nil {
		if y.Shape().Size() != 1 {
			return nil, fmt.Errorf("autodiff: %s has shape %v; a loss must have one element (or pass a seed)", y.Name(), y.Shape())
		}
		seed = g.Expand(g.ConstFloat(1), y.Shape())
	} else if !seed.Shape().Equal(y.Shape()) {
		return nil, fmt.Errorf("autodiff: seed shape %v differs from %s's shape %v", seed.Shape(), y.Name(), y.Shape())
	}

	// Values that depend on a wrt value through differentiable nodes.
	active := map[*graph.Value]bool{}
	for _, x := range wrt {
		if x.DType().IsFloat() {
			active[x] = true
		}
	}
	nodes := g.Nodes()
	for _, n := range nodes {
		if n.NoGrad {
			continue
		}
		for _, in := range n.Inputs {
			if in != nil && active[in] {
				for _, out := range n.Outputs {
					if out.DType().IsFloat() {
						active[out] = true
					}
				}
				break
			}
		}
	}
	// Values y depends on.
	needed := map[*graph.Value]bool{y: true}
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		reaches := false
		for _, out := range n.Outputs {
			reaches = reaches || needed[out]
		}
		if reaches {
			for _, in := range n.Inputs {
				if in != nil {
					needed[in] = true
				}
			}
		}
	}

	contrib := map[*graph.Value][]*graph.Value{y: {seed}}
	total := func(v *graph.Value) *graph.Value {
		c := contrib[v]
		switch len(c) {
		case 0:
			return nil
		case 1:
			return c[0]
		}
		// A chain of Adds rather than one Sum: ONNX Runtime spreads Add over
		// its threads and runs Sum on one.
		s := c[0]
		for _, x := range c[1:] {
			s = g.Add(s, x)
		}
		contrib[v] = []*graph.Value{s}
		return s
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		if n.NoGrad {
			continue
		}
		dys := make([]*graph.Value, len(n.Outputs))
		any := false
		for j, out := range n.Outputs {
			if active[out] && needed[out] {
				dys[j] = total(out)
				any = any || dys[j] != nil
			}
		}
		if !any {
			continue
		}
		rule, ok := gradRule(n.Op)
		if !ok {
			return nil, fmt.Errorf("autodiff: %s (node %s) has no gradient rule, and its output lies between the parameters and %s", n.Op, n.Name, y.Name())
		}
		pop := g.Scope(strings.TrimPrefix(strings.TrimPrefix(n.Name, n.Phase+"/"), "/") + "/grad")
		dxs, err := rule(b, n, dys)
		pop()
		if err != nil {
			return nil, fmt.Errorf("autodiff: %s (node %s): %w", n.Op, n.Name, err)
		}
		if err := g.Err(); err != nil {
			return nil, fmt.Errorf("autodiff: gradient of %s (node %s): %w", n.Op, n.Name, err)
		}
		for j, in := range n.Inputs {
			if in == nil || j >= len(dxs) || dxs[j] == nil || !active[in] {
				continue
			}
			if !dxs[j].Shape().Equal(in.Shape()) {
				return nil, fmt.Errorf("autodiff: rule of %s (node %s) gave input %d a gradient of shape %v, the input has %v", n.Op, n.Name, j, dxs[j].Shape(), in.Shape())
			}
			contrib[in] = append(contrib[in], dxs[j])
		}
	}
	grads := make([]*graph.Value, len(wrt))
	for i, x := range wrt {
		if d := total(x); d != nil {
			grads[i] = d
		} else {
			grads[i] = b.zeros(x.Shape())
		}
	}
	return grads, g.Err()
}

func (b *gradBuilder) zeros(shape graph.Shape) *graph.Value {
	return b.g.Expand(b.g.ConstFloat(0), shape)
}

// sumTo reduces a broadcast gradient back to shape: it sums over the leading
// axes that broadcasting added and the axes where shape has size 1.
func (b *gradBuilder) sumTo(dx *graph.Value, shape graph.Shape) *graph.Value {
	s := dx.Shape()
	if s.Equal(shape) {
		return dx
	}
	lead := s.Rank() - shape.Rank()
	var axes []int64
	for i := range s.Rank() {
		if i < lead || (shape[i-lead] == 1 && s[i] != 1) {
			axes = append(axes, int64(i))
		}
	}
	r := dx
	if len(axes) > 0 {
		r = b.g.ReduceSum(dx, true, axes...)
	}
	if !r.Shape().Equal(shape) {
		r = b.g.Reshape(r, shape...)
	}
	return r
}
