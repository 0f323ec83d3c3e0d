package runtime_test

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/datasets"
	"bmc/experiment"
	"bmc/flops"
	"bmc/internal/onnxcheck"
	"bmc/methods"
	"bmc/runtime"
)

// These tests check UMT's step against spec §4.7 evaluated in Go: the
// teachers' features, the MSE terms, the loss and the update, with teachers
// that are real Unimodal runs; that teachers stay frozen and out of the
// checkpoints; and that the teachers' trainings count in the run's FLOPs.

// tinySynth is a small setting of the synthetic datasets: 48 training
// samples (3 batches of 16), 3 classes.
func tinySynth(dataset string) map[string]string {
	d := map[string]string{"train": "48", "val": "16", "test": "16", "classes": "3"}
	if dataset == "synth-avt" {
		d["dim.text"] = "7"
	}
	return d
}

// trainTeachers trains a one-epoch Unimodal run per modality of req's
// dataset (with req's data and encoders) and returns their directories.
func trainTeachers(t *testing.T, req experiment.Request) map[string]string {
	t.Helper()
	d, err := req.Open()
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]string{}
	for _, m := range d.Spec().Modalities {
		tr := req
		tr.Method, tr.Hyper, tr.Teachers = "unimodal", map[string]string{"modality": m.Name}, nil
		tr.Train.Epochs = 1
		p, data, err := experiment.Compile(tr)
		if err != nil {
			t.Fatalf("teacher %s: %v", m.Name, err)
		}
		dir := filepath.Join(t.TempDir(), m.Name)
		train(t, p, data, dir)
		runs[m.Name] = dir
	}
	return runs
}

// mlpForward is an MLP encoder in Go: Linear+ReLU layers ("prefix.0.",
// "prefix.2.", …), returning every layer's pre-activation and the output.
func mlpForward(x []float64, rows int, layers [][2][]float32) (pre [][]float64, out []float64) {
	h := x
	in := len(x) / rows
	for _, l := range layers {
		w, b := l[0], l[1]
		outW := len(b)
		p := make([]float64, rows*outW)
		next := make([]float64, rows*outW)
		for r := range rows {
			for o := range outW {
				s := float64(b[o])
				for i := range in {
					s += h[r*in+i] * float64(w[o*in+i])
				}
				p[r*outW+o] = s
				next[r*outW+o] = math.Max(s, 0)
			}
		}
		pre = append(pre, p)
		h, in = next, outW
	}
	return pre, h
}

