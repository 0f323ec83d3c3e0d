package sweep

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"bmc/internal/atomicfile"
)

// jobsFile records the sweep's submitted Slurm jobs.
const jobsFile = "jobs.json"

// Job is a submitted Slurm job array.
type Job struct {
	ID     string    `json:"id"`
	Script string    `json:"script"`
	Cells  []int     `json:"cells"`
	At     time.Time `json:"submitted_at"`
}

// Merge overlays the set fields of o2 on o (flags over the grid file).
func (o SlurmOptions) Merge(o2 SlurmOptions) SlurmOptions {
	for _, f := range []struct{ dst, v *string }{{&o.Partition, &o2.Partition}, {&o.Time, &o2.Time}, {&o.Mem, &o2.Mem}, {&o.Account, &o2.Account}, {&o.QOS, &o2.QOS}} {
		if *f.v != "" {
			*f.dst = *f.v
		}
	}
	for _, f := range []struct{ dst, v *int }{{&o.GPUs, &o2.GPUs}, {&o.CPUsPerTask, &o2.CPUsPerTask}, {&o.MaxParallel, &o2.MaxParallel}} {
		if *f.v != 0 {
			*f.dst = *f.v
		}
	}
	o.Args = append(o.Args, o2.Args...)
	o.Setup = append(o.Setup, o2.Setup...)
	return o
}

// jobName is the sweep's Slurm job name.
func (s *Sweep) jobName() string { return "bmc-" + safeName(s.Manifest.Name) }

// Script is the sbatch job-array script that runs the given cells, one
// array task per cell with the cell's manifest index as its task ID.
func (s *Sweep) Script(cells []int, o SlurmOptions, bmc string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/bash\n# bmc sweep %s: one array task per cell; the task ID is the cell's index in %s.\n", s.Manifest.Name, filepath.Join(s.Dir, ManifestFile))
	opt := func(k, v string) { fmt.Fprintf(&b, "#SBATCH --%s=%s\n", k, v) }
	opt("job-name", s.jobName())
	array := arraySpec(cells)
	if o.MaxParallel > 0 {
		array += "%" + strconv.Itoa(o.MaxParallel)
	}
	opt("array", array)
	opt("output", filepath.Join(s.Dir, SlurmDir, "logs", "%A_%a.out"))
	cpus := max(o.CPUsPerTask, 1)
	opt("cpus-per-task", strconv.Itoa(cpus))
	for _, kv := range [][2]string{{"partition", o.Partition}, {"time", o.Time}, {"mem", o.Mem}, {"account", o.Account}, {"qos", o.QOS}} {
		if kv[1] != "" {
			opt(kv[0], kv[1])
		}
	}
	if o.GPUs > 0 {
		opt("gpus-per-task", strconv.Itoa(o.GPUs))
	}
	for _, a := range o.Args {
		fmt.Fprintf(&b, "#SBATCH %s\n", a)
	}
	b.WriteString("set -euo pipefail\n")
	for _, l := range o.Setup {
		b.WriteString(l + "\n")
	}
	fmt.Fprintf(&b, "exec %s sweep cell %s \"$SLURM_ARRAY_TASK_ID\" --threads \"${SLURM_CPUS_PER_TASK:-%d}\"\n", shellQuote(bmc), shellQuote(s.Dir), cpus)
	return b.String()
}

