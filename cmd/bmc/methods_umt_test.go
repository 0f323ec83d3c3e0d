package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/distill"
	"bmc/flops"
	"bmc/runtime"
)

// synthAV is a small synth-av setting for the UMT tests.
var synthAV = []string{"--dataset", "synth-av", "--data", "train=64,val=16,test=16"}

// trainUnimodal trains a finished Unimodal run of one modality from the CLI.
func trainUnimodal(t *testing.T, modality string, args ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), modality)
	full := append([]string{"train", "--method", "unimodal", "--hp", "modality=" + modality, "--threads", "1", "--quiet", "--out", dir}, args...)
	if out, err := bmc(t, full...); err != nil {
		t.Fatalf("bmc %s: %v\n%s", strings.Join(full, " "), err, out)
	}
	return dir
}

func readResult(t *testing.T, dir string) runtime.Result {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, runtime.ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	var r runtime.Result
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// checkTeacherFLOPs checks that a UMT run's training FLOPs are its own
// graph runs plus each teacher run's training FLOPs, and that its plan
// records the teachers.
func checkTeacherFLOPs(t *testing.T, run methodRun, teachers map[string]string) {
	t.Helper()
	p, err := compile.Load(filepath.Join(run.Dir, runtime.PlanDir))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := flops.PlanReport(p)
	if err != nil {
		t.Fatal(err)
	}
	want := rep.Training.Total - rep.Prior.Total
	for m, dir := range teachers {
		want += readResult(t, dir).TrainingFLOPs
		abs, _ := filepath.Abs(dir)
		found := false
		for _, tc := range p.Manifest.Teachers {
			found = found || (tc.Modality == m && tc.Run == abs)
		}
		if !found {
			t.Errorf("plan.json's teachers %+v lack %s from %s", p.Manifest.Teachers, m, abs)
		}
	}
	if len(p.Manifest.Teachers) != len(teachers) || run.Result.TrainingFLOPs != want {
		t.Errorf("training FLOPs %d, want the UMT run's own plus its %d teachers' trainings = %d", run.Result.TrainingFLOPs, len(teachers), want)
	}
	out, err := bmc(t, "flops", filepath.Join(run.Dir, runtime.PlanDir))
	if err != nil {
		t.Fatal(err)
	}
	for m := range teachers {
		if !strings.Contains(out, "teacher "+m+": its training") {
			t.Errorf("bmc flops does not list the training of teacher %s:\n%s", m, out)
		}
	}
}

// UMT trains from the CLI with teachers given (and its config.yaml repeats
// the run), and without them, training them first in the run directory:
// 2 and 3 modalities and the CREMA-D fixture with a ResNet18 encoder.
func TestUMTTrainsFromTheCLI(t *testing.T) {
	t.Run("teachers-given-av", func(t *testing.T) {
		teachers := map[string]string{}
		for _, m := range []string{"audio", "visual"} {
			teachers[m] = trainUnimodal(t, m, append(synthAV, "--epochs", "2")...)
		}
		args := append([]string{"--method", "umt", "--teacher", "audio=" + teachers["audio"], "--teacher", "visual=" + teachers["visual"], "--epochs", "2"}, synthAV...)
		run := checkMethodRun(t, false, args...)
		checkTeacherFLOPs(t, run, teachers)
		again := filepath.Join(t.TempDir(), "again")
		if out, err := bmc(t, "train", "--config", filepath.Join(run.Dir, ConfigFile), "--threads", "1", "--quiet", "--out", again); err != nil {
			t.Fatalf("train --config: %v\n%s", err, out)
		}
		sameRun(t, run.Dir, again)
	})
	staged := []struct {
		name string
		mods []string
		args []string
	}{
		{"staged-avt", []string{"audio", "visual", "text"}, []string{"--dataset", "synth-avt", "--data", "train=64,val=16,test=16", "--epochs", "2"}},
		{"staged-cremad-resnet18", []string{"audio", "visual"}, []string{"--dataset", "cremad",
			"--data-root", filepath.Join("..", "..", "datasets", "testdata", "cremad"), "--data", "size=16,val_fraction=0.34",
			"--encoder", "audio=resnet18", "--encoder", "visual=mlp:8,4", "--epochs", "2", "--batch-size", "6", "--eval-batch-size", "3"}},
	}
	for _, tc := range staged {
		t.Run(tc.name, func(t *testing.T) {
			run := checkMethodRun(t, false, append([]string{"--method", "umt"}, tc.args...)...)
			teachers := map[string]string{}
			for _, m := range tc.mods {
				dir := distill.TeacherDir(run.Dir, m)
				teachers[m] = dir
				if r := readResult(t, dir); r.Method != "unimodal" || r.Hyper["modality"] != m || r.Epochs != 2 {
					t.Errorf("teacher %s: results %s %v, %d epochs", m, r.Method, r.Hyper, r.Epochs)
				}
			}
			checkTeacherFLOPs(t, run, teachers)
			if out, err := bmc(t, "train", "--resume", run.Dir); err == nil || !strings.Contains(err.Error(), "finished") {
				t.Errorf("resuming a finished staged run: %v\n%s", err, out)
			}
		})
	}
}

// A missing, unfinished or mismatched teacher is an error that names the
// run and says what was expected.
func TestUMTTeacherErrors(t *testing.T) {
	epochs := []string{"--epochs", "1"}
	audio := trainUnimodal(t, "audio", append(synthAV, epochs...)...)
	visual := trainUnimodal(t, "visual", append(synthAV, epochs...)...)
	other := trainUnimodal(t, "visual", "--dataset", "synth-av", "--data", "train=64,val=16,test=16,signal.visual=0.5", "--epochs", "1")
	narrow := trainUnimodal(t, "visual", append(synthAV, "--encoder", "mlp:8,4", "--epochs", "1")...)
	baseline := filepath.Join(t.TempDir(), "baseline")
	if _, err := bmc(t, append([]string{"train", "--method", "baseline", "--threads", "1", "--quiet", "--epochs", "1", "--out", baseline}, synthAV...)...); err != nil {
		t.Fatal(err)
	}
	unfinished := filepath.Join(t.TempDir(), "unfinished")
	if err := os.CopyFS(unfinished, os.DirFS(visual)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(unfinished, runtime.ResultsFile)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		teachers []string
		method   string
		want     []string
	}{
		{[]string{"audio=" + audio, "visual=" + baseline}, "umt", []string{baseline, "trained method baseline", "unimodal"}},
		{[]string{"audio=" + visual, "visual=" + visual}, "umt", []string{visual, "modality visual, want audio"}},
		{[]string{"audio=" + audio, "visual=" + unfinished}, "umt", []string{unfinished, "not finished", "--resume"}},
		{[]string{"audio=" + audio, "visual=" + filepath.Join(t.TempDir(), "absent")}, "umt", []string{"absent", "no such file"}},
		{[]string{"audio=" + audio, "visual=" + other}, "umt", []string{other, "signal.visual", "this run uses"}},
		{[]string{"audio=" + audio, "visual=" + narrow}, "umt", []string{narrow, "encoder is mlp:8,4", "this run's is mlp:64,32"}},
		{[]string{"audio=" + audio}, "umt", []string{"visual", "--teacher visual=RUN_DIR"}},
		{[]string{"audio=" + audio, "visual=" + visual, "text=" + visual}, "umt", []string{"text", "reads teachers of audio, visual"}},
		{[]string{"audio=" + audio, "audio=" + visual}, "umt", []string{"--teacher audio is given twice"}},
		{[]string{"audio=" + audio}, "baseline", []string{"baseline reads no teachers"}},
	}
	for _, tc := range tests {
		var args []string
		for _, tt := range tc.teachers {
			args = append(args, "--teacher", tt)
		}
		for _, cmd := range []string{"compile", "train"} {
			dest := []string{"-o", filepath.Join(t.TempDir(), "plan")}
			if cmd == "train" {
				dest = []string{"--quiet", "--out", filepath.Join(t.TempDir(), "run")}
			}
			full := append(append(append([]string{cmd, "--method", tc.method}, synthAV...), args...), dest...)
			_, err := bmc(t, full...)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("bmc %s: error %v, want one containing %q", strings.Join(full, " "), err, w)
					break
				}
			}
		}
	}
	// compile cannot train teachers: it says how to give them or have
	// bmc train make them.
	_, err := bmc(t, append([]string{"compile", "--method", "umt", "-o", filepath.Join(t.TempDir(), "plan")}, synthAV...)...)
	if err == nil || !strings.Contains(err.Error(), "--teacher audio=RUN_DIR --teacher visual=RUN_DIR") || !strings.Contains(err.Error(), "trains the teachers first") {
		t.Errorf("compile umt without teachers: %v", err)
	}
	// A compiled plan with teachers trains like any plan.
	plan := filepath.Join(t.TempDir(), "plan")
	if out, err := bmc(t, append([]string{"compile", "--method", "umt", "--teacher", "audio=" + audio, "--teacher", "visual=" + visual, "--epochs", "1", "-o", plan}, synthAV...)...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := bmc(t, "train", plan, "--threads", "1", "--quiet", "--out", filepath.Join(t.TempDir(), "run")); err != nil {
		t.Fatalf("train the compiled plan: %v\n%s", err, out)
	}
}

