package methods

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"bmc/compile"
	"bmc/datasets"
	"bmc/graph"
	"bmc/graph/nn"
)

// gblending is Gradient-Blending (Wang et al. 2020; spec §4.11): every step
// minimises L = Σ_k w_k·CE(z_k, y) over k ∈ modalities ∪ {output}, with z_k
// the unimodal logits and z_output the fused ones. The weights are
// estimated at every epoch e with e mod super_epoch = 0 (offline: once, at
// epoch 0, with super_epoch = epochs): for each k a temporary copy of the
// model, with a fresh optimizer of the same configuration and the base
// learning rate, trains super_epoch epochs with CE on the fused output and
// every modality but k zero-filled (none for k = output); from the summed
// training loss of its first and last epochs and the summed validation CE
// after them, G = L^val_last − L^val_first, O = (L^val_last − L^train_last) −
// (L^val_first − L^train_first) and w_k = |G/O²|, normalised to sum 1. The
// run then continues from the state it had before the estimate.
type gblending struct{}

// gblendingEntry is the registry row of the method.
func gblendingEntry() entry { return entry{info: gblendingInfo(), method: gblending{}} }

func gblendingInfo() Info {
	return Info{Name: "gblending", Display: "GBlending", Category: CategoryObjective, Indicator: "classification loss", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, Audio", Citation: "Wang et al. 2020", Cost: "1F + 1BW; at epochs 0, 10, 20: (n+1)·10 epochs of F+BW + 2 validation passes each",
		Params: []Param{
			{Name: "method", Default: "online", Kind: "choice", Choices: []string{"online", "offline"}, Doc: "online re-estimates the weights every super_epoch epochs; offline once, at epoch 0, training the temporary models for all epochs"},
			integer("super_epoch", "10", "epochs between weight estimates, and the epochs each temporary model trains (online)").atLeast(2),
		}}
}

func (gblending) Info() Info { return gblendingInfo() }

func (gblending) Model(spec nn.ModelSpec, _ Hyper) (nn.ModelSpec, error) {
	if err := requireModalities("gblending", spec, 2, 3); err != nil {
		return spec, err
	}
	return spec, nil
}

const (
	gblendingWeights = "gblending.weights"
	// gblendingTemp is the temporary models' training graph: CE on the
	// fused output under the modality keep mask.
	gblendingTemp = "gblending.temp"
	// gblendingOutput names the fused output among the blended heads.
	gblendingOutput = "output"
)

// superEpoch is the estimates' period and the temporary models' epochs.
func superEpoch(cfg compile.TrainConfig, hp Hyper) (int, error) {
	if hp.String("method") == "offline" {
		if cfg.Epochs < 2 {
			return 0, fmt.Errorf("method gblending: method=offline trains the temporary models for all %d epochs; the estimate needs at least 2 (a first and a last)", cfg.Epochs)
		}
		return cfg.Epochs, nil
	}
	return hp.Int("super_epoch"), nil
}

// estimates is how many weight estimates a run of cfg.Epochs makes.
func estimates(epochs, super int) int64 { return int64((epochs + super - 1) / super) }

func (gblending) Build(b *compile.Builder, hp Hyper) error {
	cfg := b.Config()
	super, err := superEpoch(cfg, hp)
	if err != nil {
		return err
	}
	names := b.Model().ModalityNames()
	heads := append(slices.Clone(names), gblendingOutput)

	s := b.NewStep(TrainGraph, compile.RoleTrain, cfg.BatchSize)
	out, err := s.Forward(nn.Train, nil)
	if err != nil {
		return err
	}
	g := s.G
	uniform := make([]float32, len(heads))
	for i := range uniform {
		uniform[i] = 1 / float32(len(heads))
	}
	w := s.Input(gblendingWeights, graph.Shape{int64(len(heads))}, uniform, "blending weights of "+fmt.Sprint(heads)+" (set by the schedule)")
	old := g.SetPhase(graph.PhaseMethod)
	parts := g.Split(w, 0, onesOf(len(heads))...)
	var terms []*graph.Value
	for i, k := range heads {
		z := out.Logits
		if k != gblendingOutput {
			z = out.Unimodal[k]
		}
		wk := g.ReduceSum(parts[i], false)
		terms = append(terms, g.Mul(wk, compile.CrossEntropy(g, z, s.Labels)))
		s.Metric("gblending.weight/"+k, parts[i])
	}
	loss := g.Sum(terms...)
	g.SetPhase(old)
	if err := addLossStep(b, s, out, loss); err != nil {
		return err
	}

	// The temporary models' step: CE on the fused output of the kept
	// modalities.
	t := b.NewStep(gblendingTemp, compile.RoleTrain, cfg.BatchSize)
	tout, err := t.ForwardKept(nn.Train)
	if err != nil {
		return err
	}
	tloss := compile.CrossEntropy(t.G, tout.Logits, t.Labels)
	tgrads, err := t.Gradients(tloss)
	if err != nil {
		return err
	}
	t.Optimize(tgrads)
	t.Metric("loss", t.G.Reshape(tloss, 1))
	count := estimates(cfg.Epochs, super) * int64(len(heads))
	spec := b.Dataset()
	steps := compile.Batches(spec.Sizes[datasets.Train], cfg.BatchSize, true)
	val := cfg.ValidationSplit()
	valBatches := compile.Batches(spec.Sizes[val], cfg.EvalBatchSize, false)
	if err := b.AddGraph(t, compile.Run{Per: compile.PerRun, Count: count * int64(super) * steps, Extra: true,
		Note: fmt.Sprintf("temporary models: %d estimates × %d heads × %d epochs", count/int64(len(heads)), len(heads), super)}); err != nil {
		return err
	}
	b.AddRuns(compile.Run{Graph: compile.EvalGraph, Per: compile.PerRun, Count: count * 2 * valBatches, Extra: true,
		Note: fmt.Sprintf("temporary models: validation over the %s split after their first and last epochs", val)})
	return nil
}

