package flops_test

import (
	"slices"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/experiment"
	"bmc/flops"
	"bmc/graph"
)

// The expected counts below are derived by hand from the network's
// structure, the way the builder lays it out (graph/nn/model.go,
// compile/builder.go, compile/loss.go, compile/optim.go and the gradient
// rules of package compile), not read back from the code under test.

// layer is one nn.Linear(in, out) of an encoder.
type layer struct{ in, out int64 }

// modalityNet is one modality's encoder: Linear layers, each followed by a
// ReLU for an "mlp" encoder and by nothing for a "linear" one.
type modalityNet struct {
	in     int64 // raw input width (the sample's size)
	layers []layer
	relu   bool
}

func (m modalityNet) features() int64 { return m.layers[len(m.layers)-1].out }

// network is a concat-fusion classifier: per-modality encoders, the fused
// head Linear(Σd_m → C) and the unimodal heads z_m = φ_m·W_mᵀ + b/n.
type network struct {
	modalities []modalityNet
	classes    int64
}

// features is D = Σ_m d_m, the fused head's input width.
func (n network) features() int64 {
	var d int64
	for _, m := range n.modalities {
		d += m.features()
	}
	return d
}

// paramElements is the number of trainable scalars: every Linear's weight
// and bias, encoders and fused head (the unimodal heads share its weight).
func (n network) paramElements() int64 {
	var p int64
	for _, m := range n.modalities {
		for _, l := range m.layers {
			p += l.in*l.out + l.out
		}
	}
	return p + n.features()*n.classes + n.classes
}

// macsPerSample is one sample's multiply-accumulates: Σ in·out over the
// encoder layers, D·C for the fused head and d_m·C per unimodal head.
func (n network) macsPerSample() int64 {
	var macs int64
	for _, m := range n.modalities {
		for _, l := range m.layers {
			macs += l.in * l.out
		}
		macs += m.features() * n.classes // unimodal head
	}
	return macs + n.features()*n.classes // fused head
}

// forward is the FLOPs of one model forward pass over a batch of b (no loss).
func (n network) forward(b int64) int64 {
	c, d := n.classes, n.features()
	var total int64
	for _, m := range n.modalities {
		for _, l := range m.layers {
			linearMatmul := 2 * b * l.in * l.out // x·Wᵀ, one MAC per (sample, in, out)
			linearBias := b * l.out              // + bias
			total += linearMatmul + linearBias
			if m.relu {
				relu := b * l.out
				total += relu
			}
		}
		unimodalHead := 2*b*m.features()*c + b*c // φ_m·W_mᵀ + b/n
		total += unimodalHead
	}
	fusedHead := 2*b*d*c + b*c // concat(φ)·Wᵀ + b; Concat and Split of W are free
	biasShare := c             // b/n, once per pass
	return total + fusedHead + biasShare
}

// crossEntropyForward is CE(z, y) with mean reduction as compile/loss.go
// builds it: OneHot (free), LogSoftmax, one-hot mask, row sum, negation, mean.
func crossEntropyForward(b, c int64) int64 {
	logSoftmax := b * (5*c - 1)
	maskMul := b * c       // onehot ⊙ log p
	rowSum := b*c - b      // Σ over classes
	negate := b            // −
	batchMean := b - 1 + 1 // B−1 adds + one divide
	return logSoftmax + maskMul + rowSum + negate + batchMean
}

