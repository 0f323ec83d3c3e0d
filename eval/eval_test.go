package eval

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

const tol = 1e-12

func near(a, b float64) bool {
	return math.Abs(a-b) <= tol*max(1, math.Abs(b))
}

func TestConfusionMetrics(t *testing.T) {
	// Four classes; class 2 occurs but is never predicted, class 3 is
	// predicted once but never occurs.
	//
	//	         pred 0  pred 1  pred 2  pred 3 | row (TP+FN)
	//	true 0      2       1       0       1   |  4
	//	true 1      1       2       0       0   |  3
	//	true 2      1       1       0       0   |  2
	//	true 3      0       0       0       0   |  0
	//	col (TP+FP) 4       4       0       1   |  9
	//
	// accuracy = (2+2)/9.
	// class 0: P = 2/4, R = 2/4, F1 = 1/2.
	// class 1: P = 2/4, R = 2/3, F1 = 2·(1/3)/(7/6) = 4/7.
	// class 2: P = 0 (no predictions), R = 0/2, F1 = 0.
	// class 3: P = 0/1, R = 0 (no samples), F1 = 0.
	// macro F1 = (1/2 + 4/7 + 0 + 0)/4 = 15/56.
	pairs := [][2]int{{0, 0}, {0, 0}, {0, 1}, {0, 3}, {1, 0}, {1, 1}, {1, 1}, {2, 0}, {2, 1}}
	tests := []struct {
		name     string
		classes  int
		pairs    [][2]int
		wantN    int64
		wantAcc  float64
		wantF1   float64
		wantDiag []int64
	}{
		{"worked example", 4, pairs, 9, 4.0 / 9, 15.0 / 56, []int64{2, 2, 0, 0}},
		{"empty", 3, nil, 0, 0, 0, []int64{0, 0, 0}},
		{"no classes", 0, nil, 0, 0, 0, nil},
		{"perfect", 2, [][2]int{{0, 0}, {1, 1}, {1, 1}}, 3, 1, 1, []int64{1, 2}},
		// Only class 0 occurs and is always right: F1_0 = 1, F1_1 = 0.
		{"single class present", 2, [][2]int{{0, 0}, {0, 0}}, 2, 1, 0.5, []int64{2, 0}},
		// All wrong: every TP is 0.
		{"all wrong", 2, [][2]int{{0, 1}, {1, 0}}, 2, 0, 0, []int64{0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewConfusion(tc.classes)
			for _, p := range tc.pairs {
				if err := c.Add(p[0], p[1]); err != nil {
					t.Fatalf("Add(%d, %d): %v", p[0], p[1], err)
				}
			}
			if got := c.Total(); got != tc.wantN {
				t.Errorf("Total = %d, want %d", got, tc.wantN)
			}
			if got := c.Accuracy(); !near(got, tc.wantAcc) {
				t.Errorf("Accuracy = %v, want %v", got, tc.wantAcc)
			}
			if got := c.MacroF1(); !near(got, tc.wantF1) {
				t.Errorf("MacroF1 = %v, want %v", got, tc.wantF1)
			}
			for k, want := range tc.wantDiag {
				if got := c.Counts[k*c.Classes+k]; got != want {
					t.Errorf("Counts[%d][%d] = %d, want %d", k, k, got, want)
				}
			}
		})
	}
}

func TestConfusionAddErrors(t *testing.T) {
	tests := []struct {
		name        string
		c           *Confusion
		truth, pred int
		want        string
	}{
		{"truth too large", NewConfusion(3), 3, 0, "true class 3 outside [0, 3)"},
		{"truth negative", NewConfusion(3), -1, 0, "true class -1"},
		{"pred too large", NewConfusion(3), 0, 5, "predicted class 5 outside [0, 3)"},
		{"pred negative", NewConfusion(3), 0, -2, "predicted class -2"},
		{"no classes", NewConfusion(0), 0, 0, "true class 0 outside [0, 0)"},
		{"negative classes", NewConfusion(-2), 0, 0, "-2 classes"},
		{"absurd classes", NewConfusion(1 << 40), 0, 0, "classes, want 0 to"},
		{"short counts", &Confusion{Classes: 2, Counts: make([]int64, 3)}, 0, 0, "3 counts for 2 classes"},
		{"nil", nil, 0, 0, "nil confusion matrix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Add(tc.truth, tc.pred)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Add error = %v, want it to contain %q", err, tc.want)
			}
			if tc.c.Total() != 0 {
				t.Errorf("failed Add recorded a sample")
			}
		})
	}
}

