package runtime

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"bmc/compile"
	"bmc/graph"
	"bmc/graph/nn"
	"bmc/internal/randstream"
)

// Program is a plan loaded into ONNX Runtime: one session per graph, the
// training state in pre-allocated tensors, and the batch and runtime-input
// tensors the graphs read. Running a graph that updates state writes the new
// values into each state tensor's second buffer and swaps the two, so no
// tensor is copied between steps. A Program is not safe for concurrent use.
type Program struct {
	Plan    *compile.Plan
	state   map[string]*stateBuffers
	inputs  map[string]*Tensor
	batches map[int]*Batch
	graphs  map[string]*boundGraph
	// stream and step number the random draws: a graph's random inputs are
	// drawn from the plan's seed, the stream, the input's key and step, so
	// a resumed run draws what an uninterrupted one would.
	stream string
	step   uint64
	// runs counts each graph's runs, for the FLOPs a training spends.
	runs map[string]int64
}

// stateBuffers holds a state tensor's current value and the buffer its next
// value is written into.
type stateBuffers struct {
	cur, next *Tensor
}

// Batch holds the tensors of one batch size: one per modality and the labels.
type Batch struct {
	Size   int
	Data   map[string]*Tensor
	Labels *Tensor
}

type boundGraph struct {
	info    compile.GraphInfo
	sess    *Session
	batch   *Batch
	keep    *Tensor
	metrics map[string]*Tensor
	random  map[string]*randomInput
}

// randomInput is a tensor drawn before every run.
type randomInput struct {
	t    *Tensor
	dist nn.Distribution
}

// Load opens every graph of a plan and allocates the state, initialised from
// the plan's initial values (zeros for optimizer and method state).
func Load(p *compile.Plan, opt Options) (*Program, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	pr := &Program{Plan: p, state: map[string]*stateBuffers{}, inputs: map[string]*Tensor{},
		batches: map[int]*Batch{}, graphs: map[string]*boundGraph{}, runs: map[string]int64{}}
	ok := false
	defer func() {
		if !ok {
			pr.Close()
		}
	}()
	m := &p.Manifest
	for _, s := range m.State {
		cur, err := NewFloat32(s.Shape)
		if err != nil {
			return nil, fmt.Errorf("state %s: %w", s.Key, err)
		}
		next, err := NewFloat32(s.Shape)
		if err != nil {
			cur.Close()
			return nil, fmt.Errorf("state %s: %w", s.Key, err)
		}
		pr.state[s.Key] = &stateBuffers{cur: cur, next: next}
		if s.Init == "params" {
			v, found := p.Init[s.Key]
			if !found || len(v) != len(cur.F32) {
				return nil, fmt.Errorf("state %s: no initial value of %d elements", s.Key, len(cur.F32))
			}
			copy(cur.F32, v)
		}
	}
	for _, in := range m.Inputs {
		t, err := NewFloat32(in.Shape)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", in.Name, err)
		}
		copy(t.F32, in.Default)
		pr.inputs[in.Name] = t
	}
	for _, gi := range m.Graphs {
		if err := pr.bind(gi, opt); err != nil {
			return nil, fmt.Errorf("graph %s: %w", gi.Name, err)
		}
	}
	ok = true
	return pr, nil
}

func (pr *Program) bind(gi compile.GraphInfo, opt Options) error {
	g, found := pr.Plan.Graphs[gi.Name]
	if !found {
		return fmt.Errorf("not in the plan")
	}
	data, err := graph.Marshal(&graph.Model{Graph: g})
	if err != nil {
		return err
	}
	var ins, outs []string
	bg := &boundGraph{info: gi, metrics: map[string]*Tensor{}, random: map[string]*randomInput{}}
	defer func() {
		if bg.sess == nil {
			bg.close()
		}
	}()
	for _, io := range gi.Inputs {
		ins = append(ins, io.Name)
		switch io.Kind {
		case compile.IOState:
			if _, ok := pr.state[io.Key]; !ok {
				return fmt.Errorf("input %s reads unknown state %s", io.Name, io.Key)
			}
		case compile.IOInput:
			if _, ok := pr.inputs[io.Key]; !ok {
				return fmt.Errorf("input %s reads unknown runtime input %s", io.Name, io.Key)
			}
		case compile.IOData, compile.IOLabel:
			if bg.batch == nil {
				if bg.batch, err = pr.batch(int(io.Shape[0])); err != nil {
					return err
				}
			}
			if io.Kind == compile.IOData && bg.batch.Data[io.Key] == nil {
				return fmt.Errorf("input %s reads unknown modality %s", io.Name, io.Key)
			}
		case compile.IOKeep:
			if bg.keep, err = NewFloat32(io.Shape); err != nil {
				return err
			}
			for i := range bg.keep.F32 {
				bg.keep.F32[i] = 1
			}
		case compile.IORandom:
			i := slices.IndexFunc(gi.Random, func(r compile.RandomInfo) bool { return r.Key == io.Key })
			if i < 0 {
				return fmt.Errorf("random input %s has no distribution", io.Name)
			}
			t, err := NewFloat32(io.Shape)
			if err != nil {
				return err
			}
			bg.random[io.Key] = &randomInput{t: t, dist: gi.Random[i].Dist}
		default:
			return fmt.Errorf("input %s has kind %q", io.Name, io.Kind)
		}
	}
	for _, io := range gi.Outputs {
		outs = append(outs, io.Name)
		switch io.Kind {
		case compile.IOState:
			if _, ok := pr.state[io.Key]; !ok {
				return fmt.Errorf("output %s updates unknown state %s", io.Name, io.Key)
			}
		case compile.IOMetric:
			if bg.metrics[io.Key], err = NewFloat32(io.Shape); err != nil {
				return err
			}
		default:
			return fmt.Errorf("output %s has kind %q", io.Name, io.Kind)
		}
	}
	if bg.sess, err = NewSession(data, ins, outs, opt); err != nil {
		return err
	}
	pr.graphs[gi.Name] = bg
	return nil
}

