package compile

import (
	"fmt"
	"slices"

	"bmc/datasets"
	"bmc/graph"
	"bmc/graph/nn"
)

// EvalGraph is the name of every plan's evaluation graph.
const EvalGraph = "eval"

// Builder assembles a plan: methods add their training-step graphs through
// it, and Finish adds the evaluation graph and the run counts.
type Builder struct {
	model   *nn.Model
	data    datasets.Spec
	cfg     TrainConfig
	plan    *Plan
	state   map[string]StateInfo
	inputs  map[string]InputInfo
	dataRef DatasetRef
	// countSteps keeps a step count per parameter (CountStepsPerParameter);
	// optimized is set once a graph has an optimizer update.
	countSteps, optimized bool
}

// NewBuilder starts a plan for a model trained on a dataset.
func NewBuilder(model *nn.Model, data DatasetRef, cfg TrainConfig, method string, hyper map[string]string) (*Builder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	spec := data.Spec
	if spec.Sizes[datasets.Train] < cfg.BatchSize {
		return nil, fmt.Errorf("train.batch_size %d exceeds the %d training samples of %s", cfg.BatchSize, spec.Sizes[datasets.Train], spec.Name)
	}
	for _, mod := range model.Spec.Modalities {
		dm, ok := spec.Modality(mod.Name)
		if !ok {
			return nil, fmt.Errorf("model modality %s is not in dataset %s", mod.Name, spec.Name)
		}
		if !graph.Shape(dm.Shape).Equal(mod.Shape) {
			return nil, fmt.Errorf("model modality %s expects shape %v, dataset %s gives %v", mod.Name, mod.Shape, spec.Name, dm.Shape)
		}
	}
	b := &Builder{
		model: model, data: spec, cfg: cfg, dataRef: data,
		state:  map[string]StateInfo{},
		inputs: map[string]InputInfo{},
		plan: &Plan{
			Graphs: map[string]*graph.Graph{},
			Init:   model.InitValues(cfg.Seed),
			Manifest: Manifest{
				Format: PlanFormat, Producer: "bmc", Method: method, Hyper: hyper,
				Dataset: data, Model: model.Spec, Train: cfg, Params: model.Params(),
			},
		},
	}
	for _, p := range model.Params() {
		b.addState(StateInfo{Key: p.Name, Shape: p.Shape, Kind: StateParam, Modality: p.Modality, Init: "params"})
	}
	for _, buf := range model.Buffers() {
		b.addState(StateInfo{Key: buf.Name, Shape: buf.Shape, Kind: StateBuffer, Modality: buf.Modality, Init: "params"})
	}
	first := cfg.Optimizer.Inputs(cfg.Optimizer.LR, 1)
	for _, name := range cfg.Optimizer.InputNames() {
		b.addInput(InputInfo{Name: name, Shape: graph.Shape{1}, SetBy: "optimizer", Default: []float32{first[name]}, Doc: "set by the trainer before every step"})
	}
	return b, nil
}

// Model is the model being trained.
func (b *Builder) Model() *nn.Model { return b.model }

// Config is the training configuration.
func (b *Builder) Config() TrainConfig { return b.cfg }

// Dataset is the dataset spec.
func (b *Builder) Dataset() datasets.Spec { return b.data }

func (b *Builder) addState(s StateInfo) {
	if _, ok := b.state[s.Key]; ok {
		return
	}
	b.state[s.Key] = s
	b.plan.Manifest.State = append(b.plan.Manifest.State, s)
}

func (b *Builder) addInput(in InputInfo) {
	if _, ok := b.inputs[in.Name]; ok {
		return
	}
	b.inputs[in.Name] = in
	b.plan.Manifest.Inputs = append(b.plan.Manifest.Inputs, in)
}

// Step is one graph under construction, with the model's parameters and
// buffers, the data batch and the labels bound as inputs.
type Step struct {
	G       *graph.Graph
	Params  map[string]*graph.Value
	Buffers map[string]*graph.Value
	// Data maps modalities to their batch inputs.
	Data   map[string]*graph.Value
	Labels *graph.Value
	b      *Builder
	info   GraphInfo
	state  map[string]*graph.Value
	inputs map[string]*graph.Value
	// keep is the modality keep mask input, once declared.
	keep *graph.Value
	// buffersUpdated is set once a forward pass has updated the buffers.
	buffersUpdated bool
	done           bool
}

// Graph roles.
const (
	// RoleTrain graphs update the training state (parameters through the
	// optimizer, buffers, method state); they read a batch and its labels.
	RoleTrain = "train"
	// RoleEval is the evaluation forward: a batch and a modality keep mask.
	RoleEval = "eval"
	// RoleAux graphs are other passes a method makes (features, scores);
	// they read a batch and its labels and may update method state.
	RoleAux = "aux"
)

