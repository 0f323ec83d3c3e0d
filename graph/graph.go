// Package graph is bmc's intermediate representation of ONNX graphs: values
// with a static type and shape, nodes that apply ONNX operators to them, and
// op constructors that infer and check shapes while a graph is built. It
// reads and writes ONNX files (IR version 8, default-domain opset 17).
//
// A graph is built by calling op constructors on it. The first error (a
// shape rule broken, an unknown op) is kept and every later constructor
// returns a placeholder, so builders check Err once at the end instead of
// after every op.
package graph

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Phases name what a node is for; the FLOPs report splits counts by phase.
const (
	PhaseForward   = "forward"
	PhaseBackward  = "backward"
	PhaseOptimizer = "optimizer"
	PhaseMethod    = "method"
)

// Value is one tensor of a graph: a graph input, an initializer or a node output.
type Value struct {
	name     string
	dtype    DType
	shape    Shape
	producer *Node
	konst    *Tensor // known data: Constant outputs and initializers
}

// Name is the value's unique name in its graph.
func (v *Value) Name() string { return v.name }

// DType is the element type.
func (v *Value) DType() DType { return v.dtype }

// Shape is the static shape; callers must not modify it.
func (v *Value) Shape() Shape { return v.shape }

// Producer is the node that computes v, nil for graph inputs and initializers.
func (v *Value) Producer() *Node { return v.producer }

// Const is v's data when it is known at build time (a Constant node's output
// or an initializer), else nil.
func (v *Value) Const() *Tensor { return v.konst }

func (v *Value) describe() string {
	if v == nil {
		return "<absent>"
	}
	return v.dtype.String() + v.shape.String()
}

// Node applies one ONNX operator.
type Node struct {
	Op      string
	Name    string
	Phase   string
	Inputs  []*Value // a nil entry is an omitted optional input
	Outputs []*Value
	Attrs   Attrs
	// NoGrad marks a node that autodiff treats as constant (stop-gradient).
	// It lives only in memory: files hold no gradient bookkeeping.
	NoGrad bool
	// CountAs, when set, is the node's FLOPs in place of its op's rule: a
	// lowering's helper node that only routes values (a one-hot
	// ConvTranspose) counts the math it stands for, so that FLOPs describe
	// the computation, not the lowering. Files keep it in the node's doc
	// string (countAsDoc).
	CountAs *int64
}

// SetCountAs sets CountAs of the node computing v (package flops reads it).
func (v *Value) SetCountAs(flops int64) {
	if v.producer != nil {
		v.producer.CountAs = &flops
	}
}

// Initializer is a named constant stored in the graph (model weights in exports).
type Initializer struct {
	Value *Value
	Data  *Tensor
}

// Graph is an ONNX graph under construction or read from a file.
type Graph struct {
	Name         string
	Doc          string
	inputs       []*Value
	outputs      []*Value
	initializers []Initializer
	nodes        []*Node
	used         map[string]bool // value names
	nodeNames    map[string]bool
	counters     map[string]int
	scope        []string
	phase        string
	err          error
}

// New returns an empty graph; nodes are added in the forward phase until
// SetPhase says otherwise.
func New(name string) *Graph {
	return &Graph{Name: name, used: map[string]bool{}, nodeNames: map[string]bool{}, counters: map[string]int{}, phase: PhaseForward}
}

// Err is the first error met while building the graph.
func (g *Graph) Err() error { return g.err }

// Fail records err (if it is the first) so that Err reports it.
func (g *Graph) Fail(err error) {
	if g.err == nil && err != nil {
		g.err = err
	}
}

// Inputs are the graph inputs in declaration order.
func (g *Graph) Inputs() []*Value { return g.inputs }

// Outputs are the graph outputs in declaration order.
func (g *Graph) Outputs() []*Value { return g.outputs }

// Nodes are the nodes in topological (construction) order.
func (g *Graph) Nodes() []*Node { return g.nodes }

// Initializers are the stored constants.
func (g *Graph) Initializers() []Initializer { return g.initializers }

