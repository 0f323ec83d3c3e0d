package methods

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"

	"bmc/compile"
	"bmc/datasets"
	"bmc/graph"
	"bmc/graph/nn"
)

// sample is Modality-valuation (Wei et al. 2024a; spec §4.1). From epoch
// modulation_starts on, every epoch begins with a valuation of every
// training sample: the evaluation graph runs over the training split under
// each non-empty modality subset S, c_S(i) = 1 when sample i is classified
// right (c_∅ = 0), and the per-sample Shapley values φ_m(i) follow. The
// epoch then trains on an enlarged list rebuilt from scratch: the training
// split plus copies of samples that carry only some modalities (the others
// zero-filled), more copies for samples and modalities that contribute less.
// Each copy's keep mask reaches the step graph as a per-sample keep input
// [B, n], which the schedule fills before every step from its list.
type sample struct{}

// sampleEntry is the registry row of the method.
func sampleEntry() entry { return entry{info: sampleInfo(), method: sample{}} }

func sampleInfo() Info {
	ratio := float("part_ratio", "0.2", "share of the training set sampled to estimate the mean contributions (Modality-level)")
	ratio.Range = &Range{Min: 0, Max: 1, MinOpen: true}
	return Info{Name: "sample", Display: "Modality-valuation", Category: CategoryData, Indicator: "Shapley-based metric", PaperModalities: 2, MaxModalities: 3,
		Domains: "CV, Audio", Citation: "Wei et al. 2024a", Cost: "1F + 1BW on an enlarged set; every epoch ≥ 1: (2ⁿ−1)·Fe over the train set",
		Params: []Param{
			{Name: "method", Default: sampleModalityLevel, Kind: "choice", Choices: []string{sampleModalityLevel, sampleSampleLevel}, Doc: "how the copies are chosen"},
			ratio,
			integer("modulation_starts", "1", "first epoch (0-based) that trains on the enlarged set").atLeast(0),
		}}
}

// The two ways of choosing copies.
const (
	sampleModalityLevel = "Modality-level"
	sampleSampleLevel   = "Sample-level"
)

func (sample) Info() Info { return sampleInfo() }

func (sample) Model(spec nn.ModelSpec, _ Hyper) (nn.ModelSpec, error) {
	if err := requireModalities("sample", spec, 2, 3); err != nil {
		return spec, err
	}
	return spec, nil
}

// sampleKeep is the step graph's per-sample keep mask.
const sampleKeep = "sample.keep"

func (sample) Build(b *compile.Builder, hp Hyper) error {
	cfg := b.Config()
	n := len(b.Model().ModalityNames())
	s := b.NewStep(TrainGraph, compile.RoleTrain, cfg.BatchSize)
	ones := make([]float32, cfg.BatchSize*n)
	for i := range ones {
		ones[i] = 1
	}
	keep := s.Input(sampleKeep, graph.Shape{int64(cfg.BatchSize), int64(n)}, ones, "per-sample modality keep mask (set by the schedule from the epoch's list)")
	out, err := s.ForwardRows(nn.Train, keep)
	if err != nil {
		return err
	}
	loss := compile.CrossEntropy(s.G, out.Logits, s.Labels)
	if err := addLossStep(b, s, out, loss); err != nil {
		return err
	}
	epochs := int64(max(0, cfg.Epochs-hp.Int("modulation_starts")))
	passes := int64(1<<n-1) * compile.Batches(b.Dataset().Sizes[datasets.Train], cfg.EvalBatchSize, false)
	b.AddRuns(compile.Run{Graph: compile.EvalGraph, Per: compile.PerRun, Count: epochs * passes, Extra: true,
		Note: fmt.Sprintf("sample valuation: %d masked passes over the training split in each of %d epochs", 1<<n-1, epochs)})
	return nil
}

func (sample) Schedule(m *compile.Manifest, hp Hyper) (Schedule, error) {
	return &sampleSchedule{starts: hp.Int("modulation_starts"), method: hp.String("method"), partRatio: hp.Float("part_ratio"),
		batch: m.Train.BatchSize, modalities: len(m.ModalityNames())}, nil
}

// sampleSchedule rebuilds the enlarged list every epoch from the current
// model, so it keeps no state across epochs: a resumed run rebuilds what
// the uninterrupted run built.
type sampleSchedule struct {
	noSchedule
	starts     int
	method     string
	partRatio  float64
	batch      int
	modalities int
	// list is the current epoch's training list in order; nil before
	// modulation_starts (every modality kept).
	list []sampleCopy
}

// sampleCopy is one entry of the enlarged list: a training sample and the
// modalities it carries (bit i keeps modality i).
type sampleCopy struct {
	Sample int
	Keep   uint
}

func (s *sampleSchedule) PlanEpoch(r Run) (EpochPlan, error) {
	s.list = nil
	if r.Epoch() < s.starts {
		return EpochPlan{{}}, nil
	}
	phi, err := sampleShapley(r, s.modalities)
	if err != nil {
		return nil, err
	}
	n := len(phi[0])
	usable := n - n%s.batch
	all := uint(1)<<s.modalities - 1
	list := make([]sampleCopy, n, 2*n)
	for i := range list {
		list[i] = sampleCopy{Sample: i, Keep: all}
	}
	rng := r.Rand("sample.copies")
	if s.method == sampleSampleLevel {
		list = append(list, sampleLevelCopies(phi, usable)...)
	} else {
		list = append(list, modalityLevelCopies(phi, usable, s.partRatio, rng)...)
	}
	order := r.Rand("sample.order").Perm(len(list))
	s.list = make([]sampleCopy, len(list))
	samples := make([]int, len(list))
	for p, j := range order {
		s.list[p] = list[j]
		samples[p] = list[j].Sample
	}
	return EpochPlan{{Samples: samples}}, nil
}