func (gblending) Schedule(m *compile.Manifest, hp Hyper) (Schedule, error) {
	super, err := superEpoch(m.Train, hp)
	if err != nil {
		return nil, err
	}
	names := m.ModalityNames()
	return &gblendingSchedule{super: super, names: names, heads: append(slices.Clone(names), gblendingOutput)}, nil
}

// gblendingSchedule estimates the blending weights and feeds them to every
// step; the weights are its Go-side state.
type gblendingSchedule struct {
	noSchedule
	super        int
	names, heads []string
	// Weights are the current blending weights, one per head.
	Weights []float64 `json:"weights"`
	// Last is the latest estimate's record, kept with the checkpoints.
	Last []blendEstimate `json:"last,omitempty"`
}

// blendEstimate is what one temporary model measured: the summed
// training loss of its first and last epochs, the summed validation CE
// after them, and the resulting G, O and unnormalised weight.
type blendEstimate struct {
	Head       string  `json:"head"`
	TrainFirst float64 `json:"train_first"`
	TrainLast  float64 `json:"train_last"`
	ValFirst   float64 `json:"val_first"`
	ValLast    float64 `json:"val_last"`
	G          float64 `json:"g"`
	O          float64 `json:"o"`
	RawWeight  float64 `json:"raw_weight"`
	Weight     float64 `json:"weight"`
}

// blendWeights computes G, O and the weights from the measured losses: G =
// L^val_last − L^val_first, O = (L^val_last − L^train_last) − (L^val_first −
// L^train_first), w_k = |G/O²|, normalised to sum 1.
func blendWeights(est []blendEstimate) error {
	var sum float64
	for i := range est {
		e := &est[i]
		e.G = e.ValLast - e.ValFirst
		e.O = (e.ValLast - e.TrainLast) - (e.ValFirst - e.TrainFirst)
		e.RawWeight = math.Abs(e.G / (e.O * e.O))
		if math.IsNaN(e.RawWeight) || math.IsInf(e.RawWeight, 0) {
			return fmt.Errorf("head %s: G = %g, O = %g give the weight |G/O²| = %g (the temporary model's losses: train %g → %g, validation %g → %g)",
				e.Head, e.G, e.O, e.RawWeight, e.TrainFirst, e.TrainLast, e.ValFirst, e.ValLast)
		}
		sum += e.RawWeight
	}
	if sum == 0 {
		return fmt.Errorf("every head has G = 0: the temporary models' validation loss did not change, so the weights cannot be normalised")
	}
	for i := range est {
		est[i].Weight = est[i].RawWeight / sum
	}
	return nil
}

func (s *gblendingSchedule) BeginEpoch(r Run) error {
	if r.Epoch()%s.super == 0 {
		if err := s.estimate(r); err != nil {
			return fmt.Errorf("gblending estimate at epoch %d: %w", r.Epoch(), err)
		}
	}
	buf, err := r.Input(gblendingWeights)
	if err != nil {
		return err
	}
	if len(s.Weights) != len(buf) {
		return fmt.Errorf("gblending: %d weights for %d heads (the schedule state does not fit this plan)", len(s.Weights), len(buf))
	}
	for i, w := range s.Weights {
		buf[i] = float32(w)
	}
	return nil
}

