package datasets_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"bmc/datasets"
)

func TestMOSEI(t *testing.T) {
	d := openDisk(t, "mosei", "testdata/mosei", nil)
	spec := d.Spec()
	if spec.Classes != 2 || spec.Sizes[datasets.Train] != 6 || spec.Sizes[datasets.Val] != 3 || spec.Sizes[datasets.Test] != 3 {
		t.Fatalf("spec %+v", spec)
	}
	for i, want := range []struct {
		name  string
		shape []int64
	}{{"text", []int64{4, 300}}, {"audio", []int64{6, 74}}, {"visual", []int64{5, 35}}} {
		if m := spec.Modalities[i]; m.Name != want.name || !slices.Equal(m.Shape, want.shape) {
			t.Errorf("modality %d = %+v, want %s %v", i, m, want.name, want.shape)
		}
	}
	// Labels: sentiment ≥ 0 is positive; make.py writes these scores.
	for split, want := range map[string][]int64{
		datasets.Train: {0, 1, 1, 0, 1, 0}, // -1.2, 0.0, 0.8, -0.4, 2.0, -2.6
		datasets.Val:   {1, 0, 1},          // 0.6, -0.2, 0.0
		datasets.Test:  {1, 0, 1},          // 1.4, -1.0, 0.2
	} {
		for i, w := range want {
			if _, y := readSeeded(t, d, split, i, 0); y != w {
				t.Errorf("%s[%d] label %d, want %d", split, i, y, w)
			}
		}
	}
	// Values printed by numpy from the fixture: test text[1, 2, 5] (float64
	// in the file), train audio[0, 0, :4] (−inf set to 0), valid vision[2, 4, 34].
	x, _ := readSeeded(t, d, datasets.Test, 1, 0)
	if got := x[0].F32[2*300+5]; got != float32(0.20591619364795144) {
		t.Errorf("test text[1][2, 5] = %v", got)
	}
	x, _ = readSeeded(t, d, datasets.Train, 0, 9)
	if got := x[1].F32[:4]; !slices.Equal(got, []float32{0, 0, 0, 0.104900114}) {
		t.Errorf("train audio[0][0, :4] = %v, want −inf as 0", got)
	}
	y, _ := readSeeded(t, d, datasets.Train, 0, 1)
	if !sameBuffers(x, y) {
		t.Error("a MOSEI training sample depends on the seed")
	}
	x, _ = readSeeded(t, d, datasets.Val, 2, 0)
	if got := x[2].F32[4*35+34]; got != -0.6175923 {
		t.Errorf("valid vision[2][4, 34] = %v", got)
	}
}

func TestMOSEIBadData(t *testing.T) {
	d := openDisk(t, "mosei", "testdata/broken/mosei", nil)
	wantErr(t, "NaN vision", readErr(t, d, datasets.Test, 1), "mosei_senti_data_noalign.pkl", `test["vision"][1]`, "value 77 is NaN")
	wantErr(t, "+Inf text", readErr(t, d, datasets.Test, 2), `test["text"][2]`, "value 0 is +Inf")
	wantErr(t, "NaN label", readErr(t, d, datasets.Val, 0), "valid labels[0] is NaN")
	if err := readErr(t, d, datasets.Test, 0); err != nil {
		t.Errorf("a good sample beside bad ones: %v", err)
	}

	root := t.TempDir()
	b, err := os.ReadFile("testdata/mosei/mosei_senti_data_noalign.pkl")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "mosei_senti_data_noalign.pkl"), b[:len(b)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = datasets.Open("mosei", datasets.Options{Root: root})
	wantErr(t, "truncated pickle", err, "mosei_senti_data_noalign.pkl", "truncated")
	_, err = datasets.Open("mosei", datasets.Options{Root: root, Params: map[string]string{"if_align": "true"}})
	wantErr(t, "aligned file absent", err, "mosei_senti_data.pkl", "no such file")
	_, err = datasets.Open("mosei", datasets.Options{Root: root, Params: map[string]string{"if_align": "maybe"}})
	wantErr(t, "bad if_align", err, "if_align", `"maybe"`)
}
