package methods

import (
	"fmt"
	"slices"

	"bmc/compile"
	"bmc/graph"
	"bmc/graph/nn"
)

// cml is CML, Calibrating Multimodal Learning (Ma et al. 2023; spec §4.9):
// the confidence of a prediction must not grow when a modality is removed.
// Once per epoch the schedule shuffles the modalities into a list R; each
// step starts from out_0 = z and, popping r from the end of R n−1 times,
// forms out_i = out_{i−1} − z_r + b/n (the modality's term removed, the full
// bias kept). Inside the modulation window the loss is
//
//	(CE(z) + Σ_i CE(out_i))/n + lam·Σ_i Σ_samples max(0, conf(out_i) − conf(out_{i−1})),
//
// conf being the largest softmax probability; outside it is CE(z). The
// removal order is a [n−1, n] one-hot input the schedule sets each epoch
// from the run's random stream, so a resumed run draws the same orders.
//
// The CML paper bounds each sample's confidence (a hinge per sample); the
// reference hinges the batch's summed change
// instead, which lets samples whose confidence drops cancel those whose
// confidence rises. bmc hinges each sample and sums the hinges over the
// batch, as the reference sums the changes, so lam keeps its scale;
// compat=true hinges the batch sum.
type cml struct{}

// cmlEntry is the registry row of the method.
func cmlEntry() entry { return entry{info: cmlInfo(), method: cml{}} }

func cmlInfo() Info {
	return Info{Name: "cml", Display: "CML", Category: CategoryObjective, Indicator: "classification loss", PaperModalities: 2, MaxModalities: 3,
		Domains: "CV, NLP", Citation: "Ma et al. 2023", Cost: "1F + 1BW",
		Params: append([]Param{
			float("lam", "0.1", "confidence-loss weight").atLeast(0),
			{Name: "compat", Default: "false", Kind: "bool", Doc: "the reference's literal CML: one hinge of the batch's summed confidence change"},
		}, window("0")...)}
}

func (cml) Info() Info { return cmlInfo() }

func (cml) Model(spec nn.ModelSpec, _ Hyper) (nn.ModelSpec, error) {
	if err := requireModalities("cml", spec, 2, 3); err != nil {
		return spec, err
	}
	if spec.Fusion != nn.FusionConcat {
		return spec, fmt.Errorf("method cml removes a modality's term from the concat head's logits; the model's fusion is %q", spec.Fusion)
	}
	return spec, nil
}

const (
	cmlActive = "cml.active"
	cmlOrder  = "cml.order"
)

// cmlOrderRows writes the removal order as one-hot rows: row i marks
// order[n−1−i], the i-th element popped from the end of the list.
func cmlOrderRows(buf []float32, names, order []string) {
	clear(buf)
	n := len(names)
	for i := range n - 1 {
		buf[i*n+slices.Index(names, order[n-1-i])] = 1
	}
}

// confidence is the largest softmax probability of each row, [B], whose
// gradient reaches only that class's probability, as torch.max's does.
func confidence(g *graph.Graph, logits *graph.Value) *graph.Value {
	top := g.GatherElements(g.Softmax(logits, 1), g.ArgMax(logits, 1, true), 1)
	return g.Reshape(top, logits.Shape()[0])
}

func (cml) Build(b *compile.Builder, hp Hyper) error {
	return buildLossStep(b, "cml", func(s *compile.Step, out nn.Outputs, ce *graph.Value) (*graph.Value, error) {
		return cmlLoss(s, out, ce, float32(hp.Float("lam")), hp.Bool("compat")), nil
	})
}

// cmlLoss is CE(z) outside the window and the CML loss inside.
func cmlLoss(s *compile.Step, out nn.Outputs, ce *graph.Value, lam float32, compat bool) *graph.Value {
	g := s.G
	names := s.Model().ModalityNames()
	n := len(names)
	def := make([]float32, (n-1)*n)
	cmlOrderRows(def, names, names)
	order := s.Input(cmlOrder, graph.Shape{int64(n - 1), int64(n)}, def, "row i: one-hot of the modality the i-th pop removes (set each epoch)")
	share := g.Div(s.Params["fusion_module.fc_out.bias"], g.ConstFloat(float32(n)))
	rows := g.Split(order, 0, onesOf(n-1)...)
	prev := out.Logits
	losses := []*graph.Value{ce}
	var hinges []*graph.Value
	for i := range n - 1 {
		marks := g.Split(rows[i], 1, onesOf(n)...) // [1, 1] each
		removed := make([]*graph.Value, n)
		for k, m := range names {
			removed[k] = g.Mul(marks[k], out.Unimodal[m])
		}
		next := g.Add(g.Sub(prev, g.Sum(removed...)), share)
		losses = append(losses, compile.CrossEntropy(g, next, s.Labels))
		rise := g.Sub(confidence(g, next), confidence(g, prev))
		if compat {
			hinges = append(hinges, g.Relu(g.ReduceSum(rise, false)))
		} else {
			hinges = append(hinges, g.ReduceSum(g.Relu(rise), false))
		}
		prev = next
	}
	conf := g.Sum(hinges...)
	s.Metric("cml.conf_loss", g.Reshape(conf, 1))
	full := g.Add(g.Div(g.Sum(losses...), g.ConstFloat(float32(n))), g.Mul(g.ConstFloat(lam), conf))
	active := s.Input(cmlActive, graph.Shape{1}, []float32{1}, "1 inside the modulation window, else 0")
	return g.Add(ce, g.Mul(active, g.Sub(full, ce)))
}

func (cml) Schedule(m *compile.Manifest, hp Hyper) (Schedule, error) {
	return cmlSchedule{
		windowSchedule: windowSchedule{modulationWindow{input: cmlActive, starts: hp.Int("modulation_starts"), ends: hp.Int("modulation_ends")}},
		names:          m.ModalityNames(),
	}, nil
}

// cmlSchedule switches the window and shuffles the removal order at the
// start of every epoch.
type cmlSchedule struct {
	windowSchedule
	names []string
}

// BeginEpoch draws the epoch's order as Python's random.shuffle does
// (Fisher–Yates), from the run's stream at the epoch's first step.
func (c cmlSchedule) BeginEpoch(r Run) error {
	if err := c.windowSchedule.BeginEpoch(r); err != nil {
		return err
	}
	buf, err := r.Input(cmlOrder)
	if err != nil {
		return err
	}
	order := slices.Clone(c.names)
	r.Rand(cmlOrder).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	cmlOrderRows(buf, c.names, order)
	return nil
}
