package flops

import (
	"fmt"
	"maps"

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

// Extra is one entry of a method's work besides its training steps, as the
// plan declares it: a graph's runs per epoch or over the whole run.
type Extra struct {
	Graph string `json:"graph"`
	Note  string `json:"note"`
	// Per is compile.PerEpoch or compile.PerRun; Runs is the count per that.
	Per  string `json:"per"`
	Runs int64  `json:"runs"`
	// Training is the entry's cost over the whole training run.
	Training Counts `json:"training"`
}

// TeacherCost is the training of one teacher a plan reads.
type TeacherCost struct {
	Modality string `json:"modality"`
	Run      string `json:"run"`
	Training Counts `json:"training"`
}

// Report is the static FLOPs report of a plan.
type Report struct {
	Graphs []GraphReport `json:"graphs"`
	// PerStep is one optimizer step (every step graph as often as it runs per step).
	PerStep Counts `json:"per_step"`
	// Validation is the validation pass of every epoch.
	Validation Counts `json:"validation_per_epoch"`
	// Extras are the method's passes besides its steps, each counted over the
	// whole run; their sum is MethodExtra.
	Extras      []Extra `json:"method_extras,omitempty"`
	MethodExtra Counts  `json:"method_extra"`
	// PerEpoch is the steps of one epoch plus its per-epoch passes.
	PerEpoch Counts `json:"per_epoch"`
	// Teachers are the trainings of the teachers the plan reads (their
	// plans' static counts); their sum is Prior.
	Teachers []TeacherCost `json:"teachers,omitempty"`
	Prior    Counts        `json:"prior_training"`
	// Training is the whole run: epochs × per epoch, plus the work the
	// method does at some epochs only, plus the teachers' trainings.
	Training Counts `json:"training"`
	// Final is the evaluation after training (test pass and Shapley passes).
	Final Counts `json:"final_evaluation"`
	// ForwardMACsPerSample is the evaluation graph's MACs divided by its batch.
	ForwardMACsPerSample int64 `json:"forward_macs_per_sample"`
	StepsPerEpoch        int64 `json:"steps_per_epoch"`
	Epochs               int64 `json:"epochs"`
	// PerGraph is each graph's cost of one run, by name: the runtime tallies
	// the runs a training makes against it.
	PerGraph map[string]int64 `json:"-"`
}

// PlanReport counts every graph of a plan and combines the counts with the
// plan's run schedule: runs per step are multiplied by the steps of every
// epoch, runs per epoch by the epochs, and runs over the run are added once.
func PlanReport(p *compile.Plan) (Report, error) {
	m := &p.Manifest
	r := Report{StepsPerEpoch: m.StepsPerEpoch(), Epochs: int64(m.Train.Epochs), PerGraph: map[string]int64{}}
	zero := Counts{Phase: map[string]int64{}}
	r.PerStep, r.Validation, r.Final, r.MethodExtra, r.PerEpoch, r.Prior = zero, zero, zero, zero, zero, zero
	once := zero // per-run work outside the extras
	for _, gi := range m.Graphs {
		g, ok := p.Graphs[gi.Name]
		if !ok {
			return r, fmt.Errorf("flops: graph %s is missing from the plan", gi.Name)
		}
		c, err := Count(g)
		if err != nil {
			return r, err
		}
		r.PerGraph[gi.Name] = c.Total
		gr := GraphReport{Name: gi.Name, Role: gi.Role, Counts: c}
		for _, run := range m.Runs {
			if run.Graph != gi.Name {
				continue
			}
			gr.Runs = append(gr.Runs, run)
			cost := c.Scale(run.Count)
			switch run.Per {
			case compile.PerStep:
				r.PerStep = r.PerStep.Add(cost)
			case compile.PerEpoch:
				if !run.Extra {
					r.Validation = r.Validation.Add(cost)
				}
				r.PerEpoch = r.PerEpoch.Add(cost)
			case compile.PerRun:
				once = once.Add(cost)
			case compile.PerFinal:
				r.Final = r.Final.Add(cost)
			default:
				return r, fmt.Errorf("flops: run of %s per %q is unknown", gi.Name, run.Per)
			}
			if run.Extra && run.Per != compile.PerFinal {
				total := cost
				if run.Per == compile.PerEpoch {
					total = cost.Scale(r.Epochs)
				} else if run.Per == compile.PerStep {
					total = cost.Scale(r.StepsPerEpoch * r.Epochs)
				}
				r.Extras = append(r.Extras, Extra{Graph: gi.Name, Note: run.Note, Per: run.Per, Runs: run.Count, Training: total})
				r.MethodExtra = r.MethodExtra.Add(total)
			}
		}
		if gi.Name == compile.EvalGraph {
			r.ForwardMACsPerSample = c.MACs / int64(m.Train.EvalBatchSize)
		}
		r.Graphs = append(r.Graphs, gr)
	}
	r.PerEpoch = r.PerStep.Scale(r.StepsPerEpoch).Add(r.PerEpoch)
	for _, t := range m.Teachers {
		c := Counts{Phase: maps.Clone(t.FLOPsByPhase), Total: t.FLOPs, MACs: t.MACs}
		if c.Phase == nil {
			c.Phase = map[string]int64{}
		}
		r.Teachers = append(r.Teachers, TeacherCost{Modality: t.Modality, Run: t.Run, Training: c})
		r.Prior = r.Prior.Add(c)
	}
	r.Training = r.PerEpoch.Scale(r.Epochs).Add(once).Add(r.Prior)
	return r, nil
}
