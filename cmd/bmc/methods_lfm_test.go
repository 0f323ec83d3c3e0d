package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// LFM trains from the CLI with two and three modalities, in both compat
// settings, and on an on-disk CREMA-D layout with ResNet18 encoders.
func TestLFMRunsFromTheCLI(t *testing.T) {
	cremad := lfmFixture(t)
	tests := []struct {
		name string
		args []string
	}{
		{"synth-av", []string{"--dataset", "synth-av", "--epochs", "2", "--hp", "lr_alpha=0.01,a1_init=0.5"}},
		{"synth-avt-compat", []string{"--dataset", "synth-avt", "--epochs", "2", "--hp", "compat=true"}},
		{"cremad-resnet18", []string{"--dataset", "cremad", "--data-root", cremad, "--data", "size=16,val_fraction=0.34",
			"--encoder", "resnet18", "--epochs", "1", "--batch-size", "8", "--eval-batch-size", "8"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := checkMethodRun(t, false, append([]string{"--method", "lfm"}, tc.args...)...)
			log, err := os.ReadFile(filepath.Join(r.Dir, "log.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{`"lfm.a1"`, `"lfm.align"`, `"lfm.ce"`} {
				if !strings.Contains(string(log), key) {
					t.Errorf("log.jsonl lacks %s", key)
				}
			}
		})
	}
}

// lfmFixture is the CREMA-D test layout with its training list repeated
// four times (36 rows), so that the held-out validation split (12 samples)
// fills the first validation batch LFM's α-gradient takes a quarter of.
func lfmFixture(t *testing.T) string {
	t.Helper()
	root := copyDir(t, filepath.Join("..", "..", "datasets", "testdata", "cremad"))
	rows, err := os.ReadFile(filepath.Join(root, "train.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "train.csv"), []byte(strings.Repeat(string(rows), 4)), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// A killed LFM run resumes to the same parameters and the same mixing
// weights (a1 moves every epoch here, and dropout draws per step).
func TestLFMResumesAfterKill(t *testing.T) {
	checkKillResume(t, 3, "--method", "lfm", "--hp", "lr_alpha=0.01,a1_init=0.5", "--dataset", "synth-av",
		"--data", "train=256,val=64,test=64", "--encoder", "visual=mlp:32,16,dropout=0.2", "--epochs", "30", "--seed", "3")
}
