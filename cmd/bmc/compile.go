package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"bmc/compile"
	"bmc/datasets"
	"bmc/experiment"
	"bmc/flops"
	"bmc/graph/nn"
	"bmc/runtime"
)

// experimentFlags are the flags that describe what to compile.
type experimentFlags struct {
	method, dataset, dataRoot, protocol, preset, config, optimizer string
	hp, data, encoders, pretrained, teachers                       []string
	allowMissing                                                   bool
	epochs, batch, evalBatch, stepSize, threads                    int
	lr, momentum, weightDecay, gamma, beta1, beta2, eps            float64
	seed                                                           uint64
	nesterov                                                       bool
}

func (e *experimentFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&e.method, "method", "", "method to train (list: bmc methods)")
	fs.StringVar(&e.dataset, "dataset", "", "dataset (list: bmc datasets)")
	fs.StringArrayVar(&e.hp, "hp", nil, "method hyperparameter key=value (repeatable, or comma-separated)")
	fs.StringArrayVar(&e.data, "data", nil, "dataset parameter key=value, e.g. signal.visual=0.5 (repeatable)")
	fs.StringVar(&e.dataRoot, "data-root", "", "dataset folder on disk (real datasets)")
	fs.StringVar(&e.config, "config", "", "YAML run configuration (flags override it; a run directory's config.yaml reproduces that run)")
	fs.StringVar(&e.preset, "preset", "", "training preset: "+strings.Join(experiment.PresetNames(), ", ")+" (default: default)")
	fs.StringVar(&e.optimizer, "optimizer", "", "optimizer: sgd or adamw (default: preset)")
	fs.BoolVar(&e.nesterov, "nesterov", false, "SGD with Nesterov momentum")
	fs.Float64Var(&e.beta1, "beta1", 0, "AdamW β1 (default: preset)")
	fs.Float64Var(&e.beta2, "beta2", 0, "AdamW β2 (default: preset)")
	fs.Float64Var(&e.eps, "eps", 0, "AdamW ε (default: preset)")
	fs.StringArrayVar(&e.encoders, "encoder", nil, "encoder of every modality (SPEC) or of one (MODALITY=SPEC), repeatable; SPEC is KIND[:ITEM,…] with kinds "+strings.Join(nn.EncoderKinds(), ", ")+", e.g. mlp:64,32 or resnet18 or transformer:layers=1 (default: the dataset's)")
	fs.StringArrayVar(&e.pretrained, "pretrained", nil, "MODALITY=FILE: load the encoder's weights from a .safetensors file or an .onnx file's initializers, by PyTorch state_dict key (repeatable)")
	fs.StringArrayVar(&e.teachers, "teacher", nil, "MODALITY=RUN_DIR: a finished unimodal run whose encoder a distillation method (umt) reads as that modality's teacher (repeatable; bmc train without it trains the teachers first)")
	fs.BoolVar(&e.allowMissing, "allow-missing", false, "with --pretrained: keep the initial values of tensors the file lacks or holds with another shape, instead of failing")
	fs.IntVar(&e.epochs, "epochs", 0, "epochs, ≥ 1 (default: the dataset preset)")
	fs.IntVar(&e.batch, "batch-size", 0, "training batch size (default: preset)")
	fs.IntVar(&e.evalBatch, "eval-batch-size", 0, "evaluation batch size (default: preset)")
	fs.Float64Var(&e.lr, "lr", 0, "learning rate (default: preset)")
	fs.Float64Var(&e.momentum, "momentum", 0, "SGD momentum (default: preset)")
	fs.Float64Var(&e.weightDecay, "weight-decay", 0, "weight decay (default: preset)")
	fs.IntVar(&e.stepSize, "step-size", 0, "StepLR step in epochs (default: preset)")
	fs.Float64Var(&e.gamma, "gamma", 0, "StepLR factor (default: preset)")
	fs.Uint64Var(&e.seed, "seed", 0, "seed of initialisation, shuffling and method randomness")
	fs.StringVar(&e.protocol, "protocol", "", "model selection: bmc (validation split) or balancemm (test split, as the reference)")
	fs.IntVar(&e.threads, "threads", 0, "ONNX Runtime threads (0: ORT's default)")
}

func (e *experimentFlags) request(fs *pflag.FlagSet) (experiment.Request, error) {
	r, err := e.flagRequest(fs)
	if err != nil {
		return r, err
	}
	if e.config != "" {
		file, err := experiment.ReadConfig(e.config)
		if err != nil {
			return r, err
		}
		r = experiment.Merge(file, r)
	}
	if r.Method == "" || r.Dataset == "" {
		return r, fmt.Errorf("--method and --dataset are required, on the command line or in --config (see `bmc methods` and `bmc datasets`)")
	}
	return r, nil
}

// checkSettings refuses a training setting given on the command line with
// a value outside its range (an explicit 0 never means "the preset's").
func checkSettings(fs *pflag.FlagSet) error {
	var err error
	fs.Visit(func(f *pflag.Flag) {
		if err == nil {
			err = experiment.CheckFlag(f.Name, f.Value.String())
		}
	})
	return err
}

