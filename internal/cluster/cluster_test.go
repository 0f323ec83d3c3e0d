package cluster

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestMinMaxScale(t *testing.T) {
	p := Points{X: []float64{0, 5, 2, 5, 4, 5}, D: 2}
	MinMaxScale(p, -1, 1)
	// Column 0 spans [0, 4] → [−1, 1]; column 1 is constant → −1.
	want := []float64{-1, -1, 0, -1, 1, -1}
	if !slices.Equal(p.X, want) {
		t.Errorf("scaled %v, want %v", p.X, want)
	}
}

// Lloyd's iterations on 1-D points {0, 2, 3, 9} from centres 0 and 2, by
// hand: labels 0111 → centres 0, 14/3; labels 0011 → 1, 6; labels 0001 →
// 5/3, 9; no label changes in the fourth assignment.
func TestLloydHandWorked(t *testing.T) {
	p := Points{X: []float64{0, 2, 3, 9}, D: 1}
	r := lloyd(p, []float64{0, 2}, 300, 0)
	if !slices.Equal(r.Labels, []int{0, 0, 0, 1}) || r.Iterations != 4 {
		t.Errorf("labels %v after %d iterations, want [0 0 0 1] after 4", r.Labels, r.Iterations)
	}
	if math.Abs(r.Centers[0]-5.0/3) > 1e-12 || r.Centers[1] != 9 {
		t.Errorf("centres %v, want [5/3 9]", r.Centers)
	}
	if want := 42.0 / 9; math.Abs(r.Inertia-want) > 1e-12 {
		t.Errorf("inertia %v, want %v", r.Inertia, want)
	}
	// MaxIter 1 stops after the first update and assigns to its centres.
	if r := lloyd(p, []float64{0, 2}, 1, 0); !slices.Equal(r.Labels, []int{0, 0, 1, 1}) || r.Iterations != 1 {
		t.Errorf("one iteration: labels %v (%d iterations), want [0 0 1 1]", r.Labels, r.Iterations)
	}
}

// Two well-separated groups come out as the two clusters from any seed.
func TestKMeansFindsSeparatedGroups(t *testing.T) {
	p := Points{X: []float64{0, 0, 1, 0, 0, 1, 10, 10, 11, 10, 10, 11}, D: 2}
	for s := range uint64(50) {
		r, err := KMeans(p, 2, Options{}, rand.New(rand.NewPCG(s, 1)))
		if err != nil {
			t.Fatal(err)
		}
		l := r.Labels
		if l[0] != l[1] || l[1] != l[2] || l[3] != l[4] || l[4] != l[5] || l[0] == l[3] {
			t.Fatalf("seed %d: labels %v", s, l)
		}
		// Each group: centroid (1/3, 1/3), squared distances 2/9 + 5/9 + 5/9.
		if want := 2 * 12.0 / 9; math.Abs(r.Inertia-want) > 1e-9 {
			t.Fatalf("seed %d: inertia %v, want %v", s, r.Inertia, want)
		}
	}
}

// k-means++ spreads the seeds: with three far groups and k = 3 every group
// gets a centre.
func TestSeedingCoversTheGroups(t *testing.T) {
	p := Points{X: []float64{0, 0.1, 100, 100.1, -100, -100.1}, D: 1}
	for s := range uint64(50) {
		c := seed(p, 3, rand.New(rand.NewPCG(s, 2)))
		slices.Sort(c)
		if c[0] > -99 || c[1] < -1 || c[1] > 1 || c[2] < 99 {
			t.Fatalf("seed %d: centres %v", s, c)
		}
	}
}

func TestKMeansDegenerateAndBadInput(t *testing.T) {
	same := Points{X: []float64{3, 3, 3, 3}, D: 1}
	r, err := KMeans(same, 3, Options{}, rand.New(rand.NewPCG(1, 1)))
	if err != nil || r.Inertia != 0 || len(r.Labels) != 4 {
		t.Errorf("identical points: %+v, %v", r, err)
	}
	for _, tc := range []struct {
		p    Points
		k    int
		want string
	}{
		{Points{X: []float64{1, 2}, D: 1}, 3, "3 clusters of 2 points"},
		{Points{X: []float64{1, 2, 3}, D: 2}, 1, "dimension 2"},
		{Points{X: []float64{1, math.NaN()}, D: 1}, 1, "point 1 holds NaN"},
	} {
		if _, err := KMeans(tc.p, tc.k, Options{}, rand.New(rand.NewPCG(1, 1))); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v k=%d: error %v, want %q", tc.p, tc.k, err, tc.want)
		}
	}
}

func TestPurity(t *testing.T) {
	// Cluster 0 holds labels 0, 0, 1 (majority 2 of 3), cluster 1 holds 1, 2, 2.
	got, err := Purity([]int{0, 0, 1, 1, 2, 2}, []int{0, 0, 0, 1, 1, 1})
	if err != nil || math.Abs(got-4.0/6) > 1e-15 {
		t.Errorf("purity %v (%v), want 4/6", got, err)
	}
	if got, _ := Purity([]int{2, 0, 1}, []int{7, 5, 9}); got != 1 {
		t.Errorf("one point per cluster: purity %v, want 1", got)
	}
	if _, err := Purity([]int{1}, nil); err == nil {
		t.Error("purity of mismatched lengths: no error")
	}
}