// close releases a bound graph's session and tensors.
func (bg *boundGraph) close() error {
	var errs []error
	if bg.sess != nil {
		errs = append(errs, bg.sess.Close())
	}
	errs = append(errs, bg.keep.Close())
	for _, t := range bg.metrics {
		errs = append(errs, t.Close())
	}
	for _, r := range bg.random {
		errs = append(errs, r.t.Close())
	}
	return errors.Join(errs...)
}

// batch returns the shared tensors of one batch size, allocating them once.
func (pr *Program) batch(size int) (*Batch, error) {
	if b, ok := pr.batches[size]; ok {
		return b, nil
	}
	b := &Batch{Size: size, Data: map[string]*Tensor{}}
	spec := pr.Plan.Manifest.Dataset.Spec
	for _, mod := range pr.Plan.Manifest.Model.Modalities {
		shape := append([]int64{int64(size)}, mod.Shape...)
		newTensor := NewFloat32
		if dm, _ := spec.Modality(mod.Name); dm.Int {
			newTensor = NewInt64
		}
		t, err := newTensor(shape)
		if err != nil {
			return nil, err
		}
		b.Data[mod.Name] = t
	}
	var err error
	if b.Labels, err = NewInt64([]int64{int64(size)}); err != nil {
		return nil, err
	}
	pr.batches[size] = b
	return b, nil
}

// BatchOf is the batch a graph reads.
func (pr *Program) BatchOf(graphName string) (*Batch, error) {
	bg, ok := pr.graphs[graphName]
	if !ok {
		return nil, fmt.Errorf("no graph %s", graphName)
	}
	if bg.batch == nil {
		return nil, fmt.Errorf("graph %s reads no batch", graphName)
	}
	return bg.batch, nil
}

// Run runs one graph on the current state, batch and inputs, then makes the
// state it updated current.
func (pr *Program) Run(graphName string) error {
	bg, ok := pr.graphs[graphName]
	if !ok {
		return fmt.Errorf("no graph %s", graphName)
	}
	ins := make([]*Tensor, len(bg.info.Inputs))
	for i, io := range bg.info.Inputs {
		switch io.Kind {
		case compile.IORandom:
			r := bg.random[io.Key]
			r.draw(pr.Plan.Manifest.Train.Seed, pr.stream+io.Key, pr.step)
			ins[i] = r.t
		case compile.IOState:
			ins[i] = pr.state[io.Key].cur
		case compile.IOInput:
			ins[i] = pr.inputs[io.Key]
		case compile.IOData:
			ins[i] = bg.batch.Data[io.Key]
		case compile.IOLabel:
			ins[i] = bg.batch.Labels
		case compile.IOKeep:
			ins[i] = bg.keep
		}
	}
	outs := make([]*Tensor, len(bg.info.Outputs))
	for i, io := range bg.info.Outputs {
		switch io.Kind {
		case compile.IOState:
			outs[i] = pr.state[io.Key].next
		case compile.IOMetric:
			outs[i] = bg.metrics[io.Key]
		}
	}
	if err := bg.sess.Run(ins, outs); err != nil {
		return fmt.Errorf("run graph %s: %w", graphName, err)
	}
	pr.runs[graphName]++
	for _, io := range bg.info.Outputs {
		if io.Kind == compile.IOState {
			s := pr.state[io.Key]
			s.cur, s.next = s.next, s.cur
		}
	}
	return nil
}

// SetStep sets the step number that random inputs are drawn for; the
// trainer sets it to the global optimizer step before each step.
func (pr *Program) SetStep(step uint64) { pr.step = step }

// SetRandomStream names the stream random inputs are drawn from: "" for the
// training steps, another name for each pass outside them, so that a pass
// draws other numbers than the step of the same number.
func (pr *Program) SetRandomStream(name string) {
	pr.stream = ""
	if name != "" {
		pr.stream = name + "/"
	}
}

