package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"bmc/compile"
	"bmc/datasets"
	"bmc/experiment"
	"bmc/runtime"
)

func runTrain(args []string, stdout io.Writer) error {
	fs := flagSet("train", stdout)
	var ef experimentFlags
	ef.register(fs)
	out := fs.String("out", "", "run directory to write (required unless --resume)")
	resume := fs.String("resume", "", "continue the run in RUN_DIR from its last checkpoint")
	quiet := fs.Bool("quiet", false, "print only the final summary")
	workers := fs.Int("workers", 0, "goroutines reading training samples (0: one per CPU)")
	skipBad := fs.Bool("skip-bad", false, "drop training samples that fail to read (listed in log.jsonl) instead of stopping")
	profile := fs.String("profile", "", "write ONNX Runtime's per-node timing profiles (Chrome trace JSON) to files starting with PREFIX")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var compileOnly []string
	fs.Visit(func(f *pflag.Flag) {
		switch f.Name {
		case "out", "resume", "quiet", "threads", "data-root", "workers", "skip-bad", "profile":
		default:
			compileOnly = append(compileOnly, "--"+f.Name)
		}
	})
	var plan *compile.Plan
	var data datasets.Dataset
	switch {
	case *resume != "":
		if *out != "" || fs.NArg() > 0 || len(compileOnly) > 0 {
			return fmt.Errorf("--resume continues a run as it was compiled; it takes no --out, plan directory or %s", strings.Join(append(compileOnly, "--method/--dataset"), ", "))
		}
		var err error
		if plan, err = compile.Load(filepath.Join(*resume, runtime.PlanDir)); err != nil {
			return fmt.Errorf("%s is not a run directory: %w", *resume, err)
		}
		if data, err = experiment.OpenPlanData(plan, ef.dataRoot); err != nil {
			return err
		}
		*out = *resume
	case *out == "":
		return fmt.Errorf("--out RUN_DIR is required (or --resume RUN_DIR)")
	case fs.NArg() == 1:
		if len(compileOnly) > 0 {
			return fmt.Errorf("%s set(s) what a plan is compiled with; a compiled plan is trained as it is (recompile it, or train with --method/--dataset instead of a plan directory)", strings.Join(compileOnly, ", "))
		}
		var err error
		if plan, err = compile.Load(fs.Arg(0)); err != nil {
			return err
		}
		if data, err = experiment.OpenPlanData(plan, ef.dataRoot); err != nil {
			return err
		}
	case fs.NArg() == 0:
		req, err := ef.request(fs)
		if err != nil {
			return err
		}
		if plan, data, err = experiment.Compile(req); err != nil {
			return err
		}
	default:
		return fmt.Errorf("train takes at most one plan directory (got %q)", fs.Args())
	}
	sched, err := experiment.Schedule(plan)
	if err != nil {
		return err
	}
	opt := runtime.TrainOptions{OutDir: *out, Threads: ef.threads, Resume: *resume != "", Workers: *workers, SkipBad: *skipBad, Profile: *profile}
	if !opt.Resume {
		cfg, err := experiment.EffectiveConfig(&plan.Manifest)
		if err != nil {
			return err
		}
		opt.Files = map[string][]byte{ConfigFile: cfg}
		var problems []datasets.Problem
		if pl, ok := data.(datasets.ProblemLister); ok {
			problems = pl.Problems()
		}
		if len(problems) > 0 {
			// Rows the dataset dropped while indexing, as the reference drops
			// them silently: kept with the run, and counted on the terminal.
			js, err := json.MarshalIndent(problems, "", "  ")
			if err != nil {
				return err
			}
			opt.Files[ProblemsFile] = append(js, '\n')
			fmt.Fprintf(stdout, "dataset %s: %d rows dropped while indexing (listed in %s)\n", plan.Manifest.Dataset.Name, len(problems), ProblemsFile)
		}
	}
	if !*quiet {
		opt.Progress = stdout
		verb := "training"
		if opt.Resume {
			verb = "resuming"
		}
		fmt.Fprintf(stdout, "%s %s on %s → %s\n", verb, plan.Manifest.Method, plan.Manifest.Dataset.Name, *out)
	}
	res, err := runtime.Train(plan, data, sched, opt)
	if err != nil {
		return err
	}
	printResult(stdout, res)
	return nil
}

// Files a run directory keeps besides the trainer's.
const (
	// ConfigFile is the effective configuration.
	ConfigFile = experiment.ConfigFile
	// ProblemsFile lists the rows the dataset dropped while indexing.
	ProblemsFile = "dataset_problems.json"
)

func printResult(w io.Writer, r *runtime.Result) {
	fmt.Fprintf(w, "%s on %s: best epoch %d (validation acc %.4f)\n", r.Method, r.Dataset, r.BestEpoch, r.Validation.Acc)
	fmt.Fprintf(w, "  test acc %.4f  macro-F1 %.4f", r.Test.Acc, r.Test.F1)
	for _, m := range sortedKeys(r.Test.ModalityAcc) {
		fmt.Fprintf(w, "  acc_%s %.4f", m, r.Test.ModalityAcc[m])
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  Shapley")
	for _, m := range sortedKeys(r.Imbalance.Shapley) {
		fmt.Fprintf(w, "  %s %.4f", m, r.Imbalance.Shapley[m])
	}
	if r.Imbalance.Degree != nil {
		fmt.Fprintf(w, "  I %.4f", *r.Imbalance.Degree)
	}
	fmt.Fprintf(w, "  v(∅) %.4f\n", r.Imbalance.Coalitions[""])
	fmt.Fprintf(w, "  training FLOPs %s", human(r.TrainingFLOPs))
	if r.PlannedFLOPs != r.TrainingFLOPs {
		fmt.Fprintf(w, " (the plan predicted %s)", human(r.PlannedFLOPs))
	}
	fmt.Fprintf(w, ", %.1f s\n", r.Seconds)
}
