package main

import (
	"encoding/json"
	"fmt"
	"io"
	goruntime "runtime"
	"strconv"
	"strings"
	"text/tabwriter"

	"bmc/datasets"
	"bmc/experiment"
	"bmc/internal/machine"
)

// runDatasetsCheck is `bmc datasets check`: open a dataset from disk, read
// every sample once and print what it found.
func runDatasetsCheck(args []string, stdout io.Writer) error {
	fs := flagSet("datasets", stdout)
	name := fs.String("dataset", "", "dataset to check (see bmc datasets)")
	root := fs.String("data-root", "", "dataset folder on disk")
	dataKV := fs.StringArray("data", nil, "dataset parameter key=value (repeatable)")
	workers := fs.Int("workers", goruntime.NumCPU(), "goroutines reading samples")
	allowDropped := fs.Bool("allow-dropped", false, "exit 0 when the only problems are rows dropped for missing files")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := machine.CheckThreads("--workers", *workers, false); err != nil {
		return err
	}
	if *name == "" {
		return fmt.Errorf("datasets check: --dataset is required (datasets: %s)", strings.Join(datasets.Names(), ", "))
	}
	params, err := experiment.ParseKeyValues("data", *dataKV)
	if err != nil {
		return err
	}
	d, err := datasets.Open(*name, datasets.Options{Root: *root, Params: params})
	if err != nil {
		return err
	}
	r, err := datasets.Check(d, *workers)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else if err := printCheck(stdout, *root, r); err != nil {
		return err
	}
	if n := r.Failed(!*allowDropped); n > 0 {
		return fmt.Errorf("dataset %s: %d problems", *name, n)
	}
	return nil
}

func printCheck(w io.Writer, root string, r datasets.CheckReport) error {
	fmt.Fprintf(w, "%s at %s: %d classes\n", r.Spec.Name, root, r.Spec.Classes)
	for _, m := range r.Spec.Modalities {
		kind := "float32"
		if m.Int {
			kind = "int64"
		}
		fmt.Fprintf(w, "  %s %v %s\n", m.Name, m.Shape, kind)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "split\tsamples\tunreadable\tclasses present\tsamples per class (label:count)")
	for _, s := range r.Splits {
		var counts []string
		present := 0
		for c, n := range s.PerClass {
			if n > 0 {
				counts = append(counts, strconv.Itoa(c)+":"+strconv.Itoa(n))
				present++
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d/%d\t%s\n", s.Name, s.Samples, len(s.Errors), present, r.Spec.Classes, strings.Join(counts, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(w, "problems found while indexing (%d):\n", len(r.Problems))
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
	for _, s := range r.Splits {
		if len(s.Errors) > 0 {
			fmt.Fprintf(w, "unreadable %s samples (%d):\n", s.Name, len(s.Errors))
			for _, e := range s.Errors {
				fmt.Fprintf(w, "  %s[%d]: %s\n", s.Name, e.Index, e.Err)
			}
		}
	}
	if r.Failed(true) == 0 {
		fmt.Fprintln(w, "no problems")
	}
	return nil
}

// presetSummary describes a dataset's training presets in one line.
func presetSummary(dataset string) string {
	var parts []string
	for _, name := range experiment.PresetNames() {
		c, err := experiment.Preset(dataset, name)
		if err != nil {
			return err.Error()
		}
		o := c.Optimizer
		s := fmt.Sprintf("%s: %s lr %g wd %g, batch %d, %d epochs, StepLR %d×%g", name, o.Name, o.LR, o.WeightDecay, c.BatchSize, c.Epochs, c.Scheduler.StepSize, c.Scheduler.Gamma)
		if c.Protocol == "balancemm" {
			s += ", selects on test"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
