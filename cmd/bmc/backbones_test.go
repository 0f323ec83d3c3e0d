package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// Every backbone kind trains end to end from the CLI on the synthetic data
// at a small size, and its exported model.onnx evaluates as the run does.
func TestBackbonesTrainFromTheCLI(t *testing.T) {
	tests := []struct {
		name    string
		dataset string
		args    []string
	}{
		{"transformer-vit-bert", "synth-avt", []string{
			"--data", "train=48,val=16,test=16,classes=3,shape.audio=6x8,shape.visual=3x32x32,vocab.text=40,shape.text=8",
			"--encoder", "audio=transformer:d_model=16,heads=2,ff=24,layers=1",
			"--encoder", "visual=vit_b_16:width=16,layers=1,heads=2,mlp=24",
			"--encoder", "text=bert:vocab=40,hidden=16,layers=1,heads=2,ff=24,max_len=16,out=12"}},
		{"resnet18", "synth-av", []string{
			"--data", "train=32,val=8,test=8,classes=3,shape.audio=1x32x16,shape.visual=3x2x32x32",
			"--encoder", "resnet18"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run := filepath.Join(t.TempDir(), "run")
			args := append([]string{"train", "--method", "baseline", "--dataset", tc.dataset, "--epochs", "2", "--batch-size", "8",
				"--eval-batch-size", "8", "--threads", "1", "--quiet", "--out", run}, tc.args...)
			out, err := bmc(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "test acc") {
				t.Errorf("train output:\n%s", out)
			}
			runEval, err := bmc(t, "eval", run)
			if err != nil {
				t.Fatal(err)
			}
			modelEval, err := bmc(t, "eval", filepath.Join(run, "model.onnx"), "--batch-size", "5")
			if err != nil {
				t.Fatal(err)
			}
			body := func(s string) string { _, rest, _ := strings.Cut(s, "\n"); return rest }
			if body(runEval) != body(modelEval) {
				t.Errorf("eval of the run and of its model.onnx differ:\n%s\n%s", runEval, modelEval)
			}
		})
	}
}