// NewStep starts a graph of a role whose batch size is batch.
func (b *Builder) NewStep(name, role string, batch int) *Step {
	g := graph.New(name)
	s := &Step{G: g, b: b, Params: map[string]*graph.Value{}, Buffers: map[string]*graph.Value{},
		Data: map[string]*graph.Value{}, state: map[string]*graph.Value{}, inputs: map[string]*graph.Value{},
		info: GraphInfo{Name: name, File: name + ".onnx", Role: role}}
	for _, p := range b.model.Params() {
		s.Params[p.Name] = s.stateInput(p.Name, p.Shape)
	}
	for _, buf := range b.model.Buffers() {
		s.Buffers[buf.Name] = s.stateInput(buf.Name, buf.Shape)
	}
	for _, mod := range b.model.Spec.Modalities {
		shape := append(graph.Shape{int64(batch)}, mod.Shape...)
		dtype := graph.Float32
		if dm, _ := b.data.Modality(mod.Name); dm.Int {
			dtype = graph.Int64
		}
		v := g.Input("data/"+mod.Name, dtype, shape)
		s.Data[mod.Name] = v
		s.info.Inputs = append(s.info.Inputs, ioOf(v, IOData, mod.Name))
	}
	if role == RoleTrain || role == RoleAux {
		s.Labels = g.Input("labels", graph.Int64, graph.Shape{int64(batch)})
		s.info.Inputs = append(s.info.Inputs, ioOf(s.Labels, IOLabel, "labels"))
	}
	return s
}

// Model is the model the step runs.
func (s *Step) Model() *nn.Model { return s.b.model }

func ioOf(v *graph.Value, kind IOKind, key string) IO {
	return IO{Name: v.Name(), Kind: kind, Key: key, DType: v.DType().String(), Shape: v.Shape().Clone()}
}

func (s *Step) stateInput(key string, shape graph.Shape) *graph.Value {
	if v, ok := s.state[key]; ok {
		return v
	}
	v := s.G.Input(key, graph.Float32, shape)
	s.state[key] = v
	s.info.Inputs = append(s.info.Inputs, ioOf(v, IOState, key))
	return v
}

// Forward adds the model's forward pass. keep lists the modalities whose
// input is used; the others are zero-filled, as the reference masks them
// (nil keeps all). The first training-mode forward that keeps every
// modality updates the buffers (batch-norm running statistics); masked and
// later forwards read them only. Dropout masks become random inputs the
// runtime draws before every run.
func (s *Step) Forward(mode nn.Mode, keep []string) (nn.Outputs, error) {
	in := map[string]*graph.Value{}
	for name, v := range s.Data {
		if keep == nil || slices.Contains(keep, name) {
			in[name] = v
		} else {
			in[name] = s.G.Expand(s.G.ConstZero(v.DType()), v.Shape())
		}
	}
	return s.forward(mode, in, keep == nil)
}

// forward runs the model on in; full says the forward sees the whole batch
// (no modality zero-filled for every row), so that the first such
// training-mode forward updates the buffers.
func (s *Step) forward(mode nn.Mode, in map[string]*graph.Value, full bool) (nn.Outputs, error) {
	return s.b.model.Forward(s.G, s.bindings(mode, full), in, mode)
}

// bindings are the graph's parameters, buffers and inputs for a forward;
// updates lets a training-mode forward be the one that updates the buffers.
func (s *Step) bindings(mode nn.Mode, updates bool) nn.Bindings {
	bind := nn.Bindings{Params: s.Params, Buffers: s.Buffers, Random: s.random, Input: s.Input}
	if mode == nn.Train && updates && !s.buffersUpdated && len(s.Buffers) > 0 {
		s.buffersUpdated = true
		bind.UpdateBuffer = s.Update
	}
	return bind
}

// random declares a random input of this graph; the runtime fills it from
// the run's seed and the step number before every run.
func (s *Step) random(shape graph.Shape, d nn.Distribution) *graph.Value {
	n := len(s.info.Random)
	v := s.G.Input(fmt.Sprintf("random/%d", n), graph.Float32, shape)
	io := ioOf(v, IORandom, fmt.Sprintf("%s/%d", s.info.Name, n))
	s.info.Inputs = append(s.info.Inputs, io)
	s.info.Random = append(s.info.Random, RandomInfo{Key: io.Key, Dist: d})
	return v
}

