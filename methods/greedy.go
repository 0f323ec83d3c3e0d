package methods

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"bmc/compile"
	"bmc/graph"
	"bmc/graph/nn"
)

// greedy is Greedy (Wu et al. 2022; spec §4.4): the ResNet18 encoders are
// joined by an MMTM block after each of their four stages (nn.CouplingMMTM),
// and training alternates between normal steps and curation windows. After
// every normal step the conditional learning speeds are updated from the
// step's gradients: for each modality m, with g = Σ‖∇θ‖² and w = Σ‖θ‖² over
// a parameter group, M^bypass_m += g/w over the MMTM parameters of m and the
// shared squeeze layers, and M^main_m += g/w over m's other parameters (its
// encoder), summed over the whole run; BDR_m = log10(M^bypass_m/M^main_m).
// When the BDRs spread by more than alpha, the next window_size steps run in
// curation mode with the caring modality c = argmax_m BDR_m (for two
// modalities: speed = BDR_0 − BDR_1, c = 0 if the speed is positive, else 1):
// the MMTM blocks replace c's gates by their running averages.
//
// The step graph outputs the four sums per modality; the accumulation and
// the curation state are Go-side and resume through MarshalState. The
// reference needs two GPUs (a per-replica batch of 64 hard-coded into the
// MMTM block); bmc regroups frames by the real batch size on one device.
type greedy struct{}

// greedyEntry is the registry row of the method.
func greedyEntry() entry { return entry{info: greedyInfo(), method: greedy{}} }

func greedyInfo() Info {
	return Info{Name: "greedy", Display: "Greedy", Category: CategoryFeedForward, Indicator: "gradient change", PaperModalities: 2, MaxModalities: 3,
		Domains: "CV, Audio", Citation: "Wu et al. 2022", Cost: "1F(+MMTM) + 1BW",
		Params: append([]Param{
			float("alpha", "0.001", "curation threshold on the speed gap").atLeast(0),
			integer("window_size", "5", "curation steps").atLeast(1),
		}, window("0")...)}
}

func (greedy) Info() Info { return greedyInfo() }

func (greedy) Model(spec nn.ModelSpec, _ Hyper) (nn.ModelSpec, error) {
	if err := requireModalities("greedy", spec, 2, 3); err != nil {
		return spec, err
	}
	for _, m := range spec.Modalities {
		if m.Encoder.Kind != "resnet18" {
			return spec, fmt.Errorf("method greedy puts MMTM blocks between the stages of ResNet18 encoders, but modality %s has encoder %s, which has no stages for them; Greedy needs every modality to be an image, spectrogram or clip encoded by resnet18 (--encoder %s=resnet18)", m.Name, m.Encoder.Kind, m.Name)
		}
	}
	spec.Coupling = nn.CouplingMMTM
	return spec, nil
}

// greedyMetric names the step's squared norms of one group: kind is "grad"
// or "weight", group "bypass" or "main".
func greedyMetric(kind, group, modality string) string {
	return "greedy." + kind + "_sq/" + group + "/" + modality
}

// greedyGroups sorts the parameters of modality m into its bypass (the
// MMTM excitation of m and the shared squeeze layers) and main (m's other
// parameters) groups; the fusion head is in neither.
func greedyGroups(params []nn.Param, m string) (bypass, main []nn.Param) {
	for _, p := range params {
		switch {
		case strings.HasPrefix(p.Name, nn.MMTMPrefix):
			if !strings.Contains(p.Name, ".fc_excites.") || strings.Contains(p.Name, ".fc_excites."+m+".") {
				bypass = append(bypass, p)
			}
		case p.Modality == m:
			main = append(main, p)
		}
	}
	return bypass, main
}

