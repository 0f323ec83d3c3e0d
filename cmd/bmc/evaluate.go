package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"bmc/compile"
	"bmc/datasets"
	"bmc/experiment"
	"bmc/internal/atomicfile"
	"bmc/runtime"
)

// evalReport is what bmc eval prints with --json.
type evalReport struct {
	Source    string               `json:"source"`
	Dataset   string               `json:"dataset"`
	Split     string               `json:"split"`
	Metrics   runtime.SplitMetrics `json:"metrics"`
	Imbalance runtime.Imbalance    `json:"imbalance"`
}

func runEval(args []string, stdout io.Writer) error {
	fs := flagSet("eval", stdout)
	dataset := fs.String("dataset", "", "dataset (model.onnx only; default: the one it was trained on)")
	dataKV := fs.StringArray("data", nil, "dataset parameter key=value (model.onnx only; default: the ones it was trained with)")
	dataRoot := fs.String("data-root", "", "dataset folder on disk (real datasets)")
	split := fs.String("split", datasets.Test, "split to evaluate: train, val or test")
	checkpoint := fs.String("checkpoint", "best", "run directories: best or last checkpoint")
	batch := fs.Int("batch-size", 256, "model.onnx: evaluation batch size")
	threads := fs.Int("threads", 0, "ONNX Runtime threads (0: ORT's default)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	out := fs.StringP("out", "o", "", "also write the report as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("eval takes one run directory or model.onnx")
	}
	src := fs.Arg(0)
	var pred runtime.Predictor
	var data datasets.Dataset
	if strings.HasSuffix(src, ".onnx") {
		m, err := runtime.OpenModel(src, *batch, runtime.Options{Threads: *threads})
		if err != nil {
			return err
		}
		defer m.Close()
		name := *dataset
		if name == "" {
			name = m.Meta["bmc.dataset"]
		}
		params, err := m.DatasetParams()
		if err != nil {
			return err
		}
		if len(*dataKV) > 0 {
			if params, err = experiment.ParseKeyValues("data", *dataKV); err != nil {
				return err
			}
		}
		if data, err = datasets.Open(name, datasets.Options{Root: *dataRoot, Params: params}); err != nil {
			return err
		}
		pred = m
	} else {
		if *dataset != "" || len(*dataKV) > 0 {
			return fmt.Errorf("--dataset and --data apply to model.onnx; a run directory evaluates on its own dataset")
		}
		pr, d, err := loadRun(src, *checkpoint, *dataRoot, *threads)
		if err != nil {
			return err
		}
		defer pr.Close()
		data, pred = d, pr.Predictor()
	}
	sp, err := data.Split(*split)
	if err != nil {
		return err
	}
	rep := evalReport{Source: src, Dataset: data.Spec().Name, Split: *split}
	if rep.Metrics, rep.Imbalance, err = runtime.MeasureImbalance(pred, sp, data.Spec()); err != nil {
		return err
	}
	if *out != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := atomicfile.WriteBytes(*out, append(data, '\n')); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "%s on %s/%s (%d samples)\n", src, rep.Dataset, rep.Split, rep.Metrics.Samples)
	fmt.Fprintf(stdout, "  acc %.4f  macro-F1 %.4f  loss %.4f\n", rep.Metrics.Acc, rep.Metrics.F1, rep.Metrics.Loss)
	for _, m := range pred.Modalities() {
		fmt.Fprintf(stdout, "  %-8s acc %.4f  F1 %.4f  Shapley %.4f\n", m, rep.Metrics.ModalityAcc[m], rep.Metrics.ModalityF1[m], rep.Imbalance.Shapley[m])
	}
	if rep.Imbalance.Degree != nil {
		fmt.Fprintf(stdout, "  imbalance degree I %.4f\n", *rep.Imbalance.Degree)
	}
	fmt.Fprint(stdout, "  coalition accuracies:")
	for _, k := range sortedKeys(rep.Imbalance.Coalitions) {
		name := k
		if name == "" {
			name = "∅"
		}
		fmt.Fprintf(stdout, " %s %.4f", name, rep.Imbalance.Coalitions[k])
	}
	fmt.Fprintln(stdout)
	return nil
}

// loadRun loads a run directory's plan with a checkpoint's state.
func loadRun(dir, which, dataRoot string, threads int) (*runtime.Program, datasets.Dataset, error) {
	var file string
	switch which {
	case "best":
		file = runtime.BestCheckpoint
	case "last":
		file = runtime.LastCheckpoint
	default:
		return nil, nil, fmt.Errorf("--checkpoint %q: want best or last", which)
	}
	plan, err := compile.Load(filepath.Join(dir, runtime.PlanDir))
	if err != nil {
		return nil, nil, fmt.Errorf("%s is not a run directory: %w", dir, err)
	}
	state, err := runtime.ReadCheckpoint(filepath.Join(dir, file))
	if err != nil {
		return nil, nil, err
	}
	data, err := experiment.OpenPlanData(plan, dataRoot)
	if err != nil {
		return nil, nil, err
	}
	pr, err := runtime.Load(plan, runtime.Options{Threads: threads})
	if err != nil {
		return nil, nil, err
	}
	if err := pr.SetState(state); err != nil {
		pr.Close()
		return nil, nil, fmt.Errorf("%s: %w", filepath.Join(dir, file), err)
	}
	return pr, data, nil
}

func runExport(args []string, stdout io.Writer) error {
	fs := flagSet("export", stdout)
	out := fs.StringP("out", "o", "", "file to write (default RUN_DIR/model.onnx)")
	checkpoint := fs.String("checkpoint", "best", "best or last checkpoint")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("export takes one run directory")
	}
	dir := fs.Arg(0)
	path := *out
	if path == "" {
		path = filepath.Join(dir, runtime.ModelFile)
	}
	pr, _, err := loadRun(dir, *checkpoint, "", 1)
	if err != nil {
		return err
	}
	defer pr.Close()
	state := map[string][]float32{}
	for _, k := range pr.StateKeys() {
		if state[k], err = pr.State(k); err != nil {
			return err
		}
	}
	if err := runtime.Export(pr.Plan, state, path); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%s checkpoint of %s)\n", path, *checkpoint, dir)
	return nil
}
