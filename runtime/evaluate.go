package runtime

import (
	"fmt"
	"io"
	"math"
	goruntime "runtime"
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
	// Skipped are the samples EvalOptions.SkipBad left out of the pass.
	Skipped []SkippedSample `json:"skipped,omitempty"`
}

// EvalOptions configure an evaluation pass.
type EvalOptions struct {
	// SkipBad leaves samples that fail to read out of the metrics, listing
	// them in SplitMetrics.Skipped, instead of stopping.
	SkipBad bool
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

// Evaluate runs a predictor over every sample of a split (the last batch is
// padded and the padding ignored).
func Evaluate(p Predictor, split datasets.Split, spec datasets.Spec, keep []float32) (SplitMetrics, error) {
	e, err := newEvaluator(p, split, spec, EvalOptions{})
	if err != nil {
		return SplitMetrics{}, err
	}
	return e.evaluate(keep)
}

// splitAccumulator gathers one evaluation pass's metrics.
type splitAccumulator struct {
	fused *eval.Confusion
	uni   map[string]*eval.Confusion
	ce    eval.CrossEntropy
}

// evaluator evaluates a predictor over one split, read in order by a loader
// it keeps, so repeated passes (the trainer's validation every epoch) reuse
// the loader's batch buffers.
type evaluator struct {
	p      Predictor
	spec   datasets.Spec
	loader *datasets.Loader
	order  []int
}

func newEvaluator(p Predictor, split datasets.Split, spec datasets.Spec, opt EvalOptions) (*evaluator, error) {
	loader, err := datasets.NewLoader(split, spec, datasets.LoaderOptions{BatchSize: p.Batch().Size, Workers: goruntime.NumCPU(), SkipBad: opt.SkipBad})
	if err != nil {
		return nil, err
	}
	order := make([]int, split.Len())
	for i := range order {
		order[i] = i
	}
	return &evaluator{p: p, spec: spec, loader: loader, order: order}, nil
}

// evaluate is one pass with a keep mask.
func (e *evaluator) evaluate(keep []float32) (SplitMetrics, error) {
	r, err := e.masks([][]float32{keep})
	if err != nil {
		return SplitMetrics{}, err
	}
	return r[0], nil
}

// masks evaluates every keep mask over the split, reading each batch once
// (parallel workers) and running the predictor once per mask.
func (e *evaluator) masks(masks [][]float32) ([]SplitMetrics, error) {
	p, spec := e.p, e.spec
	accs := make([]*splitAccumulator, len(masks))
	for i := range accs {
		accs[i] = &splitAccumulator{fused: eval.NewConfusion(p.Classes()), uni: map[string]*eval.Confusion{}}
		for _, m := range p.Modalities() {
			accs[i].uni[m] = eval.NewConfusion(p.Classes())
		}
	}
	b := p.Batch()
	batches, err := e.loader.Epoch(0, e.order)
	if err != nil {
		return nil, err
	}
	defer batches.Close()
	for {
		hb, err := batches.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("dataset %s: %w", spec.Name, err)
		}
		n := hb.N
		err = fillFromHost(b, spec, hb)
		batches.Release(hb)
		if err != nil {
			return nil, err
		}
		for i, keep := range masks {
			logits, per, err := p.Predict(keep)
			if err != nil {
				return nil, err
			}
			a := accs[i]
			if err := a.fused.AddLogits(logits, b.Labels.I64, n); err != nil {
				return nil, err
			}
			if err := a.ce.AddLogits(logits, b.Labels.I64, n, p.Classes()); err != nil {
				return nil, err
			}
			for m, c := range a.uni {
				if err := c.AddLogits(per[m], b.Labels.I64, n); err != nil {
					return nil, err
				}
			}
		}
	}
	out := make([]SplitMetrics, len(masks))
	for i, a := range accs {
		r := SplitMetrics{Samples: int(a.fused.Total()), Loss: a.ce.Mean(), Acc: a.fused.Accuracy(), F1: a.fused.MacroF1(),
			ModalityAcc: map[string]float64{}, ModalityF1: map[string]float64{}}
		for m, c := range a.uni {
			r.ModalityAcc[m] = c.Accuracy()
			r.ModalityF1[m] = c.MacroF1()
		}
		r.Skipped = skippedSamples(batches.Skipped())
		if math.IsNaN(r.Loss) || math.IsInf(r.Loss, 0) {
			return nil, fmt.Errorf("evaluation on %s gave a non-finite loss (%v): the model produced NaN or Inf logits", spec.Name, r.Loss)
		}
		out[i] = r
	}
	return out, nil
}

// fillFromHost copies a loaded batch into a graph's batch tensors, zeroing
// the rows past its samples, and checks the labels.
func fillFromHost(b *Batch, spec datasets.Spec, hb *datasets.HostBatch) error {
	if hb.N > b.Size {
		return fmt.Errorf("%d samples for a batch of %d", hb.N, b.Size)
	}
	for i, mod := range spec.Modalities {
		dst := b.Data[mod.Name]
		if dst == nil {
			continue
		}
		n := copy(dst.F32, hb.Data[i].F32)
		clear(dst.F32[n:])
		n = copy(dst.I64, hb.Data[i].I64)
		clear(dst.I64[n:])
	}
	for row, label := range hb.Labels[:hb.N] {
		if label < 0 || int(label) >= spec.Classes {
			return fmt.Errorf("dataset %s: sample %d has label %d, outside [0, %d)", spec.Name, hb.Indices[row], label, spec.Classes)
		}
	}
	n := copy(b.Labels.I64, hb.Labels[:hb.N])
	clear(b.Labels.I64[n:])
	return nil
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
// (2ⁿ passes over one read of the split, v(∅) included as measured), then
// the Shapley values and I. It also returns the metrics with every modality
// kept, the subset pass that a plain evaluation would repeat.
func MeasureImbalance(p Predictor, split datasets.Split, spec datasets.Spec, opt EvalOptions) (SplitMetrics, Imbalance, error) {
	e, err := newEvaluator(p, split, spec, opt)
	if err != nil {
		return SplitMetrics{}, Imbalance{}, err
	}
	return e.imbalance()
}

// imbalance is MeasureImbalance over the evaluator's split.
func (e *evaluator) imbalance() (SplitMetrics, Imbalance, error) {
	mods := e.p.Modalities()
	n := len(mods)
	v := make([]float64, 1<<n)
	res := Imbalance{Coalitions: map[string]float64{}, Shapley: map[string]float64{}}
	masks := make([][]float32, 1<<n)
	for mask := range masks {
		masks[mask] = make([]float32, n)
		for i := range n {
			masks[mask][i] = float32((mask >> i) & 1)
		}
	}
	metrics, err := e.masks(masks)
	if err != nil {
		return SplitMetrics{}, res, err
	}
	for mask, m := range metrics {
		v[mask] = m.Acc
		res.Coalitions[CoalitionName(mods, mask)] = m.Acc
	}
	phi, err := eval.Shapley(n, v)
	if err != nil {
		return SplitMetrics{}, res, err
	}
	for i, m := range mods {
		res.Shapley[m] = phi[i]
	}
	if d, ok := eval.Imbalance(phi); ok {
		res.Degree = &d
	}
	// The last mask keeps every modality.
	return metrics[len(metrics)-1], res, nil
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
