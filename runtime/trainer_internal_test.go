package runtime

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bmc/experiment"
)

func TestTrimLogKeepsTheCheckpointedEpochs(t *testing.T) {
	path := filepath.Join(t.TempDir(), LogFile)
	content := `{"epoch":0}` + "\n" + `{"epoch":1}` + "\n" + `{"epoch":2}` + "\n" + `{"epo`
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := trimLog(path, 1); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := `{"epoch":0}` + "\n" + `{"epoch":1}` + "\n"; string(got) != want {
		t.Errorf("trimmed log = %q, want %q", got, want)
	}
	if err := trimLog(filepath.Join(t.TempDir(), "absent"), 3); err != nil {
		t.Errorf("a missing log: %v", err)
	}
}

func TestResumeNeedsAResumableRun(t *testing.T) {
	dir := t.TempDir()
	if err := checkResumable(dir); err == nil || !strings.Contains(err.Error(), LastCheckpoint) {
		t.Errorf("no checkpoint: %v", err)
	}
	os.WriteFile(filepath.Join(dir, ResultsFile), []byte("{}"), 0o644)
	if err := checkResumable(dir); err == nil || !strings.Contains(err.Error(), "finished") {
		t.Errorf("a finished run: %v", err)
	}
}

func TestNonFiniteStateStopsTheRun(t *testing.T) {
	p, _, err := experiment.Compile(experiment.Request{Method: "baseline", Dataset: "synth-av"})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := Load(p, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	tr := &trainer{pr: pr}
	if err := tr.checkFinite("epoch 4 step 2"); err != nil {
		t.Fatalf("initial state: %v", err)
	}
	w, _ := pr.State("fusion_module.fc_out.weight")
	w[3] = float32(math.Inf(1))
	err = tr.checkFinite("epoch 4 step 2")
	if err == nil || !strings.Contains(err.Error(), "epoch 4 step 2") || !strings.Contains(err.Error(), "fusion_module.fc_out.weight") || !strings.Contains(err.Error(), "element 3") {
		t.Errorf("an Inf parameter: %v", err)
	}
}

func TestProgressOnATerminalShowsRateAndETA(t *testing.T) {
	var buf strings.Builder
	p := &progress{w: &buf, live: true, start: time.Now().Add(-time.Second), stepsTotal: 100}
	p.step(0, 3, 9, 31, 0.25)
	p.epoch(0, 3, "done")
	out := buf.String()
	for _, want := range []string{"\r", "epoch 1/3", "step 10/31", "steps/s", "ETA", "loss 0.2500", "epoch 1/3  done\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress output %q lacks %q", out, want)
		}
	}
}

// Elsewhere than on a terminal (nohup, Slurm logs), a plain status line
// with steps/s and ETA comes every plainEvery, numbered as the epoch lines.
func TestProgressElsewherePrintsPlainStatusLines(t *testing.T) {
	var buf strings.Builder
	plain := newProgress(&buf, 100)
	if plain.live || plain.every != plainEvery {
		t.Fatalf("a strings.Builder is taken for a terminal: %+v", plain)
	}
	plain.step(0, 3, 9, 31, 0.25)
	plain.epoch(0, 3, "done")
	if buf.String() != "epoch 1/3  done\n" {
		t.Errorf("within %v: %q, want only the epoch line", plainEvery, buf.String())
	}
	buf.Reset()
	plain.last = time.Now().Add(-plainEvery) // the next line is due
	plain.step(1, 3, 4, 31, 0.5)
	out := buf.String()
	if !strings.HasPrefix(out, "epoch 2/3  step 5/31  ") || !strings.Contains(out, "steps/s  ETA ") || !strings.HasSuffix(out, "loss 0.5000\n") || strings.Contains(out, "\r") {
		t.Errorf("a due status line: %q", out)
	}
}

