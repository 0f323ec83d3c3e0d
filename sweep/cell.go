package sweep

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"bmc/internal/atomicfile"
	"bmc/runtime"
)

// RunOptions say how a cell's bmc train process starts.
type RunOptions struct {
	// BMC is the bmc executable the cells run.
	BMC string
	// Threads, when > 0, is each new run's ONNX Runtime thread count and
	// its data workers (a grid's train.threads comes first). A resumed run
	// keeps the thread count it started with, so that it reaches the
	// parameters an uninterrupted run reaches.
	Threads int
	// Started, when set, is called once the cell's process has started.
	Started func(c Cell, resumed bool)
}

// Outcome is what running a cell came to.
type Outcome struct {
	State State
	// Resumed is true when the run continued from its last checkpoint.
	Resumed bool
	// Error is the failure's message (State failed).
	Error   string
	Seconds float64
}

// Failure is a failed cell's record (cells/ID.failed.json); the next
// attempt replaces it, a finished run removes it.
type Failure struct {
	Error    string    `json:"error"`
	ExitCode int       `json:"exit_code"`
	Command  []string  `json:"command"`
	Host     string    `json:"host"`
	At       time.Time `json:"at"`
	Log      string    `json:"log"`
}

// lockWait is how long a cell start waits for its lock: long enough to
// outlast a status probe, short against a run in progress elsewhere.
const lockWait = 2 * time.Second

// RunCell runs the cell with the given index to its end: a finished run is
// left as it is, a run with a checkpoint resumes, anything else starts
// afresh (a start killed before its first epoch ended left no checkpoint to
// lose). The bmc train process's output is appended to cells/ID.log; a
// failure is recorded in cells/ID.failed.json and returned as an outcome,
// not an error. Cancelling ctx kills the process (the run resumes next
// time); a cell another process is running is reported as running.
func (s *Sweep) RunCell(ctx context.Context, i int, opt RunOptions) (Outcome, error) {
	c := s.Manifest.Cells[i]
	if ctx.Err() != nil {
		return Outcome{State: StateStopped}, nil
	}
	lock, err := s.lockCell(c)
	if err != nil {
		return Outcome{}, err
	}
	if lock == nil {
		return Outcome{State: StateRunning}, nil
	}
	defer lock.Close()
	dir := s.RunDir(c)
	if exists(filepath.Join(dir, runtime.ResultsFile)) {
		return Outcome{State: StateDone}, nil
	}
	args, resumed, err := s.trainArgs(c, opt)
	if err != nil {
		return Outcome{}, err
	}
	log, err := os.OpenFile(s.LogFile(c), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return Outcome{}, fmt.Errorf("cell %s: %w", c.ID, err)
	}
	defer log.Close()
	host, _ := os.Hostname()
	fmt.Fprintf(log, "=== %s on %s (pid %d): %s %s\n", time.Now().UTC().Format(time.RFC3339), host, os.Getpid(), opt.BMC, strings.Join(args, " "))
	var tail tailBuffer
	cmd := exec.CommandContext(ctx, opt.BMC, args...)
	cmd.Stdout = log
	cmd.Stderr = io.MultiWriter(log, &tail)
	// A cell's process dies with the sweep process, however that ends, so
	// that no orphan writes into a run a rerun resumes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return s.fail(c, Outcome{}, args, host, -1, err.Error())
	}
	// The attempt's outcome replaces the last one's record.
	if err := os.Remove(s.cellFile(c, failedSuffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Outcome{}, err
	}
	if opt.Started != nil {
		opt.Started(c, resumed)
	}
	err = cmd.Wait()
	out := Outcome{Resumed: resumed, Seconds: time.Since(start).Seconds()}
	if ctx.Err() != nil {
		fmt.Fprintf(log, "=== interrupted (%v); the run resumes from its last checkpoint\n", ctx.Err())
		out.State = StateStopped
		return out, nil
	}
	if err == nil && exists(filepath.Join(dir, runtime.ResultsFile)) {
		out.State = StateDone
		return out, nil
	}
	code := -1
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
		// Ctrl-C reaches the cell's process with the sweep's: an
		// interruption, not a failure, even before ctx says so.
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && (ws.Signal() == syscall.SIGINT || ws.Signal() == syscall.SIGTERM) {
			fmt.Fprintf(log, "=== interrupted (%v); the run resumes from its last checkpoint\n", ws.Signal())
			out.State = StateStopped
			return out, nil
		}
	}
	msg := tail.lastError()
	switch {
	case err == nil:
		msg = "bmc train exited without writing " + runtime.ResultsFile
	case msg == "":
		msg = "bmc train: " + err.Error()
	}
	return s.fail(c, out, args, host, code, msg)
}