// backward is the FLOPs of the backward pass of CE(z, y) through the model.
// The seed of the loss is an Expand of 1 (free); reshapes, expands, splits
// and Where are free.
func (n network) backward(b int64) int64 {
	c, d := n.classes, n.features()
	// Loss, from the mean back to the logits.
	meanGrad := b // expanded seed / B
	negGrad := b  // −dy
	// dy⊙onehot for log p; the one-hot mask's gradient is pruned as dead code.
	maskMulGrad := b * c
	// LogSoftmax: dx = dy − exp(log p)⊙Σ_row dy.
	rowSumGrad := b*c - b
	expGrad := b * c
	scaleGrad := b * c
	subGrad := b * c
	logSoftmaxGrad := rowSumGrad + expGrad + scaleGrad + subGrad
	loss := meanGrad + negGrad + maskMulGrad + logSoftmaxGrad

	// Fused head z = h·Wᵀ + b with h = concat(φ_m).
	headInputGrad := 2 * b * c * d // dh = dz·W
	headWeightGrad := 2 * c * b * d
	headBiasGrad := b*c - c // Σ over the batch
	head := headInputGrad + headWeightGrad + headBiasGrad
	// The unimodal heads only feed metrics, so nothing flows back through
	// them, nor through the Split of W or the b/n share.

	var encoders int64
	for _, m := range n.modalities {
		for i, l := range m.layers {
			if m.relu {
				reluGrad := b * l.out // x > 0 (Greater); the Where is free
				encoders += reluGrad
			}
			// dX for every layer but the first, whose input is the data
			// batch: that gradient is dead code and pruned from the graph.
			var inputGrad int64
			if i > 0 {
				inputGrad = 2 * b * l.out * l.in
			}
			weightGrad := 2 * l.out * b * l.in
			biasGrad := b*l.out - l.out
			encoders += inputGrad + weightGrad + biasGrad
		}
	}
	return loss + head + encoders
}

// optimizer is SGD per parameter element: weight decay g + wd·p (2), the
// momentum buffer m·buf + g (2), and the step p − lr·d (2).
func optimizer(params int64, momentum, weightDecay bool) int64 {
	perElement := int64(2) // lr·d, p − lr·d
	if weightDecay {
		perElement += 2
	}
	if momentum {
		perElement += 2
	}
	return perElement * params
}

// evalForward is the evaluation graph: the keep mask multiplies each
// modality's raw input, then the model runs (no loss).
func (n network) evalForward(b int64) int64 {
	var keepMask int64
	for _, m := range n.modalities {
		keepMask += b * m.in
	}
	return keepMask + n.forward(b)
}

func phase(c flops.Counts, p string) int64 { return c.Phase[p] }

// sameCounts compares counts phase by phase (a missing phase is 0).
func sameCounts(t *testing.T, what string, got, want flops.Counts) {
	t.Helper()
	for _, p := range flops.Phases() {
		if got.Phase[p] != want.Phase[p] {
			t.Errorf("%s: phase %s = %d FLOPs, want %d", what, p, got.Phase[p], want.Phase[p])
		}
	}
	for p := range got.Phase {
		if !slices.Contains(flops.Phases(), p) {
			t.Errorf("%s: unexpected phase %q", what, p)
		}
	}
	if got.Total != want.Total {
		t.Errorf("%s: total = %d, want %d", what, got.Total, want.Total)
	}
	if got.MACs != want.MACs {
		t.Errorf("%s: MACs = %d, want %d", what, got.MACs, want.MACs)
	}
}

func counts(forward, backward, opt, macs int64) flops.Counts {
	return flops.Counts{
		Phase: map[string]int64{graph.PhaseForward: forward, graph.PhaseBackward: backward, graph.PhaseOptimizer: opt},
		Total: forward + backward + opt,
		MACs:  macs,
	}
}

