package experiment_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/experiment"
	"bmc/graph/nn"
)

func TestParseEncoder(t *testing.T) {
	valid := []struct {
		in   string
		want nn.EncoderSpec
	}{
		{"linear:32", nn.EncoderSpec{Kind: "linear", Out: 32}},
		{"mlp:64,32", nn.EncoderSpec{Kind: "mlp", Hidden: []int64{64}, Out: 32}},
		{"mlp:8,4,2", nn.EncoderSpec{Kind: "mlp", Hidden: []int64{8, 4}, Out: 2}},
		{experiment.DefaultEncoder, nn.EncoderSpec{Kind: "mlp", Hidden: []int64{64}, Out: 32}},
		{"mlp:16,8,dropout=0.25", nn.EncoderSpec{Kind: "mlp", Hidden: []int64{16}, Out: 8, Options: nn.Options{"dropout": 0.25}}},
	}
	for _, tc := range valid {
		got, err := experiment.ParseEncoder(tc.in)
		if err != nil {
			t.Errorf("ParseEncoder(%q): %v", tc.in, err)
			continue
		}
		if got.Kind != tc.want.Kind || got.Out != tc.want.Out || !slices.Equal(got.Hidden, tc.want.Hidden) {
			t.Errorf("ParseEncoder(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if tc.want.Kind == "linear" && got.Hidden != nil {
			t.Errorf("ParseEncoder(%q): a linear encoder has hidden %v", tc.in, got.Hidden)
		}
	}

	invalid := []struct{ in, want string }{
		{"mlp", "an mlp needs at least one hidden width"},
		{"", `kind "" is unknown`},
		{"mlp:8,4,dropout=x", `option "dropout=x" is not key=number`},
		{"mlp:8,4,=1", `option "=1" is not key=number`},
		{"mlp:32", "at least one hidden width"},
		{"linear:8,4", "one width"},
		{"conv:8", `kind "conv" is unknown`},
		{"mlp:0,4", `width "0" is not a positive integer`},
		{"linear:-1", `width "-1"`},
		{"mlp:a,4", `width "a"`},
		{"mlp:,4", `width ""`},
		{"linear:", `width ""`},
	}
	for _, tc := range invalid {
		_, err := experiment.ParseEncoder(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseEncoder(%q) error = %v, want one containing %q", tc.in, err, tc.want)
		}
	}
}

func TestEncoderStringRoundTrips(t *testing.T) {
	for _, in := range []string{"linear:32", "mlp:64,32", "mlp:16,8,dropout=0.25"} {
		spec, err := experiment.ParseEncoder(in)
		if err != nil {
			t.Fatalf("ParseEncoder(%q): %v", in, err)
		}
		if got := experiment.EncoderString(spec); got != in {
			t.Errorf("EncoderString(ParseEncoder(%q)) = %q", in, got)
		}
	}
}

func TestParseEncoderFlag(t *testing.T) {
	tests := []struct{ in, mod, spec string }{
		{"mlp:64,32", "", "mlp:64,32"},
		{"audio=mlp:64,32", "audio", "mlp:64,32"},
		{"mlp:8,4,dropout=0.1", "", "mlp:8,4,dropout=0.1"},
		{"text=mlp:8,4,dropout=0.1", "text", "mlp:8,4,dropout=0.1"},
		{"visual=linear:3", "visual", "linear:3"},
	}
	for _, tc := range tests {
		if mod, spec := experiment.ParseEncoderFlag(tc.in); mod != tc.mod || spec != tc.spec {
			t.Errorf("ParseEncoderFlag(%q) = %q, %q; want %q, %q", tc.in, mod, spec, tc.mod, tc.spec)
		}
	}
}

func TestParseKeyValues(t *testing.T) {
	tests := []struct {
		items []string
		want  map[string]string
	}{
		{nil, map[string]string{}},
		{[]string{"alpha=0.5"}, map[string]string{"alpha": "0.5"}},
		{[]string{"alpha=0.5", "method=OGM"}, map[string]string{"alpha": "0.5", "method": "OGM"}},
		{[]string{"alpha=0.5,method=OGM", "compat=true"}, map[string]string{"alpha": "0.5", "method": "OGM", "compat": "true"}},
		{[]string{" alpha = 1 , b=2"}, map[string]string{"alpha": "1", "b": "2"}},
		{[]string{"path=a=b", "empty="}, map[string]string{"path": "a=b", "empty": ""}},
	}
	for _, tc := range tests {
		got, err := experiment.ParseKeyValues("hp", tc.items)
		if err != nil {
			t.Errorf("ParseKeyValues(%q): %v", tc.items, err)
			continue
		}
		if !maps.Equal(got, tc.want) {
			t.Errorf("ParseKeyValues(%q) = %v, want %v", tc.items, got, tc.want)
		}
	}
	for _, items := range [][]string{{"alpha"}, {"alpha=1,beta"}, {"=1"}, {""}, {"a=1,"}} {
		_, err := experiment.ParseKeyValues("data", items)
		if err == nil || !strings.Contains(err.Error(), "--data") || !strings.Contains(err.Error(), "want key=value") {
			t.Errorf("ParseKeyValues(%q) error = %v, want one naming --data and key=value", items, err)
		}
	}
	// A repeated key, in one flag or across flags, is an error naming both values.
	for _, items := range [][]string{{"alpha=1,alpha=2"}, {"alpha=1", "alpha=2"}, {"alpha=1", " alpha =2"}} {
		_, err := experiment.ParseKeyValues("hp", items)
		if err == nil || !strings.Contains(err.Error(), "--hp") || !strings.Contains(err.Error(), "alpha=1 and alpha=2") {
			t.Errorf("ParseKeyValues(%q) error = %v, want one naming --hp and both values", items, err)
		}
	}
}

func TestSortedKeys(t *testing.T) {
	got := experiment.SortedKeys(map[string]string{"b": "1", "a": "2", "c": "3"})
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("SortedKeys = %v", got)
	}
}

