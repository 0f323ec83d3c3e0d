package runtime_test

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/datasets"
	"bmc/experiment"
	"bmc/internal/onnxcheck"
	"bmc/methods"
	"bmc/runtime"
	"bmc/safetensors"
)

// These tests check GBlending (spec §4.11) against the spec evaluated in
// Go: the blended loss and its update, the temporary models' training and
// validation, G, O and the weights from the losses they measured, that the
// fork leaves the run bit for bit as it was, the resume, and the FLOPs of
// the whole run.

func gblendingPlan(t *testing.T, dataset string, hp, data map[string]string, o experiment.Overrides) (*compile.Plan, datasets.Dataset) {
	t.Helper()
	if o.Threads == 0 {
		o.Threads = 1
	}
	p, d, err := experiment.Compile(experiment.Request{Method: "gblending", Hyper: hp, Dataset: dataset, DataParams: data, Encoder: "mlp:6,3", Train: o})
	if err != nil {
		t.Fatal(err)
	}
	return p, d
}

// heads are the blended heads: the modalities, then the fused output.
func heads(p *compile.Plan) []string { return append(p.Manifest.ModalityNames(), "output") }

func TestGBlendingStepMatchesSpec(t *testing.T) {
	for _, dataset := range []string{"synth-av", "synth-avt"} {
		t.Run(dataset, func(t *testing.T) {
			p, d := gblendingPlan(t, dataset, nil, tinySynth(dataset), plainSGD())
			pr, init, labels := stepProgram(t, p, d)
			hs := heads(p)
			run := func(w []float32) map[string][]float64 {
				if err := pr.SetState(init); err != nil {
					t.Fatal(err)
				}
				setInput(t, pr, "gblending.weights", w...)
				if err := pr.Run("train"); err != nil {
					t.Fatal(err)
				}
				return delta(init, snapshot(t, pr))
			}
			w := []float32{0.2, 0.5, 0.3, 0.45}[:len(hs)]
			blended := run(w)
			// L = Σ_k w_k·CE(z_k, y), z_output the fused logits.
			classes := int(p.Manifest.Model.Classes)
			var want float64
			for k, h := range hs {
				name := "logits/" + h
				if h == "output" {
					name = "logits"
				}
				z := metric(t, pr, name)
				var ce float64
				for i, y := range labels {
					ce -= math.Log(softmaxRow(z[i*classes : (i+1)*classes])[y])
				}
				want += float64(w[k]) * ce / float64(len(labels))
				if got := metric(t, pr, "gblending.weight/"+h)[0]; got != float64(w[k]) {
					t.Errorf("gblending.weight/%s = %v, the input is %v", h, got, w[k])
				}
			}
			if got := metric(t, pr, "loss")[0]; !near(got, want, 1e-5) {
				t.Errorf("loss %v, the spec gives Σ w_k·CE(z_k) = %v", got, want)
			}
			// Plain SGD: the update is linear in the weights.
			sum := map[string][]float64{}
			for k := range hs {
				one := make([]float32, len(hs))
				one[k] = 1
				for key, dk := range run(one) {
					if sum[key] == nil {
						sum[key] = make([]float64, len(dk))
					}
					for i, v := range dk {
						sum[key][i] += float64(w[k]) * v
					}
				}
			}
			for key, d := range blended {
				for i := range d {
					if !near(d[i], sum[key][i], 1e-4) {
						t.Fatalf("%s[%d]: update %.6g, Σ w_k·(update of CE(z_k)) = %.6g", key, i, d[i], sum[key][i])
					}
				}
			}
			// The temporary models' step trains on the fused output of the
			// kept modalities: its loss is the CE of the evaluation graph's
			// logits under the same mask (no dropout, no batch norm here).
			for _, h := range hs {
				keep := make([]float32, len(hs)-1)
				for i, m := range p.Manifest.ModalityNames() {
					if h == "output" || h == m {
						keep[i] = 1
					}
				}
				if err := pr.SetState(init); err != nil {
					t.Fatal(err)
				}
				for _, g := range []string{"gblending.temp", compile.EvalGraph} {
					if err := pr.SetKeep(g, keep); err != nil {
						t.Fatal(err)
					}
				}
				if err := pr.Run(compile.EvalGraph); err != nil {
					t.Fatal(err)
				}
				z, _ := pr.Metric(compile.EvalGraph, "logits")
				var ce float64
				for i, y := range labels {
					ce -= math.Log(softmaxRow(f64(z[i*classes : (i+1)*classes]))[y])
				}
				ce /= float64(len(labels))
				if err := pr.Run("gblending.temp"); err != nil {
					t.Fatal(err)
				}
				loss, _ := pr.Metric("gblending.temp", "loss")
				if !near(float64(loss[0]), ce, 1e-5) {
					t.Errorf("head %s (keep %v): temporary loss %v, CE of the masked fused logits %v", h, keep, loss[0], ce)
				}
			}
			dir := t.TempDir()
			if err := p.Save(dir); err != nil {
				t.Fatal(err)
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*.onnx"))
			if err := onnxcheck.Files(files...); err != nil {
				t.Error(err)
			}
		})
	}
}

// gbSpy wraps the GBlending schedule and watches every pass its estimates
// make through a spyRun.
type gbSpy struct {
	methods.Schedule
	t         *testing.T
	keeps     map[string][]float32 // head → keep mask
	estimates []gbRecord
}

// gbRecord is what the spy saw during one epoch's BeginEpoch.
type gbRecord struct {
	epoch int
	// train and val are each head's summed losses per recorded epoch,
	// computed here from the passes' outputs.
	train, val map[string][]float64
	passes     int
	weights    []float64
	state      gbState
}

// gbState is the schedule state's JSON.
type gbState struct {
	Weights []float64 `json:"weights"`
	Last    []struct {
		Head       string  `json:"head"`
		TrainFirst float64 `json:"train_first"`
		TrainLast  float64 `json:"train_last"`
		ValFirst   float64 `json:"val_first"`
		ValLast    float64 `json:"val_last"`
		G          float64 `json:"g"`
		O          float64 `json:"o"`
		Weight     float64 `json:"weight"`
	} `json:"last"`
}

func (s *gbSpy) MarshalState() ([]byte, error) {
	return s.Schedule.(methods.StatefulSchedule).MarshalState()
}
func (s *gbSpy) UnmarshalState(b []byte) error {
	return s.Schedule.(methods.StatefulSchedule).UnmarshalState(b)
}

func (s *gbSpy) headOf(keep []float32) string {
	for h, k := range s.keeps {
		if slices.Equal(k, keep) {
			return h
		}
	}
	s.t.Fatalf("a pass with keep mask %v, which is no head's", keep)
	return ""
}

func (s *gbSpy) BeginEpoch(r methods.Run) error {
	t := s.t
	before := r.Snapshot()
	rec := gbRecord{epoch: r.Epoch(), train: map[string][]float64{}, val: map[string][]float64{}}
	spy := &spyRun{Run: r, spy: s, rec: &rec, snap: before}
	if err := s.Schedule.BeginEpoch(spy); err != nil {
		return err
	}
	for k, v := range r.Snapshot() {
		if !slices.Equal(v, before[k]) {
			t.Errorf("epoch %d: the estimate changed %s of the run", r.Epoch(), k)
		}
	}
	data, err := s.MarshalState()
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &rec.state); err != nil {
		return err
	}
	buf, _ := r.Input("gblending.weights")
	for _, v := range buf {
		rec.weights = append(rec.weights, float64(v))
	}
	s.estimates = append(s.estimates, rec)
	return nil
}

