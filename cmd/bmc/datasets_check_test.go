package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyDir copies a fixture folder tree into a temporary folder.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestDatasetsCheck(t *testing.T) {
	fixture := filepath.Join("..", "..", "datasets", "testdata", "cremad")
	out, err := bmc(t, "datasets", "check", "--dataset", "cremad", "--data-root", fixture, "--data", "size=8,val_fraction=0.34", "--workers", "2")
	if err != nil {
		t.Fatalf("clean fixture: %v\n%s", err, out)
	}
	for _, want := range []string{"cremad at", "6 classes", "audio [1 10 8] float32", "visual [3 2 8 8] float32",
		"train  6 ", "val    3 ", "test   3 ", "0:1 1:1 5:1", "no problems"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	// Every problem is listed, not only the first: a dropped row, a
	// truncated frame and a corrupt fbank.
	root := copyDir(t, fixture)
	if err := os.WriteFile(filepath.Join(root, "test.csv"), []byte("1091_DFA_NEU_XX,NEU\n1091_IEO_HAP_HI,HAP\n1091_TIE_ANG_XX,ANG\nnope,NEU\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	frame := filepath.Join(root, "visual", "1091_DFA_NEU_XX", "000002.jpg")
	b, err := os.ReadFile(frame)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(frame, b[:20], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "audio", "1091_TIE_ANG_XX.pt"), b[:10], 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = bmc(t, "datasets", "check", "--dataset", "cremad", "--data-root", root, "--data", "size=8", "--data", "val_fraction=0.34")
	if err == nil || !strings.Contains(err.Error(), "3 problems") {
		t.Errorf("broken copy: error %v, want 3 problems\n%s", err, out)
	}
	for _, want := range []string{"problems found while indexing (1)", "test.csv:4: clip nope: no audio file", "(row dropped)",
		"unreadable test samples (2)", "test[0]:", "000002.jpg", "decode JPEG", "test[2]:", "1091_TIE_ANG_XX.pt"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	// Dropped rows alone pass with --allow-dropped.
	if err := os.WriteFile(filepath.Join(root, "test.csv"), []byte("1091_IEO_HAP_HI,HAP\nnope,NEU\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"datasets", "check", "--dataset", "cremad", "--data-root", root, "--data", "size=8,val_fraction=0.34"}
	if _, err := bmc(t, args...); err == nil {
		t.Error("a dropped row passed without --allow-dropped")
	}
	if out, err := bmc(t, append(args, "--allow-dropped", "--json")...); err != nil || !strings.Contains(out, `"dropped": true`) {
		t.Errorf("--allow-dropped --json: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"datasets", "check", "--data-root", root}, "--dataset is required"},
		{[]string{"datasets", "check", "--dataset", "cremad"}, "--data-root"},
		{[]string{"datasets", "check", "--dataset", "cremad", "--data-root", root, "--data", "fps=0"}, "fps"},
	} {
		if _, err := bmc(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestDatasetsListing(t *testing.T) {
	out, err := bmc(t, "datasets")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ucf101 — UCF-101", "visual [3 3 224 224], flow [2 3 224 224]", "text [1 40] int64",
		"layout: texts/{train,test}_titles.csv", "--data vocab=bert-base-uncased/vocab.txt",
		"paper: adamw lr 0.001 wd 0.001, batch 32, 30 epochs", "audio shape from the files", "--data val_fraction=0.1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("bmc datasets lacks %q", want)
		}
	}
}

// The loaders feed the trainer: one epoch on every benchmark dataset's
// fixture, read through the parallel pipeline (small MLPs, and a tiny BERT
// for FOOD-101's token ids).
func TestTrainOnDiskLayouts(t *testing.T) {
	for _, tc := range []struct {
		dataset string
		data    string
		encoder []string
	}{
		{"cremad", "size=16,val_fraction=0.34", nil},
		{"ks", "size=16,classes=3,audio_shape=8x6", nil},
		{"balancedav", "size=16", nil},
		{"vggsound", "size=16", nil},
		{"ucf101", "size=16", nil},
		{"food101", "size=16", []string{"--encoder", "text=bert:hidden=8,layers=1,heads=2,ff=8,max_len=40,out=4"}},
		{"mosei", "", nil},
	} {
		t.Run(tc.dataset, func(t *testing.T) {
			args := []string{"train", "--method", "baseline", "--dataset", tc.dataset,
				"--data-root", filepath.Join("..", "..", "datasets", "testdata", tc.dataset),
				"--encoder", "mlp:8,4", "--epochs", "1", "--batch-size", "2", "--eval-batch-size", "2", "--threads", "1", "--quiet",
				"--out", filepath.Join(t.TempDir(), "run")}
			args = append(args, tc.encoder...)
			if tc.data != "" {
				args = append(args, "--data", tc.data)
			}
			if out, err := bmc(t, args...); err != nil {
				t.Errorf("%s: %v\n%s", tc.dataset, err, out)
			}
		})
	}
}
