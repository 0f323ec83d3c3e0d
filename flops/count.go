package flops

import (
	"fmt"

	"bmc/compile"
	"bmc/graph"
)

// Counts are a graph's costs split by phase.
type Counts struct {
	// Phase maps forward, backward, optimizer and method to FLOPs.
	Phase map[string]int64 `json:"phase"`
	Total int64            `json:"total"`
	// MACs are the multiply-accumulates of the forward phase (thop convention).
	MACs int64 `json:"macs"`
}

// Count sums the cost of every node of g.
func Count(g *graph.Graph) (Counts, error) {
	c := Counts{Phase: map[string]int64{}}
	for _, n := range g.Nodes() {
		cost, err := NodeCost(n)
		if err != nil {
			return c, fmt.Errorf("graph %s: %w", g.Name, err)
		}
		c.Phase[n.Phase] += cost.FLOPs
		c.Total += cost.FLOPs
		if n.Phase == graph.PhaseForward {
			c.MACs += cost.MACs
		}
	}
	return c, nil
}

// Phases lists the phases in report order.
func Phases() []string {
	return []string{graph.PhaseForward, graph.PhaseBackward, graph.PhaseOptimizer, graph.PhaseMethod}
}

// Scale multiplies counts by k.
func (c Counts) Scale(k int64) Counts {
	out := Counts{Phase: map[string]int64{}, Total: c.Total * k, MACs: c.MACs * k}
	for p, v := range c.Phase {
		out.Phase[p] = v * k
	}
	return out
}

// Add sums two counts.
func (c Counts) Add(o Counts) Counts {
	out := Counts{Phase: map[string]int64{}, Total: c.Total + o.Total, MACs: c.MACs + o.MACs}
	for p, v := range c.Phase {
		out.Phase[p] += v
	}
	for p, v := range o.Phase {
		out.Phase[p] += v
	}
	return out
}

// GraphReport is one graph's count and how often it runs.
type GraphReport struct {
	Name   string        `json:"name"`
	Role   string        `json:"role"`
	Counts Counts        `json:"per_run"`
	Runs   []compile.Run `json:"runs"`
}

// Report is the static FLOPs report of a plan.
type Report struct {
	Graphs []GraphReport `json:"graphs"`
	// PerStep is one optimizer step (every step graph as often as it runs per step).
	PerStep Counts `json:"per_step"`
	// Validation is the per-epoch passes besides the steps (validation).
	Validation Counts `json:"validation_per_epoch"`
	// PerEpoch is the steps of one epoch plus its per-epoch passes.
	PerEpoch Counts `json:"per_epoch"`
	// Training is the whole run: epochs × per epoch.
	Training Counts `json:"training"`
	// Final is the evaluation after training (test pass and Shapley passes).
	Final Counts `json:"final_evaluation"`
	// ForwardMACsPerSample is the evaluation graph's MACs divided by its batch.
	ForwardMACsPerSample int64 `json:"forward_macs_per_sample"`
	StepsPerEpoch        int64 `json:"steps_per_epoch"`
	Epochs               int64 `json:"epochs"`
}

// PlanReport counts every graph of a plan and combines the counts with the
// plan's run schedule.
func PlanReport(p *compile.Plan) (Report, error) {
	m := &p.Manifest
	r := Report{StepsPerEpoch: m.StepsPerEpoch(), Epochs: int64(m.Train.Epochs)}
	zero := Counts{Phase: map[string]int64{}}
	r.PerStep, r.Validation, r.Final = zero, zero, zero
	for _, gi := range m.Graphs {
		g, ok := p.Graphs[gi.Name]
		if !ok {
			return r, fmt.Errorf("flops: graph %s is missing from the plan", gi.Name)
		}
		c, err := Count(g)
		if err != nil {
			return r, err
		}
		gr := GraphReport{Name: gi.Name, Role: gi.Role, Counts: c}
		for _, run := range m.Runs {
			if run.Graph != gi.Name {
				continue
			}
			gr.Runs = append(gr.Runs, run)
			switch run.Per {
			case "step":
				r.PerStep = r.PerStep.Add(c.Scale(run.Count))
			case "epoch":
				r.Validation = r.Validation.Add(c.Scale(run.Count))
			case "final":
				r.Final = r.Final.Add(c.Scale(run.Count))
			default:
				return r, fmt.Errorf("flops: run of %s per %q is unknown", gi.Name, run.Per)
			}
		}
		if gi.Name == compile.EvalGraph {
			r.ForwardMACsPerSample = c.MACs / int64(m.Train.EvalBatchSize)
		}
		r.Graphs = append(r.Graphs, gr)
	}
	r.PerEpoch = r.PerStep.Scale(r.StepsPerEpoch).Add(r.Validation)
	r.Training = r.PerEpoch.Scale(r.Epochs)
	return r, nil
}
