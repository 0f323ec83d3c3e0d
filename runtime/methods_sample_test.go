package runtime_test

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"testing"

	"bmc/compile"
	"bmc/datasets"
	"bmc/experiment"
	"bmc/methods"
	"bmc/runtime"
)

// These tests check Modality-valuation (spec §4.1): the per-sample keep
// mask of the step graph, and the enlarged lists the schedule trains on,
// against contributions evaluated here by running the evaluation graph on
// inputs zero-filled by hand.

// Each row of the step graph sees its own modalities: the logits of a row
// kept under mask S equal the evaluation graph's under S, and the loss is
// their cross-entropy.
func TestSampleStepMasksRows(t *testing.T) {
	for _, dataset := range []string{"synth-av", "synth-avt"} {
		p, d := compileOn(t, dataset, "sample", nil, small, plainSGD())
		pr, _, labels := stepProgram(t, p, d)
		n := len(p.Manifest.ModalityNames())
		classes := int(p.Manifest.Model.Classes)
		keep, err := pr.Input("sample.keep")
		if err != nil {
			t.Fatal(err)
		}
		masks := make([]int, batch)
		for row := range batch {
			masks[row] = row%(1<<n-1) + 1
			for m := range n {
				keep[row*n+m] = float32(masks[row] >> m & 1)
			}
		}
		evalLogits := map[int][]float32{}
		for mask := 1; mask < 1<<n; mask++ {
			if err := pr.SetKeep(compile.EvalGraph, keepOf(mask, n)); err != nil {
				t.Fatal(err)
			}
			if err := pr.Run(compile.EvalGraph); err != nil {
				t.Fatal(err)
			}
			v, _ := pr.Metric(compile.EvalGraph, "logits")
			evalLogits[mask] = slices.Clone(v)
		}
		if err := pr.Run("train"); err != nil {
			t.Fatal(err)
		}
		z := metric(t, pr, "logits")
		var want []float64
		for row, mask := range masks {
			for c := range classes {
				got, ref := z[row*classes+c], float64(evalLogits[mask][row*classes+c])
				if !near(got, ref, 1e-5) {
					t.Fatalf("%s: row %d (mask %b) logit %d = %v, the evaluation graph under the mask gives %v", dataset, row, mask, c, got, ref)
				}
				want = append(want, ref)
			}
		}
		if ce := meanCE(want, labels, classes); !near(metric(t, pr, "loss")[0], ce, 1e-5) {
			t.Errorf("%s: loss %v, want the CE of the masked rows %v", dataset, metric(t, pr, "loss")[0], ce)
		}
	}
}

func keepOf(mask, n int) []float32 {
	k := make([]float32, n)
	for m := range n {
		k[m] = float32(mask >> m & 1)
	}
	return k
}

// listProbe wraps the Modality-valuation schedule and records, per epoch,
// the state the list was built from, the list's samples and each trained
// row's keep mask.
type listProbe struct {
	methods.Schedule
	states  []map[string][]float32
	samples [][]int
	rows    []map[[2]int]int // (sample, mask) → rows trained
	globals []int64
}

func (p *listProbe) PlanEpoch(r methods.Run) (methods.EpochPlan, error) {
	p.states = append(p.states, r.Snapshot())
	p.globals = append(p.globals, r.GlobalStep())
	plan, err := p.Schedule.(methods.EpochPlanner).PlanEpoch(r)
	if err != nil {
		return nil, err
	}
	p.samples = append(p.samples, slices.Clone(plan[0].Samples))
	p.rows = append(p.rows, map[[2]int]int{})
	return plan, nil
}

func (p *listProbe) BeforeStep(r methods.Run) error {
	if err := p.Schedule.BeforeStep(r); err != nil {
		return err
	}
	keep, err := r.Input("sample.keep")
	if err != nil {
		return err
	}
	e := len(p.samples) - 1
	b, n := r.Manifest().Train.BatchSize, len(r.Manifest().ModalityNames())
	for row := range b {
		mask := 0
		for m := range n {
			if keep[row*n+m] == 1 {
				mask |= 1 << m
			}
		}
		i := r.Step()*b + row
		if p.samples[e] == nil {
			p.rows[e][[2]int{-1, mask}]++
			continue
		}
		p.rows[e][[2]int{p.samples[e][i], mask}]++
	}
	return nil
}