func TestConfusionAddLogits(t *testing.T) {
	// Three classes, four rows of which only the first three count.
	logits := []float32{
		0.1, 0.7, 0.2, // argmax 1
		0.5, 0.5, 0.1, // tie: argmax 0
		0, 0, 3, // argmax 2
		9, 0, 0, // padding
	}
	labels := []int64{1, 1, 2, 7} // the padding label is out of range on purpose
	c := NewConfusion(3)
	if err := c.AddLogits(logits, labels, 3); err != nil {
		t.Fatalf("AddLogits: %v", err)
	}
	want := []int64{
		0, 0, 0,
		1, 1, 0,
		0, 0, 1,
	}
	if !slices.Equal(c.Counts, want) {
		t.Errorf("Counts = %v, want %v", c.Counts, want)
	}
	if got := c.Accuracy(); !near(got, 2.0/3) {
		t.Errorf("Accuracy = %v, want 2/3", got)
	}
}

func TestConfusionAddLogitsErrors(t *testing.T) {
	logits := []float32{1, 0, 0, 1}
	tests := []struct {
		name   string
		logits []float32
		labels []int64
		n      int
		want   string
	}{
		{"label too large", logits, []int64{0, 2}, 2, "label 2 of sample 1 outside [0, 2)"},
		{"label negative", logits, []int64{-1, 0}, 2, "label -1 of sample 0"},
		{"n beyond logit rows", logits, []int64{0, 1, 1}, 3, "4 logits hold fewer than 3 rows"},
		{"n beyond labels", append(logits, 1, 0), []int64{0, 1}, 3, "2 labels for 3 samples"},
		{"ragged logits", logits[:3], []int64{0, 1}, 2, "3 logits hold fewer than 2 rows"},
		{"negative n", logits, []int64{0, 1}, -1, "negative sample count"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewConfusion(2)
			err := c.AddLogits(tc.logits, tc.labels, tc.n)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("AddLogits error = %v, want it to contain %q", err, tc.want)
			}
			if c.Total() != 0 {
				t.Errorf("failed AddLogits recorded %d samples", c.Total())
			}
		})
	}
}