// mlpLayers reads an MLP's weights by the encoder's state_dict names.
func mlpLayers(t *testing.T, get func(string) []float32, prefix string, depth int) [][2][]float32 {
	t.Helper()
	var out [][2][]float32
	for i := range depth {
		w, b := get(fmt.Sprintf("%s%d.weight", prefix, 2*i)), get(fmt.Sprintf("%s%d.bias", prefix, 2*i))
		if w == nil || b == nil {
			t.Fatalf("no layer %s%d", prefix, 2*i)
		}
		out = append(out, [2][]float32{w, b})
	}
	return out
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// mlpGrads backpropagates dOut (∂L/∂output) through the MLP: the
// gradient of every layer's weight and bias, by layer.
func mlpGrads(x []float64, rows int, layers [][2][]float32, pre [][]float64, dOut []float64) [][2][]float64 {
	grads := make([][2][]float64, len(layers))
	d := dOut
	for li := len(layers) - 1; li >= 0; li-- {
		w, b := layers[li][0], layers[li][1]
		outW := len(b)
		in := len(w) / outW
		input := x
		if li > 0 {
			input = make([]float64, len(pre[li-1]))
			for i, v := range pre[li-1] {
				input[i] = math.Max(v, 0)
			}
		}
		dPre := make([]float64, len(d))
		for i := range d {
			if pre[li][i] > 0 {
				dPre[i] = d[i]
			}
		}
		gw, gb := make([]float64, len(w)), make([]float64, outW)
		dIn := make([]float64, rows*in)
		for r := range rows {
			for o := range outW {
				g := dPre[r*outW+o]
				gb[o] += g
				for i := range in {
					gw[o*in+i] += g * input[r*in+i]
					dIn[r*in+i] += g * float64(w[o*in+i])
				}
			}
		}
		grads[li] = [2][]float64{gw, gb}
		d = dIn
	}
	return grads
}

func TestUMTStepMatchesSpec(t *testing.T) {
	for _, dataset := range []string{"synth-av", "synth-avt"} {
		t.Run(dataset, func(t *testing.T) {
			const scaling, lr = 2.5, 0.1
			req := experiment.Request{Method: "umt", Dataset: dataset, DataParams: tinySynth(dataset), Encoder: "mlp:6,3",
				Hyper: map[string]string{"scaling": fmt.Sprint(scaling)}, Train: plainSGD()}
			req.Train.LR = lr
			req.Teachers = trainTeachers(t, req)
			p, d, err := experiment.CompileWith(req, runtime.ReadFinishedRun)
			if err != nil {
				t.Fatal(err)
			}
			pr, init, labels := stepProgram(t, p, d)
			mods := p.Manifest.ModalityNames()
			b, _ := pr.BatchOf("train")
			run := func(active float32) map[string][]float64 {
				if err := pr.SetState(init); err != nil {
					t.Fatal(err)
				}
				setInput(t, pr, "umt.active", active)
				if err := pr.Run("train"); err != nil {
					t.Fatal(err)
				}
				return delta(init, snapshot(t, pr))
			}
			plain := run(0)
			if got := metric(t, pr, "loss")[0]; !near(got, metric(t, pr, "umt.ce")[0], 1e-6) {
				t.Errorf("outside the window the loss is %v, want CE %v", got, metric(t, pr, "umt.ce")[0])
			}
			distilled := run(1)

			// CE(z, y) from the fused logits.
			classes := int(p.Manifest.Model.Classes)
			z := metric(t, pr, "logits")
			var ce float64
			for i, y := range labels {
				ce -= math.Log(softmaxRow(z[i*classes : (i+1)*classes])[y])
			}
			ce /= float64(len(labels))
			want := ce
			for _, m := range mods {
				teacher, err := runtime.ReadCheckpoint(filepath.Join(req.Teachers[m], runtime.BestCheckpoint))
				if err != nil {
					t.Fatal(err)
				}
				prefix := "modality_encoder." + m + "."
				x := f64(b.Data[m].F32)
				tl := mlpLayers(t, func(k string) []float32 { return teacher[k] }, prefix, 2)
				sl := mlpLayers(t, func(k string) []float32 { return init[k] }, prefix, 2)
				_, phiT := mlpForward(x, batch, tl)
				pre, phiS := mlpForward(x, batch, sl)
				var mse float64
				dOut := make([]float64, len(phiS))
				for i := range phiS {
					mse += (phiT[i] - phiS[i]) * (phiT[i] - phiS[i])
					dOut[i] = scaling * 2 * (phiS[i] - phiT[i]) / float64(len(phiS))
				}
				mse /= float64(len(phiS))
				if mse < 1e-6 {
					t.Fatalf("%s: the student already equals its teacher (MSE %g); the test checks nothing", m, mse)
				}
				if got := metric(t, pr, "umt.mse/"+m)[0]; !near(got, mse, 1e-5) {
					t.Errorf("umt.mse/%s = %v, the spec gives %v", m, got, mse)
				}
				want += scaling * mse
				// The distillation term adds −lr·scaling·∇MSE to the
				// encoder's update and nothing to the rest.
				grads := mlpGrads(x, batch, sl, pre, dOut)
				for li, g := range grads {
					for j, name := range []string{"weight", "bias"} {
						key := fmt.Sprintf("%s%d.%s", prefix, 2*li, name)
						for i, gi := range g[j] {
							if extra := distilled[key][i] - plain[key][i]; !near(extra, -lr*gi, 1e-4) {
								t.Fatalf("%s[%d]: the distillation term changed the update by %.6g, the spec gives %.6g", key, i, extra, -lr*gi)
							}
						}
					}
				}
			}
			if got := metric(t, pr, "loss")[0]; !near(got, want, 1e-5) {
				t.Errorf("loss %v, the spec gives CE + scaling·Σ MSE = %v", got, want)
			}
			for _, key := range []string{"fusion_module.fc_out.weight", "fusion_module.fc_out.bias"} {
				for i := range plain[key] {
					if !near(distilled[key][i], plain[key][i], 1e-6) {
						t.Fatalf("%s[%d]: the distillation term changed the head's update (%v vs %v)", key, i, distilled[key][i], plain[key][i])
					}
				}
			}
			// The teachers are frozen: the step leaves them as the plan has them.
			for _, s := range p.Manifest.State {
				if s.Kind != compile.StateFrozen {
					continue
				}
				v, _ := pr.State(s.Key)
				if !slices.Equal(v, p.Init[s.Key]) {
					t.Errorf("frozen state %s changed in a step", s.Key)
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

// For every encoder kind the teacher is that encoder with the teacher's
// weights: a student given the teacher's weights matches it exactly when
// both run in training mode (compat=true), and batch-norm encoders differ
// when the teacher runs in evaluation mode (the default). Dropout is off so
// that training mode is deterministic.
func TestUMTTeacherIsTheEncoderForEveryKind(t *testing.T) {
	data := map[string]string{"train": "16", "val": "8", "test": "8", "classes": "3",
		"shape.audio": "6x8", "shape.visual": "3x32x32", "vocab.text": "40", "shape.text": "8"}
	encoders := map[string]string{
		"audio":  "transformer:d_model=16,heads=2,ff=24,layers=1,dropout=0",
		"visual": "vit_b_16:width=16,layers=1,heads=2,mlp=24",
		"text":   "bert:vocab=40,hidden=16,layers=1,heads=2,ff=24,max_len=16,out=12,dropout=0,proj_dropout=0",
	}
	cases := []struct {
		name, dataset string
		data          map[string]string
		encoders      map[string]string
	}{
		{"transformer-vit-bert", "synth-avt", data, encoders},
		{"resnet18", "synth-av", map[string]string{"train": "16", "val": "8", "test": "8", "classes": "3",
			"shape.audio": "1x16x16"}, map[string]string{"audio": "resnet18", "visual": "mlp:6,3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := experiment.Request{Method: "umt", Dataset: tc.dataset, DataParams: tc.data, Encoders: tc.encoders,
				Train: experiment.Overrides{Epochs: 1, BatchSize: 8, EvalBatchSize: 8, Threads: 1}}
			runs := trainTeachers(t, base)
			for _, compat := range []string{"true", "false"} {
				req := base
				req.Teachers, req.Hyper = runs, map[string]string{"compat": compat}
				p, d, err := experiment.CompileWith(req, runtime.ReadFinishedRun)
				if err != nil {
					t.Fatal(err)
				}
				pr, err := runtime.Load(p, runtime.Options{Threads: 1})
				if err != nil {
					t.Fatal(err)
				}
				defer pr.Close()
				train, _ := d.Split(datasets.Train)
				b, _ := pr.BatchOf("train")
				fillRows(t, train, d.Spec(), b, []int{0, 1, 2, 3, 4, 5, 6, 7})
				// The students become their teachers.
				teacher := map[string][]float32{}
				for _, s := range p.Manifest.State {
					if mod, name, ok := compile.TeacherTensor(s.Key); ok {
						teacher[name] = p.Init[s.Key]
						if m := s.Modality; m != mod {
							t.Errorf("teacher state %s is tagged %q", s.Key, m)
						}
					}
				}
				if err := pr.SetState(teacher); err != nil {
					t.Fatal(err)
				}
				if err := pr.Run("train"); err != nil {
					t.Fatal(err)
				}
				for _, m := range p.Manifest.ModalityNames() {
					mse := metric(t, pr, "umt.mse/"+m)[0]
					usesBN := strings.HasPrefix(tc.encoders[m], "resnet18")
					switch {
					case compat == "true" && mse > 1e-10:
						t.Errorf("compat=true, %s (%s): a student with its teacher's weights has MSE %g, want 0", m, tc.encoders[m], mse)
					case compat == "false" && usesBN && mse < 1e-6:
						t.Errorf("compat=false, %s (%s): MSE %g; a teacher in evaluation mode uses its running statistics, unlike the student", m, tc.encoders[m], mse)
					case compat == "false" && !usesBN && mse > 1e-10:
						t.Errorf("compat=false, %s (%s): MSE %g, want 0 (no batch norm, no dropout)", m, tc.encoders[m], mse)
					}
				}
			}
		})
	}
}

// A UMT run resumed after a stop reaches the uninterrupted run's
// checkpoints, which hold no teacher tensor: a resumed run reads the
// teachers from its plan. Its training FLOPs include the teachers'
// trainings, as their plans count them (spec §4.19).
func TestUMTResumesWithTeachersFromThePlan(t *testing.T) {
	req := experiment.Request{Method: "umt", Dataset: "synth-av", DataParams: tinySynth("synth-av"), Encoder: "mlp:6,3",
		Train: experiment.Overrides{Epochs: 3, BatchSize: 16, EvalBatchSize: 16, Threads: 1}}
	req.Teachers = trainTeachers(t, req)
	p, d, err := experiment.CompileWith(req, runtime.ReadFinishedRun)
	if err != nil {
		t.Fatal(err)
	}
	sched, err := experiment.Schedule(p)
	if err != nil {
		t.Fatal(err)
	}
	whole, stopped := t.TempDir(), t.TempDir()
	res, err := runtime.Train(p, d, sched, runtime.TrainOptions{OutDir: whole})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runtime.Train(p, d, stopAt{sched, 2}, runtime.TrainOptions{OutDir: stopped}); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("the stopped run: %v", err)
	}
	// The resumed process starts from the run directory's plan alone.
	saved, err := compile.Load(filepath.Join(stopped, runtime.PlanDir))
	if err != nil {
		t.Fatal(err)
	}
	sched2, _ := experiment.Schedule(saved)
	resumed, err := runtime.Train(saved, d, sched2, runtime.TrainOptions{OutDir: stopped, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	sameCheckpoints(t, whole, stopped)
	last, err := runtime.ReadCheckpoint(filepath.Join(whole, runtime.LastCheckpoint))
	if err != nil {
		t.Fatal(err)
	}
	var frozen int
	for _, s := range p.Manifest.State {
		if s.Kind == compile.StateFrozen {
			frozen++
			if _, ok := last[s.Key]; ok {
				t.Errorf("the checkpoint holds frozen state %s", s.Key)
			}
		} else if _, ok := last[s.Key]; !ok {
			t.Errorf("the checkpoint lacks %s", s.Key)
		}
	}
	if frozen == 0 {
		t.Fatal("the plan has no frozen teacher state")
	}

	// FLOPs: the UMT run's own graph runs plus each teacher's training.
	rep := mustReport(t, p)
	steps, val := int64(48/16), int64(1)
	want := 3 * (steps*rep.PerGraph["train"] + val*rep.PerGraph["eval"])
	for _, m := range []string{"audio", "visual"} {
		tp, _, err := runtime.ReadFinishedRun(req.Teachers[m])
		if err != nil {
			t.Fatal(err)
		}
		tr := mustReport(t, tp)
		want += 1 * (steps*tr.PerGraph["train"] + val*tr.PerGraph["eval"])
	}
	for _, r := range []*runtime.Result{res, resumed} {
		if r.TrainingFLOPs != want || r.PlannedFLOPs != want {
			t.Errorf("training FLOPs %d (planned %d), the hand count is %d", r.TrainingFLOPs, r.PlannedFLOPs, want)
		}
	}
	if len(rep.Teachers) != 2 || rep.Prior.Total != want-3*(steps*rep.PerGraph["train"]+val*rep.PerGraph["eval"]) {
		t.Errorf("teachers in the report: %+v, prior %d", rep.Teachers, rep.Prior.Total)
	}
	if _, err := flops.PlanReport(saved); err != nil {
		t.Fatal(err)
	}
}

// stopAt wraps a method's schedule and fails at the start of an epoch (a
// run stopped there); it keeps the schedule's Go-side state.
type stopAt struct {
	methods.Schedule
	epoch int
}

func (s stopAt) BeginEpoch(r methods.Run) error {
	if r.Epoch() == s.epoch {
		return errors.New("stopped on purpose")
	}
	return s.Schedule.BeginEpoch(r)
}

func (s stopAt) MarshalState() ([]byte, error) {
	if st, ok := s.Schedule.(methods.StatefulSchedule); ok {
		return st.MarshalState()
	}
	return nil, nil
}

func (s stopAt) UnmarshalState(data []byte) error {
	if st, ok := s.Schedule.(methods.StatefulSchedule); ok {
		return st.UnmarshalState(data)
	}
	return nil
}