func TestDiskSpaceIsCheckedBeforeTraining(t *testing.T) {
	p, _, err := experiment.Compile(experiment.Request{Method: "baseline", Dataset: "synth-av"})
	if err != nil {
		t.Fatal(err)
	}
	need := runBytes(&p.Manifest)
	var state int64
	for _, s := range p.Manifest.State {
		state += 4 * s.Shape.Size()
	}
	if need < 3*state {
		t.Errorf("estimate %d bytes is below three copies of the state (%d)", need, 3*state)
	}
	full := func(string) (int64, error) { return need - 1, nil }
	if err := checkDiskSpace("/runs/x", need, full); err == nil || !strings.Contains(err.Error(), "/runs/x") || !strings.Contains(err.Error(), "MiB") {
		t.Errorf("a full disk: %v", err)
	}
	if err := checkDiskSpace("/runs/x", need, func(string) (int64, error) { return need, nil }); err != nil {
		t.Errorf("enough space: %v", err)
	}
	if have, err := freeBytes(t.TempDir()); err != nil || have <= 0 {
		t.Errorf("free space of a temp folder: %d, %v", have, err)
	}
}

func TestUnwritableRunDirectoryFailsBeforeTraining(t *testing.T) {
	if os.Getuid() == 0 {
		// root writes anywhere; a file in the way of the folder fails for everyone.
		blocker := filepath.Join(t.TempDir(), "file")
		os.WriteFile(blocker, nil, 0o644)
		if err := prepareRunDir(filepath.Join(blocker, "run")); err == nil || !strings.Contains(err.Error(), "run directory") {
			t.Errorf("a run directory under a file: %v", err)
		}
		return
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if err := prepareRunDir(dir); err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Errorf("a read-only run directory: %v", err)
	}
}

// BenchmarkTrainerOverhead is the trainer's per-step cost outside ONNX
// Runtime (batch assembly, optimizer and method inputs, metrics), reported
// as a share of the whole step loop: on the synthetic MLP (the worst case,
// 100–200 µs steps) and at the backbone bench size (two ResNet18s, batch
// 8, visual 3×112×112, audio 1×256×64, 2 threads).
func BenchmarkTrainerOverhead(b *testing.B) {
	resnet := experiment.Request{Method: "baseline", Dataset: "synth-av", Encoder: "resnet18",
		DataParams: map[string]string{"shape.visual": "3x1x112x112", "shape.audio": "1x256x64", "train": "64", "val": "8", "test": "8", "classes": "6"},
		Train:      experiment.Overrides{Threads: 2, BatchSize: 8, EvalBatchSize: 8}}
	for _, bc := range []struct {
		name string
		req  experiment.Request
	}{
		{"baseline", experiment.Request{Method: "baseline", Dataset: "synth-av", Train: experiment.Overrides{Threads: 1}}},
		{"agm", experiment.Request{Method: "agm", Dataset: "synth-av", Train: experiment.Overrides{Threads: 1}}},
		{"resnet18-av", resnet},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, d, err := experiment.Compile(bc.req)
			if err != nil {
				b.Fatal(err)
			}
			sched, err := experiment.Schedule(p)
			if err != nil {
				b.Fatal(err)
			}
			tr, err := newTrainer(p, d, sched, TrainOptions{OutDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.close()
			steps := tr.run.stepsPerEpoch
			var loop, ort time.Duration
			// ONNX Runtime plans and allocates during the first runs of a
			// session: one untimed epoch keeps that out of both measures.
			if _, _, err := tr.trainSteps(0, 0.01); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				if _, _, err := tr.trainSteps(i%30, 0.01); err != nil {
					b.Fatal(err)
				}
				loop += time.Since(start)
				start = time.Now()
				for range steps {
					if err := tr.pr.Run("train"); err != nil {
						b.Fatal(err)
					}
				}
				ort += time.Since(start)
			}
			b.ReportMetric(float64(loop.Nanoseconds())/float64(b.N*steps), "ns/step")
			b.ReportMetric(100*float64(loop-ort)/float64(loop), "%overhead")
		})
	}
}
