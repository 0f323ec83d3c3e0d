package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/safetensors"
)

func TestCompileLoadsPretrainedWeights(t *testing.T) {
	dir := t.TempDir()
	weights := filepath.Join(dir, "audio.safetensors")
	w := make([]float32, 4*32)
	for i := range w {
		w[i] = float32(i) / 100
	}
	f := safetensors.File{Tensors: map[string]safetensors.Tensor{
		"0.weight": safetensors.Float32s([]int64{4, 32}, w),
		"0.bias":   safetensors.Float32s([]int64{4}, []float32{1, 2, 3, 4}),
	}}
	if err := safetensors.WriteFile(weights, f); err != nil {
		t.Fatal(err)
	}
	args := []string{"compile", "--method", "baseline", "--dataset", "synth-av", "--encoder", "audio=mlp:4,2", "--pretrained", "audio=" + weights}

	// The file lacks layer 2: an error naming it, unless --allow-missing.
	_, err := bmc(t, append(args, "-o", filepath.Join(dir, "refused"))...)
	if err == nil || !strings.Contains(err.Error(), "modality_encoder.audio.2.weight") || !strings.Contains(err.Error(), "--allow-missing") {
		t.Fatalf("compile with missing tensors: %v", err)
	}
	planDir := filepath.Join(dir, "plan")
	out, err := bmc(t, append(args, "--allow-missing", "-o", planDir)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "pretrained: "+weights+" → audio: 2 loaded, 2 missing, 0 unexpected, 0 wrongly shaped") {
		t.Errorf("compile output lacks the pretrained report:\n%s", out)
	}
	p, err := compile.Load(planDir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Init["modality_encoder.audio.0.weight"], w) || !slices.Equal(p.Init["modality_encoder.audio.0.bias"], []float32{1, 2, 3, 4}) {
		t.Error("the plan's initial values are not the file's")
	}
	if len(p.Manifest.Pretrained) != 1 || len(p.Manifest.Pretrained[0].Missing) != 2 {
		t.Errorf("plan.json pretrained record %+v", p.Manifest.Pretrained)
	}
	if _, err := bmc(t, "compile", "--method", "baseline", "--dataset", "synth-av", "--pretrained", weights, "-o", filepath.Join(dir, "x")); err == nil || !strings.Contains(err.Error(), "want MODALITY=FILE") {
		t.Errorf("--pretrained without a modality: %v", err)
	}
}