// SetPhase sets the phase of the nodes added from now on and returns the old one.
func (g *Graph) SetPhase(phase string) string {
	old := g.phase
	g.phase = phase
	return old
}

// Phase is the phase new nodes get.
func (g *Graph) Phase() string { return g.phase }

// Scope pushes a name scope (like a PyTorch module path) for the nodes added
// until the returned function is called.
func (g *Graph) Scope(name string) (pop func()) {
	g.scope = append(g.scope, name)
	n := len(g.scope)
	return func() { g.scope = g.scope[:n-1] }
}

// unique returns base, or base_k for the first k that is free in used, and
// marks the result as taken.
func (g *Graph) unique(used map[string]bool, base string) string {
	name := base
	for used[name] {
		g.counters[base]++
		name = base + "_" + strconv.Itoa(g.counters[base])
	}
	used[name] = true
	return name
}

// Input declares a graph input.
func (g *Graph) Input(name string, dtype DType, shape Shape) *Value {
	if g.used[name] {
		g.Fail(fmt.Errorf("graph %s: input name %q is already used", g.Name, name))
		return g.placeholder(dtype, shape)
	}
	g.used[name] = true
	v := &Value{name: name, dtype: dtype, shape: shape.Clone()}
	g.inputs = append(g.inputs, v)
	return v
}

// Initializer adds a named constant; when asInput is true it is also a graph
// input, which makes it a default that callers may override (IR ≥ 4).
func (g *Graph) Initializer(name string, t *Tensor, asInput bool) *Value {
	if err := t.Validate(); err != nil {
		g.Fail(fmt.Errorf("graph %s: initializer %q: %w", g.Name, name, err))
		return g.placeholder(t.DType, t.Shape)
	}
	if g.used[name] {
		g.Fail(fmt.Errorf("graph %s: initializer name %q is already used", g.Name, name))
		return g.placeholder(t.DType, t.Shape)
	}
	g.used[name] = true
	v := &Value{name: name, dtype: t.DType, shape: t.Shape.Clone(), konst: t}
	g.initializers = append(g.initializers, Initializer{Value: v, Data: t})
	if asInput {
		// An overridable default is not a build-time constant.
		v.konst = nil
		g.inputs = append(g.inputs, v)
	}
	return v
}

// Output declares v as a graph output called name. A value that already has a
// fixed name (a graph input, an initializer or another output) is passed
// through an Identity node; any other value is renamed.
func (g *Graph) Output(name string, v *Value) *Value {
	if g.err != nil || v == nil {
		return v
	}
	if v.name == name {
		g.outputs = append(g.outputs, v)
		return v
	}
	if g.used[name] {
		g.Fail(fmt.Errorf("graph %s: output name %q is already used", g.Name, name))
		return v
	}
	fixed := v.producer == nil
	for _, o := range g.outputs {
		fixed = fixed || o == v
	}
	if fixed {
		v = g.Identity(v)
	}
	delete(g.used, v.name)
	g.used[name] = true
	v.name = name
	g.outputs = append(g.outputs, v)
	return v
}

