package methods

import (
	"encoding/json"
	"fmt"
	"strings"

	"bmc/compile"
	"bmc/datasets"
	"bmc/graph"
	"bmc/graph/nn"
)

// pmr is PMR (Fan et al. 2023; spec §4.15). At the start of every epoch the
// schedule runs a feature pass (evaluation mode) over a random 10% of the
// training samples and forms class prototypes: the mean encoder feature of
// each class per modality, momentum-averaged with the previous epoch's from
// epoch 1 on. The step graph takes the prototypes as runtime inputs and
// scores each modality by p_m = Σ_i softmax(−‖φ_m(i) − proto_m‖)_i[y_i].
// With two modalities the weaker one (by ρ = p_0/p_1) gets the prototype
// cross-entropy CE(−dist_m, y) weighted by alpha added to the loss; with
// three, OGM's rule acts on the encoder gradients: k_m = 1 − tanh(eta·ρ_m)
// for ρ_m = p_m/min_k p_k > 1, and Gaussian noise with each gradient's own
// standard deviation is subtracted. Both act inside the modulation window.
type pmr struct{}

// pmrEntry is the registry row of the method.
func pmrEntry() entry { return entry{info: pmrInfo(), method: pmr{}} }

func pmrInfo() Info {
	return Info{Name: "pmr", Display: "PMR", Category: CategoryOptimization, Indicator: "prototype", PaperModalities: 2, MaxModalities: 3,
		Domains: "CV, Audio", Citation: "Fan et al. 2023", Cost: "1F + 1BW; per epoch Fe over 10% of train",
		Params: append([]Param{
			float("alpha", "0.6", "prototype-loss weight").atLeast(0),
			float("momentum_coef", "0.5", "weight of the previous epoch's prototypes").probability(),
			float("eta", "0.01", "3-modality modulation scale").atLeast(0),
		}, window("0")...)}
}

func (pmr) Info() Info { return pmrInfo() }

func (pmr) Model(spec nn.ModelSpec, _ Hyper) (nn.ModelSpec, error) {
	if err := requireModalities("pmr", spec, 2, 3); err != nil {
		return spec, err
	}
	return spec, nil
}

const (
	pmrActive      = "pmr.active"
	pmrProtoPrefix = "pmr.prototype/"
	pmrNoisePrefix = "pmr.noise/"
	// pmrFeatures is the feature graph of the prototype pass.
	pmrFeatures = "pmr.features"
)

// pmrSamples is the size of the prototype pass: 10% of the training
// samples, at least one.
func pmrSamples(train int) int { return (train + 9) / 10 }

func (pmr) Build(b *compile.Builder, hp Hyper) error {
	s := b.NewStep(TrainGraph, compile.RoleTrain, b.Config().BatchSize)
	out, err := s.Forward(nn.Train, nil)
	if err != nil {
		return err
	}
	g := s.G
	loss := compile.CrossEntropy(g, out.Logits, s.Labels)
	names := s.Model().ModalityNames()
	classes := s.Model().Spec.Classes
	old := g.SetPhase(graph.PhaseMethod)
	pop := g.Scope("pmr")
	active := s.Input(pmrActive, graph.Shape{1}, []float32{0}, "1 inside the modulation window, else 0")
	onehot := g.OneHot(s.Labels, classes)
	sim := map[string]*graph.Value{}
	score := make([]*graph.Value, len(names))
	for i, m := range names {
		phi := out.Features[m]
		proto := s.Input(pmrProtoPrefix+m, graph.Shape{classes, phi.Shape()[1]}, nil, "class prototypes of "+m+" (set by the schedule every epoch)")
		sim[m] = g.Neg(euclidean(g, phi, proto))
		score[i] = g.ReduceSum(g.Mul(g.Softmax(sim[m], 1), onehot), false)
		s.Metric("pmr.score/"+m, g.Reshape(score[i], 1))
	}
	one, zero := g.ConstFloat(1), g.ConstFloat(0)
	alpha := g.ConstFloat(float32(hp.Float("alpha")))
	var grads map[string]*graph.Value
	if len(names) == 2 {
		// ρ = p_0/p_1: the prototype CE of the weaker modality joins the loss.
		rho := g.Div(score[0], score[1])
		coef := []*graph.Value{g.Where(g.Less(rho, one), alpha, zero), g.Where(g.Greater(rho, one), alpha, zero)}
		s.Metric("pmr.ratio", g.Reshape(rho, 1))
		for i, m := range names {
			s.Metric("pmr.coef/"+m, g.Reshape(coef[i], 1))
			loss = g.Add(loss, g.Mul(g.Mul(active, coef[i]), compile.CrossEntropy(g, sim[m], s.Labels)))
		}
		pop()
		g.SetPhase(old)
		if grads, err = s.Gradients(loss); err != nil {
			return err
		}
	} else {
		pop()
		g.SetPhase(old)
		if grads, err = s.Gradients(loss); err != nil {
			return err
		}
		g.SetPhase(graph.PhaseMethod)
		pop = g.Scope("pmr")
		original := map[string]*graph.Value{}
		for k, v := range grads {
			original[k] = v
		}
		lowest := g.Min(score...)
		eta := g.ConstFloat(float32(hp.Float("eta")))
		coef := map[string]*graph.Value{}
		for i, m := range names {
			rho := g.Div(score[i], lowest)
			k := g.Where(g.Greater(rho, one), g.Sub(one, g.Tanh(g.Mul(eta, rho))), one)
			s.Metric("pmr.coef/"+m, g.Reshape(k, 1))
			coef[m] = g.Add(one, g.Mul(active, g.Sub(k, one)))
		}
		scaleModalityGrads(g, s.Model().Params(), grads, coef)
		addGradientNoise(s, original, grads, active, pmrNoisePrefix, true)
		pop()
		g.SetPhase(old)
	}
	s.Optimize(grads)
	reportForward(s, out, loss)
	if err := b.Add(s, 1); err != nil {
		return err
	}
	passes := compile.Batches(pmrSamples(b.Dataset().Sizes[datasets.Train]), b.Config().EvalBatchSize, false)
	return addFeatureGraph(b, pmrFeatures, compile.Run{Per: compile.PerEpoch, Count: passes, Extra: true,
		Note: "prototype feature pass over 10% of the training split"})
}

