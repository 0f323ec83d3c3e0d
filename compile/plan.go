package compile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"bmc/datasets"
	"bmc/graph"
	"bmc/graph/nn"
	"bmc/internal/atomicfile"
	"bmc/pretrained"
	"bmc/safetensors"
)

// PlanFormat is the version of plan.json this code writes and reads.
const PlanFormat = 1

// IOKind is the role of a graph input or output in a plan.
type IOKind string

// The IO roles the runtime binds.
const (
	// IOState is a training-state tensor (parameter, optimizer slot, method
	// state). As an output it is the tensor's next value.
	IOState IOKind = "state"
	// IOData is one modality's batch, [B, shape...].
	IOData IOKind = "data"
	// IOLabel is the int64 label batch, [B].
	IOLabel IOKind = "label"
	// IOInput is a runtime input set by the trainer or the method's schedule
	// (learning rate, coefficients, masks, noise).
	IOInput IOKind = "input"
	// IOKeep is the per-modality keep mask of evaluation graphs, [n]: 1 keeps
	// a modality, 0 zero-fills its raw input.
	IOKeep IOKind = "keep"
	// IOMetric is an output read after the run (loss, logits, diagnostics).
	IOMetric IOKind = "metric"
	// IORandom is a tensor the runtime draws before every run of a training
	// graph (dropout masks), from the run's seed and the step number.
	IORandom IOKind = "random"
)

// IO is one graph input or output.
type IO struct {
	// Name is the value's name in the ONNX graph.
	Name string `json:"name"`
	Kind IOKind `json:"kind"`
	// Key is the state key, modality, runtime input or metric name.
	Key   string      `json:"key"`
	DType string      `json:"dtype"`
	Shape graph.Shape `json:"shape"`
}

// GraphInfo is a graph's file and IO contract.
type GraphInfo struct {
	Name string `json:"name"`
	File string `json:"file"`
	// Role is RoleTrain, RoleEval or RoleAux.
	Role    string `json:"role"`
	Inputs  []IO   `json:"inputs"`
	Outputs []IO   `json:"outputs"`
	// Random says how each random input is drawn.
	Random []RandomInfo `json:"random,omitempty"`
}

// RandomInfo is the distribution of one random input, by IO key.
type RandomInfo struct {
	Key  string          `json:"key"`
	Dist nn.Distribution `json:"dist"`
}

// Graph state kinds.
const (
	StateParam  = "param"
	StateSlot   = "slot"
	StateMethod = "method"
	// StateBuffer is a model buffer: read by the forward pass, updated in
	// training without gradients, exported with the parameters.
	StateBuffer = "buffer"
)

// StateInfo is one tensor of the training state.
type StateInfo struct {
	Key   string      `json:"key"`
	Shape graph.Shape `json:"shape"`
	// Kind is "param", "buffer" (running statistics), "slot" (optimizer),
	// "method" (method state) or "frozen" (a teacher's weights, never updated).
	Kind string `json:"kind"`
	// Modality tags parameters of a modality's encoder.
	Modality string `json:"modality,omitempty"`
	// Init is "params" (from params.safetensors) or "zeros".
	Init string `json:"init"`
}

// InputInfo is a runtime input: who sets it and its default.
type InputInfo struct {
	Name  string      `json:"name"`
	Shape graph.Shape `json:"shape"`
	// SetBy is "trainer" (learning rate) or "method" (the method's schedule).
	SetBy   string    `json:"set_by"`
	Default []float32 `json:"default,omitempty"`
	Doc     string    `json:"doc"`
}

// Run says how often a graph runs: Count times per step, per epoch, over
// the whole training run, or in the final evaluation.
type Run struct {
	Graph string `json:"graph"`
	// Per is PerStep, PerEpoch, PerRun or PerFinal.
	Per   string `json:"per"`
	Count int64  `json:"count"`
	Note  string `json:"note"`
	// Extra marks a method's work besides its training steps (feature
	// passes, temporary models), which the FLOPs report lists apart.
	Extra bool `json:"extra,omitempty"`
}

// How often a Run counts.
const (
	PerStep  = "step"
	PerEpoch = "epoch"
	// PerRun counts are totals over the whole training run (work a method
	// does at some epochs only).
	PerRun   = "run"
	PerFinal = "final"
)

// DatasetRef names the dataset a plan was compiled for.
type DatasetRef struct {
	Name   string            `json:"name"`
	Params map[string]string `json:"params,omitempty"`
	Spec   datasets.Spec     `json:"spec"`
}