// OrderForReverseDFS reorders the nodes, keeping them topologically sorted,
// for ONNX Runtime's default execution order. That order is a depth-first
// search from the leaves (the nodes no other node reads), the last leaf
// first, which explores a node's inputs from the highest node index down
// and runs each node once its inputs have run; a value lives from its
// producer until its last reader, so what the search computes early stays
// in memory. Two rules make it compute values shortly before they are read:
//
//   - Every node that is read goes as early as its inputs allow (sorted by
//     its depth from the graph inputs). A value made only from old work (a
//     ReLU mask of the forward pass, the weight-decay term p·wd) then has a
//     lower index than the chain of recent work its reader also reads, so
//     the search visits it last, just before the reader runs, instead of
//     first, at the end of the forward pass.
//   - Leaves go last, ordered by when their inputs are ready (ready is the
//     creation index of the latest producer that follow does not pass
//     through), the latest-ready first: the search starts from the leaf
//     that can run first — the update of the parameter whose gradient is
//     done first — and each later leaf continues the chain where the
//     previous one stopped, so each gradient is consumed as soon as it
//     exists instead of every gradient living until the backward ends.
//
// follow selects the nodes whose readiness is their inputs' (the
// optimizer's, which the builder appends after the whole backward pass).
func (g *Graph) OrderForReverseDFS(follow func(*Node) bool) {
	index := make(map[*Node]int, len(g.nodes))
	depth := make(map[*Node]int, len(g.nodes))
	ready := make(map[*Node]int, len(g.nodes))
	read := map[*Node]bool{}
	for i, n := range g.nodes {
		index[n] = i
		d, r := 0, -1
		for _, in := range n.Inputs {
			if in == nil || in.producer == nil {
				continue
			}
			read[in.producer] = true
			d = max(d, depth[in.producer]+1)
			r = max(r, ready[in.producer])
		}
		depth[n] = d
		if !follow(n) {
			r = i
		}
		ready[n] = r
	}
	var inner, leaves []*Node
	for _, n := range g.nodes {
		if read[n] {
			inner = append(inner, n)
		} else {
			leaves = append(leaves, n)
		}
	}
	slices.SortStableFunc(inner, func(a, b *Node) int { return depth[a] - depth[b] })
	slices.SortStableFunc(leaves, func(a, b *Node) int {
		if ready[a] != ready[b] {
			return ready[b] - ready[a]
		}
		return index[b] - index[a]
	})
	g.nodes = append(inner, leaves...)
}

// Prune removes the nodes none of whose outputs reaches a graph output (dead
// code: for example gradients autodiff built for inputs that need none), so
// that the graph holds, and FLOPs count, only what runs. It returns the
// number of nodes removed.
func (g *Graph) Prune() int {
	live := map[*Value]bool{}
	for _, v := range g.outputs {
		live[v] = true
	}
	keep := make([]bool, len(g.nodes))
	for i := len(g.nodes) - 1; i >= 0; i-- {
		n := g.nodes[i]
		for _, o := range n.Outputs {
			if live[o] {
				keep[i] = true
				break
			}
		}
		if keep[i] {
			for _, in := range n.Inputs {
				if in != nil {
					live[in] = true
				}
			}
		}
	}
	kept := g.nodes[:0]
	for i, n := range g.nodes {
		if keep[i] {
			kept = append(kept, n)
		} else {
			for _, o := range n.Outputs {
				delete(g.used, o.name)
			}
			delete(g.nodeNames, n.Name)
		}
	}
	removed := len(g.nodes) - len(kept)
	clear(g.nodes[len(kept):])
	g.nodes = kept
	return removed
}

// BindInput turns graph input v into an initializer holding t. With
// overridable it stays a graph input too, so t is only its default.
func (g *Graph) BindInput(v *Value, t *Tensor, overridable bool) error {
	i := slices.Index(g.inputs, v)
	if i < 0 {
		return fmt.Errorf("graph %s: %s is not a graph input", g.Name, v.name)
	}
	if err := t.Validate(); err != nil {
		return fmt.Errorf("graph %s: value for %s: %w", g.Name, v.name, err)
	}
	if t.DType != v.dtype || !t.Shape.Equal(v.shape) {
		return fmt.Errorf("graph %s: %s is %v%v, the value is %v%v", g.Name, v.name, v.dtype, v.shape, t.DType, t.Shape)
	}
	if slices.ContainsFunc(g.initializers, func(in Initializer) bool { return in.Value == v }) {
		return fmt.Errorf("graph %s: %s is already bound", g.Name, v.name)
	}
	g.initializers = append(g.initializers, Initializer{Value: v, Data: t})
	if !overridable {
		v.konst = t
		g.inputs = slices.Delete(g.inputs, i, i+1)
	}
	return nil
}

