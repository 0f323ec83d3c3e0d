package main

import (
	"path/filepath"
	"testing"
)

// The Feed-forward methods OPM, AMCo and Greedy train from the CLI on two
// and three modalities and on the CREMA-D fixture with ResNet18 encoders at
// a tiny size (Greedy needs ResNet18 everywhere), export a model.onnx that
// predicts as the run does, and count the FLOPs they run.
func TestFeedForwardMethodsRunFromTheCLI(t *testing.T) {
	cremad := []string{"--dataset", "cremad", "--data-root", filepath.Join("..", "..", "datasets", "testdata", "cremad"),
		"--data", "size=16,val_fraction=0.34", "--encoder", "resnet18", "--epochs", "1", "--batch-size", "2", "--eval-batch-size", "2"}
	tinyAV := []string{"--dataset", "synth-av", "--encoder", "resnet18", "--epochs", "1", "--batch-size", "4", "--eval-batch-size", "4",
		"--data", "train=8,val=4,test=4,classes=3,shape.audio=1x16x12,shape.visual=3x2x16x16"}
	tinyAVT := []string{"--dataset", "synth-avt", "--encoder", "resnet18", "--epochs", "1", "--batch-size", "4", "--eval-batch-size", "4",
		"--data", "train=8,val=4,test=4,classes=3,shape.audio=1x12x12,shape.visual=3x12x12,shape.text=1x12x12"}
	small := func(dataset string) []string {
		return []string{"--dataset", dataset, "--data", "train=64,val=16,test=16", "--epochs", "2", "--batch-size", "16", "--eval-batch-size", "16"}
	}
	tests := []struct {
		name string
		args []string
	}{
		{"opm-av", append([]string{"--method", "opm"}, small("synth-av")...)},
		{"opm-avt", append([]string{"--method", "opm", "--hp", "p_exe=1"}, small("synth-avt")...)},
		{"opm-cremad-resnet18", append([]string{"--method", "opm"}, cremad...)},
		{"amco-av", append([]string{"--method", "amco"}, small("synth-av")...)},
		{"amco-avt-compat", append([]string{"--method", "amco", "--hp", "compat=true"}, small("synth-avt")...)},
		{"amco-cremad-resnet18", append([]string{"--method", "amco"}, cremad...)},
		{"greedy-av-resnet18", append([]string{"--method", "greedy"}, tinyAV...)},
		{"greedy-avt-resnet18", append([]string{"--method", "greedy"}, tinyAVT...)},
		{"greedy-cremad-resnet18", append([]string{"--method", "greedy"}, cremad...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkMethodRun(t, false, tc.args...) })
	}
}

// OPM (its coin and noise), AMCo (its masks) and Greedy (its learning
// speeds and curation windows, Go-side state; a window of 3 steps spans the
// epochs of 3 steps) resume bit for bit. The kill
// comes after two logged epochs: an epoch's log line is written before its
// checkpoint, so after one the run may have none to resume from.
func TestFeedForwardMethodsResume(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"opm", []string{"--method", "opm", "--dataset", "synth-av", "--data", "train=64,val=16,test=16", "--epochs", "4", "--batch-size", "16"}},
		{"amco", []string{"--method", "amco", "--dataset", "synth-avt", "--data", "train=64,val=16,test=16", "--epochs", "4", "--batch-size", "16"}},
		{"greedy", []string{"--method", "greedy", "--hp", "window_size=3,alpha=0.0001", "--dataset", "synth-av", "--encoder", "resnet18", "--epochs", "4",
			"--batch-size", "4", "--eval-batch-size", "4", "--data", "train=12,val=4,test=4,classes=3,shape.audio=1x12x12,shape.visual=3x2x12x12"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkKillResume(t, 2, tc.args...) })
	}
}
