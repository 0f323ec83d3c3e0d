package runtime

import (
	"fmt"
	"math"
	"strings"

	"bmc/datasets"
	"bmc/eval"
)

// Predictor runs a classifier on batches: the plan's evaluation graph or an
// exported model.onnx.
type Predictor interface {
	// Modalities are the model's inputs in fusion order.
	Modalities() []string
	Classes() int
	// Batch is the tensors to fill before Predict.
	Batch() *Batch
	// Predict runs the batch with the given keep mask (1 keeps a modality,
	// 0 zero-fills it) and returns the fused logits and each modality's
	// logits, [batch·classes] each.
	Predict(keep []float32) (fused []float32, unimodal map[string][]float32, err error)
}

// SplitMetrics are the performance metrics of one pass over a split.
type SplitMetrics struct {
	Samples     int                `json:"samples"`
	Loss        float64            `json:"loss"`
	Acc         float64            `json:"acc"`
	F1          float64            `json:"f1"`
	ModalityAcc map[string]float64 `json:"acc_modality"`
	ModalityF1  map[string]float64 `json:"f1_modality"`
}

// Imbalance is the masked-modality Shapley analysis (spec rule 3, §5).
type Imbalance struct {
	// Coalitions maps a modality subset ("" for none, "audio+visual") to the
	// fused accuracy with the other modalities zero-filled.
	Coalitions map[string]float64 `json:"coalitions"`
	Shapley    map[string]float64 `json:"shapley"`
	// Degree is I; absent for one modality.
	Degree *float64 `json:"imbalance_degree,omitempty"`
}

// FillRows reads samples idx of split into the batch's first len(idx) rows
// and zeroes the rest. Modalities the model does not use are read into
// scratch buffers.
func FillRows(split datasets.Split, spec datasets.Spec, b *Batch, idx []int) error {
	if len(idx) > b.Size {
		return fmt.Errorf("%d samples for a batch of %d", len(idx), b.Size)
	}
	bufs := make([]datasets.Buffer, len(spec.Modalities))
	scratch := make([]datasets.Buffer, len(spec.Modalities))
	for i, mod := range spec.Modalities {
		if b.Data[mod.Name] == nil {
			scratch[i] = newSampleBuffer(mod)
		}
	}
	for row, sample := range idx {
		for i, mod := range spec.Modalities {
			n := mod.Size()
			if t := b.Data[mod.Name]; t != nil {
				bufs[i] = datasets.Buffer{F32: rows(t.F32, row, n), I64: rows(t.I64, row, n)}
			} else {
				bufs[i] = scratch[i]
			}
		}
		label, err := split.Read(sample, bufs)
		if err != nil {
			return fmt.Errorf("dataset %s: sample %d: %w", spec.Name, sample, err)
		}
		if label < 0 || int(label) >= spec.Classes {
			return fmt.Errorf("dataset %s: sample %d has label %d, outside [0, %d)", spec.Name, sample, label, spec.Classes)
		}
		b.Labels.I64[row] = label
	}
	for _, mod := range spec.Modalities {
		if t := b.Data[mod.Name]; t != nil {
			if t.F32 != nil {
				clear(t.F32[len(idx)*mod.Size():])
			}
			if t.I64 != nil {
				clear(t.I64[len(idx)*mod.Size():])
			}
		}
	}
	clear(b.Labels.I64[len(idx):])
	return nil
}

// rows is row r of a batch tensor's data with n elements per row (nil for a
// nil slice: the tensor holds the other element type).
func rows[T any](data []T, r, n int) []T {
	if data == nil {
		return nil
	}
	return data[r*n : (r+1)*n]
}

// newSampleBuffer allocates one sample of a modality.
func newSampleBuffer(mod datasets.Modality) datasets.Buffer {
	if mod.Int {
		return datasets.Buffer{I64: make([]int64, mod.Size())}
	}
	return datasets.Buffer{F32: make([]float32, mod.Size())}
}

