package sweep

import (
	"encoding/json"
	"os"
	"path/filepath"

	"bmc/experiment"
	"bmc/runtime"
)

// State is where a cell stands.
type State string

// The states of a cell.
const (
	// StateDone: the run finished (results.json).
	StateDone State = "done"
	// StateRunning: a process holds the cell, or Slurm runs its task.
	StateRunning State = "running"
	// StatePending: the cell's Slurm task waits in the queue.
	StatePending State = "pending"
	// StateFailed: the last attempt failed (cells/ID.failed.json, or
	// Slurm's accounting says the task failed).
	StateFailed State = "failed"
	// StateStopped: the run has a checkpoint and was stopped; it resumes.
	StateStopped State = "stopped"
	// StateNew: nothing has run yet.
	StateNew State = "not started"
)

// CellStatus is a cell's state as its files (and the queue) show it.
type CellStatus struct {
	Index int    `json:"index"`
	ID    string `json:"id"`
	State State  `json:"state"`
	// EpochsDone and Epochs tell how far the run got.
	EpochsDone int `json:"epochs_done"`
	Epochs     int `json:"epochs,omitempty"`
	// TestAcc and Degree are the finished run's test accuracy and
	// imbalance degree.
	TestAcc float64  `json:"test_acc,omitempty"`
	Degree  *float64 `json:"imbalance_degree,omitempty"`
	// Error is the failure's message; Log the cell's output file.
	Error string `json:"error,omitempty"`
	Log   string `json:"log"`
	// Task is the Slurm array task (JOB_TASK) and Slurm its state there.
	Task  string `json:"slurm_task,omitempty"`
	Slurm string `json:"slurm_state,omitempty"`
}

// Status reads every cell's state. q, from Slurm, may be nil.
func (s *Sweep) Status(q *Queue) []CellStatus {
	out := make([]CellStatus, len(s.Manifest.Cells))
	for i, c := range s.Manifest.Cells {
		out[i] = s.cellStatus(i, c, q)
	}
	return out
}

func (s *Sweep) cellStatus(i int, c Cell, q *Queue) CellStatus {
	dir := s.RunDir(c)
	rel, _ := filepath.Rel(s.Dir, s.LogFile(c))
	st := CellStatus{Index: i, ID: c.ID, Log: rel}
	if c.Config.Train.Epochs != nil {
		st.Epochs = *c.Config.Train.Epochs
	} else if r, err := experiment.ReadConfig(filepath.Join(dir, experiment.ConfigFile)); err == nil {
		st.Epochs = r.Train.Epochs
	}
	var rs runtime.RunState
	if data, err := os.ReadFile(filepath.Join(dir, runtime.RunStateFile)); err == nil && json.Unmarshal(data, &rs) == nil {
		st.EpochsDone = rs.Epoch + 1
	}
	var task *QueueTask
	if q != nil {
		task = q.Tasks[i]
	}
	if task != nil {
		st.Task, st.Slurm = task.ID, task.State
	}
	if data, err := os.ReadFile(filepath.Join(dir, runtime.ResultsFile)); err == nil {
		var r runtime.Result
		if json.Unmarshal(data, &r) == nil {
			st.State, st.TestAcc, st.Degree, st.EpochsDone = StateDone, r.Test.Acc, r.Imbalance.Degree, r.Epochs
			return st
		}
	}
	switch {
	case s.cellRunning(c) || (task != nil && task.Live && task.State != "PENDING"):
		st.State = StateRunning
	case task != nil && task.Live:
		st.State = StatePending
	default:
		if f := s.readFailure(c); f != nil {
			st.State, st.Error = StateFailed, f.Error
		} else if task != nil && task.Failed() {
			st.State, st.Error = StateFailed, "Slurm task "+task.ID+" ended "+task.State+" (its log: "+s.TaskLog(task)+")"
		} else if exists(filepath.Join(dir, runtime.LastCheckpoint)) {
			st.State = StateStopped
		} else {
			st.State = StateNew
		}
	}
	return st
}

// Counts tallies cells per state.
func Counts(st []CellStatus) map[State]int {
	n := map[State]int{}
	for _, c := range st {
		n[c.State]++
	}
	return n
}