// Manifest is plan.json: everything the runtime needs besides the graphs.
type Manifest struct {
	Format   int               `json:"format"`
	Producer string            `json:"producer"`
	Method   string            `json:"method"`
	Hyper    map[string]string `json:"hyper"`
	Dataset  DatasetRef        `json:"dataset"`
	Model    nn.ModelSpec      `json:"model"`
	Train    TrainConfig       `json:"train"`
	Params   []nn.Param        `json:"params"`
	State    []StateInfo       `json:"state"`
	Inputs   []InputInfo       `json:"inputs"`
	Graphs   []GraphInfo       `json:"graphs"`
	// StepGraphs are the train graphs of one optimizer step, in run order
	// (a method's schedule may choose among them).
	StepGraphs []string `json:"step_graphs"`
	Runs       []Run    `json:"runs"`
	// Pretrained records the weight files loaded into the initial values.
	Pretrained []pretrained.Report `json:"pretrained,omitempty"`
	// Teachers are the finished runs whose models the frozen state holds.
	Teachers []Teacher `json:"teachers,omitempty"`
	// Flops is the static FLOPs report of the plan (package flops), recorded
	// when the plan is compiled; `bmc flops` recounts from the graphs.
	Flops json.RawMessage `json:"flops,omitempty"`
}

// Graph finds a graph's contract by name.
func (m *Manifest) Graph(name string) (GraphInfo, bool) {
	for _, g := range m.Graphs {
		if g.Name == name {
			return g, true
		}
	}
	return GraphInfo{}, false
}

// Plan is a compiled training job: graphs, manifest and initial state.
type Plan struct {
	Manifest Manifest
	Graphs   map[string]*graph.Graph
	// Init holds the initial values of every state tensor whose Init is "params".
	Init map[string][]float32
}

// File names inside a plan directory.
const (
	ManifestFile = "plan.json"
	ParamsFile   = "params.safetensors"
)

// Save writes the plan directory: plan.json, one .onnx file per graph and
// params.safetensors. Each file is written atomically; plan.json goes last,
// so a directory with a plan.json is complete.
func (p *Plan) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("plan directory: %w", err)
	}
	for _, gi := range p.Manifest.Graphs {
		g, ok := p.Graphs[gi.Name]
		if !ok {
			return fmt.Errorf("plan: graph %s is in the manifest but not built", gi.Name)
		}
		m := &graph.Model{Graph: g, Meta: map[string]string{"bmc.plan.graph": gi.Name, "bmc.plan.role": gi.Role}}
		if err := graph.WriteFile(filepath.Join(dir, gi.File), m); err != nil {
			return err
		}
	}
	f := safetensors.File{Tensors: map[string]safetensors.Tensor{}, Metadata: map[string]string{"producer": "bmc"}}
	for _, s := range p.Manifest.State {
		if s.Init != "params" {
			continue
		}
		v, ok := p.Init[s.Key]
		if !ok {
			return fmt.Errorf("plan: no initial value for %s", s.Key)
		}
		f.Tensors[s.Key] = safetensors.Float32sView(s.Shape, v)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, ParamsFile), f); err != nil {
		return err
	}
	data, err := json.MarshalIndent(p.Manifest, "", "  ")
	if err != nil {
		return fmt.Errorf("plan manifest: %w", err)
	}
	return atomicfile.WriteBytes(filepath.Join(dir, ManifestFile), append(data, '\n'))
}

// Load reads a plan directory and checks that its parts agree: every graph's
// inputs and outputs match the manifest, and every initial tensor has the
// manifest's shape.
func Load(dir string) (*Plan, error) {
	mpath := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(mpath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s is not a plan directory: no %s (make one with `bmc compile`)", dir, ManifestFile)
	}
	if err != nil {
		return nil, err
	}
	p := &Plan{Graphs: map[string]*graph.Graph{}, Init: map[string][]float32{}}
	if err := json.Unmarshal(data, &p.Manifest); err != nil {
		return nil, fmt.Errorf("%s: %w", mpath, err)
	}
	if len(p.Manifest.Flops) > 0 {
		// Stored indented; kept compact in memory, as it was recorded.
		var compact bytes.Buffer
		if err := json.Compact(&compact, p.Manifest.Flops); err != nil {
			return nil, fmt.Errorf("%s: field flops: %w", mpath, err)
		}
		p.Manifest.Flops = compact.Bytes()
	}
	if p.Manifest.Format != PlanFormat {
		return nil, fmt.Errorf("%s: field format is %d, this bmc reads format %d", mpath, p.Manifest.Format, PlanFormat)
	}
	if err := p.Manifest.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", mpath, err)
	}
	for _, gi := range p.Manifest.Graphs {
		gpath := filepath.Join(dir, gi.File)
		m, err := graph.ReadFile(gpath)
		if err != nil {
			return nil, err
		}
		if err := checkContract(m.Graph, gi); err != nil {
			return nil, fmt.Errorf("%s does not match %s: %w", gpath, mpath, err)
		}
		p.Graphs[gi.Name] = m.Graph
	}
	ppath := filepath.Join(dir, ParamsFile)
	f, err := safetensors.ReadFile(ppath)
	if err != nil {
		return nil, err
	}
	for _, s := range p.Manifest.State {
		if s.Init != "params" {
			continue
		}
		t, ok := f.Tensors[s.Key]
		if !ok {
			return nil, fmt.Errorf("%s: tensor %s is missing", ppath, s.Key)
		}
		if !graph.Shape(t.Shape).Equal(s.Shape) {
			return nil, fmt.Errorf("%s: tensor %s has shape %v, %s says %v", ppath, s.Key, t.Shape, mpath, s.Shape)
		}
		v, err := t.AsFloat32()
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %s: %w", ppath, s.Key, err)
		}
		p.Init[s.Key] = v
	}
	return p, nil
}

