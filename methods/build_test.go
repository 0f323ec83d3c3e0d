package methods_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/experiment"
	"bmc/flops"
	"bmc/graph"
	"bmc/methods"
)

// compilePlan compiles a method on a small synthetic dataset (synth-av has
// 2 modalities, synth-avt 3) with a 2-layer MLP encoder.
func compilePlan(t *testing.T, method, dataset string, hyper map[string]string) *compile.Plan {
	t.Helper()
	p, _, err := experiment.Compile(experiment.Request{
		Method: method, Hyper: hyper, Dataset: dataset,
		DataParams: map[string]string{"train": "64", "val": "16", "test": "16", "classes": "3", "dim.audio": "5", "dim.visual": "4"},
		Encoder:    "mlp:6,3",
		Train:      experiment.Overrides{Epochs: 2, BatchSize: 8, EvalBatchSize: 8},
	})
	if err != nil {
		t.Fatalf("compile %s on %s with %v: %v", method, dataset, hyper, err)
	}
	return p
}

func inputInfo(m *compile.Manifest, name string) (compile.InputInfo, bool) {
	for _, in := range m.Inputs {
		if in.Name == name {
			return in, true
		}
	}
	return compile.InputInfo{}, false
}

func graphInputNames(m *compile.Manifest, graphName string) []string {
	gi, _ := m.Graph(graphName)
	var names []string
	for _, io := range gi.Inputs {
		names = append(names, io.Name)
	}
	return names
}

func TestOGMBuild(t *testing.T) {
	tests := []struct {
		dataset    string
		modalities int
		method     string
		noise      bool
	}{
		{"synth-av", 2, "OGM", false},
		{"synth-av", 2, "OGM_GE", true},
		{"synth-av", 2, "OGM_GE3", true},
		{"synth-avt", 3, "OGM", false},
		{"synth-avt", 3, "OGM_GE", true},
		{"synth-avt", 3, "OGM_GE3", true},
	}
	for _, tc := range tests {
		t.Run(tc.dataset+"/"+tc.method, func(t *testing.T) {
			p := compilePlan(t, "ogm", tc.dataset, map[string]string{"method": tc.method})
			m := &p.Manifest
			if got := len(m.ModalityNames()); got != tc.modalities {
				t.Fatalf("%d modalities, want %d", got, tc.modalities)
			}
			if m.Hyper["method"] != tc.method || m.Hyper["alpha"] != "0.3" {
				t.Errorf("manifest hyperparameters %v", m.Hyper)
			}
			trainInputs := graphInputNames(m, methods.TrainGraph)

			active, ok := inputInfo(m, "ogm.active")
			if !ok || !active.Shape.Equal(graph.Shape{1}) || !slices.Equal(active.Default, []float32{0}) || active.SetBy != "method" {
				t.Errorf("ogm.active input: %+v (declared %v), want shape [1], default 0, set by the method", active, ok)
			}
			if !slices.Contains(trainInputs, "input/ogm.active") {
				t.Errorf("train graph inputs %v lack input/ogm.active", trainInputs)
			}

			// OGM-GE noise: one input per matrix parameter of an encoder,
			// none for biases or the fusion head.
			var want []string
			for _, prm := range m.Params {
				if prm.Modality != "" && prm.Shape.Rank() == 2 {
					want = append(want, "ogm.noise/"+prm.Name)
				}
			}
			if len(want) != 2*tc.modalities {
				t.Fatalf("test setup: %d encoder matrices, want 2 per modality", len(want))
			}
			var got []string
			for _, in := range m.Inputs {
				if strings.HasPrefix(in.Name, "ogm.noise/") {
					got = append(got, in.Name)
					prm := strings.TrimPrefix(in.Name, "ogm.noise/")
					for _, pp := range m.Params {
						if pp.Name == prm && !in.Shape.Equal(pp.Shape) {
							t.Errorf("%s has shape %v, the parameter %v", in.Name, in.Shape, pp.Shape)
						}
					}
					if !slices.Contains(trainInputs, "input/"+in.Name) {
						t.Errorf("train graph lacks input/%s", in.Name)
					}
				}
			}
			if !tc.noise {
				want = nil
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("noise inputs %v, want %v", got, want)
			}

			g := p.Graphs[methods.TrainGraph]
			method := 0
			for _, n := range g.Nodes() {
				if n.Phase == graph.PhaseMethod {
					method++
					if n.Op == "Gemm" || n.Op == "MatMul" {
						t.Errorf("OGM adds a product in the method phase: %s", n.Name)
					}
				}
			}
			if method == 0 {
				t.Error("no method-phase nodes")
			}
			gi, _ := m.Graph(methods.TrainGraph)
			for _, mod := range m.ModalityNames() {
				if !slices.ContainsFunc(gi.Outputs, func(io compile.IO) bool { return io.Kind == compile.IOMetric && io.Key == "ogm.coef/"+mod }) {
					t.Errorf("no ogm.coef/%s metric", mod)
				}
			}
		})
	}
}

// phaseProducts counts the Gemm and MatMul nodes of a phase and sums their MACs.
func phaseProducts(t *testing.T, g *graph.Graph, phase string) (nodes int, macs int64) {
	t.Helper()
	for _, n := range g.Nodes() {
		if n.Phase != phase || (n.Op != "Gemm" && n.Op != "MatMul") {
			continue
		}
		c, err := flops.NodeCost(n)
		if err != nil {
			t.Fatal(err)
		}
		nodes++
		macs += c.MACs
	}
	return nodes, macs
}

