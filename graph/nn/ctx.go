package nn

import (
	"fmt"

	"bmc/graph"
)

// Distribution is how the runtime fills a random input before every run.
type Distribution struct {
	// Kind is "bernoulli": Scale with probability P, else 0 (a dropout mask
	// already divided by the keep probability).
	Kind  string  `json:"kind"`
	P     float64 `json:"p"`
	Scale float64 `json:"scale"`
}

// Bernoulli is the dropout-mask distribution: each element is 1/keep with
// probability keep, else 0.
func Bernoulli(keep float64) Distribution {
	return Distribution{Kind: "bernoulli", P: keep, Scale: 1 / keep}
}

// Bindings connect a forward pass to its graph: the values of parameters
// and buffers, and the hooks through which it declares buffer updates and
// random inputs.
type Bindings struct {
	Params  map[string]*graph.Value
	Buffers map[string]*graph.Value
	// UpdateBuffer receives a buffer's value after this forward (training
	// mode); nil when this forward must leave buffers as they are.
	UpdateBuffer func(name string, v *graph.Value)
	// Random declares a tensor the runtime fills with fresh draws before
	// every run; nil where no randomness is allowed (evaluation graphs).
	Random func(shape graph.Shape, d Distribution) *graph.Value
	// Input declares a runtime input that a method's schedule sets before
	// every run (a flag, a mask); nil where the graph takes none
	// (evaluation graphs), and the model then reads the default.
	Input func(name string, shape graph.Shape, def []float32, doc string) *graph.Value
}

// Ctx is what an encoder's forward pass builds with.
type Ctx struct {
	G    *graph.Graph
	Mode Mode
	b    Bindings
}

// NewCtx makes a build context over bindings.
func NewCtx(g *graph.Graph, b Bindings, mode Mode) *Ctx {
	return &Ctx{G: g, Mode: mode, b: b}
}

// Param is the value of a parameter, by full name.
func (c *Ctx) Param(name string) *graph.Value {
	if v, ok := c.b.Params[name]; ok {
		return v
	}
	c.G.Fail(fmt.Errorf("model forward: parameter %s is not bound", name))
	return c.G.ConstFloat(0)
}

// Buffer is the current value of a buffer (running statistics), by full
// name.
func (c *Ctx) Buffer(name string) *graph.Value {
	if v, ok := c.b.Buffers[name]; ok {
		return v
	}
	c.G.Fail(fmt.Errorf("model forward: buffer %s is not bound", name))
	return c.G.ConstFloat(0)
}

// UpdatesBuffers reports whether this forward writes buffers, so encoders
// can skip computing values nobody reads.
func (c *Ctx) UpdatesBuffers() bool { return c.Mode == Train && c.b.UpdateBuffer != nil }

// UpdateBuffer gives a buffer's value after this forward. It is ignored
// unless UpdatesBuffers; the value is never differentiated.
func (c *Ctx) UpdateBuffer(name string, v *graph.Value) {
	if !c.UpdatesBuffers() {
		return
	}
	if _, ok := c.b.Buffers[name]; !ok {
		c.G.Fail(fmt.Errorf("model forward: update of unknown buffer %s", name))
		return
	}
	c.b.UpdateBuffer(name, c.G.StopGradient(v))
}

// Input is a runtime input of the graph a schedule sets, or, in graphs
// without runtime inputs, the constant def. def must have shape's size.
func (c *Ctx) Input(name string, shape graph.Shape, def []float32, doc string) *graph.Value {
	if int64(len(def)) != shape.Size() {
		c.G.Fail(fmt.Errorf("model forward: input %s: default has %d values for shape %v", name, len(def), shape))
		return c.G.ConstFloat(0)
	}
	if c.b.Input == nil {
		return c.G.ConstFloats(shape, def)
	}
	return c.b.Input(name, shape, def, doc)
}

// Dropout zeroes each element of x with probability p and scales the rest
// by 1/(1−p) in training mode; in evaluation mode it is the identity.
func (c *Ctx) Dropout(x *graph.Value, p float64) *graph.Value {
	if c.Mode == Eval || p == 0 {
		return x
	}
	if p < 0 || p >= 1 {
		c.G.Fail(fmt.Errorf("dropout probability %v is outside [0, 1)", p))
		return x
	}
	if c.b.Random == nil {
		c.G.Fail(fmt.Errorf("dropout in a graph that takes no random inputs"))
		return x
	}
	return c.G.Mul(x, c.b.Random(x.Shape(), Bernoulli(1-p)))
}

// GraphInputs declares every parameter and buffer of m as a float32 input
// of g and random inputs as inputs named "random/<n>", for tests and tools
// that build a model's forward pass alone. Buffer updates are dropped.
func (m *Model) GraphInputs(g *graph.Graph) Bindings {
	b := Bindings{Params: map[string]*graph.Value{}, Buffers: map[string]*graph.Value{}}
	for _, p := range m.params {
		b.Params[p.Name] = g.Input(p.Name, graph.Float32, p.Shape)
	}
	for _, buf := range m.buffers {
		b.Buffers[buf.Name] = g.Input(buf.Name, graph.Float32, buf.Shape)
	}
	n := 0
	b.Random = func(shape graph.Shape, _ Distribution) *graph.Value {
		n++
		return g.Input(fmt.Sprintf("random/%d", n), graph.Float32, shape)
	}
	return b
}