// spyRun records a schedule's passes and checks each temporary model's
// start and optimizer inputs.
type spyRun struct {
	methods.Run
	spy  *gbSpy
	rec  *gbRecord
	snap map[string][]float32
	// trainPasses counts each head's training passes so far.
	trainPasses map[string]int
}

func (r *spyRun) Pass(opt methods.PassOptions, fn func(methods.PassBatch) error) error {
	t := r.spy.t
	m := r.Manifest()
	head := r.spy.headOf(opt.Keep)
	r.rec.passes++
	if r.trainPasses == nil {
		r.trainPasses = map[string]int{}
	}
	classes := int(m.Model.Classes)
	switch {
	case slices.Equal(opt.Graphs, []string{"gblending.temp"}):
		ep := r.trainPasses[head]
		r.trainPasses[head]++
		n := m.Dataset.Spec.Sizes[datasets.Train]
		sorted := slices.Sorted(slices.Values(opt.Samples))
		if opt.Split != datasets.Train || !opt.DropLast || opt.LR != m.Train.Optimizer.LR || len(sorted) != n || sorted[0] != 0 || sorted[n-1] != n-1 || len(slices.Compact(sorted)) != n {
			t.Errorf("%s epoch %d: temporary training pass %+v: want a shuffle of the training split, last batch dropped, the base rate", head, ep, opt)
		}
		if ep == 0 {
			// A temporary model starts from the run's state with a fresh optimizer.
			for _, s := range m.State {
				v, _ := r.State(s.Key)
				want := r.snap[s.Key]
				if s.Kind == compile.StateSlot {
					want = make([]float32, len(v))
				}
				if !slices.Equal(v, want) {
					t.Errorf("%s: the temporary model starts with %s %v, want %v", head, s.Kind, s.Key, want[:min(3, len(want))])
				}
			}
		}
		steps := n / m.Train.BatchSize
		inner := opt.Before
		opt.Before = func(b methods.PassBatch) error {
			if err := inner(b); err != nil {
				return err
			}
			for name, want := range m.Train.Optimizer.Inputs(m.Train.Optimizer.LR, int64(ep*steps+b.Index+1)) {
				got, _ := r.Input(name)
				if got[0] != want {
					t.Errorf("%s epoch %d batch %d: optimizer input %s = %v, a fresh optimizer's step %d gives %v", head, ep, b.Index, name, got[0], ep*steps+b.Index+1, want)
				}
			}
			return nil
		}
		var sum float64
		inFn := fn
		fn = func(b methods.PassBatch) error {
			loss, err := b.Metric("gblending.temp", "loss")
			if err != nil {
				return err
			}
			sum += float64(loss[0])
			return inFn(b)
		}
		defer func() { r.rec.train[head] = append(r.rec.train[head], sum) }()
	case slices.Equal(opt.Graphs, []string{compile.EvalGraph}):
		if opt.Split != datasets.Val || opt.DropLast || opt.Samples != nil {
			t.Errorf("%s: validation pass %+v: want every sample of the validation split", head, opt)
		}
		var sum float64
		inFn := fn
		fn = func(b methods.PassBatch) error {
			z, err := b.Metric(compile.EvalGraph, "logits")
			if err != nil {
				return err
			}
			var ce float64
			for i, y := range b.Labels {
				zz := make([]float64, classes)
				for c := range zz {
					zz[c] = float64(z[i*classes+c])
				}
				ce -= math.Log(softmaxRow(zz)[y])
			}
			sum += ce / float64(b.N)
			return inFn(b)
		}
		defer func() { r.rec.val[head] = append(r.rec.val[head], sum) }()
	default:
		t.Errorf("a pass of %v", opt.Graphs)
	}
	return r.Run.Pass(opt, fn)
}

