package compile_test

import (
	"encoding/json"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/experiment"
	"bmc/graph"
	"bmc/safetensors"
)

// agmPlan compiles a small AGM plan: it has parameters (initialised from
// params.safetensors), momentum buffers and method state (zero-initialised),
// method inputs with defaults, and a train and an eval graph.
func agmPlan(t *testing.T) *compile.Plan {
	t.Helper()
	p, _, err := experiment.Compile(experiment.Request{
		Method: "agm", Dataset: "synth-av",
		DataParams: map[string]string{"train": "32", "val": "8", "test": "8", "classes": "3", "dim.audio": "4", "dim.visual": "3"},
		Encoder:    "mlp:5,2",
		Train:      experiment.Overrides{Epochs: 1, BatchSize: 8, EvalBatchSize: 4},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// savedPlan saves a fresh AGM plan into a temporary directory.
func savedPlan(t *testing.T) (*compile.Plan, string) {
	t.Helper()
	p := agmPlan(t)
	dir := filepath.Join(t.TempDir(), "plan")
	if err := p.Save(dir); err != nil {
		t.Fatal(err)
	}
	return p, dir
}

func TestPlanSaveLoadRoundTrip(t *testing.T) {
	p, dir := savedPlan(t)

	for _, name := range []string{compile.ManifestFile, compile.ParamsFile, "train.onnx", "eval.onnx"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("Save did not write %s: %v", name, err)
		}
	}
	// Only parameters are stored; slots and method state start at zero.
	f, err := safetensors.ReadFile(filepath.Join(dir, compile.ParamsFile))
	if err != nil {
		t.Fatal(err)
	}
	stored := slices.Sorted(maps.Keys(f.Tensors))
	params := p.Manifest.StateKeys(compile.StateParam)
	slices.Sort(params)
	if !slices.Equal(stored, params) {
		t.Errorf("params.safetensors holds %v, want the parameters %v", stored, params)
	}

	q, err := compile.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(q.Manifest, p.Manifest) {
		a, _ := json.MarshalIndent(p.Manifest, "", " ")
		b, _ := json.MarshalIndent(q.Manifest, "", " ")
		t.Errorf("manifest changed in the round trip:\nsaved  %s\nloaded %s", a, b)
	}

	if len(q.Graphs) != len(p.Graphs) {
		t.Fatalf("loaded %d graphs, saved %d", len(q.Graphs), len(p.Graphs))
	}
	for name, g := range p.Graphs {
		h, ok := q.Graphs[name]
		if !ok {
			t.Errorf("graph %s was not loaded", name)
			continue
		}
		sameGraph(t, name, g, h)
	}

	if !maps.EqualFunc(p.Init, q.Init, func(a, b []float32) bool {
		return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
	}) {
		t.Error("initial values changed in the round trip")
	}
	if len(q.Init) != len(params) {
		t.Errorf("loaded %d initial tensors, want one per parameter (%d)", len(q.Init), len(params))
	}

	// Saving the loaded plan again gives the same plan.
	dir2 := filepath.Join(t.TempDir(), "again")
	if err := q.Save(dir2); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dir, compile.ManifestFile))
	b, _ := os.ReadFile(filepath.Join(dir2, compile.ManifestFile))
	if string(a) != string(b) {
		t.Error("plan.json differs after a second save")
	}
}

