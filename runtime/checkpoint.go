package runtime

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"bmc/compile"
	"bmc/internal/atomicfile"
	"bmc/methods"
	"bmc/safetensors"
)

// Checkpoints and run directories: each epoch ends by writing the best
// checkpoint (when validation improved), the log line and then the last
// checkpoint, whose metadata carries the run state; that last write commits
// the epoch, so a run killed at any moment resumes from a consistent point.

// RunState is where a run stands after an epoch. The last checkpoint carries
// it in its metadata (one atomic file is the commit point of an epoch);
// checkpoint.json repeats it for people.
type RunState struct {
	// Epoch is the last finished epoch (−1 before the first).
	Epoch      int     `json:"epoch"`
	GlobalStep int64   `json:"global_step"`
	BestEpoch  int     `json:"best_epoch"`
	BestAcc    float64 `json:"best_val_acc"`
	// GraphRuns counts every graph's runs so far (the FLOPs tally).
	GraphRuns map[string]int64 `json:"graph_runs,omitempty"`
	// Seconds is the wall time spent up to the end of the epoch, over every
	// segment of a run that was stopped and resumed (the time between a
	// kill and its resume, and the lost part of a killed epoch, excluded).
	// Only checkpoint.json holds it: checkpoints stay byte for byte what an
	// uninterrupted run with the same seed writes.
	Seconds float64 `json:"seconds,omitempty"`
}

// writeCheckpoint stores the current state with the run state in the
// metadata. It writes from the state's own memory (no copy: the state does
// not change while the file is written).
func (t *trainer) writeCheckpoint(name string) error {
	st := t.state
	st.Seconds = 0 // wall time is no part of a checkpoint (see RunState)
	meta, err := json.Marshal(st)
	if err != nil {
		return err
	}
	f := safetensors.File{Tensors: map[string]safetensors.Tensor{}, Metadata: map[string]string{"producer": "bmc", runStateKey: string(meta)}}
	if s, ok := t.sched.(methods.StatefulSchedule); ok {
		data, err := s.MarshalState()
		if err != nil {
			return fmt.Errorf("checkpoint %s: method schedule state: %w", name, err)
		}
		// Base64: the metadata is JSON text, the state any bytes.
		f.Metadata[scheduleStateKey] = base64.StdEncoding.EncodeToString(data)
	}
	for _, k := range checkpointed(&t.plan.Manifest) {
		v, err := t.pr.State(k)
		if err != nil {
			return fmt.Errorf("checkpoint %s: %w", name, err)
		}
		f.Tensors[k] = safetensors.Float32sView(t.stateShape[k], v)
	}
	return safetensors.WriteFile(filepath.Join(t.opt.OutDir, name), f)
}

// checkpointed lists the state a checkpoint holds: all of it but the frozen
// state, which never changes and which a run reads from its plan.
func checkpointed(m *compile.Manifest) []string {
	var keys []string
	for _, s := range m.State {
		if s.Kind != compile.StateFrozen {
			keys = append(keys, s.Key)
		}
	}
	return keys
}

// Checkpoint metadata entries: the RunState, and the method schedule's
// state (StatefulSchedule.MarshalState, base64).
const (
	runStateKey      = "bmc.run_state"
	scheduleStateKey = "bmc.schedule_state"
)

// restore loads the last and best checkpoints of the run directory, and
// trims log.jsonl to the epochs the last checkpoint covers.
func (t *trainer) restore() error {
	dir := t.opt.OutDir
	lastPath := filepath.Join(dir, LastCheckpoint)
	f, err := safetensors.ReadFile(lastPath)
	if err != nil {
		return err
	}
	last, st, err := checkpointState(lastPath, f)
	if err != nil {
		return err
	}
	if s, ok := t.sched.(methods.StatefulSchedule); ok {
		enc, found := f.Metadata[scheduleStateKey]
		if !found {
			return fmt.Errorf("%s: metadata %s is missing: the method's schedule state was not saved", lastPath, scheduleStateKey)
		}
		data, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return fmt.Errorf("%s: metadata %s: %w", lastPath, scheduleStateKey, err)
		}
		if err := s.UnmarshalState(data); err != nil {
			return fmt.Errorf("%s: metadata %s: %w", lastPath, scheduleStateKey, err)
		}
	}
	if err := t.pr.SetState(last); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, LastCheckpoint), err)
	}
	if want := len(checkpointed(&t.plan.Manifest)); len(last) != want {
		return fmt.Errorf("%s holds %d tensors, the plan's checkpointed state has %d", filepath.Join(dir, LastCheckpoint), len(last), want)
	}
	if _, err := os.Stat(filepath.Join(dir, BestCheckpoint)); err != nil {
		return fmt.Errorf("run %s cannot resume: %w", dir, err)
	}
	t.state = st
	t.run.global = st.GlobalStep
	t.pr.SetRuns(st.GraphRuns)
	// The run's clock continues from the time checkpoint.json recorded (an
	// epoch earlier if the kill fell between the two writes).
	var recorded RunState
	if data, err := os.ReadFile(filepath.Join(dir, RunStateFile)); err == nil && json.Unmarshal(data, &recorded) == nil && recorded.Epoch <= st.Epoch {
		t.state.Seconds = recorded.Seconds
		t.start = t.start.Add(-time.Duration(recorded.Seconds * float64(time.Second)))
	}
	return trimLog(filepath.Join(dir, LogFile), st.Epoch)
}

