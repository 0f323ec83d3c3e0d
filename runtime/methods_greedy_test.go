package runtime_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/datasets"
	"bmc/experiment"
	"bmc/graph/nn"
	"bmc/methods"
	"bmc/runtime"
)

// greedyPlan is Greedy with ResNet18 encoders at a tiny input size: synth-av
// (audio 1×16×12, visual 2 frames of 3×16×16) or synth-avt (text 1×12×12
// as well), plain SGD with learning rate lr.
func greedyPlan(t *testing.T, dataset string, hp map[string]string, lr float64) (*compile.Plan, datasets.Dataset) {
	t.Helper()
	data := map[string]string{"train": "32", "val": "16", "test": "16", "classes": "3", "shape.audio": "1x16x12", "shape.visual": "3x2x16x16"}
	if dataset == "synth-avt" {
		data["shape.text"] = "1x12x12"
	}
	o := plainSGD()
	o.LR = lr
	return compileOn(t, "greedy", dataset, "resnet18", hp, data, o)
}

// greedyLR is a large step, so that the gradient is the update divided by
// the rate to float32 precision.
const greedyLR = 100

// greedySums are Σ‖∇θ‖² and Σ‖θ‖² of modality m's bypass and main groups,
// from the state before a plain-SGD step and its update, the groups sorted
// by name as the reference does: MMTM tensors naming m or no modality
// (fc_squeeze) are bypass, m's encoder tensors main.
func greedySums(p *compile.Plan, before map[string][]float32, update map[string][]float64, m string) (gb, wb, gm, wm float64) {
	for _, par := range p.Manifest.Params {
		var g, w float64
		for i, d := range update[par.Name] {
			g += (d / greedyLR) * (d / greedyLR)
			w += float64(before[par.Name][i]) * float64(before[par.Name][i])
		}
		switch {
		case strings.HasPrefix(par.Name, "mmtm_layers.") && (strings.Contains(par.Name, ".fc_squeeze.") || strings.Contains(par.Name, ".fc_excites."+m+".")):
			gb, wb = gb+g, wb+w
		case strings.HasPrefix(par.Name, nn.EncoderPrefix(m)):
			gm, wm = gm+g, wm+w
		}
	}
	return gb, wb, gm, wm
}

// Greedy with 2 and 3 modalities (one program each, ResNet18 being slow to
// load). One step: the squared norms the step reports per group are those
// of the gradients (−update/lr) and parameters; the MMTM call counts
// advance and the running averages hold batch means of gates; in curation
// mode the caring modality's excitation layers get no gradient (their
// gates are the detached running averages) while the others' do. Then the
// schedule over real steps: curation windows of window_size steps open
// when the BDRs spread by more than alpha, caring for the modality of the
// largest BDR, and its state survives MarshalState/UnmarshalState into a
// fresh schedule.
func TestGreedyMatchesSpec(t *testing.T) {
	for _, dataset := range []string{"synth-av", "synth-avt"} {
		t.Run(dataset, func(t *testing.T) {
			p, d := greedyPlan(t, dataset, map[string]string{"window_size": "2", "alpha": "0.0001"}, greedyLR)
			pr, init, _ := stepProgram(t, p, d)
			checkGreedyStep(t, p, pr, init)
			if err := pr.SetState(init); err != nil {
				t.Fatal(err)
			}
			setInput(t, pr, compile.LRInput, 0.1)
			checkGreedySchedule(t, p, pr, 2, 0.0001)
		})
	}
}

func checkGreedyStep(t *testing.T, p *compile.Plan, pr *runtime.Program, init map[string][]float32) {
	t.Helper()
	names := modalities(p)
	if err := pr.Run("train"); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, pr)
	update := delta(init, after)
	for _, m := range names {
		gb, wb, gm, wm := greedySums(p, init, update, m)
		for _, c := range []struct {
			name string
			want float64
		}{{"greedy.grad_sq/bypass/" + m, gb}, {"greedy.weight_sq/bypass/" + m, wb}, {"greedy.grad_sq/main/" + m, gm}, {"greedy.weight_sq/main/" + m, wm}} {
			if got := metric(t, pr, c.name)[0]; !near(got, c.want, 1e-3) || c.want == 0 {
				t.Errorf("%s = %v, from the update %v", c.name, got, c.want)
			}
		}
	}
	for k := 1; k <= 4; k++ {
		if s := after[fmt.Sprintf("mmtm_layers.mmtm%d.step", k)]; s[0] != 1 {
			t.Errorf("block %d: %v calls after one step", k, s)
		}
		for _, m := range names {
			for _, v := range after[fmt.Sprintf("mmtm_layers.mmtm%d.running_avg_weight.%s", k, m)] {
				if v <= 0 || v >= 1 {
					t.Fatalf("block %d: running average of %s's gates %v after one step, want the batch mean of sigmoids", k, m, v)
				}
			}
		}
	}
	// Every caring modality with two modalities, the last with three (each
	// run of a ResNet18 step costs).
	first := 0
	if len(names) > 2 {
		first = len(names) - 1
	}
	for c := first; c < len(names); c++ {
		caring := names[c]
		flags := make([]float32, len(names))
		flags[c] = 1
		if err := pr.SetState(init); err != nil {
			t.Fatal(err)
		}
		setInput(t, pr, nn.MMTMCuration, flags...)
		if err := pr.Run("train"); err != nil {
			t.Fatal(err)
		}
		cur := delta(init, snapshot(t, pr))
		for k := 1; k <= 4; k++ {
			for _, m := range names {
				w := fmt.Sprintf("mmtm_layers.mmtm%d.fc_excites.%s.weight", k, m)
				moved := false
				for _, v := range cur[w] {
					moved = moved || v != 0
				}
				if moved != (m != caring) {
					t.Errorf("caring %s: %s moved %v, want %v", caring, w, moved, m != caring)
				}
			}
		}
	}
	setInput(t, pr, nn.MMTMCuration, make([]float32, len(names))...)
}

