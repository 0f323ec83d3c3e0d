package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"bmc/compile"
	"bmc/datasets"
	"bmc/distill"
	"bmc/experiment"
	"bmc/internal/machine"
	"bmc/runtime"
)

func runTrain(args []string, stdout io.Writer) error {
	fs := flagSet("train", stdout)
	var ef experimentFlags
	ef.register(fs)
	var tf targetFlags
	tf.register(fs)
	out := fs.StringP("out", "o", "", "run directory to write (required unless --resume)")
	resume := fs.String("resume", "", "continue the run in RUN_DIR from its last checkpoint")
	quiet := fs.Bool("quiet", false, "print only the final summary")
	workers := fs.Int("workers", 0, "goroutines reading training samples (0: one per CPU)")
	skipBad := fs.Bool("skip-bad", false, "drop samples that fail to read instead of stopping: training and validation ones are listed in log.jsonl, test ones in results.json, and audio_shape=auto takes the first readable clip")
	profile := fs.String("profile", "", "write ONNX Runtime's per-node timing profiles (Chrome trace JSON) to files starting with PREFIX")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkSettings(fs); err != nil {
		return err
	}
	if err := machine.CheckThreads("--workers", *workers, true); err != nil {
		return err
	}
	target, err := tf.target()
	if err != nil {
		return err
	}
	var compileOnly []string
	fs.Visit(func(f *pflag.Flag) {
		switch f.Name {
		case "out", "resume", "quiet", "threads", "device", "precision", "data-root", "workers", "skip-bad", "profile":
		default:
			compileOnly = append(compileOnly, "--"+f.Name)
		}
	})
	var plan *compile.Plan
	var data datasets.Dataset
	trainStage := stageTrainer(stdout, *quiet, runtime.TrainOptions{Threads: ef.threads, Target: target, Workers: *workers, SkipBad: *skipBad, Profile: *profile, ReleaseInitialValues: true})
	staged := func(res *runtime.Result, err error) error {
		if err != nil {
			return err
		}
		printResult(stdout, res)
		return nil
	}
	switch {
	case *resume != "":
		if *out != "" || fs.NArg() > 0 || len(compileOnly) > 0 {
			return fmt.Errorf("--resume continues a run as it was compiled; it takes no --out, plan directory or %s", strings.Join(append(compileOnly, "--method/--dataset"), ", "))
		}
		if distill.IsStaged(*resume) {
			return staged(distill.Resume(*resume, ef.dataRoot, trainStage))
		}
		var err error
		if plan, err = loadRunPlan(*resume); err != nil {
			return err
		}
		if data, err = experiment.OpenPlanData(plan, ef.dataRoot, *skipBad); err != nil {
			return err
		}
		*out = *resume
	case *out == "":
		return fmt.Errorf("--out RUN_DIR is required (or --resume RUN_DIR)")
	case isPlanDir(*out):
		return fmt.Errorf("--out %s is a plan directory: a run goes into a folder of its own (bmc train %s --out RUN_DIR trains that plan)", *out, *out)
	case fs.NArg() == 1:
		if len(compileOnly) > 0 {
			return fmt.Errorf("%s set(s) what a plan is compiled with; a compiled plan is trained as it is (recompile it, or train with --method/--dataset instead of a plan directory)", strings.Join(compileOnly, ", "))
		}
		var err error
		if plan, err = compile.Load(fs.Arg(0)); err != nil {
			return err
		}
		if data, err = experiment.OpenPlanData(plan, ef.dataRoot, *skipBad); err != nil {
			return err
		}
	case fs.NArg() == 0:
		req, err := ef.request(fs)
		if err != nil {
			return err
		}
		req.SkipBad = *skipBad
		var missing *experiment.MissingTeachersError
		if plan, data, err = experiment.CompileWith(req, runtime.ReadFinishedRun); errors.As(err, &missing) && missing.Given == 0 {
			// The method's teachers are trained first, in the run directory.
			return staged(distill.Train(req, *out, missing.Modalities, trainStage))
		} else if err != nil {
			return err
		}
	default:
		return fmt.Errorf("train takes at most one plan directory (got %q)", fs.Args())
	}
	res, err := trainStage(distill.Stage{Name: plan.Manifest.Method, Dir: *out, Plan: plan, Data: data, Resume: *resume != ""})
	if err != nil {
		return err
	}
	printResult(stdout, res)
	return nil
}

// stageTrainer trains one stage of a run as trainPlan does.
func stageTrainer(stdout io.Writer, quiet bool, opt runtime.TrainOptions) distill.Trainer {
	return func(s distill.Stage) (*runtime.Result, error) {
		opt.OutDir, opt.Resume = s.Dir, s.Resume
		return trainPlan(stdout, quiet, opt, s.Name, s.Plan, s.Data)
	}
}

// trainPlan trains a plan into opt.OutDir: with the run's files (the
// effective configuration, the rows the dataset dropped) and progress on
// stdout unless quiet.
func trainPlan(stdout io.Writer, quiet bool, opt runtime.TrainOptions, name string, plan *compile.Plan, data datasets.Dataset) (*runtime.Result, error) {
	sched, err := experiment.Schedule(plan)
	if err != nil {
		return nil, err
	}
	if !opt.Resume {
		cfg, err := experiment.EffectiveConfig(&plan.Manifest)
		if err != nil {
			return nil, err
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
				return nil, err
			}
			opt.Files[ProblemsFile] = append(js, '\n')
			fmt.Fprintf(stdout, "dataset %s: %d rows dropped while indexing (listed in %s)\n", plan.Manifest.Dataset.Name, len(problems), ProblemsFile)
		}
	}
	if !quiet {
		opt.Progress = stdout
		verb := "training"
		if opt.Resume {
			verb = "resuming"
		}
		fmt.Fprintf(stdout, "%s %s on %s → %s\n", verb, name, plan.Manifest.Dataset.Name, opt.OutDir)
	}
	return runtime.Train(plan, data, sched, opt)
}

// Files a run directory keeps besides the trainer's.
const (
	// ConfigFile is the effective configuration.
	ConfigFile = experiment.ConfigFile
	// ProblemsFile lists the rows the dataset dropped while indexing.
	ProblemsFile = "dataset_problems.json"
)

func printResult(w io.Writer, r *runtime.Result) {
	fmt.Fprintf(w, "%s on %s: best epoch %d/%d (validation acc %.4f)\n", r.Method, r.Dataset, r.BestEpoch+1, r.Epochs, r.Validation.Acc)
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
	fmt.Fprintf(w, "  v(∅) %.4f  (bmc help train defines these)\n", r.Imbalance.Coalitions[""])
	fmt.Fprintf(w, "  training FLOPs %s", human(r.TrainingFLOPs))
	if r.PlannedFLOPs != r.TrainingFLOPs {
		fmt.Fprintf(w, " (the plan predicted %s)", human(r.PlannedFLOPs))
	}
	fmt.Fprintf(w, ", %.1f s\n", r.Seconds)
	if n := len(r.Test.Skipped); n > 0 {
		fmt.Fprintf(w, "  %d unreadable test samples left out (listed in %s)\n", n, runtime.ResultsFile)
	}
}
