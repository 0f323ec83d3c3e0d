// Package eval computes the evaluation metrics of multimodal classifiers
// used by BalanceBenchmark: accuracy and macro F1 from a confusion matrix,
// mean cross-entropy, per-modality Shapley values from masked evaluations,
// and the imbalance degree derived from them.
package eval

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// Confusion is a C×C confusion matrix: Counts[t*Classes+p] is the number of
// samples of true class t predicted as class p.
type Confusion struct {
	// Classes is C, the number of classes.
	Classes int
	// Counts holds the C×C counts, row-major, true class × predicted class.
	Counts []int64
}

// maxClasses bounds Classes, so that Classes×Classes cannot overflow and a
// bad class count cannot trigger an absurd allocation.
const maxClasses = 1 << 16

// NewConfusion returns an empty confusion matrix over classes classes. For a
// class count outside [0, 65536] it returns a matrix without counts, on
// which Add, AddLogits and Merge report the bad class count.
func NewConfusion(classes int) *Confusion {
	if classes < 0 || classes > maxClasses {
		return &Confusion{Classes: classes}
	}
	return &Confusion{Classes: classes, Counts: make([]int64, classes*classes)}
}

// check reports whether c is a well-formed matrix.
func (c *Confusion) check() error {
	if c == nil {
		return errors.New("nil confusion matrix")
	}
	if c.Classes < 0 || c.Classes > maxClasses {
		return fmt.Errorf("malformed confusion matrix: %d classes, want 0 to %d", c.Classes, maxClasses)
	}
	if len(c.Counts) != c.Classes*c.Classes {
		return fmt.Errorf("malformed confusion matrix: %d counts for %d classes", len(c.Counts), c.Classes)
	}
	return nil
}

// Add records one sample of true class truth predicted as pred. It returns
// an error if either is outside [0, Classes).
func (c *Confusion) Add(truth, pred int) error {
	if err := c.check(); err != nil {
		return fmt.Errorf("eval: Add: %w", err)
	}
	if truth < 0 || truth >= c.Classes {
		return fmt.Errorf("eval: Add: true class %d outside [0, %d)", truth, c.Classes)
	}
	if pred < 0 || pred >= c.Classes {
		return fmt.Errorf("eval: Add: predicted class %d outside [0, %d)", pred, c.Classes)
	}
	c.Counts[truth*c.Classes+pred]++
	return nil
}

// AddLogits records the first n samples of a batch: logits is row-major
// [rows, Classes] and labels holds one true class per row. Rows past n (the
// padding of a short final batch) are ignored. Each prediction is the
// Argmax of its row. It returns an error, recording nothing, when n is
// negative, a slice holds fewer than n rows, or a label is out of range.
func (c *Confusion) AddLogits(logits []float32, labels []int64, n int) error {
	if err := c.check(); err != nil {
		return fmt.Errorf("eval: AddLogits: %w", err)
	}
	if err := checkBatch(logits, labels, n, c.Classes); err != nil {
		return fmt.Errorf("eval: AddLogits: %w", err)
	}
	k := c.Classes
	for i := range n {
		pred := Argmax(logits[i*k : (i+1)*k])
		c.Counts[int(labels[i])*k+pred]++
	}
	return nil
}

// checkBatch validates the first n rows of a [rows, classes] logits batch
// and its labels.
func checkBatch(logits []float32, labels []int64, n, classes int) error {
	if classes <= 0 {
		return fmt.Errorf("%d classes, want at least 1", classes)
	}
	if n < 0 {
		return fmt.Errorf("negative sample count %d", n)
	}
	if len(labels) < n {
		return fmt.Errorf("%d labels for %d samples", len(labels), n)
	}
	if len(logits)/classes < n {
		return fmt.Errorf("%d logits hold fewer than %d rows of %d classes", len(logits), n, classes)
	}
	for i, l := range labels[:n] {
		if l < 0 || l >= int64(classes) {
			return fmt.Errorf("label %d of sample %d outside [0, %d)", l, i, classes)
		}
	}
	return nil
}

// Total returns the number of samples recorded.
func (c *Confusion) Total() int64 {
	if c == nil {
		return 0
	}
	var n int64
	for _, v := range c.Counts {
		n += v
	}
	return n
}

// Accuracy returns the fraction of samples on the diagonal (trace / total),
// or 0 when no sample was recorded or the matrix is malformed.
func (c *Confusion) Accuracy() float64 {
	if c.check() != nil {
		return 0
	}
	total := c.Total()
	if total == 0 {
		return 0
	}
	var trace int64
	for k := range c.Classes {
		trace += c.Counts[k*c.Classes+k]
	}
	return float64(trace) / float64(total)
}

// MacroF1 returns the unweighted mean of the per-class F1 scores over all
// Classes classes. For class k, precision = TP/(TP+FP) and recall =
// TP/(TP+FN), each 0 when its denominator is 0, and F1 = 2PR/(P+R), 0 when
// P+R = 0; so a class that is neither present nor predicted contributes 0.
// It returns 0 for a matrix with no classes or a malformed one.
func (c *Confusion) MacroF1() float64 {
	if c.check() != nil || c.Classes == 0 {
		return 0
	}
	k := c.Classes
	var sum float64
	for cls := range k {
		tp := c.Counts[cls*k+cls]
		var row, col int64 // true cls; predicted cls
		for j := range k {
			row += c.Counts[cls*k+j]
			col += c.Counts[j*k+cls]
		}
		p := ratio(tp, col)
		r := ratio(tp, row)
		if p+r > 0 {
			sum += 2 * p * r / (p + r)
		}
	}
	return sum / float64(k)
}

