package main

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"bmc/runtime"
)

// GBlending trains from the CLI with 2 and 3 modalities and on the CREMA-D
// fixture with ResNet18 encoders; every epoch logs blending weights that
// sum to 1.
func TestGBlendingTrainsFromTheCLI(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"online-av", []string{"--method", "gblending", "--hp", "super_epoch=2", "--dataset", "synth-av", "--data", "train=64,val=16,test=16", "--epochs", "3"}},
		{"offline-avt", []string{"--method", "gblending", "--hp", "method=offline", "--dataset", "synth-avt", "--data", "train=64,val=16,test=16", "--epochs", "2"}},
		{"cremad-resnet18", []string{"--method", "gblending", "--hp", "super_epoch=2", "--dataset", "cremad",
			"--data-root", filepath.Join("..", "..", "datasets", "testdata", "cremad"), "--data", "size=16,val_fraction=0.34",
			"--encoder", "resnet18", "--epochs", "2", "--batch-size", "6", "--eval-batch-size", "3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := checkMethodRun(t, false, tc.args...)
			f, err := os.Open(filepath.Join(r.Dir, runtime.LogFile))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			lines := 0
			for sc := bufio.NewScanner(f); sc.Scan(); lines++ {
				var l runtime.EpochLog
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
					t.Fatal(err)
				}
				var sum float64
				n := 0
				for k, v := range l.Method {
					if len(k) > len("gblending.weight/") && k[:len("gblending.weight/")] == "gblending.weight/" {
						sum += v
						n++
					}
				}
				if n < 3 || math.Abs(sum-1) > 1e-5 {
					t.Errorf("epoch %d: %d blending weights summing to %v, want one per head summing to 1 (%v)", l.Epoch, n, sum, l.Method)
				}
			}
			if lines == 0 {
				t.Error("empty log")
			}
		})
	}
}

// A GBlending run killed between estimates resumes to the uninterrupted
// run's checkpoints and weights (dropout makes its passes draw random
// numbers too).
func TestGBlendingResumesAfterAKill(t *testing.T) {
	checkKillResume(t, 3, "--method", "gblending", "--hp", "super_epoch=2", "--dataset", "synth-av",
		"--encoder", "visual=mlp:64,32,dropout=0.2", "--epochs", "30", "--seed", "3")
}