// sameGraph compares the structure of two graphs: inputs, outputs and every
// node's op, phase, inputs and output types and shapes.
func sameGraph(t *testing.T, name string, a, b *graph.Graph) {
	t.Helper()
	sameValues := func(what string, x, y []*graph.Value) {
		if len(x) != len(y) {
			t.Errorf("graph %s: %d %s saved, %d loaded", name, len(x), what, len(y))
			return
		}
		for i := range x {
			if x[i].Name() != y[i].Name() || x[i].DType() != y[i].DType() || !x[i].Shape().Equal(y[i].Shape()) {
				t.Errorf("graph %s: %s %d saved as %s %v%v, loaded as %s %v%v", name, what, i,
					x[i].Name(), x[i].DType(), x[i].Shape(), y[i].Name(), y[i].DType(), y[i].Shape())
			}
		}
	}
	sameValues("inputs", a.Inputs(), b.Inputs())
	sameValues("outputs", a.Outputs(), b.Outputs())
	an, bn := a.Nodes(), b.Nodes()
	if len(an) != len(bn) {
		t.Errorf("graph %s: %d nodes saved, %d loaded", name, len(an), len(bn))
		return
	}
	for i := range an {
		x, y := an[i], bn[i]
		if x.Op != y.Op || x.Name != y.Name || x.Phase != y.Phase || len(x.Inputs) != len(y.Inputs) {
			t.Errorf("graph %s: node %d saved as %s %s (%s), loaded as %s %s (%s)", name, i, x.Op, x.Name, x.Phase, y.Op, y.Name, y.Phase)
			continue
		}
		for j := range x.Inputs {
			if (x.Inputs[j] == nil) != (y.Inputs[j] == nil) || (x.Inputs[j] != nil && x.Inputs[j].Name() != y.Inputs[j].Name()) {
				t.Errorf("graph %s: node %s input %d differs", name, x.Name, j)
			}
		}
		sameValues("outputs of node "+x.Name, x.Outputs, y.Outputs)
	}
}

