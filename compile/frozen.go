package compile

import (
	"fmt"
	"strings"

	"bmc/graph"
	"bmc/graph/nn"
)

// StateFrozen is state that no graph updates: the weights of a teacher
// model that a method's graphs read and never train. Its values live in the
// plan (params.safetensors); checkpoints leave it out, because a resumed run
// reads it from the plan again.
const StateFrozen = "frozen"

// Frozen declares a frozen state tensor of a modality and returns it. Its
// value must be put into the plan's Init before the plan is saved or run.
func (s *Step) Frozen(key string, shape graph.Shape, modality string) *graph.Value {
	if st, ok := s.b.state[key]; ok && st.Kind != StateFrozen {
		s.G.Fail(fmt.Errorf("frozen state %s: the key is already %s state", key, st.Kind))
	}
	s.b.addState(StateInfo{Key: key, Shape: shape, Kind: StateFrozen, Modality: modality, Init: "params"})
	return s.stateInput(key, shape)
}

// teacherPrefix starts the frozen-state keys of teachers' tensors.
const teacherPrefix = "teacher/"

// TeacherState is the frozen-state key of tensor name (a state_dict key) of
// the unimodal teacher of a modality. experiment fills these from the
// teacher run's best checkpoint.
func TeacherState(modality, name string) string { return teacherPrefix + modality + "/" + name }

// TeacherTensor splits a TeacherState key into the teacher's modality and
// the tensor's name in the teacher's checkpoint.
func TeacherTensor(key string) (modality, name string, ok bool) {
	rest, ok := strings.CutPrefix(key, teacherPrefix)
	if !ok {
		return "", "", false
	}
	modality, name, ok = strings.Cut(rest, "/")
	return modality, name, ok && modality != "" && name != ""
}

// TeacherFeatures adds the forward pass of a modality's unimodal teacher
// encoder (the model's encoder of that modality, with the teacher's weights
// as frozen state) and returns its features φ_m, [B, d_m]. Nothing is
// differentiated through it and its buffers are never updated; in train
// mode it uses batch statistics and draws dropout masks as random inputs.
func (s *Step) TeacherFeatures(modality string, mode nn.Mode) (*graph.Value, error) {
	x, ok := s.Data[modality]
	if !ok {
		return nil, fmt.Errorf("teacher of modality %s: the model has no such modality", modality)
	}
	b := nn.Bindings{Params: map[string]*graph.Value{}, Buffers: map[string]*graph.Value{}, Random: s.random, Input: s.Input}
	for _, p := range s.b.model.Params() {
		if p.Modality == modality {
			b.Params[p.Name] = s.Frozen(TeacherState(modality, p.Name), p.Shape, modality)
		}
	}
	for _, buf := range s.b.model.Buffers() {
		if buf.Modality == modality {
			b.Buffers[buf.Name] = s.Frozen(TeacherState(modality, buf.Name), buf.Shape, modality)
		}
	}
	pop := s.G.Scope("teacher")
	defer pop()
	h, err := s.b.model.Encode(s.G, b, modality, x, mode)
	if err != nil {
		return nil, fmt.Errorf("teacher of modality %s: %w", modality, err)
	}
	return s.G.StopGradient(h), nil
}

// Teacher is a finished run whose trained model a plan's frozen state holds
// (the unimodal teacher a distillation method reads).
type Teacher struct {
	Modality string `json:"modality"`
	// Run is the teacher's run directory, as an absolute path.
	Run string `json:"run"`
	// FLOPs is the teacher's training cost as its plan counts it, in total
	// and by phase (MACs: the forward phase's multiply-accumulates); it
	// counts in the training cost of the plan that reads the teacher.
	FLOPs        int64            `json:"training_flops"`
	FLOPsByPhase map[string]int64 `json:"training_flops_by_phase"`
	MACs         int64            `json:"training_macs"`
}