// Input declares a runtime input set by the method's schedule (shape [1]
// for a scalar) and returns it.
func (s *Step) Input(name string, shape graph.Shape, def []float32, doc string) *graph.Value {
	if v, ok := s.inputs[name]; ok {
		return v
	}
	if def != nil && int64(len(def)) != shape.Size() {
		s.G.Fail(fmt.Errorf("input %s: default has %d values for shape %v", name, len(def), shape))
	}
	v := s.G.Input("input/"+name, graph.Float32, shape)
	s.inputs[name] = v
	s.info.Inputs = append(s.info.Inputs, ioOf(v, IOInput, name))
	s.b.addInput(InputInfo{Name: name, Shape: shape, SetBy: "method", Default: def, Doc: doc})
	return v
}

// State declares a method-state tensor (zero-initialised, checkpointed) and
// returns its current value; Update gives its next value.
func (s *Step) State(key string, shape graph.Shape) *graph.Value {
	s.b.addState(StateInfo{Key: key, Shape: shape, Kind: StateMethod, Init: "zeros"})
	return s.stateInput(key, shape)
}

// Update makes v the next value of state key.
func (s *Step) Update(key string, v *graph.Value) {
	st, ok := s.b.state[key]
	if !ok {
		s.G.Fail(fmt.Errorf("update of unknown state %s", key))
		return
	}
	if st.Kind == StateFrozen {
		s.G.Fail(fmt.Errorf("update of frozen state %s", key))
		return
	}
	if !v.Shape().Equal(st.Shape) {
		s.G.Fail(fmt.Errorf("update of state %s: shape %v, the state has %v", key, v.Shape(), st.Shape))
		return
	}
	out := s.G.Output(key+":next", v)
	s.info.Outputs = append(s.info.Outputs, ioOf(out, IOState, key))
}

// Metric outputs v under a name for the runtime and the schedule to read.
func (s *Step) Metric(name string, v *graph.Value) {
	out := s.G.Output("metric/"+name, v)
	s.info.Outputs = append(s.info.Outputs, ioOf(out, IOMetric, name))
}

// Gradients differentiates loss with respect to every model parameter.
func (s *Step) Gradients(loss *graph.Value) (map[string]*graph.Value, error) {
	return s.GradientsOf(loss, s.b.model.Params())
}

// GradientsOf differentiates loss with respect to the given parameters.
func (s *Step) GradientsOf(loss *graph.Value, params []nn.Param) (map[string]*graph.Value, error) {
	wrt := make([]*graph.Value, len(params))
	for i, p := range params {
		wrt[i] = s.Params[p.Name]
	}
	grads, err := Gradients(s.G, loss, wrt)
	if err != nil {
		return nil, fmt.Errorf("graph %s: %w", s.info.Name, err)
	}
	out := make(map[string]*graph.Value, len(params))
	for i, p := range params {
		out[p.Name] = grads[i]
	}
	return out, nil
}

// Optimize appends the configured optimizer's update for every parameter
// that has a gradient, and declares the new values as state outputs.
func (s *Step) Optimize(grads map[string]*graph.Value) {
	old := s.G.SetPhase(graph.PhaseOptimizer)
	defer s.G.SetPhase(old)
	o := s.b.cfg.Optimizer
	s.b.optimized = true
	counted := s.b.countSteps && o.CountsSteps()
	in := map[string]*graph.Value{}
	for _, name := range o.InputNames() {
		if !counted || name == LRInput {
			in[name] = s.optimizerInput(name)
		}
	}
	for _, p := range s.b.model.Params() {
		grad, ok := grads[p.Name]
		if !ok {
			continue
		}
		var slots []*graph.Value
		var keys []string
		for _, slot := range o.Slots() {
			key := slot + "/" + p.Name
			s.b.addState(StateInfo{Key: key, Shape: p.Shape, Kind: StateSlot, Modality: p.Modality, Init: "zeros"})
			slots = append(slots, s.stateInput(key, p.Shape))
			keys = append(keys, key)
		}
		pop := s.G.Scope(o.Name + "/" + p.Name)
		pin := in
		if counted {
			pin = s.countStep(p, in[LRInput])
		}
		np, next := o.Apply(s.G, s.Params[p.Name], grad, slots, pin)
		pop()
		s.Update(p.Name, np)
		for i, key := range keys {
			s.Update(key, next[i])
		}
	}
}

// optimizerInput binds one of the optimizer's runtime inputs (declared by
// NewBuilder) to the graph.
func (s *Step) optimizerInput(name string) *graph.Value {
	if v, ok := s.inputs[name]; ok {
		return v
	}
	v := s.G.Input("input/"+name, graph.Float32, graph.Shape{1})
	s.inputs[name] = v
	s.info.Inputs = append(s.info.Inputs, ioOf(v, IOInput, name))
	return v
}

