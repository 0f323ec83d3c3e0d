package runtime

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"bmc/compile"
	"bmc/graph"
)

// Names of model.onnx's inputs and outputs.
const (
	ExportKeep   = "keep"
	ExportLogits = "logits"
)

// ExportedLogits is the name of a modality's logits output in model.onnx.
func ExportedLogits(modality string) string { return "logits_" + modality }

// Export writes model.onnx: the plan's evaluation graph with the given
// parameter values stored as initializers. Its inputs are one tensor per
// modality (named after it, batch dimension symbolic) and an optional keep
// mask [n] that defaults to all ones; its outputs are the fused logits and
// each modality's logits.
func Export(p *compile.Plan, state map[string][]float32, path string) error {
	m := &p.Manifest
	src, ok := p.Graphs[compile.EvalGraph]
	if !ok {
		return fmt.Errorf("export: the plan has no %s graph", compile.EvalGraph)
	}
	gi, _ := m.Graph(compile.EvalGraph)
	// Work on a copy: the plan's graph stays as it is.
	data, err := graph.Marshal(&graph.Model{Graph: src})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	copyModel, err := graph.Unmarshal(data)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	g := copyModel.Graph
	g.Name = "bmc_" + m.Method + "_" + m.Dataset.Name
	dynamic := map[string]map[int]string{}
	byName := map[string]*graph.Value{}
	for _, v := range g.Inputs() {
		byName[v.Name()] = v
	}
	for _, v := range g.Outputs() {
		byName[v.Name()] = v
	}
	for _, io := range gi.Inputs {
		v := byName[io.Name]
		switch io.Kind {
		case compile.IOState:
			vals, ok := state[io.Key]
			if !ok || int64(len(vals)) != io.Shape.Size() {
				return fmt.Errorf("export: no value of %d elements for parameter %s", io.Shape.Size(), io.Key)
			}
			if err := g.BindInput(v, graph.Float32Tensor(io.Shape, vals), false); err != nil {
				return fmt.Errorf("export: %w", err)
			}
		case compile.IOData:
			if err := g.Rename(v, io.Key); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			dynamic[io.Key] = map[int]string{0: "batch"}
		case compile.IOKeep:
			if err := g.Rename(v, ExportKeep); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			if err := g.BindInput(v, graph.Float32Tensor(io.Shape, ones(int(io.Shape.Size()))), true); err != nil {
				return fmt.Errorf("export: %w", err)
			}
		default:
			return fmt.Errorf("export: evaluation input %s has kind %s", io.Name, io.Kind)
		}
	}
	for _, io := range gi.Outputs {
		name := ExportLogits
		if mod, ok := strings.CutPrefix(io.Key, "logits/"); ok {
			name = ExportedLogits(mod)
		} else if io.Key != "logits" {
			return fmt.Errorf("export: evaluation output %s is unexpected", io.Key)
		}
		if err := g.Rename(byName[io.Name], name); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		dynamic[name] = map[int]string{0: "batch"}
	}
	meta := map[string]string{
		"bmc.method":     m.Method,
		"bmc.dataset":    m.Dataset.Name,
		"bmc.modalities": strings.Join(m.ModalityNames(), ","),
		"bmc.classes":    strconv.FormatInt(m.Model.Classes, 10),
	}
	if len(m.Dataset.Params) > 0 {
		params, err := json.Marshal(m.Dataset.Params)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		meta["bmc.dataset.params"] = string(params)
	}
	for k, v := range m.Hyper {
		meta["bmc.hyper."+k] = v
	}
	return graph.WriteFile(path, &graph.Model{Graph: g, Meta: meta, DynamicDims: dynamic})
}
