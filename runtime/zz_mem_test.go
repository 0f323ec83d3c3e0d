package runtime_test

import (
	"fmt"
	"os"
	"sort"
	"testing"

	"bmc/experiment"
	"bmc/graph"
)

func TestZZLiveness(t *testing.T) {
	size := os.Getenv("BMC_LIVE")
	if size == "" {
		t.Skip()
	}
	req, _ := experiment.BenchRequest(size)
	p, _, err := experiment.Compile(req)
	if err != nil {
		t.Fatal(err)
	}
	g := p.Graphs["train"]
	last := map[*graph.Value]int{}
	for i, n := range g.Nodes() {
		for _, v := range n.Inputs {
			if v != nil {
				last[v] = i
			}
		}
	}
	outs := map[*graph.Value]bool{}
	for _, v := range g.Outputs() {
		outs[v] = true
	}
	bytes := func(v *graph.Value) int64 { return v.Shape().Size() * 4 }
	var live, peak int64
	peakAt := 0
	alive := map[*graph.Value]bool{}
	var peakSet []*graph.Value
	for i, n := range g.Nodes() {
		for _, v := range n.Outputs {
			if v.Const() == nil && !outs[v] {
				live += bytes(v)
				alive[v] = true
			}
		}
		if live > peak {
			peak, peakAt = live, i
			peakSet = peakSet[:0]
			for v := range alive {
				peakSet = append(peakSet, v)
			}
		}
		for _, v := range n.Inputs {
			if v != nil && last[v] == i && alive[v] {
				live -= bytes(v)
				delete(alive, v)
			}
		}
	}
	fmt.Printf("nodes %d peak %.0f MiB at node %d (%s %s)\n", len(g.Nodes()), float64(peak)/(1<<20), peakAt, g.Nodes()[peakAt].Op, g.Nodes()[peakAt].Phase)
	byOp := map[string]int64{}
	for _, v := range peakSet {
		k := "?"
		if pr := v.Producer(); pr != nil {
			k = pr.Op + "/" + pr.Phase
		}
		byOp[k] += bytes(v)
	}
	var keys []string
	for k := range byOp {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return byOp[keys[a]] > byOp[keys[b]] })
	for _, k := range keys[:min(15, len(keys))] {
		fmt.Printf("  %-30s %7.1f MiB\n", k, float64(byOp[k])/(1<<20))
	}
}
