// Package pretrained loads encoder weights that other tools wrote —
// safetensors files and ONNX initializers, named by PyTorch state_dict keys —
// onto a model's parameters and buffers, and reports what matched.
package pretrained

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"bmc/graph"
	"bmc/graph/nn"
	"bmc/safetensors"
)

// Tensor is one float tensor read from a file.
type Tensor struct {
	Shape []int64
	Data  []float32
}

// ReadFile reads every tensor of a safetensors file (F32, F64, F16 and BF16
// are widened to float32; integer tensors are skipped into Skipped) or the
// float initializers of an ONNX file, chosen by the file's extension.
func ReadFile(path string) (tensors map[string]Tensor, skipped []string, err error) {
	tensors = map[string]Tensor{}
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".safetensors":
		f, err := safetensors.ReadFile(path)
		if err != nil {
			return nil, nil, err
		}
		for name, t := range f.Tensors {
			v, err := t.ToFloat32()
			if err != nil {
				// Counters such as num_batches_tracked are integers: not
				// weights.
				skipped = append(skipped, name)
				continue
			}
			tensors[name] = Tensor{Shape: t.Shape, Data: v}
		}
	case ".onnx":
		inits, err := graph.ReadInitializers(path)
		if err != nil {
			return nil, nil, err
		}
		for name, t := range inits {
			if t.DType != graph.Float32 {
				skipped = append(skipped, name)
				continue
			}
			tensors[name] = Tensor{Shape: t.Shape, Data: t.Float32}
		}
	default:
		if _, err := os.Stat(path); err != nil {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%s: extension %q: want .safetensors or .onnx", path, ext)
	}
	slices.Sort(skipped)
	return tensors, skipped, nil
}

// Mismatch is a tensor whose stored shape differs from the model's.
type Mismatch struct {
	Name  string  `json:"name"`
	File  []int64 `json:"file"`
	Model []int64 `json:"model"`
}

// Report says what loading one file onto one modality's encoder did.
type Report struct {
	Modality string `json:"modality"`
	File     string `json:"file"`
	// Loaded are the model tensors that took the file's values.
	Loaded []string `json:"loaded"`
	// Missing are the encoder's tensors the file lacks; they keep their
	// initial values.
	Missing []string `json:"missing,omitempty"`
	// Unexpected are the file's tensors that match no encoder tensor
	// (including non-float ones).
	Unexpected []string `json:"unexpected,omitempty"`
	// Mismatched were found with another shape and not loaded.
	Mismatched []Mismatch `json:"mismatched,omitempty"`
}

// Apply copies the tensors onto the parameters and buffers of modality's
// encoder in values (a model's InitValues). A file key k names the tensor
// k when k already carries the encoder's prefix (a bmc checkpoint or
// model.onnx), and prefix+k otherwise (a plain PyTorch state_dict).
func Apply(values map[string][]float32, m *nn.Model, modality string, tensors map[string]Tensor, skipped []string) (Report, error) {
	if !slices.Contains(m.ModalityNames(), modality) {
		return Report{}, fmt.Errorf("pretrained weights for modality %s: the model has modalities %s", modality, strings.Join(m.ModalityNames(), ", "))
	}
	prefix := nn.EncoderPrefix(modality)
	shapes := map[string]graph.Shape{}
	for _, p := range m.Params() {
		if p.Modality == modality {
			shapes[p.Name] = p.Shape
		}
	}
	for _, b := range m.Buffers() {
		if b.Modality == modality {
			shapes[b.Name] = b.Shape
		}
	}
	r := Report{Modality: modality, Unexpected: slices.Clone(skipped)}
	loaded := map[string]bool{}
	for _, key := range slices.Sorted(maps.Keys(tensors)) {
		name := key
		if !strings.HasPrefix(key, prefix) {
			name = prefix + key
		}
		want, ok := shapes[name]
		if !ok {
			r.Unexpected = append(r.Unexpected, key)
			continue
		}
		t := tensors[key]
		if !want.Equal(t.Shape) {
			r.Mismatched = append(r.Mismatched, Mismatch{Name: name, File: t.Shape, Model: want})
			continue
		}
		if loaded[name] {
			return r, fmt.Errorf("pretrained weights for modality %s: tensor %s is given twice (as %s and %s)", modality, name, key, strings.TrimPrefix(name, prefix))
		}
		loaded[name] = true
		values[name] = slices.Clone(t.Data)
		r.Loaded = append(r.Loaded, name)
	}
	for _, name := range slices.Sorted(maps.Keys(shapes)) {
		if !loaded[name] {
			r.Missing = append(r.Missing, name)
		}
	}
	slices.Sort(r.Unexpected)
	return r, nil
}

// Check is the error a report amounts to: none when every encoder tensor
// was loaded; otherwise, unless allowMissing, one naming the missing and
// wrongly shaped tensors.
func (r Report) Check(allowMissing bool) error {
	if allowMissing || (len(r.Missing) == 0 && len(r.Mismatched) == 0) {
		return nil
	}
	var parts []string
	if len(r.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("%d missing (%s)", len(r.Missing), list(r.Missing)))
	}
	if len(r.Mismatched) > 0 {
		var names []string
		for _, m := range r.Mismatched {
			names = append(names, fmt.Sprintf("%s is %v in the file, %v in the model", m.Name, m.File, m.Model))
		}
		parts = append(parts, fmt.Sprintf("%d wrongly shaped (%s)", len(r.Mismatched), list(names)))
	}
	return fmt.Errorf("%s: pretrained weights for modality %s: %s; pass --allow-missing to keep their initial values", r.File, r.Modality, strings.Join(parts, "; "))
}

// Summary is one line for a terminal.
func (r Report) Summary() string {
	return fmt.Sprintf("%s → %s: %d loaded, %d missing, %d unexpected, %d wrongly shaped",
		r.File, r.Modality, len(r.Loaded), len(r.Missing), len(r.Unexpected), len(r.Mismatched))
}

// list shows at most 8 names, then a count.
func list(names []string) string {
	if len(names) <= 8 {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:8], ", ") + fmt.Sprintf(", and %d more", len(names)-8)
}
