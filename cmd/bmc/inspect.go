package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"bmc/compile"
	"bmc/datasets"
	"bmc/flops"
	"bmc/methods"
)

func runFlops(args []string, stdout io.Writer) error {
	fs := flagSet("flops", stdout)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("flops takes one plan directory")
	}
	p, err := compile.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	r, err := flops.PlanReport(p)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	m := &p.Manifest
	fmt.Fprintf(stdout, "%s on %s: %d epochs × %d steps, batch %d (counted from the graphs; nothing was run)\n\n",
		m.Method, m.Dataset.Name, r.Epochs, r.StepsPerEpoch, m.Train.BatchSize)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "graph\truns\t"
	for _, ph := range flops.Phases() {
		header += ph + "\t"
	}
	fmt.Fprintln(tw, header+"total\t")
	row := func(name, runs string, c flops.Counts) {
		line := name + "\t" + runs + "\t"
		for _, ph := range flops.Phases() {
			line += strconv.FormatInt(c.Phase[ph], 10) + "\t"
		}
		fmt.Fprintln(tw, line+strconv.FormatInt(c.Total, 10)+"\t")
	}
	for _, g := range r.Graphs {
		var runs []string
		for _, run := range g.Runs {
			runs = append(runs, fmt.Sprintf("%d/%s", run.Count, run.Per))
		}
		row(g.Name+" (one run)", strings.Join(runs, " "), g.Counts)
	}
	row("per step", "", r.PerStep)
	row("validation per epoch", "", r.Validation)
	row("per epoch", "", r.PerEpoch)
	for _, e := range r.Extras {
		row("method: "+e.Note+" (whole run)", fmt.Sprintf("%d/%s of %s", e.Runs, e.Per, e.Graph), e.Training)
	}
	if len(r.Extras) > 0 {
		row("method extras (whole run)", "", r.MethodExtra)
	}
	for _, tc := range r.Teachers {
		row("teacher "+tc.Modality+": its training (run "+tc.Run+")", "", tc.Training)
	}
	row("whole training", "", r.Training)
	row("final evaluation", "", r.Final)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nforward MACs per sample (thop/fvcore convention): %d\n", r.ForwardMACsPerSample)
	fmt.Fprintf(stdout, "training total: %s FLOPs\n", human(r.Training.Total))
	return nil
}

func runMethods(args []string, stdout io.Writer) error {
	fs := flagSet("methods", stdout)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch fs.NArg() {
	case 0:
	case 1:
		return printMethod(stdout, fs.Arg(0))
	default:
		return fmt.Errorf("methods takes at most one method name (got %q)", fs.Args())
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "method\tname\tcategory\timbalance indicator\tmodalities")
	for _, info := range methods.All() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", info.Name, info.Display, info.Category, info.Indicator, info.MaxModalities)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\nmodalities: the most bmc trains the method with.\nbmc methods NAME lists a method's hyperparameters, defaults, per-step cost and source.")
	return nil
}

// printMethod prints one method's taxonomy, cost, source and
// hyperparameters.
func printMethod(w io.Writer, name string) error {
	var info methods.Info
	found := false
	for _, i := range methods.All() {
		if i.Name == name {
			info, found = i, true
		}
	}
	if !found {
		var names []string
		for _, i := range methods.All() {
			names = append(names, i.Name)
		}
		return fmt.Errorf("unknown method %q (methods: %s)", name, strings.Join(names, ", "))
	}
	paper := "any"
	if info.PaperModalities > 0 {
		paper = strconv.Itoa(info.PaperModalities)
	}
	fmt.Fprintf(w, "%s — %s\n", info.Name, info.Display)
	fmt.Fprintf(w, "  category:            %s\n  imbalance indicator: %s\n", info.Category, info.Indicator)
	fmt.Fprintf(w, "  modalities:          %s in the paper, up to %d in bmc\n  domains:             %s\n", paper, info.MaxModalities, info.Domains)
	fmt.Fprintf(w, "  per-step cost:       %s\n", info.Cost)
	if info.Citation != "" {
		fmt.Fprintf(w, "  source:              %s\n", info.Citation)
	}
	if len(info.Params) == 0 {
		fmt.Fprintln(w, "  hyperparameters:     none")
		return nil
	}
	fmt.Fprintln(w, "  hyperparameters (--hp key=value; shown with their defaults):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, p := range info.Params {
		d := p.Default
		if d == "" {
			d = "(required)"
		}
		kind := p.Kind
		if len(p.Choices) > 0 {
			kind = strings.Join(p.Choices, "|")
		}
		fmt.Fprintf(tw, "    %s=%s\t%s\t%s\n", p.Name, d, kind, p.Doc)
	}
	return tw.Flush()
}

func runDatasets(args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "check" {
		return runDatasetsCheck(args[1:], stdout)
	}
	fs := flagSet("datasets", stdout)
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, e := range datasets.Catalog() {
		avail := "available"
		if !e.Available {
			avail = "loader not built yet"
		}
		fmt.Fprintf(stdout, "%s — %s (%d classes; %s)\n", e.Name, e.Description, e.Classes, avail)
		var mods []string
		for _, m := range e.Modalities {
			shape := "shape from the files"
			if m.Shape != nil {
				shape = fmt.Sprint(m.Shape)
			}
			if m.Int {
				shape += " int64"
			}
			mods = append(mods, m.Name+" "+shape)
		}
		fmt.Fprintf(stdout, "  modalities: %s\n  layout: %s\n  presets: %s\n", strings.Join(mods, ", "), e.Layout, presetSummary(e.Name))
		for _, p := range e.Params {
			fmt.Fprintf(stdout, "  --data %s=%s\t%s\n", p.Name, p.Default, p.Doc)
		}
	}
	return nil
}
