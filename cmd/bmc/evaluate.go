package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"strings"

	"bmc/datasets"
	"bmc/experiment"
	"bmc/internal/atomicfile"
	"bmc/internal/machine"
	"bmc/runtime"
)

// evalReport is what bmc eval prints with --json.
type evalReport struct {
	Source    string               `json:"source"`
	Dataset   string               `json:"dataset"`
	Split     string               `json:"split"`
	Device    string               `json:"device"`
	Precision string               `json:"precision"`
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
	var tf targetFlags
	tf.register(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	skipBad := fs.Bool("skip-bad", false, "leave samples that fail to read out of the metrics (listed in the report) instead of stopping")
	out := fs.StringP("out", "o", "", "also write the report as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("eval takes one run directory or model.onnx")
	}
	src := fs.Arg(0)
	if *batch < 1 || *batch > 1<<24 {
		return fmt.Errorf("--batch-size %d: want an integer from 1 to %d", *batch, 1<<24)
	}
	if err := machine.CheckThreads("--threads", *threads, true); err != nil {
		return err
	}
	target, err := tf.target()
	if err != nil {
		return err
	}
	opt := runtime.Options{Threads: *threads, Target: target}
	if *out != "" {
		if err := refuseOwnFile("-o", *out, src); err != nil {
			return err
		}
	}
	var pred runtime.Predictor
	var data datasets.Dataset
	if strings.HasSuffix(src, ".onnx") {
		m, err := runtime.OpenModel(src, *batch, opt)
		if err != nil {
			return err
		}
		defer m.Close()
		if data, err = modelData(m, *dataset, *dataKV, datasets.Options{Root: *dataRoot, SkipBad: *skipBad}); err != nil {
			return err
		}
		pred = m
	} else {
		if *dataset != "" || len(*dataKV) > 0 {
			return fmt.Errorf("--dataset and --data apply to model.onnx; a run directory evaluates on its own dataset")
		}
		pr, d, err := loadRun(src, *checkpoint, *dataRoot, opt, *skipBad)
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
	rep := evalReport{Source: src, Dataset: data.Spec().Name, Split: *split, Device: target.Device.String(), Precision: target.Precision.String()}
	if rep.Metrics, rep.Imbalance, err = runtime.MeasureImbalance(pred, sp, data.Spec(), runtime.EvalOptions{SkipBad: *skipBad}); err != nil {
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
	if s := rep.Metrics.Skipped; len(s) > 0 {
		fmt.Fprintf(stdout, "  %d unreadable samples left out (the first: sample %d: %s; --json lists them)\n", len(s), s[0].Index, s[0].Error)
	}
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

// modelData opens the dataset an exported model is evaluated on: the one
// it was trained on with the parameters it was trained with, unless
// --dataset names another (which starts from that dataset's defaults);
// --data overrides the named parameters only. The data must match the
// model's inputs and classes.
func modelData(m *runtime.ExportedModel, dataset string, dataKV []string, opt datasets.Options) (datasets.Dataset, error) {
	trained := m.Meta["bmc.dataset"]
	name := dataset
	if name == "" {
		name = trained
	}
	if name == "" {
		return nil, fmt.Errorf("%s does not record the dataset it was trained on: give --dataset", m.Path)
	}
	params := map[string]string{}
	if name == trained {
		var err error
		if params, err = m.DatasetParams(); err != nil {
			return nil, err
		}
	}
	given, err := experiment.ParseKeyValues("data", dataKV)
	if err != nil {
		return nil, err
	}
	maps.Copy(params, given)
	opt.Params = params
	data, err := datasets.Open(name, opt)
	if err != nil {
		return nil, err
	}
	if err := m.CheckData(data.Spec()); err != nil {
		how := "its defaults"
		if tp, perr := m.DatasetParams(); perr == nil && len(tp) > 0 {
			var kv []string
			for _, k := range sortedKeys(tp) {
				kv = append(kv, k+"="+tp[k])
			}
			how = "--data " + strings.Join(kv, ",")
		}
		return nil, fmt.Errorf("%w; the model was trained on %s with %s", err, trained, how)
	}
	return data, nil
}

// loadRun loads a run directory's plan with a checkpoint's state.
func loadRun(dir, which, dataRoot string, opt runtime.Options, skipBad bool) (*runtime.Program, datasets.Dataset, error) {
	var file string
	switch which {
	case "best":
		file = runtime.BestCheckpoint
	case "last":
		file = runtime.LastCheckpoint
	default:
		return nil, nil, fmt.Errorf("--checkpoint %q: want best or last", which)
	}
	plan, err := loadRunPlan(dir)
	if err != nil {
		return nil, nil, err
	}
	if !exists(filepath.Join(dir, file)) {
		return nil, nil, fmt.Errorf("run %s has no %s yet: it was stopped before its first epoch ended (no checkpoint to evaluate)", dir, file)
	}
	state, err := runtime.ReadCheckpoint(filepath.Join(dir, file))
	if err != nil {
		return nil, nil, err
	}
	data, err := experiment.OpenPlanData(plan, dataRoot, skipBad)
	if err != nil {
		return nil, nil, err
	}
	pr, err := runtime.Load(plan, opt)
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
	if err := checkExportPath(dir, path, *checkpoint); err != nil {
		return err
	}
	pr, _, err := loadRun(dir, *checkpoint, "", runtime.Options{Threads: 1}, false)
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
