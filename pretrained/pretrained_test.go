package pretrained_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bmc/graph"
	"bmc/graph/nn"
	"bmc/pretrained"
	"bmc/safetensors"
)

// model has an audio MLP [6 → 4 → 3] and a visual linear encoder.
func model(t *testing.T) *nn.Model {
	t.Helper()
	m, err := nn.New(nn.ModelSpec{Classes: 2, Fusion: nn.FusionConcat, Modalities: []nn.ModalitySpec{
		{Name: "audio", Shape: graph.Shape{6}, Encoder: nn.EncoderSpec{Kind: "mlp", Hidden: []int64{4}, Out: 3}},
		{Name: "visual", Shape: graph.Shape{5}, Encoder: nn.EncoderSpec{Kind: "linear", Out: 2}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func seq(n int, start float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = start + float32(i)
	}
	return v
}

func TestApplySafetensorsStateDict(t *testing.T) {
	m := model(t)
	path := filepath.Join(t.TempDir(), "audio.safetensors")
	f := safetensors.File{Tensors: map[string]safetensors.Tensor{
		// state_dict keys of the encoder module alone.
		"0.weight": safetensors.Float32s([]int64{4, 6}, seq(24, 1)),
		"0.bias":   safetensors.Float32s([]int64{4}, seq(4, 100)),
		// 2.weight has the wrong shape, 2.bias is absent.
		"2.weight":            safetensors.Float32s([]int64{3, 5}, seq(15, 0)),
		"fc.weight":           safetensors.Float32s([]int64{1}, []float32{7}),
		"num_batches_tracked": safetensors.Int64s([]int64{}, []int64{3}),
	}}
	if err := safetensors.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	tensors, skipped, err := pretrained.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	values := m.InitValues(1)
	before := slices.Clone(values["modality_encoder.audio.2.weight"])
	rep, err := pretrained.Apply(values, m, "audio", tensors, skipped)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"modality_encoder.audio.0.bias", "modality_encoder.audio.0.weight"}; !slices.Equal(rep.Loaded, want) {
		t.Errorf("loaded %v, want %v", rep.Loaded, want)
	}
	if want := []string{"modality_encoder.audio.2.bias", "modality_encoder.audio.2.weight"}; !slices.Equal(rep.Missing, want) {
		t.Errorf("missing %v, want %v", rep.Missing, want)
	}
	if want := []string{"fc.weight", "num_batches_tracked"}; !slices.Equal(rep.Unexpected, want) {
		t.Errorf("unexpected %v, want %v", rep.Unexpected, want)
	}
	if len(rep.Mismatched) != 1 || rep.Mismatched[0].Name != "modality_encoder.audio.2.weight" ||
		!slices.Equal(rep.Mismatched[0].File, []int64{3, 5}) || !slices.Equal(rep.Mismatched[0].Model, []int64{3, 4}) {
		t.Errorf("mismatched %+v", rep.Mismatched)
	}
	if !slices.Equal(values["modality_encoder.audio.0.weight"], seq(24, 1)) || !slices.Equal(values["modality_encoder.audio.0.bias"], seq(4, 100)) {
		t.Error("loaded values differ from the file's")
	}
	if !slices.Equal(values["modality_encoder.audio.2.weight"], before) {
		t.Error("a wrongly shaped tensor changed the model's value")
	}
	err = rep.Check(false)
	for _, want := range []string{"2 missing (modality_encoder.audio.2.bias, modality_encoder.audio.2.weight)",
		"1 wrongly shaped (modality_encoder.audio.2.weight is [3 5] in the file, [3 4] in the model)", "--allow-missing"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check error %v, want it to contain %q", err, want)
		}
	}
	if err := rep.Check(true); err != nil {
		t.Errorf("Check(allowMissing): %v", err)
	}
}

// An ONNX file's initializers carry full names (as bmc's model.onnx does).
func TestApplyONNXInitializers(t *testing.T) {
	m := model(t)
	g := graph.New("weights")
	w := g.Initializer("modality_encoder.visual.0.weight", graph.Float32Tensor(graph.Shape{2, 5}, seq(10, -5)), false)
	b := g.Initializer("modality_encoder.visual.0.bias", graph.Float32Tensor(graph.Shape{2}, []float32{0.5, -0.5}), false)
	g.Output("w", g.Identity(w))
	g.Output("b", g.Identity(b))
	path := filepath.Join(t.TempDir(), "visual.onnx")
	if err := graph.WriteFile(path, &graph.Model{Graph: g}); err != nil {
		t.Fatal(err)
	}
	tensors, skipped, err := pretrained.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	values := m.InitValues(1)
	rep, err := pretrained.Apply(values, m, "visual", tensors, skipped)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Loaded) != 2 || len(rep.Missing)+len(rep.Unexpected)+len(rep.Mismatched) != 0 || rep.Check(false) != nil {
		t.Errorf("report %+v", rep)
	}
	if !slices.Equal(values["modality_encoder.visual.0.weight"], seq(10, -5)) {
		t.Error("weight not loaded from the ONNX initializer")
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ path, want string }{
		{filepath.Join(dir, "absent.safetensors"), "no such file"},
		{filepath.Join(dir, "weights.pt"), "no such file"},
	}
	for _, tc := range tests {
		if _, _, err := pretrained.ReadFile(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadFile(%s) error %v, want one containing %q", tc.path, err, tc.want)
		}
	}
	pt := filepath.Join(dir, "w.pt")
	if err := safetensors.WriteFile(pt, safetensors.File{Tensors: map[string]safetensors.Tensor{}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := pretrained.ReadFile(pt); err == nil || !strings.Contains(err.Error(), `extension ".pt": want .safetensors or .onnx`) {
		t.Errorf("ReadFile(.pt): %v", err)
	}
	if _, err := pretrained.Apply(nil, model(t), "text", nil, nil); err == nil || !strings.Contains(err.Error(), "the model has modalities audio, visual") {
		t.Errorf("Apply to an absent modality: %v", err)
	}
}
