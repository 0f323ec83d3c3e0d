package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"bmc/internal/atomicfile"
)

// LockFile is the run directory's lock: a training process holds an
// advisory lock (flock) on it for as long as it runs, so a second
// `bmc train --out DIR` or `--resume DIR` fails instead of interleaving
// its log and checkpoints with the first. The kernel drops the lock when
// the process ends, however it ends: a killed run's lock never blocks its
// resume. The file holds the holder's process id, for the error message.
const LockFile = ".lock"

// runDir is a run directory held by this process for one training run.
type runDir struct {
	path string
	lock *os.File
	// before lists the names the directory held when a new run started;
	// nil when the run created the directory.
	before map[string]bool
	resume bool
}

// openRunDir creates (for a new run) and locks a run directory, then checks
// that it holds no previous run (new) or a run that can continue (resume).
// A resume also removes the temporary files a killed process left.
func openRunDir(dir string, resume bool) (*runDir, error) {
	if dir == "" {
		return nil, fmt.Errorf("no run directory given")
	}
	d := &runDir{path: dir, resume: resume}
	if resume {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("run %s cannot resume: no such run directory", dir)
		}
	} else {
		entries, err := os.ReadDir(dir)
		switch {
		case err == nil:
			d.before = map[string]bool{}
			for _, e := range entries {
				d.before[e.Name()] = true
			}
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("run directory: %w", err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("run directory: %w", err)
		}
	}
	if err := d.acquire(); err != nil {
		d.close(err)
		return nil, err
	}
	var err error
	if resume {
		err = checkResumable(dir)
	} else {
		err = prepareRunDir(dir)
	}
	if err == nil && resume {
		err = removeStaleTemps(dir)
	}
	if err != nil {
		d.close(err)
		return nil, err
	}
	return d, nil
}

// acquire takes the lock without waiting.
func (d *runDir) acquire() error {
	path := filepath.Join(d.path, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("run directory %s is not writable: %w", d.path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := "another process"
		if data, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(data))); perr == nil {
				holder = fmt.Sprintf("another bmc process (pid %d)", pid)
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("run directory %s is in use by %s; wait for it to end, or choose another --out", d.path, holder)
		}
		return fmt.Errorf("run directory %s: lock %s: %w", d.path, path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	d.lock = f
	return nil
}

// close releases the lock. A new run that failed (err != nil) before its
// first epoch was committed leaves nothing behind: the directory goes if
// the run created it, else whatever the run added to it.
func (d *runDir) close(err error) {
	if d == nil {
		return
	}
	if err != nil && !d.resume {
		if _, serr := os.Stat(filepath.Join(d.path, LastCheckpoint)); errors.Is(serr, fs.ErrNotExist) {
			d.removeAdded()
		}
	}
	if d.lock != nil {
		d.lock.Close() // closing the descriptor drops the lock
		d.lock = nil
	}
}

// removeAdded removes what a failed start wrote.
func (d *runDir) removeAdded() {
	if d.before == nil {
		_ = os.RemoveAll(d.path)
		return
	}
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !d.before[e.Name()] {
			_ = os.RemoveAll(filepath.Join(d.path, e.Name()))
		}
	}
}

// removeStaleTemps removes the temporary files of writes a killed process
// never finished, in the run directory and the folders it writes into. It
// runs under the lock, so no live writer owns them.
func removeStaleTemps(dir string) error {
	for _, d := range []string{dir, filepath.Join(dir, PlanDir), filepath.Join(dir, TensorBoardDir)} {
		if err := atomicfile.RemoveStale(d); err != nil {
			return fmt.Errorf("run %s: %w", dir, err)
		}
	}
	return nil
}
