package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"bmc/internal/atomicfile"
	"bmc/sweep"
)

const sweepUsage = `bmc sweep GRID.yaml [--out DIR] [--executor local|slurm] [--jobs N] [flags]
  bmc sweep status SWEEP_DIR [--json] [--wait]
  bmc sweep cell SWEEP_DIR INDEX|ID [--threads N]
  bmc sweep --paper FILE.yaml
  bmc sweep --balance METHOD --dataset D FILE.yaml`

const sweepExample = `bmc sweep grid.yaml --jobs 2                       # every cell here, 2 at a time; rerun to resume
  bmc sweep grid.yaml --executor slurm --partition gpu --time 04:00:00 --mem 16G
  bmc sweep status runs/sweep-demo
  bmc sweep --paper paper.yaml                        # the paper's whole grid, to edit and submit
  bmc sweep --balance agm --dataset cremad agm.yaml   # AGM's α swept (the paper's Fig. 3)`

func runSweep(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "status":
			return runSweepStatus(args[1:], stdout)
		case "cell":
			return runSweepCell(args[1:], stdout)
		}
	}
	fs := flagSet("sweep", stdout)
	out := fs.String("out", "", "sweep directory (default: the grid's out, else runs/NAME)")
	executor := fs.String("executor", "local", "local (cells run here) or slurm (an sbatch job array)")
	jobs := fs.Int("jobs", 0, "local: cells run at once (default: the grid's jobs, else 1)")
	threads := fs.Int("threads", 0, "local: ONNX Runtime threads per cell (default: the CPUs split over the jobs)")
	bmcPath := fs.String("bmc", "", "the bmc executable the cells run (default: this one; on Slurm it must be reachable from the nodes)")
	heartbeat := fs.Duration("progress-every", 30*time.Second, "local: print the running cells' epochs this often (0: never)")
	var so sweep.SlurmOptions
	fs.StringVar(&so.Partition, "partition", "", "slurm: partition")
	fs.StringVar(&so.Time, "time", "", "slurm: time limit per cell, e.g. 04:00:00")
	fs.StringVar(&so.Mem, "mem", "", "slurm: memory per cell, e.g. 16G")
	fs.IntVar(&so.GPUs, "gpus", 0, "slurm: GPUs per cell")
	fs.IntVar(&so.CPUsPerTask, "cpus-per-task", 0, "slurm: CPUs per cell (its thread count; default 1)")
	fs.StringVar(&so.Account, "account", "", "slurm: account")
	fs.StringVar(&so.QOS, "qos", "", "slurm: quality of service")
	fs.IntVar(&so.MaxParallel, "max-parallel", 0, "slurm: most cells running at once (--array=…%N)")
	fs.StringArrayVar(&so.Args, "sbatch-arg", nil, "slurm: another sbatch option, e.g. --constraint=a100 (repeatable)")
	noSubmit := fs.Bool("no-submit", false, "slurm: write the job script but do not submit it")
	paper := fs.Bool("paper", false, "write the paper's whole grid to FILE.yaml")
	balance := fs.String("balance", "", "write a relative-balance grid for METHOD's strength to FILE.yaml (with --dataset)")
	dataset := fs.String("dataset", "", "with --balance: the dataset")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("sweep takes one grid file (see bmc sweep --help)")
	}
	file := fs.Arg(0)
	if *paper || *balance != "" {
		return writeGridTemplate(stdout, file, *paper, *balance, *dataset)
	}
	g, err := sweep.ReadGrid(file)
	if err != nil {
		return err
	}
	cells, skips, err := g.Expand()
	if err != nil {
		return err
	}
	for _, s := range skips {
		fmt.Fprintf(stdout, "left out %s on %s: %s\n", s.Method, s.Dataset, s.Reason)
	}
	for _, d := range g.Datasets {
		if _, err := os.Stat(d.DataRoot); d.DataRoot != "" && err != nil {
			fmt.Fprintf(stdout, "warning: %s's data_root %s: %v (its cells fail where it is missing)\n", d.Dataset, d.DataRoot, err)
		}
	}
	dir := *out
	if dir == "" {
		dir = g.Out
	}
	if dir == "" {
		dir = filepath.Join("runs", g.Name)
	}
	s, err := sweep.Create(dir, g, cells)
	if err != nil {
		return err
	}
	bmc, err := bmcExecutable(*bmcPath)
	if err != nil {
		return err
	}
	ctx, stop := interruptible()
	defer stop()
	switch *executor {
	case "local":
		n := *jobs
		if n == 0 {
			n = max(g.Jobs, 1)
		}
		sum := s.RunLocal(ctx, sweep.LocalOptions{Jobs: n, Threads: *threads, BMC: bmc, Progress: stdout, Heartbeat: *heartbeat})
		fmt.Fprintln(stdout, sum)
		if sum.Failed > 0 {
			return fmt.Errorf("%d of %d cells failed (bmc sweep status %s lists them; their output is in %s)", sum.Failed, sum.Total, dir, filepath.Join(dir, sweep.CellsDir))
		}
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: rerun the same command to resume")
		}
		return nil
	case "slurm":
		sub, err := s.Submit(ctx, s.Manifest.Slurm.Merge(so), bmc, *noSubmit)
		if err != nil {
			return err
		}
		switch {
		case len(sub.Cells) == 0:
			fmt.Fprintf(stdout, "nothing to submit: every cell is finished, queued or running (%d queued or running)\n", sub.Waiting)
		case sub.Job == nil:
			fmt.Fprintf(stdout, "wrote %s for %d cells (submit it with sbatch)\n", sub.Script, len(sub.Cells))
		default:
			fmt.Fprintf(stdout, "submitted job %s: %d cells (%s); bmc sweep status %s shows them\n", sub.Job.ID, len(sub.Cells), sub.Script, dir)
		}
		return nil
	}
	return fmt.Errorf("--executor %q: want local or slurm", *executor)
}

