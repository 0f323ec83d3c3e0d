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
			"bmc compile --method agm --dataset synth-av -o plans/agm-synth\n  bmc compile --method ogm --dataset synth-av --hp alpha=0.5,modulation_starts=5 -o plans/ogm\n  bmc compile --method umt --dataset synth-av --teacher audio=runs/uni-audio --teacher visual=runs/uni-visual -o plans/umt", runCompile},
		{"train", "train a compiled plan, or compile and train in one go",
			"bmc train PLAN_DIR --out RUN_DIR [flags]\n  bmc train --method M --dataset D --out RUN_DIR [flags]\n  bmc train --resume RUN_DIR",
			"bmc train plans/agm-synth --out runs/agm-synth\n  bmc train --method baseline --dataset synth-av --epochs 10 --out runs/base\n  bmc train --method agm --dataset synth-av --device cuda --precision tf32 --out runs/agm-gpu   # needs make ort-cuda\n  bmc train --method umt --dataset synth-av --out runs/umt   # trains the unimodal teachers first, in runs/umt/teachers/\n  bmc train --resume runs/agm-synth", runTrain},
		{"flops", "print a plan's exact FLOPs without running it",
			"bmc flops PLAN_DIR [--json]", "bmc flops plans/agm-synth", runFlops},
		{"eval", "evaluate a run directory or an exported model.onnx",
			"bmc eval RUN_DIR | MODEL.onnx [--dataset D] [--data k=v] [--split test] [-o results.json]",
			"bmc eval runs/agm-synth\n  bmc eval runs/agm-synth/model.onnx --dataset synth-av", runEval},
		{"export", "write model.onnx from a run's checkpoint",
			"bmc export RUN_DIR [-o FILE] [--checkpoint best|last]", "bmc export runs/agm-synth -o agm.onnx", runExport},
		{"bench", "time a plan's forward and training step, with peak memory",
			"bmc bench --size bench|ks [--method M] [--threads N] [--device cpu|cuda[:N]] [--precision fp32|tf32] [--iters 10] [--json]\n  bmc bench --method M --dataset D [flags]",
			"bmc bench --size bench --threads 2\n  bmc bench --size ks --method agm --threads 1 --iters 3\n  bmc bench --size ks --device cuda:0 --precision tf32", runBench},
		{"sweep", "run a grid of experiments here or as a Slurm job array; show a sweep's state", sweepUsage, sweepExample, runSweep},
		{"report", "compare finished runs: Table 2 and 3 analogues, imbalance, plots (Markdown, CSV, HTML)",
			"bmc report RUN_DIR|SWEEP_DIR... [-o REPORT_DIR]", "bmc report runs/*\n  bmc report runs/sweep-demo -o runs/sweep-demo/report", runReport},
		{"methods", "list the methods with the paper's taxonomy; one method's hyperparameters and costs", "bmc methods [NAME]", "bmc methods\n  bmc methods ogm", runMethods},
		{"prepare", "turn raw WAV audio into the feature files the loaders read", prepareUsage, prepareExample, runPrepare},
		{"datasets", "list the datasets, their modalities, layouts and presets; check one on disk",
			"bmc datasets\n  bmc datasets check --dataset D --data-root DIR [--data k=v] [--allow-dropped] [--json]",
			"bmc datasets\n  bmc datasets check --dataset cremad --data-root /data/CREMA-D --data audio_shape=1024x128", runDatasets},
		{"version", "print bmc's build and the ONNX Runtime it loads", "bmc version", "bmc version", runVersion},
		{"help", "print the commands, or one command's flags and examples", "bmc help [COMMAND]", "bmc help\n  bmc help train", runHelp},
	}
}

// runHelp prints the command list, or a command's --help.
func runHelp(args []string, stdout io.Writer) error {
	fs := flagSet("help", stdout)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch fs.NArg() {
	case 0:
		printUsage(stdout)
		return nil
	case 1:
		return run([]string{fs.Arg(0), "--help"}, stdout, io.Discard)
	}
	return fmt.Errorf("help takes at most one command (got %q)", fs.Args())
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bmc:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
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
	fmt.Fprintln(w, "\nUsage: bmc COMMAND [flags]   (bmc help COMMAND or bmc COMMAND --help for details)\n\nCommands:")
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
				fmt.Fprintf(out, "%s\n\nUsage:\n  %s\n\n", c.summary, c.usage)
				if flags := fs.FlagUsages(); flags != "" {
					fmt.Fprintf(out, "Flags:\n%s\n", flags)
				}
				if n := commandNotes(name); n != "" {
					fmt.Fprintf(out, "%s\n\n", n)
				}
				fmt.Fprintf(out, "Examples:\n  %s\n", c.example)
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

// metricNotes define the numbers the train and eval summaries print.
const metricNotes = `Metrics:
  acc, macro-F1   accuracy and the F1 score averaged over every class, on the split
  acc_m           modality m's unimodal accuracy (its own logits z_m of the fused head)
  Shapley φ_m     modality m's Shapley value: its Shapley-weighted mean gain in fused
                  accuracy when it joins a subset of the other modalities (the modalities
                  left out are zero-filled)
  v(∅)            the fused accuracy with every modality zero-filled, what the Shapley
                  values are measured from: they add up to acc − v(∅)
  I               the imbalance degree: the mean |φ_i − φ_j| over pairs of modalities
                  (0: balanced; absent with one modality)`

// commandNotes are what a command's --help adds after its flags.
func commandNotes(name string) string {
	switch name {
	case "train":
		return metricNotes + "\n\nEpochs are numbered from 1 on the terminal and from 0 in log.jsonl and results.json."
	case "eval":
		return metricNotes
	}
	return ""
}
