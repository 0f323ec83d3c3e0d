// Package cluster holds what Diagnosing & Re-learning needs to score how
// well a modality's features separate the classes: min-max scaling,
// k-means (k-means++ seeding, Lloyd iterations) and cluster purity. The
// defaults follow scikit-learn's KMeans (n_init 1 for k-means++, at most 300
// iterations, tolerance 1e-4 relative to the features' mean variance); the
// random draws come from the caller's stream, so results are reproducible
// but not scikit-learn's.
package cluster

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// Points are n points of dimension D, row-major in X.
type Points struct {
	X []float64
	D int
}

// Len is the number of points.
func (p Points) Len() int { return len(p.X) / p.D }

func (p Points) row(i int) []float64 { return p.X[i*p.D : (i+1)*p.D] }

// MinMaxScale maps every column linearly onto [lo, hi] (its minimum to lo,
// its maximum to hi), in place; a constant column becomes lo, as
// scikit-learn's MinMaxScaler does.
func MinMaxScale(p Points, lo, hi float64) {
	for j := range p.D {
		mn, mx := math.Inf(1), math.Inf(-1)
		for i := range p.Len() {
			v := p.X[i*p.D+j]
			mn, mx = math.Min(mn, v), math.Max(mx, v)
		}
		r := mx - mn
		if r == 0 {
			r = 1
		}
		scale := (hi - lo) / r
		for i := range p.Len() {
			p.X[i*p.D+j] = (p.X[i*p.D+j]-mn)*scale + lo
		}
	}
}

// Options configure KMeans; zero fields take the defaults.
type Options struct {
	// Inits is the number of seedings; the run with the lowest inertia
	// wins (default 1, scikit-learn's n_init="auto" for k-means++).
	Inits int
	// MaxIter bounds the Lloyd iterations of one run (default 300).
	MaxIter int
	// Tol stops a run once the centres move less than Tol times the mean
	// per-column variance of the points, in summed squared distance
	// (default 1e-4).
	Tol float64
}

func (o Options) withDefaults() Options {
	if o.Inits <= 0 {
		o.Inits = 1
	}
	if o.MaxIter <= 0 {
		o.MaxIter = 300
	}
	if o.Tol == 0 {
		o.Tol = 1e-4
	}
	return o
}

// Result is a clustering.
type Result struct {
	// Labels are each point's cluster in [0, k).
	Labels []int
	// Centers are the k centres, row-major [k, D].
	Centers []float64
	// Inertia is the summed squared distance of the points to their centres.
	Inertia float64
	// Iterations of the winning run.
	Iterations int
}

// KMeans clusters the points into k clusters: greedy k-means++ seeding
// (2 + ⌊ln k⌋ candidates per centre, the best kept) and Lloyd iterations
// until the labels stop changing, the centres move less than the
// tolerance, or MaxIter.
func KMeans(p Points, k int, opt Options, rng *rand.Rand) (Result, error) {
	if p.D <= 0 || len(p.X)%p.D != 0 {
		return Result{}, fmt.Errorf("k-means: %d values do not form points of dimension %d", len(p.X), p.D)
	}
	n := p.Len()
	if k < 1 || n < k {
		return Result{}, fmt.Errorf("k-means: %d clusters of %d points: want 1 ≤ k ≤ points", k, n)
	}
	for i, v := range p.X {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Result{}, fmt.Errorf("k-means: point %d holds %v", i/p.D, v)
		}
	}
	opt = opt.withDefaults()
	tol := opt.Tol * meanVariance(p)
	var best Result
	for run := range opt.Inits {
		r := lloyd(p, seed(p, k, rng), opt.MaxIter, tol)
		if run == 0 || r.Inertia < best.Inertia {
			best = r
		}
	}
	return best, nil
}

func meanVariance(p Points) float64 {
	n := float64(p.Len())
	var total float64
	for j := range p.D {
		var s, ss float64
		for i := range p.Len() {
			v := p.X[i*p.D+j]
			s += v
			ss += v * v
		}
		mean := s / n
		total += math.Max(ss/n-mean*mean, 0)
	}
	return total / float64(p.D)
}

func sqDist(a, b []float64) float64 {
	var s float64
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return s
}