// interruptible is a context that Ctrl-C and SIGTERM cancel, so that a
// sweep stops its cells (they resume next time) instead of dying.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// bmcExecutable is the bmc the cells run, as an absolute path.
func bmcExecutable(flag string) (string, error) {
	path := flag
	if path == "" {
		var err error
		if path, err = os.Executable(); err != nil {
			return "", fmt.Errorf("find the bmc executable (give --bmc): %w", err)
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(abs); err != nil || fi.IsDir() {
		return "", fmt.Errorf("--bmc %s: not an executable file", path)
	}
	return abs, nil
}

// writeGridTemplate writes the paper's grid or a relative-balance grid.
func writeGridTemplate(stdout io.Writer, file string, paper bool, method, dataset string) error {
	var data []byte
	switch {
	case paper && method != "":
		return fmt.Errorf("--paper and --balance write different grids; give one")
	case paper:
		data = sweep.PaperGrid()
	case dataset == "":
		return fmt.Errorf("--balance %s needs --dataset", method)
	default:
		var err error
		if data, err = sweep.BalanceGrid(method, dataset); err != nil {
			return err
		}
	}
	if _, err := os.Stat(file); err == nil {
		return fmt.Errorf("%s exists; choose another file or remove it", file)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := atomicfile.WriteBytes(file, data); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s; edit it, then: bmc sweep %s\n", file, file)
	return nil
}

func runSweepStatus(args []string, stdout io.Writer) error {
	fs := pflag.NewFlagSet("sweep status", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	asJSON := fs.Bool("json", false, "print every cell's state as JSON")
	wait := fs.Bool("wait", false, "wait until no cell is pending or running")
	every := fs.Duration("poll", 5*time.Second, "with --wait: how often to look")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("sweep status takes one sweep directory")
	}
	s, err := sweep.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	ctx, stop := interruptible()
	defer stop()
	for {
		q, err := s.Queue(ctx)
		if err != nil {
			return err
		}
		st := s.Status(q)
		n := sweep.Counts(st)
		if !*wait || n[sweep.StatePending]+n[sweep.StateRunning] == 0 || ctx.Err() != nil {
			return printSweepStatus(stdout, s, st, q, *asJSON)
		}
		select {
		case <-ctx.Done():
		case <-time.After(*every):
		}
	}
}

func printSweepStatus(w io.Writer, s *sweep.Sweep, st []sweep.CellStatus, q *sweep.Queue, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tcell\tstate\tepochs\ttest acc\tslurm\tnote")
	for _, c := range st {
		acc, epochs := "", fmt.Sprint(c.EpochsDone)
		if c.Epochs > 0 {
			epochs += fmt.Sprintf("/%d", c.Epochs)
		}
		if c.State == sweep.StateDone {
			acc = fmt.Sprintf("%.4f", c.TestAcc)
		}
		slurm := ""
		if c.Task != "" {
			slurm = c.Task + " " + c.Slurm
		}
		note := c.Error
		if note != "" {
			note += " (" + c.Log + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Index, c.ID, c.State, epochs, acc, slurm, note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	n := sweep.Counts(st)
	var parts []string
	for _, k := range []sweep.State{sweep.StateDone, sweep.StateRunning, sweep.StatePending, sweep.StateFailed, sweep.StateStopped, sweep.StateNew} {
		if n[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[k], k))
		}
	}
	fmt.Fprintf(w, "%s: %d cells: %s\n", s.Manifest.Name, len(st), strings.Join(parts, ", "))
	if q != nil {
		for _, note := range q.Notes {
			fmt.Fprintln(w, "note:", note)
		}
	}
	return nil
}

func runSweepCell(args []string, stdout io.Writer) error {
	fs := pflag.NewFlagSet("sweep cell", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	threads := fs.Int("threads", 0, "ONNX Runtime threads of a new run (0: bmc's default)")
	bmcPath := fs.String("bmc", "", "the bmc executable (default: this one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("sweep cell takes a sweep directory and a cell's index or ID")
	}
	s, err := sweep.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	i, c, err := s.Cell(fs.Arg(1))
	if err != nil {
		return err
	}
	bmc, err := bmcExecutable(*bmcPath)
	if err != nil {
		return err
	}
	ctx, stop := interruptible()
	defer stop()
	out, err := s.RunCell(ctx, i, sweep.RunOptions{BMC: bmc, Threads: *threads})
	if err != nil {
		return err
	}
	switch out.State {
	case sweep.StateFailed:
		return fmt.Errorf("cell %s failed: %s (output: %s)", c.ID, out.Error, s.LogFile(c))
	case sweep.StateStopped:
		return fmt.Errorf("cell %s interrupted; it resumes when it runs again", c.ID)
	case sweep.StateRunning:
		fmt.Fprintf(stdout, "cell %s: another process is running it\n", c.ID)
	default:
		fmt.Fprintf(stdout, "cell %s done (%s)\n", c.ID, s.RunDir(c))
	}
	return nil
}