// estimate trains a temporary model per head from the current state and
// puts the run back as it was.
func (s *gblendingSchedule) estimate(r Run) error {
	snap := r.Snapshot()
	est := make([]blendEstimate, len(s.heads))
	for i, head := range s.heads {
		if err := r.Restore(snap); err != nil {
			return err
		}
		e, err := s.trainTemporary(r, head)
		if err != nil {
			return fmt.Errorf("head %s: %w", head, err)
		}
		est[i] = e
	}
	if err := r.Restore(snap); err != nil {
		return err
	}
	if err := blendWeights(est); err != nil {
		return err
	}
	s.Last = est
	s.Weights = make([]float64, len(est))
	for i, e := range est {
		s.Weights[i] = e.Weight
	}
	return nil
}

// keepOf is the keep mask of a head: only its modality, or all for the
// fused output.
func (s *gblendingSchedule) keepOf(head string) []float32 {
	keep := make([]float32, len(s.names))
	for i, m := range s.names {
		if head == gblendingOutput || m == head {
			keep[i] = 1
		}
	}
	return keep
}

// trainTemporary trains the current state as a temporary model for one
// head: fresh optimizer slots, the base learning rate with no schedule,
// super epochs over shuffles of the training split.
func (s *gblendingSchedule) trainTemporary(r Run, head string) (blendEstimate, error) {
	e := blendEstimate{Head: head}
	m := r.Manifest()
	for _, st := range m.State {
		if st.Kind != compile.StateSlot {
			continue
		}
		buf, err := r.State(st.Key)
		if err != nil {
			return e, err
		}
		clear(buf)
	}
	opt := m.Train.Optimizer
	keep := s.keepOf(head)
	n := m.Dataset.Spec.Sizes[datasets.Train]
	steps := n / m.Train.BatchSize
	for ep := range s.super {
		var sum float64
		shuffle := r.Rand(fmt.Sprintf("gblending.shuffle/%s/%d", head, ep)).Perm(n)
		pass := PassOptions{Graphs: []string{gblendingTemp}, Split: datasets.Train, Samples: shuffle, Keep: keep,
			DropLast: true, LR: opt.LR, Purpose: fmt.Sprintf("gblending/%s/%d", head, ep),
			Before: func(b PassBatch) error {
				// The temporary optimizer's step counts across its epochs.
				for name, v := range opt.Inputs(opt.LR, int64(ep*steps+b.Index+1)) {
					buf, err := r.Input(name)
					if err != nil {
						return err
					}
					buf[0] = v
				}
				return nil
			}}
		err := r.Pass(pass,
			func(b PassBatch) error {
				loss, err := b.Metric(gblendingTemp, "loss")
				if err != nil {
					return err
				}
				sum += float64(loss[0])
				return nil
			})
		if err != nil {
			return e, err
		}
		if ep != 0 && ep != s.super-1 {
			continue
		}
		val, err := validationCE(r, keep, fmt.Sprintf("gblending.val/%s/%d", head, ep))
		if err != nil {
			return e, err
		}
		if ep == 0 {
			e.TrainFirst, e.ValFirst = sum, val
		} else {
			e.TrainLast, e.ValLast = sum, val
		}
	}
	return e, nil
}

// validationCE is the summed cross-entropy of the evaluation graph over the
// run's validation split under a keep mask: the sum over batches of each
// batch's mean CE (over its real rows, the last batch padded).
func validationCE(r Run, keep []float32, purpose string) (float64, error) {
	classes := int(r.Manifest().Model.Classes)
	var sum float64
	err := r.Pass(PassOptions{Graphs: []string{compile.EvalGraph}, Split: datasets.Val, Keep: keep, Purpose: purpose},
		func(b PassBatch) error {
			z, err := b.Metric(compile.EvalGraph, "logits")
			if err != nil {
				return err
			}
			var ce float64
			for i, y := range b.Labels {
				ce += crossEntropyOf(z[i*classes:(i+1)*classes], int(y))
			}
			sum += ce / float64(b.N)
			return nil
		})
	return sum, err
}

// crossEntropyOf is −log softmax(z)[y] in float64.
func crossEntropyOf(z []float32, y int) float64 {
	hi := math.Inf(-1)
	for _, v := range z {
		hi = math.Max(hi, float64(v))
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v) - hi)
	}
	return hi + math.Log(s) - float64(z[y])
}

// MarshalState stores the weights and the latest estimate.
func (s *gblendingSchedule) MarshalState() ([]byte, error) { return json.Marshal(s) }

// UnmarshalState restores what MarshalState stored.
func (s *gblendingSchedule) UnmarshalState(data []byte) error { return json.Unmarshal(data, s) }