// readCheckpointState reads a checkpoint and the run state in its metadata.
func readCheckpointState(path string) (map[string][]float32, RunState, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, RunState{}, err
	}
	return checkpointState(path, f)
}

// checkpointState is the tensors and the run state of a checkpoint read
// from path.
func checkpointState(path string, f safetensors.File) (map[string][]float32, RunState, error) {
	var st RunState
	raw, ok := f.Metadata[runStateKey]
	if !ok {
		return nil, st, fmt.Errorf("%s: metadata %s is missing; it is not a bmc training checkpoint", path, runStateKey)
	}
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return nil, st, fmt.Errorf("%s: metadata %s: %w", path, runStateKey, err)
	}
	out := map[string][]float32{}
	for k, tt := range f.Tensors {
		var err error
		if out[k], err = tt.AsFloat32(); err != nil {
			return nil, st, fmt.Errorf("%s: tensor %s: %w", path, k, err)
		}
	}
	return out, st, nil
}

// trimLog drops the log lines of epochs after lastEpoch (written before a
// kill, not covered by the checkpoint), rewriting the file atomically.
func trimLog(path string, lastEpoch int) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var kept []byte
	for _, line := range strings.SplitAfter(string(data), "\n") {
		var l EpochLog
		if !strings.HasSuffix(line, "\n") || json.Unmarshal([]byte(line), &l) != nil {
			continue // a line cut short by the kill
		}
		if l.Epoch <= lastEpoch {
			kept = append(kept, line...)
		}
	}
	return atomicfile.WriteBytes(path, kept)
}

// checkResumable checks that a run directory holds a run that can continue.
func checkResumable(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, ResultsFile)); err == nil {
		return fmt.Errorf("run %s is finished (%s exists); nothing to resume", dir, ResultsFile)
	}
	if _, err := os.Stat(filepath.Join(dir, LastCheckpoint)); err != nil {
		return fmt.Errorf("run %s cannot resume: no %s (it was stopped before its first epoch ended; start it afresh)", dir, LastCheckpoint)
	}
	return checkWritable(dir)
}

// prepareRunDir creates the run directory and checks that it is writable
// and holds no previous run, before any training time is spent.
func prepareRunDir(dir string) error {
	if dir == "" {
		return fmt.Errorf("no run directory given")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	for _, f := range []string{LastCheckpoint, ResultsFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("run directory %s already holds a run (%s); choose another --out, remove it, or continue it with --resume", dir, f)
		}
	}
	for _, f := range []string{LogFile, RunStateFile, PlanDir} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("run directory %s holds a run that was stopped before its first epoch ended (%s, no %s): nothing can be resumed; remove it or choose another --out", dir, f, LastCheckpoint)
		}
	}
	return checkWritable(dir)
}

// snapshot copies the current state.
func (pr *Program) snapshot() map[string][]float32 {
	out := map[string][]float32{}
	for k, s := range pr.state {
		out[k] = slices.Clone(s.cur.F32)
	}
	return out
}

// ReadCheckpoint loads a training checkpoint's tensors (flat float32 values).
func ReadCheckpoint(path string) (map[string][]float32, error) {
	state, _, err := readCheckpointState(path)
	return state, err
}

// checkWritable fails when a file cannot be created in dir.
func checkWritable(dir string) error {
	probe, err := os.CreateTemp(dir, ".write-test.tmp-*")
	if err != nil {
		return fmt.Errorf("run directory %s is not writable: %w", dir, err)
	}
	probe.Close()
	return os.Remove(probe.Name())
}