// UMT resumes bit for bit after a kill: with teachers given, and in a
// staged run killed while a teacher trains and while UMT itself trains.
func TestUMTResumesAfterAKill(t *testing.T) {
	long := []string{"--dataset", "synth-av", "--encoder", "visual=mlp:64,32,dropout=0.2", "--seed", "5", "--epochs", "30"}
	t.Run("teachers-given", func(t *testing.T) {
		audio := trainUnimodal(t, "audio", append(synthAV, "--epochs", "1")...)
		visual := trainUnimodal(t, "visual", append(synthAV, "--epochs", "1", "--encoder", "visual=mlp:64,32,dropout=0.2")...)
		checkKillResume(t, 3, append([]string{"--method", "umt", "--teacher", "audio=" + audio, "--teacher", "visual=" + visual, "--data", "train=64,val=16,test=16"}, long...)...)
	})
	t.Run("staged", func(t *testing.T) {
		base := append([]string{"train", "--threads", "1", "--quiet", "--method", "umt"}, long...)
		tmp := t.TempDir()
		whole := filepath.Join(tmp, "whole")
		if out, err := bmc(t, append(base, "--out", whole)...); err != nil {
			t.Fatalf("uninterrupted run: %v\n%s", err, out)
		}
		for _, kill := range []struct{ name, watch string }{
			{"in-teacher-visual", filepath.Join(distill.TeachersDir, "visual", runtime.LogFile)},
			{"in-umt", runtime.LogFile},
		} {
			dir := filepath.Join(tmp, kill.name)
			trainKilled(t, base, dir, kill.watch, 3)
			if out, err := bmc(t, "train", "--resume", dir, "--quiet"); err != nil {
				t.Fatalf("%s: resume: %v\n%s", kill.name, err, out)
			}
			for _, sub := range []string{"", distill.TeacherDir("", "audio"), distill.TeacherDir("", "visual")} {
				sameRun(t, filepath.Join(whole, sub), filepath.Join(dir, sub))
			}
		}
	})
}