// failedSuffix names a cell's failure record.
const failedSuffix = ".failed.json"

// fail records a failed attempt.
func (s *Sweep) fail(c Cell, out Outcome, args []string, host string, code int, msg string) (Outcome, error) {
	rel, _ := filepath.Rel(s.Dir, s.LogFile(c))
	rec := Failure{Error: msg, ExitCode: code, Command: args, Host: host, At: time.Now().UTC(), Log: rel}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return out, err
	}
	if err := atomicfile.WriteBytes(s.cellFile(c, failedSuffix), append(data, '\n')); err != nil {
		return out, err
	}
	out.State, out.Error = StateFailed, msg
	return out, nil
}

// trainArgs are the bmc train arguments that take a cell on: --resume when
// its run has a checkpoint, else a fresh run of its configuration.
func (s *Sweep) trainArgs(c Cell, opt RunOptions) ([]string, bool, error) {
	dir := s.RunDir(c)
	var workers []string
	if opt.Threads > 0 {
		workers = []string{"--workers", strconv.Itoa(opt.Threads)}
	}
	if exists(filepath.Join(dir, runtime.LastCheckpoint)) {
		args := append([]string{"train", "--resume", dir}, workers...)
		if c.Config.DataRoot != "" {
			args = append(args, "--data-root", c.Config.DataRoot)
		}
		return args, true, nil
	}
	// A start that never finished an epoch: nothing of it can continue.
	if err := os.RemoveAll(dir); err != nil {
		return nil, false, fmt.Errorf("cell %s: clear a run that never finished an epoch: %w", c.ID, err)
	}
	cfg, err := yaml.Marshal(c.Config)
	if err != nil {
		return nil, false, err
	}
	path := s.cellFile(c, ".yaml")
	head := []byte("# Cell " + c.ID + " of sweep " + s.Manifest.Name + " (from " + ManifestFile + ").\n")
	if err := atomicfile.WriteBytes(path, append(head, cfg...)); err != nil {
		return nil, false, err
	}
	args := append([]string{"train", "--config", path, "--out", dir}, workers...)
	if opt.Threads > 0 && c.Config.Train.Threads == nil {
		args = append(args, "--threads", strconv.Itoa(opt.Threads))
	}
	return args, false, nil
}

// lockCell takes the cell's lock, which its runner holds for as long as
// it runs the cell; nil when another process holds it.
func (s *Sweep) lockCell(c Cell) (*os.File, error) {
	f, err := os.OpenFile(s.cellFile(c, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cell %s: %w", c.ID, err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("cell %s: lock: %w", c.ID, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cellRunning probes whether some process holds the cell's lock.
func (s *Sweep) cellRunning(c Cell) bool {
	f, err := os.Open(s.cellFile(c, ".lock"))
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	return errors.Is(err, syscall.EWOULDBLOCK)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// tailBuffer keeps the last few KiB written to it.
type tailBuffer struct{ buf []byte }

const tailBytes = 8 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailBytes {
		t.buf = t.buf[len(t.buf)-tailBytes:]
	}
	return len(p), nil
}

// lastError is the last "bmc: …" line the process wrote (bmc's error
// message), or its last line.
func (t *tailBuffer) lastError() string {
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if msg, ok := strings.CutPrefix(lines[i], "bmc: "); ok {
			return msg
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}

// readFailure reads a cell's failure record; nil when it has none.
func (s *Sweep) readFailure(c Cell) *Failure {
	data, err := os.ReadFile(s.cellFile(c, failedSuffix))
	if err != nil {
		return nil
	}
	f := &Failure{}
	if json.Unmarshal(bytes.TrimSpace(data), f) != nil {
		f.Error = "unreadable failure record " + s.cellFile(c, failedSuffix)
	}
	return f
}