// Validate checks that a manifest is usable: a valid training setup, step
// graphs and run counts that name listed graphs, an evaluation graph, and IO
// that names declared state and inputs. Errors name the field.
func (m *Manifest) Validate() error {
	if err := m.Train.Validate(); err != nil {
		return err
	}
	if m.Dataset.Spec.Sizes[datasets.Train] < m.Train.BatchSize {
		return fmt.Errorf("dataset.spec.sizes.train is %d, smaller than train.batch_size %d", m.Dataset.Spec.Sizes[datasets.Train], m.Train.BatchSize)
	}
	graphs := map[string]bool{}
	for _, g := range m.Graphs {
		if graphs[g.Name] || g.Name == "" || g.File == "" || filepath.Base(g.File) != g.File {
			return fmt.Errorf("graphs: entry %q (file %q) is repeated, unnamed or not a plain file name", g.Name, g.File)
		}
		graphs[g.Name] = true
	}
	if !graphs[EvalGraph] {
		return fmt.Errorf("graphs: no %q graph", EvalGraph)
	}
	if len(m.StepGraphs) == 0 {
		return fmt.Errorf("step_graphs is empty: a plan needs a training graph")
	}
	for _, g := range m.StepGraphs {
		if !graphs[g] {
			return fmt.Errorf("step_graphs: %q is not in graphs", g)
		}
	}
	for _, r := range m.Runs {
		if !graphs[r.Graph] || r.Count < 0 || !slices.Contains([]string{PerStep, PerEpoch, PerRun, PerFinal}, r.Per) {
			return fmt.Errorf("runs: %+v: want a listed graph, count ≥ 0 and per step, epoch, run or final", r)
		}
	}
	state, inputs, frozen := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, s := range m.State {
		state[s.Key] = true
		frozen[s.Key] = s.Kind == StateFrozen
		if s.Kind == StateFrozen && s.Init != "params" {
			return fmt.Errorf("state %s: frozen state has init %q, want params", s.Key, s.Init)
		}
		if s.Init != "params" && s.Init != "zeros" {
			return fmt.Errorf("state %s: init is %q, want params or zeros", s.Key, s.Init)
		}
	}
	for _, in := range m.Inputs {
		inputs[in.Name] = true
	}
	for _, g := range m.Graphs {
		random := map[string]bool{}
		for _, r := range g.Random {
			if r.Dist.Kind != "bernoulli" || r.Dist.P <= 0 || r.Dist.P > 1 {
				return fmt.Errorf("graphs: %s: random %s: distribution %+v, want bernoulli with p in (0, 1]", g.Name, r.Key, r.Dist)
			}
			random[r.Key] = true
		}
		for _, io := range append(append([]IO{}, g.Inputs...), g.Outputs...) {
			if (io.Kind == IOState && !state[io.Key]) || (io.Kind == IOInput && !inputs[io.Key]) || (io.Kind == IORandom && !random[io.Key]) {
				return fmt.Errorf("graphs: %s: %s %s reads %q, which is not declared", g.Name, io.Kind, io.Name, io.Key)
			}
		}
		for _, io := range g.Outputs {
			if io.Kind == IOState && frozen[io.Key] {
				return fmt.Errorf("graphs: %s: output %s updates %q, which is frozen state", g.Name, io.Name, io.Key)
			}
		}
	}
	return nil
}

// checkContract compares a graph's inputs and outputs with its IO contract.
func checkContract(g *graph.Graph, gi GraphInfo) error {
	cmp := func(what string, vals []*graph.Value, ios []IO) error {
		if len(vals) != len(ios) {
			return fmt.Errorf("%s: the graph has %d, the manifest lists %d", what, len(vals), len(ios))
		}
		for i, v := range vals {
			io := ios[i]
			if v.Name() != io.Name || v.DType().String() != io.DType || !v.Shape().Equal(io.Shape) {
				return fmt.Errorf("%s %d: the graph has %s %v%v, the manifest %s %s%v", what, i, v.Name(), v.DType(), v.Shape(), io.Name, io.DType, io.Shape)
			}
		}
		return nil
	}
	if err := cmp("inputs", g.Inputs(), gi.Inputs); err != nil {
		return err
	}
	return cmp("outputs", g.Outputs(), gi.Outputs)
}

// StateKeys lists the state keys of a kind ("" for all), in manifest order.
func (m *Manifest) StateKeys(kind string) []string {
	var keys []string
	for _, s := range m.State {
		if kind == "" || s.Kind == kind {
			keys = append(keys, s.Key)
		}
	}
	return keys
}

// ModalityNames lists the model's modalities in fusion order.
func (m *Manifest) ModalityNames() []string {
	var names []string
	for _, mod := range m.Model.Modalities {
		names = append(names, mod.Name)
	}
	return names
}