// bruteShapley evaluates φ_m(i) for every training sample: the evaluation
// graph, loaded apart with the given state, runs each sample with the
// modalities outside S zero-filled by hand (keep mask all ones).
func bruteShapley(t *testing.T, p *compile.Plan, d datasets.Dataset, state map[string][]float32) [][]float64 {
	t.Helper()
	pr, err := runtime.Load(p, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	if err := pr.SetState(state); err != nil {
		t.Fatal(err)
	}
	train, _ := d.Split(datasets.Train)
	spec := d.Spec()
	names := p.Manifest.ModalityNames()
	n, classes := len(names), int(p.Manifest.Model.Classes)
	b, _ := pr.BatchOf(compile.EvalGraph)
	size := train.Len()
	correct := make([][]float64, 1<<n)
	correct[0] = make([]float64, size)
	for mask := 1; mask < 1<<n; mask++ {
		correct[mask] = make([]float64, size)
		for start := 0; start < size; start += b.Size {
			idx := make([]int, min(b.Size, size-start))
			for j := range idx {
				idx[j] = start + j
			}
			fillRows(t, train, spec, b, idx)
			for m, name := range names {
				if mask>>m&1 == 0 {
					clear(b.Data[name].F32)
					clear(b.Data[name].I64)
				}
			}
			if err := pr.Run(compile.EvalGraph); err != nil {
				t.Fatal(err)
			}
			z, _ := pr.Metric(compile.EvalGraph, "logits")
			for j, i := range idx {
				best := 0
				for c := range classes {
					if z[j*classes+c] > z[j*classes+best] {
						best = c
					}
				}
				if int64(best) == b.Labels.I64[j] {
					correct[mask][i] = 1
				}
			}
		}
	}
	fact := func(k int) float64 { return math.Gamma(float64(k + 1)) }
	phi := make([][]float64, n)
	for m := range n {
		phi[m] = make([]float64, size)
		for sub := 0; sub < 1<<n; sub++ {
			if sub>>m&1 == 1 {
				continue
			}
			s := bits.OnesCount(uint(sub))
			w := fact(s) * fact(n-s-1) / fact(n)
			for i := range size {
				phi[m][i] += w * (correct[sub|1<<m][i] - correct[sub][i])
			}
		}
	}
	return phi
}

// The Sample-level list of every epoch ≥ modulation_starts is the training
// split plus the copies spec §4.1's thresholds give on contributions
// evaluated here; every trained row carries its entry's mask, and the FLOPs
// tally counts the enlarged epochs' steps.
func TestSampleLevelListMatchesSpec(t *testing.T) {
	for _, dataset := range []string{"synth-av", "synth-avt"} {
		t.Run(dataset, func(t *testing.T) {
			const b = 16
			o := experiment.Overrides{Epochs: 3, BatchSize: b, EvalBatchSize: 32}
			data := map[string]string{"train": "100", "val": "32", "test": "32"}
			p, d := compileOn(t, dataset, "sample", map[string]string{"method": "Sample-level"}, data, o)
			sched, err := experiment.Schedule(p)
			if err != nil {
				t.Fatal(err)
			}
			probe := &listProbe{Schedule: sched}
			res, err := runtime.Train(p, d, probe, runtime.TrainOptions{OutDir: t.TempDir(), Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			n := len(p.Manifest.ModalityNames())
			all := 1<<n - 1
			if probe.samples[0] != nil || probe.rows[0][[2]int{-1, all}] != (100/b)*b {
				t.Fatalf("epoch 0 (before modulation_starts): list %v, rows %v; want the default epoch with every modality kept", probe.samples[0], probe.rows[0])
			}
			steps := int64(100 / b)
			for e := 1; e < 3; e++ {
				phi := bruteShapley(t, p, d, probe.states[e])
				want := map[[2]int]int{}
				for i := range 100 {
					want[[2]int{i, all}]++
				}
				for i := range 100 - 100%b {
					for m := range n {
						copies := 0
						switch v := phi[m][i]; {
						case 0.4 < v && v < 1:
							copies = 1
						case -0.1 < v && v < 0.4:
							copies = 2
						case v < -0.1:
							copies = 3
						}
						want[[2]int{i, 1 << m}] += copies
					}
				}
				size := 0
				wantSamples := map[int]int{}
				for k, c := range want {
					size += c
					wantSamples[k[0]] += c
				}
				gotSamples := map[int]int{}
				for _, i := range probe.samples[e] {
					gotSamples[i]++
				}
				if len(probe.samples[e]) != size || fmt.Sprint(gotSamples) != fmt.Sprint(wantSamples) {
					t.Fatalf("epoch %d: the list has %d entries, want %d (samples %v, want %v)", e, len(probe.samples[e]), size, gotSamples, wantSamples)
				}
				trained := 0
				for k, c := range probe.rows[e] {
					if c > want[k] {
						t.Fatalf("epoch %d: sample %d trained %d times with mask %b, the list has %d such entries", e, k[0], c, k[1], want[k])
					}
					trained += c
				}
				if trained != size/b*b || size <= 100 {
					t.Fatalf("epoch %d: %d rows trained of a list of %d", e, trained, size)
				}
				steps += int64(size / b)
			}
			rep := mustReport(t, p)
			valRuns := compile.Batches(32, 32, false)
			evalRuns := 3*valRuns + 2*int64(all)*compile.Batches(100, 32, false)
			if want := steps*rep.PerGraph["train"] + evalRuns*rep.PerGraph[compile.EvalGraph]; res.TrainingFLOPs != want {
				t.Errorf("training FLOPs %d, want the %d steps made and %d evaluation runs: %d", res.TrainingFLOPs, steps, evalRuns, want)
			}
		})
	}
}
