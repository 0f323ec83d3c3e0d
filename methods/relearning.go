package methods

import (
	"fmt"
	"math"

	"bmc/compile"
	"bmc/datasets"
	"bmc/graph/nn"
	"bmc/internal/cluster"
)

// relearning is Diagnosing & Re-learning (Wei et al. 2024b; spec §4.16).
// Training is plain CE. After the training steps of every re-init epoch the
// schedule diagnoses each modality: feature passes (evaluation mode) over
// the whole training and validation splits, each modality's features
// min-max scaled to [−1, 1] per split, k-means with k = C, and the purity of
// the clusters. A modality whose purity differs between the splits
// (gap_m = |purity_train − purity_val|) is memorising; it is pulled back
// towards its initial parameters: θ ← w_m·θ₀ + (1 − w_m)·θ with
// w_m = tanh(move_lambda·gap_m), on every parameter of its encoder. Batch-norm
// statistics and the optimizer's state are left as they are, as in the
// reference.
type relearning struct{}

// relearningEntry is the registry row of the method.
func relearningEntry() entry { return entry{info: relearningInfo(), method: relearning{}} }

func relearningInfo() Info {
	return Info{Name: "relearning", Display: "Relearning", Category: CategoryOptimization, Indicator: "clustering", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, NLP, Audio", Citation: "Wei et al. 2024b", Cost: "1F + 1BW; at epoch 15: Fe over train+val and KMeans",
		Params: append([]Param{
			float("move_lambda", "3", "re-initialisation strength").atLeast(0),
			integer("reinit_epoch", "15", "epochs between re-initialisations").atLeast(1),
			integer("reinit_num", "2", "most re-initialisations").atLeast(0),
		}, window("0")...)}
}

func (relearning) Info() Info { return relearningInfo() }

func (relearning) Model(spec nn.ModelSpec, _ Hyper) (nn.ModelSpec, error) {
	if err := requireModalities("relearning", spec, 2, 3); err != nil {
		return spec, err
	}
	return spec, nil
}

// relearningFeatures is the feature graph of the diagnosis.
const relearningFeatures = "relearning.features"

// reinitEpochs are the 0-based epochs after which the parameters are
// re-initialised: e > 0 with e mod every = 0, at most the first `most` of
// them (the reference counts every such epoch), inside the window.
func reinitEpochs(epochs int, hp Hyper) []int {
	var out []int
	every := hp.Int("reinit_epoch")
	for e := every; e < epochs && e/every <= hp.Int("reinit_num"); e += every {
		if e >= hp.Int("modulation_starts") && e <= hp.Int("modulation_ends") {
			out = append(out, e)
		}
	}
	return out
}

// valSplit is the split the trainer validates on (the test split under the
// balancemm protocol).
func valSplit(cfg compile.TrainConfig) string {
	if cfg.Protocol == "balancemm" {
		return datasets.Test
	}
	return datasets.Val
}

func (relearning) Build(b *compile.Builder, hp Hyper) error {
	if err := buildCE(b); err != nil {
		return err
	}
	cfg := b.Config()
	reinits := int64(len(reinitEpochs(cfg.Epochs, hp)))
	sizes := b.Dataset().Sizes
	classes := int(b.Model().Spec.Classes)
	val := valSplit(cfg)
	if reinits > 0 {
		for _, split := range []string{datasets.Train, val} {
			if sizes[split] < classes {
				return fmt.Errorf("the %s split has %d samples, fewer than the %d clusters (one per class) of the diagnosis", split, sizes[split], classes)
			}
		}
	}
	passes := compile.Batches(sizes[datasets.Train], cfg.EvalBatchSize, false) + compile.Batches(sizes[val], cfg.EvalBatchSize, false)
	return addFeatureGraph(b, relearningFeatures, compile.Run{Per: compile.PerRun, Count: reinits * passes, Extra: true,
		Note: fmt.Sprintf("feature passes over the train and %s splits at %d re-init epochs", val, reinits)})
}

func (relearning) Schedule(m *compile.Manifest, hp Hyper) (Schedule, error) {
	s := &relearningSchedule{lambda: hp.Float("move_lambda"), at: map[int]bool{}}
	for _, e := range reinitEpochs(m.Train.Epochs, hp) {
		s.at[e] = true
	}
	return s, nil
}

// relearningSchedule re-initialises at the re-init epochs. It keeps no
// state: which epochs re-initialise follows from the hyperparameters, and
// the k-means draws come from the run's random streams.
type relearningSchedule struct {
	noSchedule
	lambda float64
	at     map[int]bool
}

func (s *relearningSchedule) EndEpoch(r Run) error {
	if !s.at[r.Epoch()] {
		return nil
	}
	w, err := diagnose(r, s.lambda)
	if err != nil {
		return fmt.Errorf("re-learning diagnosis: %w", err)
	}
	return softReinit(r, w)
}

// diagnose gives each modality's re-init weight w_m = tanh(λ·|purity_train −
// purity_val|).
func diagnose(r Run, lambda float64) (map[string]float64, error) {
	purity := map[string]map[string]float64{}
	classes := int(r.Manifest().Model.Classes)
	for _, split := range []string{datasets.Train, datasets.Val} {
		f, err := collectFeatures(r, relearningFeatures, split, nil, "relearning/"+split)
		if err != nil {
			return nil, err
		}
		labels := make([]int, len(f.Labels))
		for i, y := range f.Labels {
			labels[i] = int(y)
		}
		for m, rows := range f.Rows {
			pts := cluster.Points{X: make([]float64, len(rows)), D: f.Width[m]}
			for i, v := range rows {
				pts.X[i] = float64(v)
			}
			cluster.MinMaxScale(pts, -1, 1)
			res, err := cluster.KMeans(pts, classes, cluster.Options{}, r.Rand("relearning.kmeans/"+m+"/"+split))
			if err != nil {
				return nil, fmt.Errorf("%s features of the %s split: %w", m, split, err)
			}
			if purity[m] == nil {
				purity[m] = map[string]float64{}
			}
			if purity[m][split], err = cluster.Purity(labels, res.Labels); err != nil {
				return nil, err
			}
		}
	}
	w := map[string]float64{}
	for m, p := range purity {
		w[m] = math.Tanh(lambda * math.Abs(p[datasets.Train]-p[datasets.Val]))
		r.Report("relearning.purity_train/"+m, p[datasets.Train])
		r.Report("relearning.purity_val/"+m, p[datasets.Val])
		r.Report("relearning.weight/"+m, w[m])
	}
	return w, nil
}

// softReinit moves every parameter of modality m towards its initial
// value: θ ← w_m·θ₀ + (1 − w_m)·θ.
func softReinit(r Run, w map[string]float64) error {
	for _, st := range r.Manifest().State {
		wm, ok := w[st.Modality]
		if st.Kind != compile.StateParam || !ok {
			continue
		}
		theta, err := r.State(st.Key)
		if err != nil {
			return err
		}
		theta0, err := r.Initial(st.Key)
		if err != nil {
			return err
		}
		for i := range theta {
			theta[i] = float32(wm*float64(theta0[i]) + (1-wm)*float64(theta[i]))
		}
	}
	return nil
}
