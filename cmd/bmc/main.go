// Command bmc compiles, trains and evaluates multimodal-imbalance methods as
// ONNX graphs run by ONNX Runtime.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	usage   string
	example string
	run     func(args []string, stdout io.Writer) error
}

func commands() []command {
	return []command{
		{"compile", "build a method's training graphs and manifest (nothing runs)",
			"bmc compile --method M --dataset D -o PLAN_DIR [flags]",
			"bmc compile --method agm --dataset synth-av -o plans/agm-synth\n  bmc compile --method ogm --dataset synth-av --hp alpha=0.5,modulation_starts=5 -o plans/ogm", runCompile},
		{"train", "train a compiled plan, or compile and train in one go",
			"bmc train PLAN_DIR --out RUN_DIR [flags]\n  bmc train --method M --dataset D --out RUN_DIR [flags]\n  bmc train --resume RUN_DIR",
			"bmc train plans/agm-synth --out runs/agm-synth\n  bmc train --method baseline --dataset synth-av --epochs 10 --out runs/base\n  bmc train --resume runs/agm-synth", runTrain},
		{"flops", "print a plan's exact FLOPs without running it",
			"bmc flops PLAN_DIR [--json]", "bmc flops plans/agm-synth", runFlops},
		{"eval", "evaluate a run directory or an exported model.onnx",
			"bmc eval RUN_DIR | MODEL.onnx [--dataset D] [--data k=v] [--split test] [-o results.json]",
			"bmc eval runs/agm-synth\n  bmc eval runs/agm-synth/model.onnx --dataset synth-av", runEval},
		{"export", "write model.onnx from a run's checkpoint",
			"bmc export RUN_DIR [-o FILE] [--checkpoint best|last]", "bmc export runs/agm-synth -o agm.onnx", runExport},
		{"bench", "time a plan's forward and training step, with peak memory",
			"bmc bench --size bench|ks [--method M] [--threads N] [--iters 10] [--json]\n  bmc bench --method M --dataset D [flags]",
			"bmc bench --size bench --threads 2\n  bmc bench --size ks --method agm --threads 1 --iters 3", runBench},
		{"sweep", "run a grid of experiments here or as a Slurm job array; show a sweep's state", sweepUsage, sweepExample, runSweep},
		{"report", "compare finished runs: Table 2 and 3 analogues, imbalance, plots (Markdown, CSV, HTML)",
			"bmc report RUN_DIR|SWEEP_DIR... [-o REPORT_DIR]", "bmc report runs/*\n  bmc report runs/sweep-demo -o runs/sweep-demo/report", runReport},
		{"methods", "list the methods with the paper's taxonomy", "bmc methods", "bmc methods", runMethods},
		{"prepare", "turn raw WAV audio into the feature files the loaders read", prepareUsage, prepareExample, runPrepare},
		{"datasets", "list the datasets, their modalities, layouts and presets; check one on disk",
			"bmc datasets\n  bmc datasets check --dataset D --data-root DIR [--data k=v] [--allow-dropped] [--json]",
			"bmc datasets\n  bmc datasets check --dataset cremad --data-root /data/CREMA-D --data audio_shape=1024x128", runDatasets},
	}
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bmc:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(args[1:], stdout)
			if errors.Is(err, pflag.ErrHelp) {
				return nil
			}
			return err
		}
	}
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return fmt.Errorf("unknown command %q (commands: %s)", args[0], strings.Join(names, ", "))
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "bmc: multimodal-imbalance methods compiled to ONNX graphs and run on ONNX Runtime")
	fmt.Fprintln(w, "\nUsage: bmc COMMAND [flags]   (bmc COMMAND --help for details)\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
}

// flagSet makes a subcommand's flag set whose --help prints usage and examples.
func flagSet(name string, out io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		for _, c := range commands() {
			if c.name == name {
				fmt.Fprintf(out, "%s\n\nUsage:\n  %s\n\nFlags:\n%s\nExamples:\n  %s\n", c.summary, c.usage, fs.FlagUsages(), c.example)
			}
		}
	}
	return fs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
