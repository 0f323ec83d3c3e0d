package compile_test

import (
	"strings"
	"testing"

	"bmc/compile"
	"bmc/datasets"
	"bmc/graph"
	"bmc/graph/nn"
)

// frozenBuilder starts a plan of a small 2-modality MLP model.
func frozenBuilder(t *testing.T) *compile.Builder {
	t.Helper()
	params := map[string]string{"train": "32", "val": "8", "test": "8", "classes": "3"}
	d, err := datasets.Open("synth-av", datasets.Options{Params: params})
	if err != nil {
		t.Fatal(err)
	}
	spec := d.Spec()
	ms := nn.ModelSpec{Classes: int64(spec.Classes), Fusion: nn.FusionConcat}
	for _, m := range spec.Modalities {
		ms.Modalities = append(ms.Modalities, nn.ModalitySpec{Name: m.Name, Shape: graph.Shape(m.Shape), Encoder: nn.EncoderSpec{Kind: "mlp", Hidden: []int64{4}, Out: 3}})
	}
	model, err := nn.New(ms)
	if err != nil {
		t.Fatal(err)
	}
	cfg := compile.TrainConfig{Epochs: 1, BatchSize: 8, EvalBatchSize: 8, Protocol: "bmc", Optimizer: compile.OptimizerConfig{Name: compile.SGD, LR: 0.1}}
	b, err := compile.NewBuilder(model, compile.DatasetRef{Name: "synth-av", Params: params, Spec: spec}, cfg, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTeacherStateKeys(t *testing.T) {
	key := compile.TeacherState("audio", "modality_encoder.audio.0.weight")
	if m, name, ok := compile.TeacherTensor(key); !ok || m != "audio" || name != "modality_encoder.audio.0.weight" {
		t.Errorf("TeacherTensor(%q) = %q, %q, %v", key, m, name, ok)
	}
	for _, bad := range []string{"modality_encoder.audio.0.weight", "teacher/audio", "teacher//x", "teacher/audio/"} {
		if _, _, ok := compile.TeacherTensor(bad); ok {
			t.Errorf("TeacherTensor(%q) accepted a key that is no teacher's", bad)
		}
	}
}

// A teacher's forward reads frozen state that no graph may update, and a
// runtime keep mask is an input of the graph that declares it.
func TestFrozenStateAndKeepMasks(t *testing.T) {
	b := frozenBuilder(t)
	s := b.NewStep("train", compile.RoleTrain, 8)
	out, err := s.ForwardKept(nn.Train)
	if err != nil {
		t.Fatal(err)
	}
	phi, err := s.TeacherFeatures("audio", nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	if !phi.Shape().Equal(out.Features["audio"].Shape()) {
		t.Errorf("teacher features %v, the student's %v", phi.Shape(), out.Features["audio"].Shape())
	}
	if _, err := s.TeacherFeatures("depth", nn.Eval); err == nil || !strings.Contains(err.Error(), "depth") {
		t.Errorf("a teacher of an unknown modality: %v", err)
	}
	loss := compile.CrossEntropy(s.G, out.Logits, s.Labels)
	grads, err := s.Gradients(loss)
	if err != nil {
		t.Fatal(err)
	}
	s.Optimize(grads)
	s.Metric("loss", s.G.Reshape(loss, 1))
	if err := b.Add(s, 1); err != nil {
		t.Fatal(err)
	}
	p, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	var frozen []string
	for _, st := range p.Manifest.State {
		if st.Kind == compile.StateFrozen {
			frozen = append(frozen, st.Key)
			if st.Init != "params" || st.Modality != "audio" {
				t.Errorf("frozen state %+v: want init params, modality audio", st)
			}
		}
	}
	if len(frozen) != 4 { // two Linear layers, weight and bias
		t.Errorf("frozen state %v, want the audio encoder's 4 tensors", frozen)
	}
	gi, _ := p.Manifest.Graph("train")
	keeps := 0
	for _, io := range gi.Inputs {
		if io.Kind == compile.IOKeep {
			keeps++
		}
	}
	for _, io := range gi.Outputs {
		if io.Kind == compile.IOState && strings.HasPrefix(io.Key, "teacher/") {
			t.Errorf("the train graph updates %s", io.Key)
		}
	}
	if keeps != 1 {
		t.Errorf("the train graph has %d keep inputs, want 1", keeps)
	}

	// A plan whose graph updates frozen state, or whose frozen state is
	// not read from the plan, is rejected.
	m := p.Manifest
	m.State = append([]compile.StateInfo(nil), m.State...)
	for i := range m.State {
		if m.State[i].Key == "fusion_module.fc_out.weight" {
			m.State[i].Kind = compile.StateFrozen
		}
	}
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "frozen") {
		t.Errorf("a graph updating frozen state: %v", err)
	}
	m.State = append([]compile.StateInfo(nil), p.Manifest.State...)
	for i := range m.State {
		if m.State[i].Kind == compile.StateFrozen {
			m.State[i].Init = "zeros"
		}
	}
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "frozen state has init") {
		t.Errorf("frozen state initialised to zeros: %v", err)
	}
}

func TestFrozenStateCannotBeUpdated(t *testing.T) {
	b := frozenBuilder(t)
	s := b.NewStep("train", compile.RoleTrain, 8)
	out, err := s.Forward(nn.Train, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Metric("logits", out.Logits)
	v := s.Frozen("teacher/audio/x", graph.Shape{2}, "audio")
	s.Update("teacher/audio/x", s.G.Add(v, v))
	if err := b.Add(s, 1); err == nil || !strings.Contains(err.Error(), "update of frozen state teacher/audio/x") {
		t.Errorf("updating frozen state: %v", err)
	}
}
