package graph_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bmc/graph"
	"bmc/runtime"
)

// executionOrder runs the graph once in ONNX Runtime with profiling on and
// returns the node names in the order they ran.
func executionOrder(t *testing.T, g *graph.Graph, inputs []string, outputs []string, shape []int64) []string {
	t.Helper()
	data, err := graph.Marshal(&graph.Model{Graph: g})
	if err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(t.TempDir(), "trace")
	s, err := runtime.NewSession(data, inputs, outputs, runtime.Options{Threads: 1, Profile: prefix})
	if err != nil {
		t.Fatal(err)
	}
	var ins, outs []*runtime.Tensor
	for range inputs {
		ins = append(ins, newF32(t, shape, nil))
	}
	for range outputs {
		outs = append(outs, newF32(t, shape, nil))
	}
	if err := s.Run(ins, outs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(prefix + "*.json")
	if len(files) != 1 {
		t.Fatalf("want one trace, found %v", files)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var events []struct {
		Cat, Name string
		TS        int64
	}
	if err := json.Unmarshal(raw, &events); err != nil {
		t.Fatal(err)
	}
	slices.SortStableFunc(events, func(a, b struct {
		Cat, Name string
		TS        int64
	}) int {
		return int(a.TS - b.TS)
	})
	var order []string
	for _, e := range events {
		if name, ok := strings.CutSuffix(e.Name, "_kernel_time"); ok && e.Cat == "Node" {
			order = append(order, name)
		}
	}
	return order
}

// ONNX Runtime's default order computes a value made from old work (here a
// ReLU mask of the forward pass, built next to its reader) as soon as it
// can, and runs the leaves last-created first. OrderForReverseDFS makes it
// compute the mask just before its reader, and run each update as soon as
// its gradient exists.
func TestOrderForReverseDFSInONNXRuntime(t *testing.T) {
	shape := []int64{256}
	build := func() (g *graph.Graph, mask, reader, update1, chainAfter1 string) {
		g = graph.New("order")
		x := g.Input("x", graph.Float32, graph.Shape(shape))
		p1 := g.Input("p1", graph.Float32, graph.Shape(shape))
		p2 := g.Input("p2", graph.Float32, graph.Shape(shape))
		a := g.Relu(x)
		// The backward chain: two gradients, the first ready early.
		d := g.Mul(a, g.ConstFloat(2))
		g1 := g.Mul(d, d)
		next := g.Add(d, g1)
		for range 4 {
			next = g.Mul(next, g.ConstFloat(1.5))
		}
		m := g.Greater(a, g.ConstFloat(0))
		g2 := g.Where(m, next, g.ConstFloat(0))
		g.SetPhase(graph.PhaseOptimizer)
		u1 := g.Sub(p1, g1)
		u2 := g.Sub(p2, g2)
		g.Output("u1", u1)
		g.Output("u2", u2)
		return g, m.Producer().Name, g2.Producer().Name, u1.Producer().Name, next.Producer().Name
	}
	position := func(order []string, name string) int {
		i := slices.Index(order, name)
		if i < 0 {
			t.Fatalf("node %s did not run: %v", name, order)
		}
		return i
	}
	inputs, outputs := []string{"x", "p1", "p2"}, []string{"u1", "u2"}

	g, mask, reader, update1, chain := build()
	order := executionOrder(t, g, inputs, outputs, shape)
	if position(order, reader)-position(order, mask) == 1 {
		t.Errorf("without reordering ONNX Runtime already runs the mask just before its reader (%v): the premise of OrderForReverseDFS is gone", order)
	}
	if position(order, update1) < position(order, chain) {
		t.Errorf("without reordering ONNX Runtime already runs the first update before the rest of the chain (%v): the premise of OrderForReverseDFS is gone", order)
	}

	g, mask, reader, update1, chain = build()
	g.OrderForReverseDFS(func(n *graph.Node) bool { return n.Phase == graph.PhaseOptimizer })
	order = executionOrder(t, g, inputs, outputs, shape)
	if got := position(order, reader) - position(order, mask); got != 1 {
		t.Errorf("the mask ran %d nodes before its reader, want just before: %v", got, order)
	}
	if position(order, update1) > position(order, chain) {
		t.Errorf("the first update ran after the rest of the chain: %v", order)
	}
}