// small is a request that compiles quickly; tests change a copy.
func small() experiment.Request {
	return experiment.Request{
		Method: "baseline", Dataset: "synth-av",
		DataParams: map[string]string{"train": "64", "val": "16", "test": "16", "classes": "3", "dim.audio": "4", "dim.visual": "3"},
		Encoder:    "mlp:5,2",
		Train:      experiment.Overrides{Epochs: 2, BatchSize: 16, EvalBatchSize: 8},
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(r *experiment.Request)
		want   []string
	}{
		{"unknown method", func(r *experiment.Request) { r.Method = "magic" },
			[]string{`"magic"`, "baseline", "unimodal", "ogm", "agm", "mla", "reconboost"}},
		{"unknown dataset", func(r *experiment.Request) { r.Dataset = "mnist" },
			[]string{`"mnist"`, "synth-av", "synth-avt", "cremad", "mosei"}},
		{"dataset on disk without a root", func(r *experiment.Request) { r.Dataset = "ks"; r.DataParams = nil },
			[]string{"ks", "--data-root"}},
		{"unknown hyperparameter", func(r *experiment.Request) { r.Method = "ogm"; r.Hyper = map[string]string{"gamma": "1"} },
			[]string{`"gamma"`, "alpha, method, compat, modulation_starts, modulation_ends"}},
		{"bad hyperparameter", func(r *experiment.Request) { r.Method = "agm"; r.Hyper = map[string]string{"alpha": "fast"} },
			[]string{"alpha", `"fast"`, "a finite number"}},
		{"unknown data parameter", func(r *experiment.Request) { r.DataParams = map[string]string{"noise": "1"} },
			[]string{`"noise"`, "classes", "seed"}},
		{"bad encoder", func(r *experiment.Request) { r.Encoder = "mlp:8" },
			[]string{"mlp:8", "hidden width"}},
		{"unimodal without modality", func(r *experiment.Request) { r.Method = "unimodal" },
			[]string{"modality", "audio, visual"}},
		{"batch larger than the training set", func(r *experiment.Request) { r.Train.BatchSize = 65 },
			[]string{"train.batch_size", "65", "64 training samples"}},
		{"protocol", func(r *experiment.Request) { r.Train.Protocol = "x" },
			[]string{"train.protocol", `"x"`, "bmc or balancemm"}},
		{"negative epochs", func(r *experiment.Request) { r.Train.Epochs = -1 },
			[]string{"train.epochs", "-1"}},
		{"momentum out of range", func(r *experiment.Request) { r.Train.Momentum, r.Train.MomentumSet = 1, true },
			[]string{"train.optimizer.momentum"}},
		{"negative weight decay", func(r *experiment.Request) { r.Train.WeightDecay, r.Train.WeightDecaySet = -1, true },
			[]string{"train.optimizer.weight_decay"}},
		{"negative learning rate", func(r *experiment.Request) { r.Train.LR = -0.1 },
			[]string{"train.optimizer.lr"}},
		{"negative threads", func(r *experiment.Request) { r.Train.Threads = -2 },
			[]string{"train.threads"}},
		{"scheduler", func(r *experiment.Request) { r.Train.StepSize = -1 },
			[]string{"train.scheduler"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := small()
			tc.modify(&r)
			_, _, err := experiment.Compile(r)
			if err == nil {
				t.Fatal("Compile succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestCompilePresetAndOverrides(t *testing.T) {
	preset, err := experiment.Preset("synth-av", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := preset.Validate(); err != nil {
		t.Fatalf("the preset does not validate: %v", err)
	}

	r := small()
	r.Train = experiment.Overrides{}
	p, data, err := experiment.Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	// The preset's batch of 64 fits the 64 training samples exactly.
	if p.Manifest.Train.Epochs != preset.Epochs || p.Manifest.Train.BatchSize != preset.BatchSize ||
		p.Manifest.Train.Optimizer != preset.Optimizer || p.Manifest.Train.Scheduler != preset.Scheduler ||
		p.Manifest.Train.Protocol != "bmc" {
		t.Errorf("no overrides: train config %+v, want the preset %+v", p.Manifest.Train, preset)
	}
	if data == nil || data.Spec().Name != "synth-av" || data.Spec().Sizes["train"] != 64 {
		t.Errorf("Compile returned dataset %+v", data)
	}
	if !hasSlots(p) {
		t.Error("the preset has momentum 0.9, but the plan has no momentum buffers")
	}

	seed := uint64(42)
	r = small()
	r.Train = experiment.Overrides{
		Epochs: 5, BatchSize: 8, EvalBatchSize: 4, StepSize: 2, Threads: 3,
		LR: 0.5, Momentum: 0, MomentumSet: true, WeightDecay: 0, WeightDecaySet: true, Gamma: 0.5,
		Seed: &seed, Protocol: "balancemm",
	}
	p, _, err = experiment.Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	want := compile.TrainConfig{
		Epochs: 5, BatchSize: 8, EvalBatchSize: 4,
		Optimizer: compile.OptimizerConfig{Name: "sgd", LR: 0.5},
		Scheduler: compile.StepLR{StepSize: 2, Gamma: 0.5},
		Seed:      42, Protocol: "balancemm", Threads: 3,
	}
	if p.Manifest.Train != want {
		t.Errorf("overridden train config %+v, want %+v", p.Manifest.Train, want)
	}
	if hasSlots(p) {
		t.Error("momentum 0 (MomentumSet) still declares momentum buffers")
	}
	if got := p.Manifest.StepsPerEpoch(); got != 64/8 {
		t.Errorf("steps per epoch %d, want 8", got)
	}
	eval, ok := p.Manifest.Graph(compile.EvalGraph)
	if !ok {
		t.Fatal("no eval graph")
	}
	for _, io := range eval.Inputs {
		if io.Kind == compile.IOData && io.Shape[0] != 4 {
			t.Errorf("eval graph input %s has shape %v, want batch 4", io.Name, io.Shape)
		}
	}

	// Momentum 0 without MomentumSet keeps the preset's momentum.
	r = small()
	r.Train.Momentum = 0
	p, _, err = experiment.Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	if p.Manifest.Train.Optimizer.Momentum != preset.Optimizer.Momentum {
		t.Errorf("momentum %g without MomentumSet, want the preset's %g", p.Manifest.Train.Optimizer.Momentum, preset.Optimizer.Momentum)
	}
}

func hasSlots(p *compile.Plan) bool {
	return len(p.Manifest.StateKeys(compile.StateSlot)) > 0
}

func TestCompileSeedChangesInit(t *testing.T) {
	initOf := func(seed uint64) map[string][]float32 {
		r := small()
		r.Train.Seed = &seed
		p, _, err := experiment.Compile(r)
		if err != nil {
			t.Fatal(err)
		}
		if p.Manifest.Train.Seed != seed {
			t.Errorf("seed %d recorded as %d", seed, p.Manifest.Train.Seed)
		}
		return p.Init
	}
	a, b, c := initOf(1), initOf(1), initOf(2)
	const w = "modality_encoder.audio.0.weight"
	if !slices.Equal(a[w], b[w]) {
		t.Error("the same seed gave different initial weights")
	}
	if slices.Equal(a[w], c[w]) {
		t.Error("seeds 1 and 2 gave the same initial weights")
	}
}

func TestCompileModelFromDataset(t *testing.T) {
	r := small()
	r.Dataset = "synth-avt"
	r.DataParams = map[string]string{"train": "32", "val": "8", "test": "8", "dim.text": "6"}
	r.Encoder = "linear:3"
	p, _, err := experiment.Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	m := p.Manifest.Model
	if m.Fusion != nn.FusionConcat || m.Classes != 10 || len(m.Modalities) != 3 {
		t.Fatalf("model %+v", m)
	}
	for _, mod := range m.Modalities {
		wantIn := int64(32)
		if mod.Name == "text" {
			wantIn = 6
		}
		if mod.Shape.Size() != wantIn || mod.Encoder.Kind != "linear" || mod.Encoder.Out != 3 {
			t.Errorf("modality %+v", mod)
		}
	}
	if p.Manifest.Dataset.Name != "synth-avt" || p.Manifest.Dataset.Params["dim.text"] != "6" {
		t.Errorf("dataset ref %+v", p.Manifest.Dataset)
	}

	// The default encoder applies when none is given.
	r = small()
	r.Encoder = ""
	p, _, err = experiment.Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	if enc := p.Manifest.Model.Modalities[0].Encoder; enc.Kind != "mlp" || enc.Out != 32 || !slices.Equal(enc.Hidden, []int64{64}) {
		t.Errorf("default encoder %+v", enc)
	}

	// A per-modality encoder overrides the all-modality one for its modality.
	r = small()
	r.Encoder = "linear:3"
	r.Encoders = map[string]string{"visual": "mlp:8,4,dropout=0.5"}
	p, _, err = experiment.Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, mod := range p.Manifest.Model.Modalities {
		want := map[string]string{"audio": "linear:3", "visual": "mlp:8,4,dropout=0.5"}[mod.Name]
		if got := experiment.EncoderString(mod.Encoder); got != want {
			t.Errorf("modality %s: encoder %s, want %s", mod.Name, got, want)
		}
	}
	r.Encoders = map[string]string{"flow": "linear:2"}
	if _, _, err := experiment.Compile(r); err == nil || !strings.Contains(err.Error(), "dataset synth-av has no such modality (modalities: audio, visual)") {
		t.Errorf("encoder for an absent modality: %v", err)
	}
}

func TestOpenPlanData(t *testing.T) {
	p, _, err := experiment.Compile(small())
	if err != nil {
		t.Fatal(err)
	}
	d, err := experiment.OpenPlanData(p, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec().Sizes["train"] != 64 {
		t.Errorf("reopened dataset %+v", d.Spec())
	}
	p.Manifest.Dataset.Spec.Classes = 4
	if _, err := experiment.OpenPlanData(p, "", false); err == nil || !strings.Contains(err.Error(), "3 classes") {
		t.Errorf("class mismatch error = %v", err)
	}
	p.Manifest.Dataset.Spec.Classes = 3
	p.Manifest.Dataset.Spec.Modalities[0].Shape = []int64{5}
	if _, err := experiment.OpenPlanData(p, "", false); err == nil || !strings.Contains(err.Error(), "modality audio") {
		t.Errorf("shape mismatch error = %v", err)
	}
}