// Rename gives a value a chosen name (used by readers and by tests).
func (g *Graph) Rename(v *Value, name string) error {
	if v.name == name {
		return nil
	}
	if g.used[name] {
		return fmt.Errorf("graph %s: name %q is already used", g.Name, name)
	}
	delete(g.used, v.name)
	g.used[name] = true
	v.name = name
	return nil
}

func (g *Graph) placeholder(dtype DType, shape Shape) *Value {
	return &Value{name: "<invalid>", dtype: dtype, shape: shape.Clone()}
}

// Apply adds a node running op on inputs with nOut outputs and returns them.
// The op's shape rule (see ops_*.go) checks the inputs and attributes and
// gives the outputs' types and shapes; a broken rule is recorded as the
// graph's error, naming the op, its inputs' shapes and the rule, and
// placeholders are returned.
func (g *Graph) Apply(op string, inputs []*Value, attrs Attrs, nOut int) []*Value {
	return g.addNode(op, inputs, attrs, nOut, "", g.phase, nil)
}

// addNode is Apply with optional fixed node and output names (for readers).
func (g *Graph) addNode(op string, inputs []*Value, attrs Attrs, nOut int, nodeName, phase string, outNames []string) []*Value {
	if g.err != nil {
		return g.placeholders(nOut)
	}
	if nodeName == "" {
		nodeName = g.nextNodeName(op)
	}
	rule, ok := shapeRule(op)
	if !ok {
		g.Fail(fmt.Errorf("graph %s: node %s: op %s is not supported by bmc's IR", g.Name, nodeName, op))
		return g.placeholders(nOut)
	}
	for i, in := range inputs {
		if in != nil && in.name == "<invalid>" {
			g.Fail(fmt.Errorf("graph %s: node %s: %s input %d comes from a failed op", g.Name, nodeName, op, i))
			return g.placeholders(nOut)
		}
	}
	outs, err := rule(inputs, attrs, nOut)
	if err == nil && len(outs) != nOut {
		err = fmt.Errorf("the op gives %d outputs, the node declares %d", len(outs), nOut)
	}
	if err != nil {
		g.Fail(&ShapeError{Graph: g.Name, Op: op, Node: nodeName, Inputs: inputs, Rule: err.Error()})
		return g.placeholders(nOut)
	}
	n := &Node{Op: op, Name: g.unique(g.nodeNames, nodeName), Phase: phase, Inputs: inputs, Attrs: attrs}
	for i, o := range outs {
		var name string
		if outNames != nil {
			name = outNames[i]
			if g.used[name] {
				g.Fail(fmt.Errorf("graph %s: node %s: output name %q is already used", g.Name, nodeName, name))
				return g.placeholders(nOut)
			}
			g.used[name] = true
		} else {
			name = n.Name
			if len(outs) > 1 {
				name += ":" + strconv.Itoa(i)
			}
			name = g.unique(g.used, name)
		}
		v := &Value{name: name, dtype: o.DType, shape: o.Shape, producer: n, konst: o.Const}
		n.Outputs = append(n.Outputs, v)
	}
	g.nodes = append(g.nodes, n)
	return n.Outputs
}

// placeholders returns n invalid values, so that builders can keep going
// after an error.
func (g *Graph) placeholders(n int) []*Value {
	out := make([]*Value, n)
	for i := range out {
		out[i] = g.placeholder(Float32, nil)
	}
	return out
}

func (g *Graph) nextNodeName(op string) string {
	parts := make([]string, 0, len(g.scope)+2)
	parts = append(parts, g.phase)
	parts = append(parts, g.scope...)
	parts = append(parts, op)
	return strings.Join(parts, "/")
}

// ShapeError reports an op whose inputs break its shape rule.
type ShapeError struct {
	Graph  string
	Op     string
	Node   string
	Inputs []*Value
	Rule   string
}

func (e *ShapeError) Error() string {
	ins := make([]string, len(e.Inputs))
	for i, v := range e.Inputs {
		ins[i] = v.describe()
	}
	return fmt.Sprintf("graph %s: %s (node %s) with inputs (%s): %s", e.Graph, e.Op, e.Node, strings.Join(ins, ", "), e.Rule)
}