func TestAGMBuild(t *testing.T) {
	type shape struct {
		muls int
		gain float32
	}
	seen := map[int]map[bool]shape{}
	for _, tc := range []struct {
		dataset string
		n       int
	}{{"synth-av", 2}, {"synth-avt", 3}} {
		seen[tc.n] = map[bool]shape{}
		for _, compat := range []bool{false, true} {
			name := tc.dataset + "/compat=false"
			if compat {
				name = tc.dataset + "/compat=true"
			}
			t.Run(name, func(t *testing.T) {
				hyper := map[string]string{}
				if compat {
					hyper["compat"] = "true"
				}
				p := compilePlan(t, "agm", tc.dataset, hyper)
				m := &p.Manifest
				g := p.Graphs[methods.TrainGraph]

				var state *compile.StateInfo
				for i := range m.State {
					if m.State[i].Key == "agm.running_score" {
						state = &m.State[i]
					}
				}
				if state == nil || !state.Shape.Equal(graph.Shape{int64(tc.n)}) || state.Kind != compile.StateMethod || state.Init != "zeros" {
					t.Errorf("agm.running_score state = %+v, want method state of shape [%d], zero-initialised", state, tc.n)
				}
				it, ok := inputInfo(m, "agm.iteration")
				if !ok || !it.Shape.Equal(graph.Shape{1}) || it.SetBy != "method" {
					t.Errorf("agm.iteration input = %+v (declared %v)", it, ok)
				}
				ins := graphInputNames(m, methods.TrainGraph)
				if !slices.Contains(ins, "agm.running_score") || !slices.Contains(ins, "input/agm.iteration") {
					t.Errorf("train graph inputs %v lack the AGM state or iteration", ins)
				}
				gi, _ := m.Graph(methods.TrainGraph)
				if !slices.ContainsFunc(gi.Outputs, func(io compile.IO) bool { return io.Kind == compile.IOState && io.Key == "agm.running_score" }) {
					t.Error("the train graph does not output the next running score")
				}

				// Every non-empty subset of the n modalities is one extra
				// evaluation-mode forward in the method phase: 2ⁿ−1 copies of
				// the model's encoders and fused head, at the training batch
				// (their unimodal heads feed nothing and are pruned).
				fwdNodes, fwdMACs := phaseProducts(t, g, graph.PhaseForward)
				methodNodes, methodMACs := phaseProducts(t, g, graph.PhaseMethod)
				subsets := 1<<tc.n - 1
				uniNodes, uniMACs := tc.n, int64(0)
				for _, mod := range m.Model.Modalities {
					uniMACs += int64(m.Train.BatchSize) * mod.Encoder.Out * m.Model.Classes
				}
				if want := subsets * (fwdNodes - uniNodes); methodNodes != want {
					t.Errorf("%d method-phase products, want (2^%d−1)·(%d−%d) = %d", methodNodes, tc.n, fwdNodes, uniNodes, want)
				}
				if want := int64(subsets) * (fwdMACs - uniMACs); methodMACs != want {
					t.Errorf("%d method-phase MACs, want (2^%d−1)·(%d−%d) = %d", methodMACs, tc.n, fwdMACs, uniMACs, want)
				}
				// The model has n·2 encoder layers, the fused head and n
				// unimodal heads.
				if fwdNodes != 3*tc.n+1 {
					t.Errorf("%d forward products, want %d", fwdNodes, 3*tc.n+1)
				}

				s := shape{}
				for _, n := range g.Nodes() {
					if n.Phase != graph.PhaseMethod {
						continue
					}
					if n.Op == "Mul" {
						s.muls++
					}
					// Constants outside the subset forwards (whose b/n share
					// holds n itself).
					if n.Op == "Constant" && !strings.Contains(n.Name, "/subset") {
						if c := n.Outputs[0].Const(); c != nil && c.DType == graph.Float32 && len(c.Float32) == 1 {
							v := c.Float32[0]
							if math.Abs(math.Abs(float64(v))-float64(tc.n)/float64(tc.n-1)) < 1e-6 {
								s.gain = v
							}
						}
					}
				}
				seen[tc.n][compat] = s
			})
		}
	}
	for n, byCompat := range seen {
		off, on := byCompat[false], byCompat[true]
		// compat drops the empty-coalition term of each ψ_m: one weighted
		// term (a Mul) per modality fewer.
		if off.muls-on.muls != n {
			t.Errorf("n=%d: compat=false has %d method-phase Muls, compat=true %d; want %d more without compat", n, off.muls, on.muls, n)
		}
		// compat flips the sign of the ratio gain n/(n−1).
		want := float32(n) / float32(n-1)
		if off.gain != want || on.gain != -want {
			t.Errorf("n=%d: gain %g without compat and %g with it, want %g and %g", n, off.gain, on.gain, want, -want)
		}
	}
}

func TestMethodsRecordHyperInPlan(t *testing.T) {
	p := compilePlan(t, "agm", "synth-av", map[string]string{"alpha": "0.25"})
	if p.Manifest.Method != "agm" || p.Manifest.Hyper["alpha"] != "0.25" || p.Manifest.Hyper["compat"] != "false" {
		t.Errorf("manifest method %q, hyper %v", p.Manifest.Method, p.Manifest.Hyper)
	}
	if !slices.Equal(p.Manifest.StepGraphs, []string{methods.TrainGraph}) {
		t.Errorf("step graphs %v", p.Manifest.StepGraphs)
	}
}