func TestPlanReportMatchesHandDerivation(t *testing.T) {
	mlp := func(in int64, widths ...int64) modalityNet {
		m := modalityNet{in: in, relu: true}
		for _, w := range widths {
			m.layers = append(m.layers, layer{in, w})
			in = w
		}
		return m
	}
	tests := []struct {
		name string
		req  experiment.Request
		net  network
		// batch and evalBatch are B and the evaluation batch.
		batch, evalBatch   int64
		momentum, decay    bool
		epochs, steps      int64
		valRuns, finalRuns int64
		macsPerSample      int64
	}{
		{
			name: "baseline synth-av mlp:7,3",
			req: experiment.Request{
				Method: "baseline", Dataset: "synth-av",
				DataParams: map[string]string{"train": "256", "val": "64", "test": "64", "classes": "5", "dim.audio": "6", "dim.visual": "4"},
				Encoder:    "mlp:7,3",
				Train:      experiment.Overrides{Epochs: 2, BatchSize: 32, EvalBatchSize: 16},
			},
			// audio 6→7→3, visual 4→7→3, head 6→5.
			net:   network{classes: 5, modalities: []modalityNet{mlp(6, 7, 3), mlp(4, 7, 3)}},
			batch: 32, evalBatch: 16, momentum: true, decay: true,
			epochs: 2,
			steps:  256 / 32, // 8
			// Validation: ceil(64/16) = 4 eval runs; final: 2² masks × 4.
			valRuns: 4, finalRuns: 4 * 4,
			// 6·7 + 7·3 + 4·7 + 7·3 (encoders) + 6·5 (head) + 3·5 + 3·5 (unimodal heads)
			macsPerSample: 42 + 21 + 28 + 21 + 30 + 15 + 15,
		},
		{
			name: "baseline synth-avt mlp:6,4,2 without momentum, balancemm",
			req: experiment.Request{
				Method: "baseline", Dataset: "synth-avt",
				DataParams: map[string]string{"train": "100", "val": "25", "test": "31", "classes": "3", "dim.audio": "5", "dim.visual": "4", "dim.text": "3"},
				Encoder:    "mlp:6,4,2",
				Train:      experiment.Overrides{Epochs: 3, BatchSize: 16, EvalBatchSize: 10, MomentumSet: true, Momentum: 0, Protocol: "balancemm"},
			},
			net:   network{classes: 3, modalities: []modalityNet{mlp(5, 6, 4, 2), mlp(4, 6, 4, 2), mlp(3, 6, 4, 2)}},
			batch: 16, evalBatch: 10, momentum: false, decay: true,
			epochs: 3,
			steps:  100 / 16, // 6, the last partial batch dropped
			// balancemm validates on the test split: ceil(31/10) = 4; final 2³ × 4.
			valRuns: 4, finalRuns: 8 * 4,
			macsPerSample: 3*(6*4+4*2) + 5*6 + 4*6 + 3*6 + 6*3 + 3*(2*3),
		},
		{
			name: "baseline synth-av linear:4 without weight decay",
			req: experiment.Request{
				Method: "baseline", Dataset: "synth-av",
				DataParams: map[string]string{"train": "40", "val": "20", "test": "20", "classes": "2", "dim.audio": "3", "dim.visual": "5"},
				Encoder:    "linear:4",
				Train:      experiment.Overrides{Epochs: 1, BatchSize: 8, EvalBatchSize: 64, WeightDecaySet: true, WeightDecay: 0},
			},
			net: network{classes: 2, modalities: []modalityNet{
				{in: 3, layers: []layer{{3, 4}}}, {in: 5, layers: []layer{{5, 4}}},
			}},
			batch: 8, evalBatch: 64, momentum: true, decay: false,
			epochs: 1, steps: 5,
			valRuns: 1, finalRuns: 4 * 1,
			macsPerSample: 3*4 + 5*4 + 8*2 + 4*2 + 4*2,
		},
		{
			name: "unimodal visual mlp:5,3",
			req: experiment.Request{
				Method: "unimodal", Hyper: map[string]string{"modality": "visual"}, Dataset: "synth-av",
				DataParams: map[string]string{"train": "64", "val": "30", "test": "30", "classes": "4", "dim.audio": "9", "dim.visual": "6"},
				Encoder:    "mlp:5,3",
				Train:      experiment.Overrides{Epochs: 2, BatchSize: 16, EvalBatchSize: 16},
			},
			net:   network{classes: 4, modalities: []modalityNet{mlp(6, 5, 3)}},
			batch: 16, evalBatch: 16, momentum: true, decay: true,
			epochs: 2, steps: 4,
			valRuns: 2, finalRuns: 2 * 2,
			macsPerSample: 6*5 + 5*3 + 3*4 + 3*4,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan, _, err := experiment.Compile(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.net.macsPerSample(); got != tc.macsPerSample {
				t.Fatalf("test table: network MACs per sample %d, the literal says %d", got, tc.macsPerSample)
			}
			if got, want := paramElements(plan), tc.net.paramElements(); got != want {
				t.Fatalf("the plan has %d parameter elements, the hand network %d: the table describes another network", got, want)
			}

			b, c := tc.batch, tc.net.classes
			train := counts(
				tc.net.forward(b)+crossEntropyForward(b, c),
				tc.net.backward(b),
				optimizer(tc.net.paramElements(), tc.momentum, tc.decay),
				b*tc.net.macsPerSample(),
			)
			eval := counts(tc.net.evalForward(tc.evalBatch), 0, 0, tc.evalBatch*tc.net.macsPerSample())

			gotEval, err := flops.Count(plan.Graphs[compile.EvalGraph])
			if err != nil {
				t.Fatal(err)
			}
			sameCounts(t, "eval graph", gotEval, eval)
			gotTrain, err := flops.Count(plan.Graphs["train"])
			if err != nil {
				t.Fatal(err)
			}
			sameCounts(t, "train graph", gotTrain, train)

			r, err := flops.PlanReport(plan)
			if err != nil {
				t.Fatal(err)
			}
			if r.StepsPerEpoch != tc.steps || r.Epochs != tc.epochs {
				t.Errorf("steps per epoch %d, epochs %d; want %d, %d", r.StepsPerEpoch, r.Epochs, tc.steps, tc.epochs)
			}
			if r.ForwardMACsPerSample != tc.macsPerSample {
				t.Errorf("ForwardMACsPerSample = %d, want %d", r.ForwardMACsPerSample, tc.macsPerSample)
			}
			sameCounts(t, "per step", r.PerStep, train)
			sameCounts(t, "validation", r.Validation, eval.Scale(tc.valRuns))
			perEpoch := train.Scale(tc.steps).Add(eval.Scale(tc.valRuns))
			sameCounts(t, "per epoch", r.PerEpoch, perEpoch)
			sameCounts(t, "training", r.Training, perEpoch.Scale(tc.epochs))
			sameCounts(t, "final", r.Final, eval.Scale(tc.finalRuns))
			if got := phase(r.Training, graph.PhaseMethod); got != 0 {
				t.Errorf("a plain CE method has %d method-phase FLOPs", got)
			}

			if len(r.Graphs) != 2 {
				t.Fatalf("report has %d graphs, want train and eval", len(r.Graphs))
			}
			for _, gr := range r.Graphs {
				switch gr.Name {
				case "train":
					if gr.Role != "train" || len(gr.Runs) != 1 || gr.Runs[0].Per != "step" || gr.Runs[0].Count != 1 {
						t.Errorf("train graph report: role %q, runs %+v", gr.Role, gr.Runs)
					}
				case compile.EvalGraph:
					if gr.Role != "eval" || len(gr.Runs) != 2 ||
						gr.Runs[0].Per != "epoch" || gr.Runs[0].Count != tc.valRuns ||
						gr.Runs[1].Per != "final" || gr.Runs[1].Count != tc.finalRuns {
						t.Errorf("eval graph report: role %q, runs %+v", gr.Role, gr.Runs)
					}
				default:
					t.Errorf("unexpected graph %s", gr.Name)
				}
			}
		})
	}
}

