package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"bmc/datasets"
	"bmc/graph/onnxpb"
	"bmc/internal/machine"
)

// ExportedModel is a model.onnx written by Export, loaded in ONNX Runtime,
// as a Predictor.
type ExportedModel struct {
	Path       string
	Meta       map[string]string
	modalities []string
	classes    int
	// inputs are the modality inputs' sample shapes (no batch axis) and
	// element types, as the file declares them.
	inputs map[string]datasets.Modality
	sess   *Session
	batch  *Batch
	keep   *Tensor
	fused  *Tensor
	uni    map[string]*Tensor
}

// OpenModel loads model.onnx and allocates tensors for batches of the given size.
func OpenModel(path string, batch int, opt Options) (*ExportedModel, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, mp); err != nil {
		return nil, fmt.Errorf("%s is not an ONNX model: %w", path, err)
	}
	m := &ExportedModel{Path: path, Meta: map[string]string{}, uni: map[string]*Tensor{}, inputs: map[string]datasets.Modality{}}
	for _, e := range mp.GetMetadataProps() {
		m.Meta[e.GetKey()] = e.GetValue()
	}
	mods, ok := m.Meta["bmc.modalities"]
	if !ok || mods == "" {
		return nil, fmt.Errorf("%s: metadata bmc.modalities is missing; is it a model.onnx that bmc exported?", path)
	}
	m.modalities = strings.Split(mods, ",")
	if m.classes, err = strconv.Atoi(m.Meta["bmc.classes"]); err != nil || m.classes < 2 {
		return nil, fmt.Errorf("%s: metadata bmc.classes=%q: want an integer ≥ 2", path, m.Meta["bmc.classes"])
	}
	shapes := map[string][]int64{}
	ints := map[string]bool{}
	for _, vi := range mp.GetGraph().GetInput() {
		var shape []int64
		tt := vi.GetType().GetTensorType()
		for _, d := range tt.GetShape().GetDim() {
			shape = append(shape, d.GetDimValue())
		}
		shapes[vi.GetName()] = shape
		ints[vi.GetName()] = tt.GetElemType() == int32(onnxpb.TensorProto_INT64)
	}
	var perSample float64 // bytes of one row of every tensor allocated below
	for _, mod := range m.modalities {
		n := 1.0
		for i, d := range shapes[mod] {
			if i > 0 { // past the batch axis
				n *= float64(d)
			}
		}
		perSample += 8*n + 4*float64(m.classes)
	}
	if err := machine.CheckMemory(fmt.Sprintf("%s in batches of %d", path, batch), float64(batch)*(perSample+8+4*float64(m.classes))); err != nil {
		return nil, err
	}
	ok = false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	m.batch = &Batch{Size: batch, Data: map[string]*Tensor{}}
	ins := append([]string{}, m.modalities...)
	outs := []string{ExportLogits}
	for _, mod := range m.modalities {
		shape, found := shapes[mod]
		if !found || len(shape) < 2 {
			return nil, fmt.Errorf("%s: no input %q of rank ≥ 2", path, mod)
		}
		m.inputs[mod] = datasets.Modality{Name: mod, Shape: slices.Clone(shape[1:]), Int: ints[mod]}
		shape[0] = int64(batch)
		newTensor := NewFloat32
		if ints[mod] {
			// Token ids.
			newTensor = NewInt64
		}
		if m.batch.Data[mod], err = newTensor(shape); err != nil {
			return nil, err
		}
		if m.uni[mod], err = NewFloat32([]int64{int64(batch), int64(m.classes)}); err != nil {
			return nil, err
		}
		outs = append(outs, ExportedLogits(mod))
	}
	if m.batch.Labels, err = NewInt64([]int64{int64(batch)}); err != nil {
		return nil, err
	}
	if m.keep, err = NewFloat32([]int64{int64(len(m.modalities))}); err != nil {
		return nil, err
	}
	if m.fused, err = NewFloat32([]int64{int64(batch), int64(m.classes)}); err != nil {
		return nil, err
	}
	if m.sess, err = NewSession(data, append(ins, ExportKeep), outs, opt); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ok = true
	return m, nil
}

// DatasetParams are the dataset parameters recorded at export.
func (m *ExportedModel) DatasetParams() (map[string]string, error) {
	out := map[string]string{}
	if s := m.Meta["bmc.dataset.params"]; s != "" {
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			return nil, fmt.Errorf("%s: metadata bmc.dataset.params: %w", m.Path, err)
		}
	}
	return out, nil
}

// Modalities are the model's inputs in fusion order.
func (m *ExportedModel) Modalities() []string { return m.modalities }

// Classes is the number of classes.
func (m *ExportedModel) Classes() int { return m.classes }

// Batch is the tensors to fill before Predict.
func (m *ExportedModel) Batch() *Batch { return m.batch }

// Predict runs the model on the batch with a keep mask.
func (m *ExportedModel) Predict(keep []float32) ([]float32, map[string][]float32, error) {
	if len(keep) != len(m.keep.F32) {
		return nil, nil, fmt.Errorf("keep mask has %d entries, the model has %d modalities", len(keep), len(m.keep.F32))
	}
	copy(m.keep.F32, keep)
	ins := make([]*Tensor, 0, len(m.modalities)+1)
	outs := []*Tensor{m.fused}
	for _, mod := range m.modalities {
		ins = append(ins, m.batch.Data[mod])
		outs = append(outs, m.uni[mod])
	}
	if err := m.sess.Run(append(ins, m.keep), outs); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", m.Path, err)
	}
	per := map[string][]float32{}
	for mod, t := range m.uni {
		per[mod] = t.F32
	}
	return m.fused.F32, per, nil
}

// Close releases the session and tensors.
func (m *ExportedModel) Close() error {
	m.sess.Close()
	if m.batch != nil {
		for _, t := range m.batch.Data {
			t.Close()
		}
		m.batch.Labels.Close()
	}
	for _, t := range m.uni {
		t.Close()
	}
	m.keep.Close()
	m.fused.Close()
	return nil
}