// Runs counts the runs of each graph since the program was loaded (or since
// SetRuns).
func (pr *Program) Runs() map[string]int64 { return maps.Clone(pr.runs) }

// SetRuns replaces the run counts (a resumed training continues its tally).
func (pr *Program) SetRuns(runs map[string]int64) {
	pr.runs = maps.Clone(runs)
	if pr.runs == nil {
		pr.runs = map[string]int64{}
	}
}

// draw fills the tensor from the stream of (seed, key, step).
func (r *randomInput) draw(seed uint64, key string, step uint64) {
	rng := randstream.New(seed, "random/"+key, step)
	p, scale := r.dist.P, float32(r.dist.Scale)
	// One 64-bit draw gives 4 16-bit uniforms; 1/65536 resolution on p.
	threshold := uint64(p * 65536)
	var bits uint64
	for i := range r.t.F32 {
		if i%4 == 0 {
			bits = rng.Uint64()
		}
		if bits&0xffff < threshold {
			r.t.F32[i] = scale
		} else {
			r.t.F32[i] = 0
		}
		bits >>= 16
	}
}

// RandomInput is the last draw of one of a graph's random inputs.
func (pr *Program) RandomInput(graphName, key string) ([]float32, error) {
	bg, ok := pr.graphs[graphName]
	if !ok {
		return nil, fmt.Errorf("no graph %s", graphName)
	}
	r, ok := bg.random[key]
	if !ok {
		return nil, fmt.Errorf("graph %s has no random input %q", graphName, key)
	}
	return r.t.F32, nil
}

// Input is the buffer of a runtime input.
func (pr *Program) Input(name string) ([]float32, error) {
	t, ok := pr.inputs[name]
	if !ok {
		return nil, fmt.Errorf("the plan has no runtime input %q", name)
	}
	return t.F32, nil
}

// Metric is the last value of a graph's metric output.
func (pr *Program) Metric(graphName, name string) ([]float32, error) {
	bg, ok := pr.graphs[graphName]
	if !ok {
		return nil, fmt.Errorf("no graph %s", graphName)
	}
	t, ok := bg.metrics[name]
	if !ok {
		return nil, fmt.Errorf("graph %s has no metric %q", graphName, name)
	}
	return t.F32, nil
}

// MetricNames lists a graph's metric outputs in order.
func (pr *Program) MetricNames(graphName string) []string {
	bg, ok := pr.graphs[graphName]
	if !ok {
		return nil
	}
	var names []string
	for _, io := range bg.info.Outputs {
		if io.Kind == compile.IOMetric {
			names = append(names, io.Key)
		}
	}
	return names
}

// SetKeep sets an evaluation graph's modality keep mask.
func (pr *Program) SetKeep(graphName string, keep []float32) error {
	bg, ok := pr.graphs[graphName]
	if !ok || bg.keep == nil {
		return fmt.Errorf("graph %s has no keep mask", graphName)
	}
	if len(keep) != len(bg.keep.F32) {
		return fmt.Errorf("keep mask has %d entries, graph %s takes %d", len(keep), graphName, len(bg.keep.F32))
	}
	copy(bg.keep.F32, keep)
	return nil
}

// State is the current value of a state tensor (shared memory: callers may
// read it; writing changes the training state).
func (pr *Program) State(key string) ([]float32, error) {
	s, ok := pr.state[key]
	if !ok {
		return nil, fmt.Errorf("no state %q", key)
	}
	return s.cur.F32, nil
}

// StateKeys lists the state in manifest order.
func (pr *Program) StateKeys() []string {
	return pr.Plan.Manifest.StateKeys("")
}

// SetState copies values into the current buffers of the given state
// tensors; every key must exist with the right size.
func (pr *Program) SetState(values map[string][]float32) error {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		s, ok := pr.state[k]
		if !ok {
			return fmt.Errorf("no state %q", k)
		}
		if len(values[k]) != len(s.cur.F32) {
			return fmt.Errorf("state %s: %d values, want %d", k, len(values[k]), len(s.cur.F32))
		}
	}
	for _, k := range keys {
		copy(pr.state[k].cur.F32, values[k])
	}
	return nil
}

// Close releases every session and tensor.
func (pr *Program) Close() error {
	var errs []error
	for _, bg := range pr.graphs {
		errs = append(errs, bg.close())
	}
	for _, s := range pr.state {
		errs = append(errs, s.cur.Close(), s.next.Close())
	}
	for _, t := range pr.inputs {
		errs = append(errs, t.Close())
	}
	for _, b := range pr.batches {
		for _, t := range b.Data {
			errs = append(errs, t.Close())
		}
		errs = append(errs, b.Labels.Close())
	}
	pr.graphs, pr.state, pr.inputs, pr.batches = nil, nil, nil, nil
	return errors.Join(errs...)
}