// Add finishes a graph and records how many times it runs per step. Train
// graphs added here are the plan's step graphs, run on every batch in the
// order added.
func (b *Builder) Add(s *Step, runsPerStep int64) error {
	if err := b.finishGraph(s); err != nil {
		return err
	}
	if s.info.Role == RoleTrain {
		b.plan.Manifest.StepGraphs = append(b.plan.Manifest.StepGraphs, s.info.Name)
		b.plan.Manifest.Runs = append(b.plan.Manifest.Runs, Run{Graph: s.info.Name, Per: PerStep, Count: runsPerStep, Note: "training step"})
	}
	return nil
}

// AddGraph finishes a graph that is not one of the step graphs (a method's
// schedule runs it: an auxiliary pass, a phase's train graph) and records
// its runs; a run without a graph name is one of this graph's.
func (b *Builder) AddGraph(s *Step, runs ...Run) error {
	if err := b.finishGraph(s); err != nil {
		return err
	}
	for _, r := range runs {
		if r.Graph == "" {
			r.Graph = s.info.Name
		}
		b.AddRuns(r)
	}
	return nil
}

// AddRuns records runs of a plan's graphs besides the step graphs' per-step
// runs (the evaluation graph in a method's passes, say), for the FLOPs
// count. The graphs may be added later; the manifest's validation checks
// that they exist.
func (b *Builder) AddRuns(runs ...Run) {
	b.plan.Manifest.Runs = append(b.plan.Manifest.Runs, runs...)
}

// finishGraph checks a graph and puts it into the plan.
func (b *Builder) finishGraph(s *Step) error {
	if s.done {
		return fmt.Errorf("graph %s was added twice", s.info.Name)
	}
	if err := s.G.Err(); err != nil {
		return err
	}
	if _, dup := b.plan.Graphs[s.info.Name]; dup {
		return fmt.Errorf("two graphs are named %s", s.info.Name)
	}
	s.done = true
	s.G.Prune()
	s.G.OrderForReverseDFS(func(n *graph.Node) bool { return n.Phase == graph.PhaseOptimizer })
	b.plan.Graphs[s.info.Name] = s.G
	b.plan.Manifest.Graphs = append(b.plan.Manifest.Graphs, s.info)
	return nil
}

// Finish adds the evaluation graph and the run counts and returns the plan.
func (b *Builder) Finish() (*Plan, error) {
	if len(b.plan.Manifest.StepGraphs) == 0 {
		return nil, fmt.Errorf("the method added no training graph")
	}
	eb := b.cfg.EvalBatchSize
	s := b.NewStep(EvalGraph, RoleEval, eb)
	names := b.model.ModalityNames()
	out, err := b.model.Forward(s.G, nn.Bindings{Params: s.Params, Buffers: s.Buffers}, s.keptInputs(), nn.Eval)
	if err != nil {
		return nil, err
	}
	s.Metric("logits", out.Logits)
	for _, name := range names {
		s.Metric("logits/"+name, out.Unimodal[name])
	}
	if err := b.Add(s, 0); err != nil {
		return nil, err
	}
	valSplit := b.cfg.ValidationSplit()
	batches := func(split string) int64 { return Batches(b.data.Sizes[split], eb, false) }
	b.plan.Manifest.Runs = append(b.plan.Manifest.Runs,
		Run{Graph: EvalGraph, Per: PerEpoch, Count: batches(valSplit), Note: "validation pass over the " + valSplit + " split"},
		Run{Graph: EvalGraph, Per: PerFinal, Count: int64(1<<len(names)) * batches(datasets.Test), Note: fmt.Sprintf("test evaluation: %d masked passes for the Shapley values", 1<<len(names))},
	)
	if err := b.plan.Manifest.Validate(); err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	return b.plan, nil
}

// Batches is the number of batches of size batch that cover n samples:
// ⌊n/batch⌋ when the last partial batch is dropped, else ⌈n/batch⌉.
func Batches(n, batch int, dropLast bool) int64 {
	if dropLast {
		return int64(n / batch)
	}
	return int64((n + batch - 1) / batch)
}

// StepsPerEpoch is the number of optimizer steps per epoch (the last partial
// batch is dropped, as in the reference).
func (m *Manifest) StepsPerEpoch() int64 {
	return int64(m.Dataset.Spec.Sizes[datasets.Train] / m.Train.BatchSize)
}

// IsMatrix reports whether a parameter has two or more dimensions (the
// reference's "non-1-D" parameters: weights, not biases or norm scales).
func IsMatrix(p nn.Param) bool { return p.Shape.Rank() >= 2 }