// Evaluate runs a predictor over every sample of a split (the last batch is
// padded and the padding ignored).
func Evaluate(p Predictor, split datasets.Split, spec datasets.Spec, keep []float32) (SplitMetrics, error) {
	fused := eval.NewConfusion(p.Classes())
	uni := map[string]*eval.Confusion{}
	for _, m := range p.Modalities() {
		uni[m] = eval.NewConfusion(p.Classes())
	}
	var ce eval.CrossEntropy
	b := p.Batch()
	idx := make([]int, 0, b.Size)
	for start := 0; start < split.Len(); start += b.Size {
		idx = idx[:0]
		for i := start; i < min(start+b.Size, split.Len()); i++ {
			idx = append(idx, i)
		}
		if err := FillRows(split, spec, b, idx); err != nil {
			return SplitMetrics{}, err
		}
		logits, per, err := p.Predict(keep)
		if err != nil {
			return SplitMetrics{}, err
		}
		if err := fused.AddLogits(logits, b.Labels.I64, len(idx)); err != nil {
			return SplitMetrics{}, err
		}
		if err := ce.AddLogits(logits, b.Labels.I64, len(idx), p.Classes()); err != nil {
			return SplitMetrics{}, err
		}
		for m, c := range uni {
			if err := c.AddLogits(per[m], b.Labels.I64, len(idx)); err != nil {
				return SplitMetrics{}, err
			}
		}
	}
	r := SplitMetrics{Samples: int(fused.Total()), Loss: ce.Mean(), Acc: fused.Accuracy(), F1: fused.MacroF1(),
		ModalityAcc: map[string]float64{}, ModalityF1: map[string]float64{}}
	for m, c := range uni {
		r.ModalityAcc[m] = c.Accuracy()
		r.ModalityF1[m] = c.MacroF1()
	}
	if math.IsNaN(r.Loss) || math.IsInf(r.Loss, 0) {
		return r, fmt.Errorf("evaluation on %s gave a non-finite loss (%v): the model produced NaN or Inf logits", spec.Name, r.Loss)
	}
	return r, nil
}

// CoalitionName names a modality subset: "audio+visual", or "" for none.
func CoalitionName(mods []string, mask int) string {
	var in []string
	for i, m := range mods {
		if mask&(1<<i) != 0 {
			in = append(in, m)
		}
	}
	return strings.Join(in, "+")
}

// MeasureImbalance evaluates the fused accuracy on every modality subset
// (2ⁿ passes, v(∅) included as measured), then the Shapley values and I.
func MeasureImbalance(p Predictor, split datasets.Split, spec datasets.Spec) (Imbalance, error) {
	mods := p.Modalities()
	n := len(mods)
	v := make([]float64, 1<<n)
	res := Imbalance{Coalitions: map[string]float64{}, Shapley: map[string]float64{}}
	keep := make([]float32, n)
	for mask := range 1 << n {
		for i := range keep {
			keep[i] = float32((mask >> i) & 1)
		}
		m, err := Evaluate(p, split, spec, keep)
		if err != nil {
			return res, err
		}
		v[mask] = m.Acc
		res.Coalitions[CoalitionName(mods, mask)] = m.Acc
	}
	phi, err := eval.Shapley(n, v)
	if err != nil {
		return res, err
	}
	for i, m := range mods {
		res.Shapley[m] = phi[i]
	}
	if d, ok := eval.Imbalance(phi); ok {
		res.Degree = &d
	}
	return res, nil
}

// planPredictor runs a program's evaluation graph.
type planPredictor struct {
	pr    *Program
	graph string
}

func (p planPredictor) Modalities() []string { return p.pr.Plan.Manifest.ModalityNames() }
func (p planPredictor) Classes() int         { return int(p.pr.Plan.Manifest.Model.Classes) }
func (p planPredictor) Batch() *Batch {
	b, _ := p.pr.BatchOf(p.graph)
	return b
}

func (p planPredictor) Predict(keep []float32) ([]float32, map[string][]float32, error) {
	if err := p.pr.SetKeep(p.graph, keep); err != nil {
		return nil, nil, err
	}
	if err := p.pr.Run(p.graph); err != nil {
		return nil, nil, err
	}
	fused, err := p.pr.Metric(p.graph, "logits")
	if err != nil {
		return nil, nil, err
	}
	per := map[string][]float32{}
	for _, m := range p.Modalities() {
		if per[m], err = p.pr.Metric(p.graph, "logits/"+m); err != nil {
			return nil, nil, err
		}
	}
	return fused, per, nil
}

// Predictor is the program's evaluation graph as a Predictor.
func (pr *Program) Predictor() Predictor {
	return planPredictor{pr: pr, graph: "eval"}
}

// ones is a keep mask that keeps every modality.
func ones(n int) []float32 {
	k := make([]float32, n)
	for i := range k {
		k[i] = 1
	}
	return k
}