// seed picks k initial centres by greedy k-means++.
func seed(p Points, k int, rng *rand.Rand) []float64 {
	n := p.Len()
	centers := make([]float64, 0, k*p.D)
	centers = append(centers, p.row(rng.IntN(n))...)
	closest := make([]float64, n)
	var pot float64
	for i := range n {
		closest[i] = sqDist(p.row(i), centers)
		pot += closest[i]
	}
	trials := 2 + int(math.Log(float64(k)))
	cum := make([]float64, n)
	for len(centers) < k*p.D {
		var s float64
		for i, d := range closest {
			s += d
			cum[i] = s
		}
		bestIdx, bestPot := -1, math.Inf(1)
		var bestClosest []float64
		for range trials {
			// A point with probability ∝ its squared distance to the
			// nearest centre (uniform when every point sits on a centre).
			c := rng.IntN(n)
			if pot > 0 {
				c = min(sort.SearchFloat64s(cum, rng.Float64()*pot), n-1)
			}
			cand := make([]float64, n)
			var cpot float64
			for i := range n {
				cand[i] = math.Min(closest[i], sqDist(p.row(i), p.row(c)))
				cpot += cand[i]
			}
			if cpot < bestPot {
				bestIdx, bestPot, bestClosest = c, cpot, cand
			}
		}
		centers = append(centers, p.row(bestIdx)...)
		closest, pot = bestClosest, bestPot
	}
	return centers
}

// lloyd iterates assignments and centre updates from the given centres.
func lloyd(p Points, centers []float64, maxIter int, tol float64) Result {
	n, d := p.Len(), p.D
	k := len(centers) / d
	labels := make([]int, n)
	for i := range labels {
		labels[i] = -1
	}
	next := make([]float64, len(centers))
	counts := make([]int, k)
	it := 0
	converged := false
	for it < maxIter {
		it++
		changed := assign(p, centers, labels)
		if !changed {
			converged = true
			break
		}
		clear(next)
		clear(counts)
		for i, c := range labels {
			counts[c]++
			row := p.row(i)
			for j := range d {
				next[c*d+j] += row[j]
			}
		}
		for c := range k {
			if counts[c] == 0 {
				continue
			}
			for j := range d {
				next[c*d+j] /= float64(counts[c])
			}
		}
		relocateEmpty(p, centers, labels, counts, next)
		shift := sqDist(next, centers)
		copy(centers, next)
		if shift <= tol {
			break
		}
	}
	if !converged {
		assign(p, centers, labels)
	}
	var inertia float64
	for i, c := range labels {
		inertia += sqDist(p.row(i), centers[c*d:(c+1)*d])
	}
	return Result{Labels: labels, Centers: centers, Inertia: inertia, Iterations: it}
}

// assign gives every point its nearest centre (the first on ties) and
// reports whether any label changed.
func assign(p Points, centers []float64, labels []int) bool {
	d := p.D
	changed := false
	for i := range p.Len() {
		row := p.row(i)
		best, bestD := 0, math.Inf(1)
		for c := range len(centers) / d {
			if dd := sqDist(row, centers[c*d:(c+1)*d]); dd < bestD {
				best, bestD = c, dd
			}
		}
		if labels[i] != best {
			labels[i] = best
			changed = true
		}
	}
	return changed
}

// relocateEmpty moves the centre of every empty cluster onto the points
// farthest from their current centres, as scikit-learn does.
func relocateEmpty(p Points, centers []float64, labels, counts []int, next []float64) {
	d := p.D
	var empty []int
	for c, n := range counts {
		if n == 0 {
			empty = append(empty, c)
		}
	}
	if len(empty) == 0 {
		return
	}
	far := make([]int, p.Len())
	dist := make([]float64, p.Len())
	for i := range far {
		far[i] = i
		c := labels[i]
		dist[i] = sqDist(p.row(i), centers[c*d:(c+1)*d])
	}
	sort.SliceStable(far, func(a, b int) bool { return dist[far[a]] > dist[far[b]] })
	for j, c := range empty {
		copy(next[c*d:(c+1)*d], p.row(far[j]))
	}
}

// Purity is the share of points whose label is the majority label of
// their cluster: Σ_clusters max_label count / n.
func Purity(labels, clusters []int) (float64, error) {
	if len(labels) != len(clusters) || len(labels) == 0 {
		return 0, fmt.Errorf("purity: %d labels for %d cluster assignments", len(labels), len(clusters))
	}
	counts := map[[2]int]int{}
	for i, c := range clusters {
		counts[[2]int{c, labels[i]}]++
	}
	most := map[int]int{}
	for key, n := range counts {
		most[key[0]] = max(most[key[0]], n)
	}
	var hit int
	for _, n := range most {
		hit += n
	}
	return float64(hit) / float64(len(labels)), nil
}