func TestConfusionMerge(t *testing.T) {
	a, b := NewConfusion(2), NewConfusion(2)
	for _, p := range [][2]int{{0, 0}, {1, 0}} {
		if err := a.Add(p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range [][2]int{{1, 1}, {1, 1}, {0, 0}} {
		if err := b.Add(p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Merge(b); err != nil {
		t.Fatalf("Merge: %v", err)
	}
	if want := []int64{2, 0, 1, 2}; !slices.Equal(a.Counts, want) {
		t.Errorf("merged Counts = %v, want %v", a.Counts, want)
	}

	tests := []struct {
		name string
		o    *Confusion
		want string
	}{
		{"size mismatch", NewConfusion(3), "3 classes into 2"},
		{"nil", nil, "nil confusion matrix"},
		{"malformed", &Confusion{Classes: 2}, "0 counts for 2 classes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(a.Counts)
			err := a.Merge(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Merge error = %v, want it to contain %q", err, tc.want)
			}
			if !slices.Equal(a.Counts, before) {
				t.Errorf("failed Merge changed the counts")
			}
		})
	}
}

func TestArgmax(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	tests := []struct {
		name string
		row  []float32
		want int
	}{
		{"empty", nil, -1},
		{"single", []float32{-3}, 0},
		{"max in middle", []float32{1, 5, 2}, 1},
		{"max last", []float32{1, 2, 3}, 2},
		{"tie first wins", []float32{2, 7, 7, 1}, 1},
		{"all equal", []float32{4, 4, 4}, 0},
		{"negative", []float32{-5, -1, -1, -9}, 1},
		{"signed zeros tie", []float32{float32(math.Copysign(0, -1)), 0}, 0},
		{"infinity", []float32{1e38, inf, inf}, 1},
		{"nan wins like torch", []float32{1, nan, 5, nan}, 1},
		{"leading nan", []float32{nan, 5}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Argmax(tc.row); got != tc.want {
				t.Errorf("Argmax(%v) = %d, want %d", tc.row, got, tc.want)
			}
		})
	}
}

func TestShapley(t *testing.T) {
	tests := []struct {
		name string
		n    int
		v    []float64
		want []float64
	}{
		// φ = v({1}) − v(∅).
		{"one modality", 1, []float64{0.2, 0.7}, []float64{0.5}},
		{"one modality, v(∅) > v(M)", 1, []float64{0.9, 0.4}, []float64{-0.5}},
		// φ1 = ½[(0.6−0.1) + (0.8−0.3)] = 0.5, φ2 = ½[(0.3−0.1) + (0.8−0.6)] = 0.2.
		{"two modalities", 2, []float64{0.1, 0.6, 0.3, 0.8}, []float64{0.5, 0.2}},
		// Weights for n = 3: |S| = 0 → 1/3, |S| = 1 → 1/6, |S| = 2 → 1/3.
		// Masks: 1 = {0}, 2 = {1}, 3 = {0,1}, 4 = {2}, 5 = {0,2}, 6 = {1,2}, 7 = all.
		// φ0 = 0.3/3 + 0.3/6 + 0.3/6 + 0.45/3 = 0.35
		// φ1 = 0.2/3 + 0.2/6 + 0.25/6 + 0.4/3 = 1.65/6 = 0.275
		// φ2 = 0.1/3 + 0.1/6 + 0.15/6 + 0.3/3 = 1.05/6 = 0.175
		{"three modalities", 3, []float64{0.1, 0.4, 0.3, 0.6, 0.2, 0.5, 0.45, 0.9}, []float64{0.35, 0.275, 0.175}},
		// A useless modality (index 1) gets 0; the others split the rest.
		{"dummy modality", 2, []float64{0, 1, 0, 1}, []float64{1, 0}},
		// Symmetric modalities share equally: φ = ½(v(M) − v(∅)).
		{"symmetric", 2, []float64{0.2, 0.5, 0.5, 1}, []float64{0.4, 0.4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			phi, err := Shapley(tc.n, tc.v)
			if err != nil {
				t.Fatalf("Shapley: %v", err)
			}
			if len(phi) != len(tc.want) {
				t.Fatalf("Shapley = %v, want %v", phi, tc.want)
			}
			for i := range phi {
				if !near(phi[i], tc.want[i]) {
					t.Errorf("φ%d = %v, want %v", i, phi[i], tc.want[i])
				}
			}
		})
	}
}

func TestShapleyEfficiencyAndAdditivity(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 1; n <= 8; n++ {
		// Efficiency: Σφ = v(M) − v(∅) for arbitrary v.
		v := make([]float64, 1<<n)
		for s := range v {
			v[s] = rng.Float64()
		}
		phi, err := Shapley(n, v)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		var sum float64
		for _, p := range phi {
			sum += p
		}
		if want := v[len(v)-1] - v[0]; math.Abs(sum-want) > 1e-12 {
			t.Errorf("n=%d: Σφ = %v, want v(M)−v(∅) = %v", n, sum, want)
		}

		// Additive game v(S) = c + Σ_{i∈S} a_i: φ_i = a_i exactly.
		a := make([]float64, n)
		for i := range a {
			a[i] = float64(i+1) / 8
		}
		for s := range v {
			v[s] = 0.25
			for i := range n {
				if s&(1<<i) != 0 {
					v[s] += a[i]
				}
			}
		}
		phi, err = Shapley(n, v)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		for i := range phi {
			if math.Abs(phi[i]-a[i]) > 1e-12 {
				t.Errorf("n=%d additive: φ%d = %v, want %v", n, i, phi[i], a[i])
			}
		}
	}
}

func TestShapleyErrors(t *testing.T) {
	tests := []struct {
		name string
		n    int
		v    []float64
		want string
	}{
		{"zero modalities", 0, []float64{1}, "0 modalities"},
		{"negative modalities", -1, nil, "-1 modalities"},
		{"too many modalities", 17, nil, "17 modalities"},
		{"v too short", 2, []float64{0, 1, 2}, "3 coalition values for 2 modalities, want 4"},
		{"v too long", 1, []float64{0, 1, 2, 3}, "want 2"},
		{"v nil", 3, nil, "0 coalition values"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			phi, err := Shapley(tc.n, tc.v)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Shapley = %v, %v; want error containing %q", phi, err, tc.want)
			}
		})
	}
}