// euclidean is the distance of every row of x [B, d] to every row of p
// [C, d], [B, C]. Its gradient at distance 0 is 0, as torch.cdist's.
func euclidean(g *graph.Graph, x, p *graph.Value) *graph.Value {
	d := g.Sub(g.Unsqueeze(x, 1), g.Unsqueeze(p, 0))
	sq := g.ReduceSum(g.Mul(d, d), false, 2)
	pos := g.Greater(sq, g.ConstFloat(0))
	return g.Where(pos, g.Sqrt(g.Where(pos, sq, g.ConstFloat(1))), g.ConstFloat(0))
}

func (pmr) Schedule(m *compile.Manifest, hp Hyper) (Schedule, error) {
	s := &pmrSchedule{win: modulationWindow{input: pmrActive, starts: hp.Int("modulation_starts"), ends: hp.Int("modulation_ends")},
		momentum: hp.Float("momentum_coef"), noise: inputsWithPrefix(m, pmrNoisePrefix), sizes: map[string]int{}}
	for _, in := range m.Inputs {
		if mod, ok := strings.CutPrefix(in.Name, pmrProtoPrefix); ok {
			s.sizes[mod] = int(in.Shape.Size())
		}
	}
	return s, nil
}

// pmrSchedule computes the prototypes each epoch and, with three
// modalities, draws the gradient noise of every step.
type pmrSchedule struct {
	win      modulationWindow
	momentum float64
	noise    []string
	// sizes are the prototypes' element counts per modality, C·d_m.
	sizes map[string]int
	// prototypes maps a modality to its [C, d_m] prototypes, row-major;
	// nil before the first epoch. They are the schedule's resumable state.
	prototypes map[string][]float32
}

func (p *pmrSchedule) BeginEpoch(r Run) error {
	if err := p.win.set(r); err != nil {
		return err
	}
	n := r.Manifest().Dataset.Spec.Sizes[datasets.Train]
	samples := r.Rand("pmr.prototypes").Perm(n)[:pmrSamples(n)]
	f, err := collectFeatures(r, pmrFeatures, datasets.Train, samples, "pmr.prototypes")
	if err != nil {
		return err
	}
	p.prototypes = updatePrototypes(p.prototypes, f, int(r.Manifest().Model.Classes), p.momentum)
	for m, v := range p.prototypes {
		buf, err := r.Input(pmrProtoPrefix + m)
		if err != nil {
			return err
		}
		copy(buf, v)
	}
	return nil
}

// updatePrototypes forms each modality's class means over the features and
// averages them with the previous prototypes: (1 − momentum)·new +
// momentum·old. A class without a sample keeps its previous prototype, or
// takes the mean over all the samples when there is none yet.
func updatePrototypes(prev map[string][]float32, f features, classes int, momentum float64) map[string][]float32 {
	out := map[string][]float32{}
	for m, rows := range f.Rows {
		d := f.Width[m]
		sum := make([]float64, classes*d)
		all := make([]float64, d)
		count := make([]int, classes)
		for i, y := range f.Labels {
			count[y]++
			for j, v := range rows[i*d : (i+1)*d] {
				sum[int(y)*d+j] += float64(v)
				all[j] += float64(v)
			}
		}
		proto := make([]float32, classes*d)
		old := prev[m]
		for c := range classes {
			for j := range d {
				k := c*d + j
				switch {
				case count[c] > 0 && old == nil:
					proto[k] = float32(sum[k] / float64(count[c]))
				case count[c] > 0:
					proto[k] = float32((1-momentum)*(sum[k]/float64(count[c])) + momentum*float64(old[k]))
				case old != nil:
					proto[k] = old[k]
				default:
					proto[k] = float32(all[j] / float64(len(f.Labels)))
				}
			}
		}
		out[m] = proto
	}
	return out
}

func (p *pmrSchedule) BeforeStep(r Run) error {
	if !p.win.active(r.Epoch()) {
		return nil
	}
	return drawNormals(r, p.noise)
}

func (p *pmrSchedule) AfterStep(Run) error { return nil }

// MarshalState stores the prototypes (float32 values round-trip exactly
// through JSON).
func (p *pmrSchedule) MarshalState() ([]byte, error) { return json.Marshal(p.prototypes) }

func (p *pmrSchedule) UnmarshalState(data []byte) error {
	var protos map[string][]float32
	if err := json.Unmarshal(data, &protos); err != nil {
		return fmt.Errorf("pmr prototypes: %w", err)
	}
	if protos != nil {
		if len(protos) != len(p.sizes) {
			return fmt.Errorf("pmr prototypes: %d modalities, the plan has %d", len(protos), len(p.sizes))
		}
		for m, n := range p.sizes {
			if len(protos[m]) != n {
				return fmt.Errorf("pmr prototypes: modality %s has %d values, the plan's prototypes %d", m, len(protos[m]), n)
			}
		}
	}
	p.prototypes = protos
	return nil
}
