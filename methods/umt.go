package methods

import (
	"bmc/compile"
	"bmc/graph"
	"bmc/graph/nn"
)

// umt is UMT, uni-modal teacher distillation (Du et al. 2023; spec §4.7):
// L = CE(z, y) + scaling·Σ_m MSE(φ_m^teacher, φ_m^student), where each
// teacher is the encoder of a unimodal model of modality m trained first
// and run without gradients on the same batch. The teachers' weights are
// frozen state of the step graph, read from finished Unimodal runs
// (`--teacher m=RUN_DIR`; without it `bmc train` trains them first). The
// distillation term acts inside the modulation window, as the reference's.
//
// The teachers run in evaluation mode (running batch-norm statistics, no
// dropout): they are fixed models. The reference leaves them in training
// mode, so their features use the batch's statistics and dropout;
// compat=true does that.
type umt struct{}

// umtEntry is the registry row of the method.
func umtEntry() entry { return entry{info: umtInfo(), method: umt{}} }

func umtInfo() Info {
	return Info{Name: "umt", Display: "UMT", Category: CategoryObjective, Indicator: "N/A", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, Audio", Citation: "Du et al. 2023", Cost: "1F + 1BW + n·U (teacher); n unimodal trainings first",
		Params: append([]Param{
			float("scaling", "10", "distillation weight").atLeast(0),
			float("alpha", "1", "unused by the reference"),
			{Name: "compat", Default: "false", Kind: "bool", Doc: "run the teachers in training mode (batch statistics, dropout), as the reference does"},
		}, window("0")...)}
}

func (umt) Info() Info { return umtInfo() }

func (umt) Model(spec nn.ModelSpec, _ Hyper) (nn.ModelSpec, error) {
	if err := requireModalities("umt", spec, 2, 3); err != nil {
		return spec, err
	}
	return spec, nil
}

const umtActive = "umt.active"

func (umt) Build(b *compile.Builder, hp Hyper) error {
	return buildLossStep(b, "umt", func(s *compile.Step, out nn.Outputs, ce *graph.Value) (*graph.Value, error) {
		g := s.G
		mode := nn.Eval
		if hp.Bool("compat") {
			mode = nn.Train
		}
		var terms []*graph.Value
		for _, m := range s.Model().ModalityNames() {
			teacher, err := s.TeacherFeatures(m, mode)
			if err != nil {
				return nil, err
			}
			d := g.Sub(teacher, out.Features[m])
			mse := g.ReduceMean(g.Mul(d, d), false)
			s.Metric("umt.mse/"+m, g.Reshape(mse, 1))
			terms = append(terms, mse)
		}
		active := s.Input(umtActive, graph.Shape{1}, []float32{1}, "1 inside the modulation window, else 0")
		weight := g.Mul(g.ReduceSum(active, false), g.ConstFloat(float32(hp.Float("scaling"))))
		s.Metric("umt.ce", g.Reshape(ce, 1))
		return g.Add(ce, g.Mul(weight, g.Sum(terms...))), nil
	})
}

func (umt) Schedule(_ *compile.Manifest, hp Hyper) (Schedule, error) {
	return umtSchedule{win: modulationWindow{input: umtActive, starts: hp.Int("modulation_starts"), ends: hp.Int("modulation_ends")}}, nil
}

// umtSchedule switches the distillation term on inside the window.
type umtSchedule struct {
	noSchedule
	win modulationWindow
}

func (u umtSchedule) BeginEpoch(r Run) error { return u.win.set(r) }