// flagRequest is the request the flags alone make.
func (e *experimentFlags) flagRequest(fs *pflag.FlagSet) (experiment.Request, error) {
	hp, err := experiment.ParseKeyValues("hp", e.hp)
	if err != nil {
		return experiment.Request{}, err
	}
	data, err := experiment.ParseKeyValues("data", e.data)
	if err != nil {
		return experiment.Request{}, err
	}
	r := experiment.Request{Method: e.method, Hyper: hp, Dataset: e.dataset, DataParams: data, DataRoot: e.dataRoot, Preset: e.preset,
		Train: experiment.Overrides{Epochs: e.epochs, BatchSize: e.batch, EvalBatchSize: e.evalBatch, StepSize: e.stepSize, Threads: e.threads,
			LR: e.lr, Momentum: e.momentum, WeightDecay: e.weightDecay, Gamma: e.gamma, Beta1: e.beta1, Beta2: e.beta2, Eps: e.eps,
			Protocol: e.protocol, Optimizer: e.optimizer,
			MomentumSet: fs.Changed("momentum"), WeightDecaySet: fs.Changed("weight-decay"),
			Beta1Set: fs.Changed("beta1"), Beta2Set: fs.Changed("beta2"), ThreadsSet: fs.Changed("threads")}}
	if r.Pretrained, err = modalityPaths("pretrained", "FILE", e.pretrained); err != nil {
		return r, err
	}
	r.AllowMissing = e.allowMissing
	if r.Teachers, err = modalityPaths("teacher", "RUN_DIR", e.teachers); err != nil {
		return r, err
	}
	r.Encoder, r.Encoders = experiment.EncoderFlags(e.encoders)
	if fs.Changed("seed") {
		r.Train.Seed = &e.seed
	}
	if fs.Changed("nesterov") {
		r.Train.Nesterov = &e.nesterov
	}
	return r, nil
}

// modalityPaths reads repeated --flag MODALITY=PATH values.
func modalityPaths(flag, what string, items []string) (map[string]string, error) {
	var out map[string]string
	for _, item := range items {
		mod, path, ok := strings.Cut(item, "=")
		if !ok || mod == "" || path == "" {
			return nil, fmt.Errorf("--%s %q: want MODALITY=%s", flag, item, what)
		}
		if prev, dup := out[mod]; dup {
			return nil, fmt.Errorf("--%s %s is given twice (%s and %s)", flag, mod, prev, path)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[mod] = path
	}
	return out, nil
}

func runCompile(args []string, stdout io.Writer) error {
	fs := flagSet("compile", stdout)
	var ef experimentFlags
	ef.register(fs)
	out := fs.StringP("out", "o", "", "plan directory to write (required)")
	force := fs.Bool("force", false, "replace the plan already in the -o folder")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkSettings(fs); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("compile takes no positional arguments (got %q)", fs.Args())
	}
	if *out == "" {
		return fmt.Errorf("-o PLAN_DIR is required")
	}
	if err := checkCompileDir(*out, *force); err != nil {
		return err
	}
	req, err := ef.request(fs)
	if err != nil {
		return err
	}
	plan, _, err := experiment.CompileWith(req, runtime.ReadFinishedRun)
	if err != nil {
		return err
	}
	if err := removeOldPlan(*out); err != nil {
		return err
	}
	if err := plan.Save(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "compiled %s on %s into %s\n", plan.Manifest.Method, plan.Manifest.Dataset.Name, *out)
	return printPlanSummary(stdout, plan)
}

func printPlanSummary(w io.Writer, p *compile.Plan) error {
	m := &p.Manifest
	r, err := flops.PlanReport(p)
	if err != nil {
		return err
	}
	var params int64
	for _, s := range m.State {
		if s.Kind == compile.StateParam {
			params += s.Shape.Size()
		}
	}
	fmt.Fprintf(w, "  graphs: ")
	for i, g := range m.Graphs {
		if i > 0 {
			fmt.Fprint(w, ", ")
		}
		fmt.Fprintf(w, "%s (%s, %d nodes)", g.Name, g.Role, len(p.Graphs[g.Name].Nodes()))
	}
	fmt.Fprintf(w, "\n  parameters: %d   train samples: %d   steps/epoch: %d   epochs: %d\n", params, m.Dataset.Spec.Sizes[datasets.Train], m.StepsPerEpoch(), m.Train.Epochs)
	fmt.Fprintf(w, "  training FLOPs: %s (per step %s)\n", human(r.Training.Total), human(r.PerStep.Total))
	for _, rep := range m.Pretrained {
		fmt.Fprintf(w, "  pretrained: %s\n", rep.Summary())
	}
	return nil
}

// human formats a count with an SI suffix.
func human(v int64) string {
	f := float64(v)
	for _, s := range []string{"", "K", "M", "G", "T", "P"} {
		if f < 1000 {
			return fmt.Sprintf("%.3g%s", f, s)
		}
		f /= 1000
	}
	return fmt.Sprintf("%.3gE", f)
}