// paramElements counts the plan's parameter elements from its manifest.
func paramElements(p *compile.Plan) int64 {
	var n int64
	for _, prm := range p.Manifest.Params {
		n += prm.Shape.Size()
	}
	return n
}

func TestPlanReportErrors(t *testing.T) {
	compilePlan := func(t *testing.T) *compile.Plan {
		t.Helper()
		p, _, err := experiment.Compile(experiment.Request{
			Method: "baseline", Dataset: "synth-av",
			DataParams: map[string]string{"train": "32", "val": "8", "test": "8", "dim.audio": "3", "dim.visual": "3"},
			Encoder:    "linear:2",
			Train:      experiment.Overrides{Epochs: 1, BatchSize: 8, EvalBatchSize: 8},
		})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("missing graph", func(t *testing.T) {
		p := compilePlan(t)
		delete(p.Graphs, compile.EvalGraph)
		_, err := flops.PlanReport(p)
		if err == nil || !strings.Contains(err.Error(), "graph eval is missing") {
			t.Errorf("error = %v, want one naming the missing graph", err)
		}
	})
	t.Run("unknown run period", func(t *testing.T) {
		p := compilePlan(t)
		p.Manifest.Runs[0].Per = "fortnight"
		_, err := flops.PlanReport(p)
		if err == nil || !strings.Contains(err.Error(), `"fortnight"`) {
			t.Errorf("error = %v, want one naming the period", err)
		}
	})
}