// ratio returns num/den, or 0 when den is 0.
func ratio(num, den int64) float64 {
	if den == 0 {
		return 0
	}
	return float64(num) / float64(den)
}

// Merge adds the counts of o to c. It returns an error, changing nothing,
// when the matrices differ in size or either is malformed.
func (c *Confusion) Merge(o *Confusion) error {
	if err := c.check(); err != nil {
		return fmt.Errorf("eval: Merge: %w", err)
	}
	if err := o.check(); err != nil {
		return fmt.Errorf("eval: Merge: other: %w", err)
	}
	if o.Classes != c.Classes {
		return fmt.Errorf("eval: Merge: %d classes into %d", o.Classes, c.Classes)
	}
	for i, v := range o.Counts {
		c.Counts[i] += v
	}
	return nil
}

// Argmax returns the index of the largest entry of row; the first maximum
// wins ties. A NaN counts as larger than any number, as in PyTorch's argmax,
// so the first NaN wins. It returns -1 for an empty row.
func Argmax(row []float32) int {
	if len(row) == 0 {
		return -1
	}
	best := 0
	for i, v := range row {
		if math.IsNaN(float64(v)) {
			return i
		}
		if v > row[best] {
			best = i
		}
	}
	return best
}

// maxShapleyModalities bounds n in Shapley; v then has at most 65536
// entries.
const maxShapleyModalities = 16

// Shapley returns the Shapley value of each of n modalities from masked
// evaluations: v[S] is the metric measured with exactly the modalities in
// bitmask S kept (bit i set = modality i kept), so len(v) must be 1<<n.
// v[0], the empty coalition, is used as measured. The value of modality i is
//
//	φ_i = Σ_{S ⊆ M\{i}} |S|!(n−|S|−1)!/n! · (v(S∪{i}) − v(S)).
//
// By efficiency the values sum to v[1<<n−1] − v[0]. n must be between 1 and
// 16.
func Shapley(n int, v []float64) ([]float64, error) {
	if n < 1 || n > maxShapleyModalities {
		return nil, fmt.Errorf("eval: Shapley: %d modalities, want 1 to %d", n, maxShapleyModalities)
	}
	if len(v) != 1<<n {
		return nil, fmt.Errorf("eval: Shapley: %d coalition values for %d modalities, want %d", len(v), n, 1<<n)
	}
	// weight[s] = s!(n−s−1)!/n! = 1 / (n · C(n−1, s)).
	weight := make([]float64, n)
	binom := 1.0 // C(n−1, s)
	for s := range n {
		weight[s] = 1 / (float64(n) * binom)
		binom = binom * float64(n-1-s) / float64(s+1)
	}
	phi := make([]float64, n)
	for i := range n {
		bit := 1 << i
		var sum float64
		for s := range len(v) {
			if s&bit != 0 {
				continue
			}
			sum += weight[bits.OnesCount(uint(s))] * (v[s|bit] - v[s])
		}
		phi[i] = sum
	}
	return phi, nil
}

// Imbalance returns the imbalance degree of the Shapley values phi: the mean
// over unordered pairs {i, j} of |φi − φj|. For two modalities that is
// |φ1 − φ2|; for three, (|φ1−φ2| + |φ1−φ3| + |φ2−φ3|)/3. It is undefined for
// fewer than two modalities, and then ok is false.
func Imbalance(phi []float64) (degree float64, ok bool) {
	n := len(phi)
	if n < 2 {
		return 0, false
	}
	var sum float64
	for i := range n {
		for j := i + 1; j < n; j++ {
			sum += math.Abs(phi[i] - phi[j])
		}
	}
	return sum / float64(n*(n-1)/2), true
}

// CrossEntropy accumulates the mean cross-entropy of logits against labels
// over batches, in float64. Its zero value is ready to use.
type CrossEntropy struct {
	sum   float64
	count int64
}

// AddLogits adds the cross-entropy of the first n samples of a batch:
// logits is row-major [rows, classes] and labels holds one true class per
// row; rows past n are ignored. Each sample contributes
// log Σ_j exp(x_j) − x_label, computed stably in float64 as
// (m − x_label) + log Σ_j exp(x_j − m) with m the row maximum. It returns
// an error, adding nothing, when classes < 1, n is negative, a slice holds
// fewer than n rows, or a label is out of range. Non-finite logits give a
// non-finite mean.
func (ce *CrossEntropy) AddLogits(logits []float32, labels []int64, n, classes int) error {
	if ce == nil {
		return errors.New("eval: CrossEntropy.AddLogits: nil receiver")
	}
	if err := checkBatch(logits, labels, n, classes); err != nil {
		return fmt.Errorf("eval: CrossEntropy.AddLogits: %w", err)
	}
	for i := range n {
		row := logits[i*classes : (i+1)*classes]
		m := math.Inf(-1)
		for _, x := range row {
			m = max(m, float64(x))
		}
		var s float64
		for _, x := range row {
			s += math.Exp(float64(x) - m)
		}
		// (m − x_label) first: adding log s to m before subtracting would
		// lose it when |m| is huge.
		ce.sum += (m - float64(row[labels[i]])) + math.Log(s)
	}
	ce.count += int64(n)
	return nil
}

// Mean returns the mean cross-entropy over all samples added, or 0 when
// none were.
func (ce *CrossEntropy) Mean() float64 {
	if ce == nil || ce.count == 0 {
		return 0
	}
	return ce.sum / float64(ce.count)
}