// arraySpec writes sorted task IDs as sbatch ranges: 0-3,5,7-9.
func arraySpec(ids []int) string {
	ids = append([]int(nil), ids...)
	sort.Ints(ids)
	var parts []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", ids[i], ids[j]))
		} else {
			parts = append(parts, strconv.Itoa(ids[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=,:") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Submission is what Submit did.
type Submission struct {
	// Job is the submitted job; nil when there was nothing to submit or
	// the script was only written.
	Job *Job
	// Script is the job script's path.
	Script string
	// Cells are the cells the script runs.
	Cells []int
	// Waiting are cells left out because they are queued or running.
	Waiting int
}

// Submit writes a job-array script for the cells that are not finished,
// queued or running, and submits it with sbatch unless dryRun.
func (s *Sweep) Submit(ctx context.Context, o SlurmOptions, bmc string, dryRun bool) (Submission, error) {
	q, _ := s.Queue(ctx)
	var sub Submission
	for _, st := range s.Status(q) {
		switch st.State {
		case StateDone:
		case StateRunning, StatePending:
			sub.Waiting++
		default:
			sub.Cells = append(sub.Cells, st.Index)
		}
	}
	if len(sub.Cells) == 0 {
		return sub, nil
	}
	jobs, err := s.Jobs()
	if err != nil {
		return sub, err
	}
	dir := filepath.Join(s.Dir, SlurmDir)
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return sub, err
	}
	sub.Script = filepath.Join(dir, fmt.Sprintf("submit-%d.sbatch", len(jobs)+1))
	if err := atomicfile.WriteBytes(sub.Script, []byte(s.Script(sub.Cells, o, bmc))); err != nil {
		return sub, err
	}
	if err := os.Chmod(sub.Script, 0o755); err != nil {
		return sub, err
	}
	if dryRun {
		return sub, nil
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "sbatch", "--parsable", sub.Script)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return sub, fmt.Errorf("sbatch %s: %w: %s", sub.Script, err, strings.TrimSpace(stderr.String()))
	}
	id, _, _ := strings.Cut(strings.TrimSpace(stdout.String()), ";")
	if _, err := strconv.Atoi(id); err != nil {
		return sub, fmt.Errorf("sbatch %s printed %q, not a job ID", sub.Script, stdout.String())
	}
	sub.Job = &Job{ID: id, Script: sub.Script, Cells: sub.Cells, At: time.Now().UTC()}
	data, err := json.MarshalIndent(append(jobs, *sub.Job), "", "  ")
	if err != nil {
		return sub, err
	}
	return sub, atomicfile.WriteBytes(filepath.Join(dir, jobsFile), append(data, '\n'))
}

// Jobs are the sweep's submitted jobs, oldest first.
func (s *Sweep) Jobs() ([]Job, error) {
	path := filepath.Join(s.Dir, SlurmDir, jobsFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var jobs []Job
	if err := json.Unmarshal(data, &jobs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return jobs, nil
}

// Queue is what Slurm says about the sweep's tasks.
type Queue struct {
	// Tasks maps a cell's index to its latest task.
	Tasks map[int]*QueueTask
	// Notes say what could not be asked (no squeue, no accounting).
	Notes []string
}

// QueueTask is one array task as squeue or sacct reports it.
type QueueTask struct {
	// ID is JOB_TASK.
	ID    string
	Job   string
	State string
	// Live is true for tasks squeue lists (pending or running).
	Live bool
}

// Failed reports whether Slurm's accounting says the task ended badly.
func (t *QueueTask) Failed() bool {
	state, _, _ := strings.Cut(t.State, " ") // "CANCELLED by 0"
	switch state {
	case "FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE":
		return !t.Live
	}
	return false
}

// TaskLog is a task's Slurm output file.
func (s *Sweep) TaskLog(t *QueueTask) string {
	job, task, _ := strings.Cut(t.ID, "_")
	return filepath.Join(s.Dir, SlurmDir, "logs", job+"_"+task+".out")
}

// Queue asks squeue (and sacct, where accounting is on) about the sweep's
// submitted jobs. Without jobs, or without Slurm's commands, it returns nil
// or notes.
func (s *Sweep) Queue(ctx context.Context) (*Queue, error) {
	jobs, err := s.Jobs()
	if err != nil || len(jobs) == 0 {
		return nil, err
	}
	q := &Queue{Tasks: map[int]*QueueTask{}}
	known := map[string]bool{}
	var ids []string
	for _, j := range jobs {
		known[j.ID] = true
		ids = append(ids, j.ID)
	}
	set := func(job, task, state string, live bool) {
		i, err := strconv.Atoi(task)
		if err != nil || !known[job] {
			return
		}
		// Later jobs supersede earlier ones; live beats accounting.
		if old := q.Tasks[i]; old != nil && (atoiOr(old.Job) > atoiOr(job) || (old.Job == job && old.Live)) {
			return
		}
		q.Tasks[i] = &QueueTask{ID: job + "_" + task, Job: job, State: state, Live: live}
	}
	if out, err := slurmCommand(ctx, "sacct", "-n", "-P", "-X", "-j", strings.Join(ids, ","), "-o", "JobID,State"); err != nil {
		q.Notes = append(q.Notes, "sacct: "+err.Error())
	} else {
		for _, line := range strings.Split(out, "\n") {
			id, state, ok := strings.Cut(line, "|")
			job, task, isTask := strings.Cut(id, "_")
			if ok && isTask {
				set(job, task, state, false)
			}
		}
	}
	if out, err := slurmCommand(ctx, "squeue", "-h", "-r", "-n", s.jobName(), "-o", "%F|%K|%T"); err != nil {
		q.Notes = append(q.Notes, "squeue: "+err.Error())
	} else {
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Split(line, "|"); len(f) == 3 {
				set(f[0], f[1], f[2], true)
			}
		}
	}
	return q, nil
}

func atoiOr(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// slurmCommand runs a Slurm client command and returns its output.
func slurmCommand(ctx context.Context, name string, args ...string) (string, error) {
	if _, err := exec.LookPath(name); err != nil {
		return "", fmt.Errorf("not installed")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}