func (greedy) Build(b *compile.Builder, _ Hyper) error {
	s, out, loss, grads, err := ceStep(b)
	if err != nil {
		return err
	}
	g := s.G
	old := g.SetPhase(graph.PhaseMethod)
	pop := g.Scope("greedy")
	params := s.Model().Params()
	sumSq := func(ps []nn.Param, of func(nn.Param) *graph.Value) *graph.Value {
		terms := make([]*graph.Value, len(ps))
		for i, p := range ps {
			v := of(p)
			terms[i] = g.ReduceSum(g.Mul(v, v), false)
		}
		return g.Reshape(g.Sum(terms...), 1)
	}
	grad := func(p nn.Param) *graph.Value { return grads[p.Name] }
	weight := func(p nn.Param) *graph.Value { return s.Params[p.Name] }
	for _, m := range s.Model().ModalityNames() {
		bypass, main := greedyGroups(params, m)
		if len(bypass) == 0 || len(main) == 0 {
			return fmt.Errorf("modality %s has %d bypass and %d main parameters; greedy needs both", m, len(bypass), len(main))
		}
		s.Metric(greedyMetric("grad", "bypass", m), sumSq(bypass, grad))
		s.Metric(greedyMetric("weight", "bypass", m), sumSq(bypass, weight))
		s.Metric(greedyMetric("grad", "main", m), sumSq(main, grad))
		s.Metric(greedyMetric("weight", "main", m), sumSq(main, weight))
	}
	pop()
	g.SetPhase(old)
	s.Optimize(grads)
	reportForward(s, out, loss)
	return b.Add(s, 1)
}

func (greedy) Schedule(m *compile.Manifest, hp Hyper) (Schedule, error) {
	names := m.ModalityNames()
	return &greedySchedule{
		win:   modulationWindow{starts: hp.Int("modulation_starts"), ends: hp.Int("modulation_ends")},
		alpha: hp.Float("alpha"), window: hp.Int("window_size"), names: names,
		state: greedyState{Bypass: make([]float64, len(names)), Main: make([]float64, len(names))},
	}, nil
}

// greedyState is the schedule's state, carried over the whole run.
type greedyState struct {
	// Bypass and Main are M^bypass_m and M^main_m.
	Bypass, Main []float64
	// Curation is set during a curation window, of which Steps have run,
	// caring for modality Caring.
	Curation bool
	Caring   int
	Steps    int
}

type greedySchedule struct {
	noSchedule
	win    modulationWindow
	alpha  float64
	window int
	names  []string
	state  greedyState
}

// BeforeStep sets the MMTM mode of the step: the caring modality's flag in
// curation, all zeros otherwise (and always outside the modulation window).
func (s *greedySchedule) BeforeStep(r Run) error {
	buf, err := r.Input(nn.MMTMCuration)
	if err != nil {
		return err
	}
	clear(buf)
	if s.state.Curation && s.win.active(r.Epoch()) {
		buf[s.state.Caring] = 1
	}
	return nil
}

// AfterStep is the reference's bookkeeping after the backward pass: a
// normal step updates the learning speeds and may open a curation window;
// a curation step counts towards its end.
func (s *greedySchedule) AfterStep(r Run) error {
	if !s.win.active(r.Epoch()) {
		return nil
	}
	st := &s.state
	if st.Curation {
		st.Steps++
		if st.Steps == s.window {
			st.Curation = false
		}
		return nil
	}
	bdr := make([]float64, len(s.names))
	for i, m := range s.names {
		var v [4]float64
		for k, name := range []string{greedyMetric("grad", "bypass", m), greedyMetric("weight", "bypass", m), greedyMetric("grad", "main", m), greedyMetric("weight", "main", m)} {
			x, err := r.Metric(name)
			if err != nil {
				return err
			}
			v[k] = float64(x[0])
		}
		if v[1] == 0 || v[3] == 0 {
			return fmt.Errorf("greedy: modality %s's bypass or main parameters have norm 0; the learning speed is undefined", m)
		}
		st.Bypass[i] += v[0] / v[1]
		st.Main[i] += v[2] / v[3]
		bdr[i] = math.Log10(st.Bypass[i] / st.Main[i])
	}
	hi, lo := 0, 0
	for i := range bdr {
		if bdr[i] > bdr[hi] {
			hi = i
		}
		if bdr[i] < bdr[lo] {
			lo = i
		}
	}
	st.Curation, st.Caring = false, 0
	if bdr[hi]-bdr[lo] > s.alpha {
		st.Curation, st.Caring, st.Steps = true, hi, 0
	}
	return nil
}

func (s *greedySchedule) MarshalState() ([]byte, error) { return json.Marshal(s.state) }

func (s *greedySchedule) UnmarshalState(data []byte) error {
	var st greedyState
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("greedy schedule state: %w", err)
	}
	if len(st.Bypass) != len(s.names) || len(st.Main) != len(s.names) || st.Caring < 0 || st.Caring >= len(s.names) {
		return fmt.Errorf("greedy schedule state: %d/%d speeds and caring modality %d for %d modalities", len(st.Bypass), len(st.Main), st.Caring, len(s.names))
	}
	s.state = st
	return nil
}