// editManifest rewrites plan.json through its generic JSON form.
func editManifest(t *testing.T, dir string, edit func(m map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, compile.ManifestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// editParams rewrites params.safetensors.
func editParams(t *testing.T, dir string, edit func(f *safetensors.File)) {
	t.Helper()
	path := filepath.Join(dir, compile.ParamsFile)
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edit(&f)
	if err := safetensors.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
}

// graphJSON finds a graph's entry in the generic plan.json.
func graphJSON(t *testing.T, m map[string]any, name string) map[string]any {
	t.Helper()
	for _, g := range m["graphs"].([]any) {
		if gm := g.(map[string]any); gm["name"] == name {
			return gm
		}
	}
	t.Fatalf("plan.json has no graph %s", name)
	return nil
}

func TestPlanLoadErrors(t *testing.T) {
	const weight = "modality_encoder.audio.0.weight" // [5 4]
	tests := []struct {
		name    string
		corrupt func(t *testing.T, dir string)
		// want are the parts the error must name; "DIR" stands for the
		// plan directory.
		want []string
	}{
		{"missing plan.json", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, compile.ManifestFile)); err != nil {
				t.Fatal(err)
			}
		}, []string{"DIR", "not a plan directory", "no plan.json"}},
		{"plan.json is not JSON", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, compile.ManifestFile), []byte("{"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"DIR/plan.json"}},
		{"wrong format number", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) { m["format"] = 2 })
		}, []string{"DIR/plan.json", "field format is 2", "format 1"}},
		{"graph input shape differs from the manifest", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) {
				in := graphJSON(t, m, "train")["inputs"].([]any)[0].(map[string]any)
				in["shape"] = []any{9, 9}
			})
		}, []string{"DIR/train.onnx", "does not match", "DIR/plan.json", "inputs 0", "[9 9]"}},
		{"graph input renamed in the manifest", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) {
				in := graphJSON(t, m, "eval")["inputs"].([]any)[1].(map[string]any)
				in["name"] = "renamed"
			})
		}, []string{"DIR/eval.onnx", "DIR/plan.json", "inputs 1", "renamed"}},
		{"manifest lists an input fewer", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) {
				g := graphJSON(t, m, "train")
				ins := g["inputs"].([]any)
				g["inputs"] = ins[:len(ins)-1]
			})
		}, []string{"DIR/train.onnx", "inputs", "the manifest lists"}},
		{"graph output dtype differs", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) {
				out := graphJSON(t, m, "train")["outputs"].([]any)[0].(map[string]any)
				out["dtype"] = "int64"
			})
		}, []string{"DIR/train.onnx", "outputs 0", "int64"}},
		{"missing graph file", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "eval.onnx")); err != nil {
				t.Fatal(err)
			}
		}, []string{"DIR/eval.onnx"}},
		{"tensor with the wrong shape", func(t *testing.T, dir string) {
			editParams(t, dir, func(f *safetensors.File) {
				f.Tensors[weight] = safetensors.Float32s([]int64{4, 5}, make([]float32, 20))
			})
		}, []string{"DIR/params.safetensors", weight, "[4 5]", "[5 4]", "plan.json"}},
		{"missing tensor", func(t *testing.T, dir string) {
			editParams(t, dir, func(f *safetensors.File) { delete(f.Tensors, weight) })
		}, []string{"DIR/params.safetensors", "tensor " + weight + " is missing"}},
		{"tensor of the wrong dtype", func(t *testing.T, dir string) {
			editParams(t, dir, func(f *safetensors.File) {
				f.Tensors[weight] = safetensors.Int64s([]int64{5, 4}, make([]int64, 20))
			})
		}, []string{"DIR/params.safetensors", weight}},
		{"missing params file", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, compile.ParamsFile)); err != nil {
				t.Fatal(err)
			}
		}, []string{"DIR/params.safetensors"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, dir := savedPlan(t)
			tc.corrupt(t, dir)
			_, err := compile.Load(dir)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.want {
				w = strings.ReplaceAll(w, "DIR", dir)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestPlanSaveErrors(t *testing.T) {
	t.Run("graph not built", func(t *testing.T) {
		p := agmPlan(t)
		delete(p.Graphs, compile.EvalGraph)
		err := p.Save(t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "graph eval") {
			t.Errorf("Save error = %v, want one naming the graph", err)
		}
	})
	t.Run("initial value missing", func(t *testing.T) {
		p := agmPlan(t)
		delete(p.Init, "fusion_module.fc_out.bias")
		dir := t.TempDir()
		err := p.Save(dir)
		if err == nil || !strings.Contains(err.Error(), "fusion_module.fc_out.bias") {
			t.Errorf("Save error = %v, want one naming the tensor", err)
		}
		if _, err := os.Stat(filepath.Join(dir, compile.ManifestFile)); err == nil {
			t.Error("a failed Save left a plan.json, which marks a complete plan")
		}
	})
}

func TestTrainConfigLR(t *testing.T) {
	c := compile.TrainConfig{
		Optimizer: compile.OptimizerConfig{Name: "sgd", LR: 0.01},
		Scheduler: compile.StepLR{StepSize: 30, Gamma: 0.1},
	}
	tests := []struct {
		epoch int
		want  float64
	}{
		{0, 0.01}, {29, 0.01}, {30, 0.001}, {59, 0.001}, {60, 0.0001}, {95, 0.00001},
	}
	for _, tc := range tests {
		if got := c.LR(tc.epoch); math.Abs(got-tc.want) > 1e-12*tc.want {
			t.Errorf("LR(%d) = %g, want %g", tc.epoch, got, tc.want)
		}
	}
	c.Scheduler = compile.StepLR{}
	if got := c.LR(1000); got != 0.01 {
		t.Errorf("without a scheduler LR(1000) = %g, want 0.01", got)
	}
}

func TestLoadRejectsAnUnusableManifest(t *testing.T) {
	tests := []struct {
		name string
		edit func(m map[string]any)
		want []string
	}{
		{"zero batch", func(m map[string]any) { m["train"].(map[string]any)["batch_size"] = 0 }, []string{"train.batch_size"}},
		{"no step graph", func(m map[string]any) { m["step_graphs"] = []any{} }, []string{"step_graphs"}},
		{"unknown step graph", func(m map[string]any) { m["step_graphs"] = []any{"nope"} }, []string{"step_graphs", "nope"}},
		{"bad run", func(m map[string]any) { m["runs"] = []any{map[string]any{"graph": "eval", "per": "hour", "count": 1}} }, []string{"runs"}},
		{"undeclared state", func(m map[string]any) { m["state"] = []any{} }, []string{"not declared"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p, _, err := experiment.Compile(experiment.Request{Method: "baseline", Dataset: "synth-av", DataParams: map[string]string{"train": "64", "val": "8", "test": "8"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Save(dir); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, compile.ManifestFile)
			data, _ := os.ReadFile(path)
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			tt.edit(m)
			data, _ = json.Marshal(m)
			os.WriteFile(path, data, 0o644)
			_, err = compile.Load(dir)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range append(tt.want, compile.ManifestFile) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
