package methods

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// Sample-level copies, worked by hand for two modalities and the first 3
// of 4 samples (bit 0 keeps modality 0, bit 1 modality 1).
func TestSampleLevelCopies(t *testing.T) {
	phi := [][]float64{{1, 0.5, 0, -0.5}, {0, -0.5, 0.5, 1}}
	got := sampleLevelCopies(phi, 3)
	want := []sampleCopy{
		{0, 2}, {0, 2}, // φ_0 = 1: none; φ_1 = 0: two
		{1, 1}, {1, 2}, {1, 2}, {1, 2}, // φ_0 = ½: one; φ_1 = −½: three
		{2, 1}, {2, 1}, {2, 2}, // φ_0 = 0: two; φ_1 = ½: one
	}
	if !slices.Equal(got, want) {
		t.Errorf("copies %v, want %v", got, want)
	}
	// The bounds themselves get no copy (strict inequalities), nor does 1.
	if got := sampleLevelCopies([][]float64{{0.4}, {-0.1}, {1}}, 1); len(got) != 0 {
		t.Errorf("φ on the bounds: copies %v, want none", got)
	}
}

// Modality-level copies with constant contributions, so the estimate does
// not depend on the draws: φ = (1, ¼, ¼) gives gaps (0, ¾, ¾), difference
// (2/3)·(¾+¾ + ¾+0 + ¾+0)/2 = 1, so `usable` samples are drawn and each
// gets a full copy (modality 0 is the strongest) and two copies without
// modality 0 (the weaker modalities keep each other: equal gaps).
func TestModalityLevelCopies(t *testing.T) {
	const usable = 8
	phi := make([][]float64, 3)
	for m, v := range []float64{1, 0.25, 0.25} {
		phi[m] = slices.Repeat([]float64{v}, usable+3)
	}
	got := modalityLevelCopies(phi, usable, 0.5, rand.New(rand.NewPCG(1, 2)))
	// The same stream: ⌊8·0.5⌋ = 4 draws for the estimate, then 8 samples.
	replay := rand.New(rand.NewPCG(1, 2))
	for range 4 {
		replay.IntN(usable)
	}
	var want []sampleCopy
	for range usable {
		i := replay.IntN(usable)
		want = append(want, sampleCopy{i, 0b111}, sampleCopy{i, 0b110}, sampleCopy{i, 0b110})
	}
	if !slices.Equal(got, want) {
		t.Errorf("copies %v, want %v", got, want)
	}
	// Two modalities: φ = (½, 1) → gaps (½, 0), difference (4/3)·½ = ⅔,
	// ⌊⅔·6⌋ = 4 samples: modality 0 (weaker) keeps itself, modality 1 all.
	two := [][]float64{slices.Repeat([]float64{0.5}, 6), slices.Repeat([]float64{1}, 6)}
	got = modalityLevelCopies(two, 6, 0.01, rand.New(rand.NewPCG(3, 4)))
	if len(got) != 8 {
		t.Fatalf("%d copies, want 4 samples × 2", len(got))
	}
	for k, c := range got {
		if want := []uint{0b01, 0b11}[k%2]; c.Keep != want {
			t.Errorf("copy %d keeps %b, want %b", k, c.Keep, want)
		}
	}
	// Equal contributions: no difference, no copies.
	if got := modalityLevelCopies([][]float64{{0.5, 0.5}, {0.5, 0.5}}, 2, 1, rand.New(rand.NewPCG(5, 6))); len(got) != 0 {
		t.Errorf("balanced modalities: copies %v", got)
	}
}