func TestImbalance(t *testing.T) {
	tests := []struct {
		name   string
		phi    []float64
		want   float64
		wantOK bool
	}{
		{"none", nil, 0, false},
		{"one modality", []float64{0.5}, 0, false},
		{"two", []float64{0.5, 0.2}, 0.3, true},
		{"two reversed", []float64{0.2, 0.5}, 0.3, true},
		{"two balanced", []float64{0.4, 0.4}, 0, true},
		// (|0.35−0.275| + |0.35−0.175| + |0.275−0.175|)/3 = (0.075+0.175+0.1)/3.
		{"three", []float64{0.35, 0.275, 0.175}, 0.35 / 3, true},
		// Pairs: 1, 2, 3, 1, 2, 1 → 10/6.
		{"four", []float64{1, 2, 3, 4}, 10.0 / 6, true},
		{"negative values", []float64{-0.1, 0.3}, 0.4, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Imbalance(tc.phi)
			if ok != tc.wantOK || !near(got, tc.want) {
				t.Errorf("Imbalance(%v) = %v, %v; want %v, %v", tc.phi, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestCrossEntropy(t *testing.T) {
	type batch struct {
		logits  []float32
		labels  []int64
		n       int
		classes int
	}
	big := float64(float32(3e38))
	tests := []struct {
		name    string
		batches []batch
		want    float64
	}{
		{"nothing added", nil, 0},
		// Equal logits over C classes: log C.
		{"uniform", []batch{{[]float32{0, 0}, []int64{0}, 1, 2}}, math.Ln2},
		{"uniform, huge negative logits", []batch{{[]float32{-1e30, -1e30, -1e30}, []int64{1}, 1, 3}}, math.Log(3)},
		// log(e¹ + e² + e³) − 1 = log(1 + e + e²).
		{"small", []batch{{[]float32{1, 2, 3}, []int64{0}, 1, 3}}, 2.40760596444438},
		// Rows: log 2; log(1 + e^−1000) = 0 in float64; 1000 + log(1 + e^−1000) − 0 = 1000.
		// The fourth row is padding (its label is even out of range).
		{"large logits with padding", []batch{{
			[]float32{0, 0, 1000, 0, 0, 1000, 5, 5},
			[]int64{0, 0, 0, -1}, 3, 2,
		}}, (math.Ln2 + 1000) / 3},
		// Near float32's limit: the loss is 3e38 − (−3e38), finite in float64.
		{"float32 extremes", []batch{{[]float32{3e38, -3e38}, []int64{1}, 1, 2}}, 2 * big},
		{"two batches", []batch{
			{[]float32{0, 0, 1000, 0, 0, 1000}, []int64{0, 0, 0}, 3, 2},
			{[]float32{1, 2, 3}, []int64{0}, 1, 3},
		}, (math.Ln2 + 1000 + 2.40760596444438) / 4},
		{"empty batch", []batch{{nil, nil, 0, 4}, {[]float32{0, 0}, []int64{1}, 1, 2}}, math.Ln2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ce CrossEntropy
			for _, b := range tc.batches {
				if err := ce.AddLogits(b.logits, b.labels, b.n, b.classes); err != nil {
					t.Fatalf("AddLogits: %v", err)
				}
			}
			if got := ce.Mean(); !near(got, tc.want) {
				t.Errorf("Mean = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCrossEntropyErrors(t *testing.T) {
	logits := []float32{0, 1, 1, 0}
	tests := []struct {
		name    string
		logits  []float32
		labels  []int64
		n       int
		classes int
		want    string
	}{
		{"label out of range", logits, []int64{0, 2}, 2, 2, "label 2 of sample 1 outside [0, 2)"},
		{"negative label", logits, []int64{-1, 0}, 2, 2, "label -1"},
		{"n beyond rows", logits, []int64{0, 0, 0}, 3, 2, "fewer than 3 rows"},
		{"n beyond labels", logits, []int64{0}, 2, 2, "1 labels for 2 samples"},
		{"zero classes", logits, []int64{0}, 1, 0, "0 classes"},
		{"negative n", logits, []int64{0}, -1, 2, "negative sample count"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ce CrossEntropy
			if err := ce.AddLogits([]float32{0, 0}, []int64{0}, 1, 2); err != nil {
				t.Fatal(err)
			}
			err := ce.AddLogits(tc.logits, tc.labels, tc.n, tc.classes)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("AddLogits error = %v, want it to contain %q", err, tc.want)
			}
			if got := ce.Mean(); !near(got, math.Ln2) {
				t.Errorf("failed AddLogits changed the mean to %v", got)
			}
		})
	}
}