// greedyExpect is the spec's trainer bookkeeping (§4.4) evaluated in Go on
// the step's reported sums, for n modalities: the spread of the BDRs
// against alpha picks the caring modality (argmax BDR; for two modalities
// the sign of BDR_0 − BDR_1).
type greedyExpect struct {
	bypass, main   []float64
	curation       bool
	caring, steps  int
	window         int
	alpha          float64
	names          []string
	opened, closed int
}

func (e *greedyExpect) after(t *testing.T, pr *runtime.Program) {
	t.Helper()
	if e.curation {
		e.steps++
		if e.steps == e.window {
			e.curation = false
			e.closed++
		}
		return
	}
	bdr := make([]float64, len(e.names))
	for i, m := range e.names {
		e.bypass[i] += metric(t, pr, "greedy.grad_sq/bypass/"+m)[0] / metric(t, pr, "greedy.weight_sq/bypass/"+m)[0]
		e.main[i] += metric(t, pr, "greedy.grad_sq/main/"+m)[0] / metric(t, pr, "greedy.weight_sq/main/"+m)[0]
		bdr[i] = math.Log10(e.bypass[i] / e.main[i])
	}
	hi, spread := 0, 0.0
	for i := range bdr {
		for j := range bdr {
			spread = math.Max(spread, math.Abs(bdr[i]-bdr[j]))
		}
		if bdr[i] > bdr[hi] {
			hi = i
		}
	}
	e.curation, e.caring = false, 0
	if spread > e.alpha {
		e.curation, e.caring, e.steps = true, hi, 0
		e.opened++
	}
}

func checkGreedySchedule(t *testing.T, p *compile.Plan, pr *runtime.Program, window int, alpha float64) {
	t.Helper()
	sched, err := experiment.Schedule(p)
	if err != nil {
		t.Fatal(err)
	}
	names := modalities(p)
	e := &greedyExpect{bypass: make([]float64, len(names)), main: make([]float64, len(names)), window: window, alpha: alpha, names: names}
	r := &scheduleRun{pr: pr, seed: p.Manifest.Train.Seed}
	const steps = 4 // a window opens after step 0 and closes after step 2
	for s := range steps {
		if s == steps/2 {
			// Resume mid-run: a fresh schedule from the marshalled state.
			data, err := sched.(methods.StatefulSchedule).MarshalState()
			if err != nil {
				t.Fatal(err)
			}
			if sched, err = experiment.Schedule(p); err != nil {
				t.Fatal(err)
			}
			if err := sched.(methods.StatefulSchedule).UnmarshalState(data); err != nil {
				t.Fatal(err)
			}
		}
		if err := sched.BeforeStep(r); err != nil {
			t.Fatal(err)
		}
		flags, _ := pr.Input(nn.MMTMCuration)
		for i, f := range flags {
			want := float32(0)
			if e.curation && i == e.caring {
				want = 1
			}
			if f != want {
				t.Fatalf("step %d: curation flags %v, the spec's bookkeeping gives curation %v caring %d", s, flags, e.curation, e.caring)
			}
		}
		if err := pr.Run("train"); err != nil {
			t.Fatal(err)
		}
		if err := sched.AfterStep(r); err != nil {
			t.Fatal(err)
		}
		e.after(t, pr)
		r.next(1000)
	}
	if e.opened == 0 || e.closed == 0 {
		t.Errorf("%d curation windows opened and %d closed in %d steps: the test checks too little", e.opened, e.closed, steps)
	}
	if err := sched.(methods.StatefulSchedule).UnmarshalState([]byte(`{"Bypass":[1],"Main":[1],"Caring":0}`)); err == nil {
		t.Error("UnmarshalState accepted the state of one modality")
	}
}

// Greedy needs ResNet18 encoders: another encoder is refused with the
// reason.
func TestGreedyRefusesEncodersWithoutStages(t *testing.T) {
	_, _, err := experiment.Compile(experiment.Request{Method: "greedy", Dataset: "synth-av", DataParams: small})
	if err == nil || !strings.Contains(err.Error(), "MMTM blocks between the stages of ResNet18 encoders") || !strings.Contains(err.Error(), "encoder mlp") {
		t.Errorf("greedy with MLP encoders: %v", err)
	}
}