// BeforeStep sets each row's keep mask from the list's entries of the step.
func (s *sampleSchedule) BeforeStep(r Run) error {
	buf, err := r.Input(sampleKeep)
	if err != nil {
		return err
	}
	pos := r.BatchPositions()
	if len(pos) != s.batch {
		return fmt.Errorf("step %d has %d rows, the batch is %d", r.Step(), len(pos), s.batch)
	}
	for row, p := range pos {
		keep := uint(1)<<s.modalities - 1
		if s.list != nil {
			if p >= len(s.list) {
				return fmt.Errorf("step %d reads entry %d of an enlarged list of %d", r.Step(), p, len(s.list))
			}
			keep = s.list[p].Keep
		}
		for m := range s.modalities {
			buf[row*s.modalities+m] = float32(keep >> m & 1)
		}
	}
	return nil
}

// sampleShapley values every training sample: φ[m][i] =
// Σ_{S ⊆ M\{m}} |S|!(n−|S|−1)!/n!·(c_{S∪m}(i) − c_S(i)), with c_S(i) = 1
// where the evaluation graph under keep mask S classifies sample i right,
// and c_∅ = 0.
func sampleShapley(r Run, n int) ([][]float64, error) {
	size := r.Manifest().Dataset.Spec.Sizes[datasets.Train]
	classes := int(r.Manifest().Model.Classes)
	correct := make([][]float64, 1<<n) // correct[S][i]; S = 0 stays 0
	for mask := 1; mask < 1<<n; mask++ {
		correct[mask] = make([]float64, size)
		keep := make([]float32, n)
		for m := range n {
			keep[m] = float32(mask >> m & 1)
		}
		// One purpose for every mask: a sample is augmented alike under each.
		err := r.Pass(PassOptions{Graphs: []string{compile.EvalGraph}, Split: datasets.Train, Keep: keep, Purpose: "sample.valuation"}, func(b PassBatch) error {
			z, err := b.Metric(compile.EvalGraph, "logits")
			if err != nil {
				return err
			}
			for row, i := range b.Samples {
				if argmax(z[row*classes:(row+1)*classes]) == int(b.Labels[row]) {
					correct[mask][i] = 1
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("sample valuation: %w", err)
		}
	}
	correct[0] = make([]float64, size)
	phi := make([][]float64, n)
	for m := range n {
		phi[m] = make([]float64, size)
		for sub := 0; sub < 1<<n; sub++ {
			if sub&(1<<m) != 0 {
				continue
			}
			w := shapleyWeight(bits.OnesCount(uint(sub)), n)
			for i := range size {
				phi[m][i] += w * (correct[sub|1<<m][i] - correct[sub][i])
			}
		}
	}
	return phi, nil
}

// argmax is the first index of the largest value.
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// sampleLevelCopies are the Sample-level copies: for each of the first
// `usable` samples and each modality m, 1 copy where 0.4 < φ_m < 1, 2 where
// −0.1 < φ_m < 0.4, 3 where φ_m < −0.1, none otherwise, each carrying
// modality m alone.
func sampleLevelCopies(phi [][]float64, usable int) []sampleCopy {
	var out []sampleCopy
	for i := range usable {
		for m := range phi {
			v := phi[m][i]
			copies := 0
			switch {
			case 0.4 < v && v < 1:
				copies = 1
			case -0.1 < v && v < 0.4:
				copies = 2
			case v < -0.1:
				copies = 3
			}
			for range copies {
				out = append(out, sampleCopy{Sample: i, Keep: 1 << m})
			}
		}
	}
	return out
}

// modalityLevelCopies are the Modality-level copies: the mean contribution
// μ_m over ⌊usable·part_ratio⌋ (at least 1) samples drawn with replacement
// gives gap_m = 1 − μ_m and difference = (2/3)·Σ_{m≠m'} |gap_m − gap_m'|/(n−1);
// then ⌊difference·usable⌋ samples drawn with replacement each get, for
// every modality m, one copy without the modalities m' that gap_m > gap_m'.
func modalityLevelCopies(phi [][]float64, usable int, partRatio float64, rng *rand.Rand) []sampleCopy {
	n := len(phi)
	num := max(1, int(float64(usable)*partRatio))
	mu := make([]float64, n)
	for range num {
		i := rng.IntN(usable)
		for m := range n {
			mu[m] += phi[m][i]
		}
	}
	gap := make([]float64, n)
	for m := range n {
		gap[m] = 1 - mu[m]/float64(num)
	}
	var difference float64
	for m := range n {
		for o := range n {
			if o != m {
				difference += math.Abs(gap[m] - gap[o])
			}
		}
	}
	difference = difference / float64(n-1) / 3 * 2
	keep := make([]uint, n)
	for m := range n {
		for o := range n {
			if o == m || !(gap[m] > gap[o]) {
				keep[m] |= 1 << o
			}
		}
	}
	var out []sampleCopy
	for range int(difference * float64(usable)) {
		i := rng.IntN(usable)
		for m := range n {
			out = append(out, sampleCopy{Sample: i, Keep: keep[m]})
		}
	}
	return out
}
