package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"bmc/compile"
)

// RunStage is how far the run in a directory got.
type RunStage int

// The stages of a run directory.
const (
	// RunAbsent: no epoch was committed (no last checkpoint); whatever the
	// directory holds can be cleared and the run started afresh.
	RunAbsent RunStage = iota
	// RunResumable: at least one epoch was committed; --resume continues it.
	RunResumable
	// RunFinished: results.json was written.
	RunFinished
)

// StageOf reports how far the run in dir got.
func StageOf(dir string) RunStage {
	if exists(filepath.Join(dir, ResultsFile)) {
		return RunFinished
	}
	if exists(filepath.Join(dir, LastCheckpoint)) {
		return RunResumable
	}
	return RunAbsent
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// ClearUncommitted removes what a run that never committed an epoch left
// in dir (its log lines, best checkpoint and TensorBoard events), so that
// the run can start again in the same directory. It refuses a directory
// whose run committed an epoch.
func ClearUncommitted(dir string) error {
	if StageOf(dir) != RunAbsent {
		return fmt.Errorf("run %s committed an epoch (%s exists); continue it with --resume instead of starting it again", dir, LastCheckpoint)
	}
	for _, name := range []string{LogFile, BestCheckpoint, RunStateFile, TensorBoardDir} {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("clear the unfinished start of run %s: %w", dir, err)
		}
	}
	return nil
}

// ReadFinishedRun reads a finished run directory: its plan and the tensors
// of its best checkpoint (the model its results.json reports).
func ReadFinishedRun(dir string) (*compile.Plan, map[string][]float32, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, nil, fmt.Errorf("run %s: %w", dir, err)
	}
	plan, err := compile.Load(filepath.Join(dir, PlanDir))
	if err != nil {
		return nil, nil, fmt.Errorf("%s is not a run directory: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ResultsFile)); errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("run %s is not finished (no %s); finish it with `bmc train --resume %s`", dir, ResultsFile, dir)
	} else if err != nil {
		return nil, nil, err
	}
	best, err := ReadCheckpoint(filepath.Join(dir, BestCheckpoint))
	if err != nil {
		return nil, nil, err
	}
	return plan, best, nil
}

// CheckNewRunDir creates dir if needed and checks that it holds no run and
// is writable, as a new training run requires.
func CheckNewRunDir(dir string) error { return prepareRunDir(dir) }
