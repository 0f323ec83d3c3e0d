package datasets_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"bmc/datasets"
)

func TestSynthShapes(t *testing.T) {
	d, err := datasets.Open("synth-av", datasets.Options{Params: map[string]string{
		"shape.visual": "3x2x8x8", "shape.audio": "1x8x4", "signal.visual": "3", "train": "400", "classes": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	spec := d.Spec()
	for _, want := range []datasets.Modality{{Name: "audio", Shape: []int64{1, 8, 4}}, {Name: "visual", Shape: []int64{3, 2, 8, 8}}} {
		got, _ := spec.Modality(want.Name)
		if !slices.Equal(got.Shape, want.Shape) || got.Int {
			t.Errorf("modality %+v, want %+v", got, want)
		}
	}
	train, _ := d.Split(datasets.Train)
	// Class means are smooth: constant over each cell of a 4×4 grid of the
	// last two axes (visual: 8×8, so 2×2 blocks), up to the noise of the mean.
	sum := make([][]float64, 2)
	count := make([]int, 2)
	for c := range sum {
		sum[c] = make([]float64, 3*2*8*8)
	}
	bufs := []datasets.Buffer{{F32: make([]float32, 32)}, {F32: make([]float32, 384)}}
	for i := range train.Len() {
		y, err := train.Read(i, bufs)
		if err != nil {
			t.Fatal(err)
		}
		count[y]++
		for j, v := range bufs[1].F32 {
			sum[y][j] += float64(v)
		}
	}
	for c := range sum {
		n := float64(count[c])
		for lead := range 6 {
			base := lead * 64
			a, b := sum[c][base+0]/n, sum[c][base+9]/n // (0,0) and (1,1): one cell
			if math.Abs(a-b) > 5/math.Sqrt(n) {
				t.Errorf("class %d frame %d: elements of one cell have means %.3f and %.3f", c, lead, a, b)
			}
		}
	}
}

func TestSynthTokens(t *testing.T) {
	d, err := datasets.Open("synth-avt", datasets.Options{Params: map[string]string{
		"vocab.text": "41", "shape.text": "12", "signal.text": "1", "classes": "4", "train": "50"}})
	if err != nil {
		t.Fatal(err)
	}
	mod, _ := d.Spec().Modality("text")
	if !mod.Int || !slices.Equal(mod.Shape, []int64{12}) {
		t.Fatalf("text modality %+v, want 12 token ids", mod)
	}
	train, _ := d.Split(datasets.Train)
	bufs := []datasets.Buffer{{F32: make([]float32, 32)}, {F32: make([]float32, 32)}, {I64: make([]int64, 12)}}
	for i := range train.Len() {
		y, err := train.Read(i, bufs)
		if err != nil {
			t.Fatal(err)
		}
		// signal 1: every token comes from the class's slice [1+10y, 11+10y).
		for _, tok := range bufs[2].I64 {
			if tok < 1+10*y || tok >= 11+10*y {
				t.Fatalf("sample %d (class %d): token %d outside the class's slice", i, y, tok)
			}
		}
	}
	if _, err := train.Read(0, []datasets.Buffer{{F32: make([]float32, 32)}, {F32: make([]float32, 32)}, {F32: make([]float32, 12)}}); err == nil || !strings.Contains(err.Error(), "token ids") {
		t.Errorf("reading tokens into a float buffer: %v", err)
	}
}

func TestSynthShapeParamErrors(t *testing.T) {
	tests := []struct {
		params map[string]string
		want   string
	}{
		{map[string]string{"shape.audio": "1x0x4"}, "want positive sizes joined by x"},
		{map[string]string{"shape.audio": "1,4"}, "want positive sizes joined by x"},
		{map[string]string{"vocab.visual": "5"}, "want at least 2·classes = 20"},
		{map[string]string{"vocab.visual": "x"}, "want a positive integer"},
	}
	for _, tc := range tests {
		if _, err := datasets.Open("synth-av", datasets.Options{Params: tc.params}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one containing %q", tc.params, err, tc.want)
		}
	}
}
