package runtime_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bmc/compile"
	"bmc/datasets"
	"bmc/experiment"
	"bmc/internal/cluster"
	"bmc/methods"
	"bmc/runtime"
)

// reinitProbe wraps the Re-learning schedule: around its EndEpoch it keeps
// the state before and after, and the re-init weights w_m that spec §4.16
// gives on the features of that moment.
type reinitProbe struct {
	methods.Schedule
	before, after []map[string][]float32
	weights       []map[string]float64
}

func (p *reinitProbe) EndEpoch(r methods.Run) error {
	w, err := expectedReinitWeights(r, 3)
	if err != nil {
		return err
	}
	p.weights = append(p.weights, w)
	p.before = append(p.before, r.Snapshot())
	if err := p.Schedule.(methods.EpochEnder).EndEpoch(r); err != nil {
		return err
	}
	p.after = append(p.after, r.Snapshot())
	return nil
}

// expectedReinitWeights is w_m = tanh(λ·|purity_train − purity_val|), the
// purity counted here from k-means clusters of the min-max scaled features
// (k-means and the scaling are checked in package cluster; the clusters
// come from the stream the schedule draws from).
func expectedReinitWeights(r methods.Run, lambda float64) (map[string]float64, error) {
	classes := int(r.Manifest().Model.Classes)
	eb := r.Manifest().Train.EvalBatchSize
	purity := map[string][]float64{}
	for _, split := range []string{datasets.Train, datasets.Val} {
		rows := map[string][]float64{}
		var labels []int64
		err := r.Pass(methods.PassOptions{Graphs: []string{"relearning.features"}, Split: split, Purpose: "probe"}, func(b methods.PassBatch) error {
			labels = append(labels, b.Labels...)
			for _, m := range r.Manifest().ModalityNames() {
				v, err := b.Metric("relearning.features", "features/"+m)
				if err != nil {
					return err
				}
				for _, x := range v[:b.N*len(v)/eb] {
					rows[m] = append(rows[m], float64(x))
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for m, x := range rows {
			pts := cluster.Points{X: x, D: len(x) / len(labels)}
			cluster.MinMaxScale(pts, -1, 1)
			res, err := cluster.KMeans(pts, classes, cluster.Options{}, r.Rand("relearning.kmeans/"+m+"/"+split))
			if err != nil {
				return nil, err
			}
			// Purity: each cluster counts the samples of its majority class.
			counts := make([][]int, classes)
			for c := range counts {
				counts[c] = make([]int, classes)
			}
			for i, c := range res.Labels {
				counts[c][labels[i]]++
			}
			hit := 0
			for _, row := range counts {
				most := 0
				for _, n := range row {
					most = max(most, n)
				}
				hit += most
			}
			purity[m] = append(purity[m], float64(hit)/float64(len(labels)))
		}
	}
	w := map[string]float64{}
	for m, p := range purity {
		w[m] = math.Tanh(lambda * math.Abs(p[0]-p[1]))
	}
	return w, nil
}

// Re-learning re-initialises after epoch 1 only (every epoch, at most
// once): every parameter of modality m becomes w_m·θ₀ + (1 − w_m)·θ; the
// head, the optimizer's slots and batch-norm statistics stay.
func TestRelearningReinitMatchesSpec(t *testing.T) {
	o := experiment.Overrides{Epochs: 3, BatchSize: 32, EvalBatchSize: 64}
	hp := map[string]string{"reinit_epoch": "1", "reinit_num": "1", "move_lambda": "3"}
	p, d := compileOn(t, "relearning", "synth-av", "", hp, small, o)
	sched, err := experiment.Schedule(p)
	if err != nil {
		t.Fatal(err)
	}
	probe := &reinitProbe{Schedule: sched}
	dir := t.TempDir()
	if _, err := runtime.Train(p, d, probe, runtime.TrainOptions{OutDir: dir, Workers: 2}); err != nil {
		t.Fatal(err)
	}
	// The epoch's log line reports each modality's weight (and purities).
	logData, err := os.ReadFile(filepath.Join(dir, runtime.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(logData)), "\n")
	var line runtime.EpochLog
	if err := json.Unmarshal([]byte(lines[1]), &line); err != nil {
		t.Fatal(err)
	}
	for m, w := range probe.weights[1] {
		if got, ok := line.Method["relearning.weight/"+m]; !ok || math.Abs(got-w) > 1e-12 {
			t.Errorf("log line of epoch 1: relearning.weight/%s = %v (present %v), the re-init used %v", m, got, ok, w)
		}
	}
	if _, ok := line.Method["relearning.purity_val/audio"]; !ok {
		t.Errorf("log line of epoch 1 lacks the purities: %v", line.Method)
	}
	moved := 0
	for e := range 3 {
		for _, st := range p.Manifest.State {
			before, after := probe.before[e][st.Key], probe.after[e][st.Key]
			w, reinit := probe.weights[e][st.Modality]
			reinit = reinit && e == 1 && st.Kind == compile.StateParam
			init := p.Init[st.Key]
			for i := range before {
				want := before[i]
				if reinit {
					want = float32(w*float64(init[i]) + (1-w)*float64(before[i]))
				}
				if math.Abs(float64(after[i]-want)) > 1e-6*math.Max(1, math.Abs(float64(want))) {
					t.Fatalf("epoch %d: %s[%d] = %v after the epoch's end, want %v (w = %v, re-init %v)", e, st.Key, i, after[i], want, w, reinit)
				}
			}
			if reinit && w > 0 {
				moved++
			}
		}
	}
	if moved == 0 {
		t.Fatalf("no parameter moved (weights %v); the test checks nothing", probe.weights[1])
	}
}