// The weights come from G and O of the losses the temporary models measured
// (spec §4.11), each temporary model trains from the run's state with a
// fresh AdamW (steps counted across its epochs) under its head's keep mask,
// and the run continues exactly as it was before the estimate.
func TestGBlendingEstimatesFollowTheSpec(t *testing.T) {
	for _, dataset := range []string{"synth-av", "synth-avt"} {
		t.Run(dataset, func(t *testing.T) {
			data := tinySynth(dataset)
			data["val"] = "20" // a padded last validation batch
			o := experiment.Overrides{Epochs: 3, BatchSize: 16, EvalBatchSize: 8, Optimizer: compile.AdamW, LR: 0.01}
			p, d := gblendingPlan(t, dataset, map[string]string{"super_epoch": "2"}, data, o)
			sched, err := experiment.Schedule(p)
			if err != nil {
				t.Fatal(err)
			}
			spy := &gbSpy{Schedule: sched, t: t, keeps: map[string][]float32{}}
			hs := heads(p)
			for _, h := range hs {
				keep := make([]float32, len(hs)-1)
				for i, m := range p.Manifest.ModalityNames() {
					if h == "output" || h == m {
						keep[i] = 1
					}
				}
				spy.keeps[h] = keep
			}
			res, err := runtime.Train(p, d, spy, runtime.TrainOptions{OutDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if len(spy.estimates) != 3 {
				t.Fatalf("%d epochs began, want 3", len(spy.estimates))
			}
			for _, rec := range spy.estimates {
				wantPasses := 0
				if rec.epoch%2 == 0 {
					wantPasses = len(hs) * (2 + 2) // 2 training epochs and 2 validation passes per head
				}
				if rec.passes != wantPasses {
					t.Errorf("epoch %d: %d passes, want %d", rec.epoch, rec.passes, wantPasses)
				}
				if wantPasses == 0 {
					if !slices.Equal(rec.weights, spy.estimates[rec.epoch-1].weights) {
						t.Errorf("epoch %d: the weights changed without an estimate", rec.epoch)
					}
					continue
				}
				// G, O and w from the measured losses.
				raw := make([]float64, len(hs))
				var total float64
				for k, h := range hs {
					tr, va := rec.train[h], rec.val[h]
					if len(tr) != 2 || len(va) != 2 {
						t.Fatalf("epoch %d, %s: %d training and %d validation sums", rec.epoch, h, len(tr), len(va))
					}
					g := va[1] - va[0]
					o := (va[1] - tr[1]) - (va[0] - tr[0])
					raw[k] = math.Abs(g / (o * o))
					total += raw[k]
					last := rec.state.Last[k]
					if last.Head != h || !near(last.TrainFirst, tr[0], 1e-12) || !near(last.TrainLast, tr[1], 1e-12) ||
						!near(last.ValFirst, va[0], 1e-9) || !near(last.ValLast, va[1], 1e-9) || !near(last.G, g, 1e-6) || !near(last.O, o, 1e-6) {
						t.Errorf("epoch %d, %s: the schedule recorded %+v; measured train %v, validation %v, G %v, O %v", rec.epoch, h, last, tr, va, g, o)
					}
				}
				for k, h := range hs {
					want := raw[k] / total
					if !near(rec.state.Weights[k], want, 1e-6) || !near(rec.weights[k], want, 1e-6) {
						t.Errorf("epoch %d: weight of %s %v (input %v), the spec gives %v", rec.epoch, h, rec.state.Weights[k], rec.weights[k], want)
					}
				}
			}
			rep := mustReport(t, p)
			steps, val := int64(48/16), int64(3) // ⌈20/8⌉
			n := int64(len(hs))
			want := 3*(steps*rep.PerGraph["train"]+val*rep.PerGraph["eval"]) +
				2*n*(2*steps*rep.PerGraph["gblending.temp"]+2*val*rep.PerGraph["eval"])
			if res.TrainingFLOPs != want || res.PlannedFLOPs != want {
				t.Errorf("training FLOPs %d (planned %d), the hand count is %d", res.TrainingFLOPs, res.PlannedFLOPs, want)
			}
		})
	}
}

// A run stopped at an epoch without an estimate and at one with an estimate
// resumes to the uninterrupted run's checkpoints and schedule state.
func TestGBlendingResumes(t *testing.T) {
	o := experiment.Overrides{Epochs: 5, BatchSize: 16, EvalBatchSize: 16}
	p, d := gblendingPlan(t, "synth-av", map[string]string{"super_epoch": "2"}, tinySynth("synth-av"), o)
	whole := t.TempDir()
	sched, _ := experiment.Schedule(p)
	if _, err := runtime.Train(p, d, sched, runtime.TrainOptions{OutDir: whole}); err != nil {
		t.Fatal(err)
	}
	for _, stop := range []int{1, 2} {
		dir := t.TempDir()
		first, _ := experiment.Schedule(p)
		if _, err := runtime.Train(p, d, stopAt{first, stop}, runtime.TrainOptions{OutDir: dir}); err == nil || !strings.Contains(err.Error(), "stopped") {
			t.Fatalf("the run stopped at epoch %d: %v", stop, err)
		}
		again, _ := experiment.Schedule(p)
		if _, err := runtime.Train(p, d, again, runtime.TrainOptions{OutDir: dir, Resume: true}); err != nil {
			t.Fatal(err)
		}
		sameCheckpoints(t, whole, dir)
		a, _ := safetensors.ReadFile(filepath.Join(whole, runtime.LastCheckpoint))
		b, _ := safetensors.ReadFile(filepath.Join(dir, runtime.LastCheckpoint))
		if st := a.Metadata["bmc.schedule_state"]; st == "" || st != b.Metadata["bmc.schedule_state"] {
			t.Errorf("stopped at %d: schedule state %q uninterrupted, %q resumed", stop, st, b.Metadata["bmc.schedule_state"])
		}
	}
}

// The plan declares every temporary training step and validation pass of
// the run (spec §4.19: (n+1)·super_epoch epochs of training and 2
// validation passes per head at each estimate).
func TestGBlendingFLOPsCountEveryEstimate(t *testing.T) {
	tests := []struct {
		dataset, method, protocol string
		epochs, super             int
		estimates                 int64
	}{
		{"synth-av", "online", "bmc", 30, 10, 3},
		{"synth-avt", "online", "bmc", 30, 10, 3},
		{"synth-av", "online", "balancemm", 25, 10, 3},
		{"synth-av", "offline", "bmc", 30, 10, 1},
		{"synth-avt", "online", "bmc", 7, 7, 1},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s-%s-%s-%d", tc.dataset, tc.method, tc.protocol, tc.epochs), func(t *testing.T) {
			data := tinySynth(tc.dataset)
			data["test"] = "40"
			p, _ := gblendingPlan(t, tc.dataset, map[string]string{"method": tc.method, "super_epoch": fmt.Sprint(tc.super)}, data,
				experiment.Overrides{Epochs: tc.epochs, BatchSize: 16, EvalBatchSize: 16, Protocol: tc.protocol})
			rep := mustReport(t, p)
			n := int64(len(heads(p)))
			super := int64(tc.super)
			if tc.method == "offline" {
				super = int64(tc.epochs)
			}
			steps := int64(48 / 16)
			val := int64(1) // ⌈16/16⌉
			if tc.protocol == "balancemm" {
				val = 3 // ⌈40/16⌉: the reference validates on test
			}
			tempEpochs := tc.estimates * n * super
			if tc.dataset == "synth-av" && tc.method == "online" && tc.epochs == 30 && tempEpochs != 90 {
				t.Errorf("%d temporary epochs; the spec counts 90 for n = 2 over 30 epochs", tempEpochs)
			}
			var extraTemp, extraEval int64
			for _, e := range rep.Extras {
				switch e.Graph {
				case "gblending.temp":
					extraTemp += e.Runs
				case "eval":
					extraEval += e.Runs
				}
			}
			if extraTemp != tempEpochs*steps || extraEval != tc.estimates*n*2*val {
				t.Errorf("declared %d temporary steps and %d validation batches, want %d and %d", extraTemp, extraEval, tempEpochs*steps, tc.estimates*n*2*val)
			}
			want := int64(tc.epochs)*(steps*rep.PerGraph["train"]+val*rep.PerGraph["eval"]) +
				tempEpochs*steps*rep.PerGraph["gblending.temp"] + tc.estimates*n*2*val*rep.PerGraph["eval"]
			if rep.Training.Total != want {
				t.Errorf("whole-run FLOPs %d, the hand count is %d", rep.Training.Total, want)
			}
		})
	}
}

func TestGBlendingSettingsErrors(t *testing.T) {
	for _, tc := range []struct {
		hp     map[string]string
		epochs int
		want   string
	}{
		{map[string]string{"super_epoch": "1"}, 4, "super_epoch"},
		{map[string]string{"method": "offline"}, 1, "at least 2"},
	} {
		_, _, err := experiment.Compile(experiment.Request{Method: "gblending", Hyper: tc.hp, Dataset: "synth-av", DataParams: tinySynth("synth-av"),
			Train: experiment.Overrides{Epochs: tc.epochs, BatchSize: 16}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v with %d epochs: %v, want an error about %q", tc.hp, tc.epochs, err, tc.want)
		}
	}
}
