package runtime

import (
	"fmt"
	"math"
	"strings"

	"bmc/eval"
)

// trainMetrics accumulates an epoch's training metrics.
type trainMetrics struct {
	mods     []string
	loss     float64
	steps    int
	fused    *eval.Confusion
	uni      map[string]*eval.Confusion
	extra    map[string]float64
	extraCnt map[string]int
	lastLoss float64
}

func newTrainMetrics(classes int, mods []string) *trainMetrics {
	t := &trainMetrics{mods: mods, fused: eval.NewConfusion(classes), uni: map[string]*eval.Confusion{},
		extra: map[string]float64{}, extraCnt: map[string]int{}}
	for _, m := range mods {
		t.uni[m] = eval.NewConfusion(classes)
	}
	return t
}

func (t *trainMetrics) add(pr *Program, g string, b *Batch) error {
	for _, name := range pr.MetricNames(g) {
		v, err := pr.Metric(g, name)
		if err != nil {
			return err
		}
		switch {
		case name == "loss":
			if math.IsNaN(float64(v[0])) || math.IsInf(float64(v[0]), 0) {
				return fmt.Errorf("graph %s: the loss is %v", g, v[0])
			}
			t.loss += float64(v[0])
			t.lastLoss = float64(v[0])
			t.steps++
		case name == "logits":
			if err := t.fused.AddLogits(v, b.Labels.I64, b.Size); err != nil {
				return err
			}
		case strings.HasPrefix(name, "logits/"):
			if c, ok := t.uni[strings.TrimPrefix(name, "logits/")]; ok {
				if err := c.AddLogits(v, b.Labels.I64, b.Size); err != nil {
					return err
				}
			}
		default:
			var sum float64
			for _, x := range v {
				sum += float64(x)
			}
			t.extra[name] += sum / float64(len(v))
			t.extraCnt[name]++
		}
	}
	return nil
}

// summary is the epoch's training metrics, named as evaluation's, with
// the samples the loader skipped. Accuracies whose logits no train graph
// reported (the fused logits of MLA's one-modality steps) are left out:
// Samples is 0 and the modality maps lack them.
func (t *trainMetrics) summary(skipped []SkippedSample) SplitMetrics {
	out := SplitMetrics{Samples: int(t.fused.Total()), ModalityAcc: map[string]float64{}, ModalityF1: map[string]float64{}, Skipped: skipped}
	if t.fused.Total() > 0 {
		out.Acc, out.F1 = t.fused.Accuracy(), t.fused.MacroF1()
	}
	if t.steps > 0 {
		out.Loss = t.loss / float64(t.steps)
	}
	for m, c := range t.uni {
		if c.Total() > 0 {
			out.ModalityAcc[m], out.ModalityF1[m] = c.Accuracy(), c.MacroF1()
		}
	}
	return out
}

// addScalars adds the metrics to TensorBoard tags under prefix ("val/"):
// loss, acc, f1, acc_MODALITY, f1_MODALITY.
func (s SplitMetrics) addScalars(prefix string, out map[string]float64) {
	out[prefix+"loss"], out[prefix+"acc"], out[prefix+"f1"] = s.Loss, s.Acc, s.F1
	for m, v := range s.ModalityAcc {
		out[prefix+"acc_"+m] = v
	}
	for m, v := range s.ModalityF1 {
		out[prefix+"f1_"+m] = v
	}
}

func (t *trainMetrics) methodMeans() map[string]float64 {
	if len(t.extra) == 0 {
		return nil
	}
	out := map[string]float64{}
	for k, v := range t.extra {
		out[k] = v / float64(t.extraCnt[k])
	}
	return out
}
