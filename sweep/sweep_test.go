package sweep

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bmc/methods"
)

const demoGrid = `
name: demo
methods:
  - baseline
  - unimodal
  - method: ogm
    hp: {alpha: [0.1, 0.5], modulation_starts: 0}
datasets:
  - synth-av
  - {dataset: synth-avt, data: {signal.text: [0.2, 0.8]}}
seeds: [0, 1]
encoders: ["linear:16", {audio: "linear:8"}]
train: {epochs: 2, lr: 0.05}
`

func TestGridExpandsIntoCells(t *testing.T) {
	g, err := ParseGrid("demo.yaml", []byte(demoGrid))
	if err != nil {
		t.Fatal(err)
	}
	cells, skips, err := g.Expand()
	if err != nil {
		t.Fatal(err)
	}
	// Per seed and encoder: synth-av has 1 + 2 + 2 cells (Unimodal per
	// modality), synth-avt 2 × (1 + 3 + 2).
	if want := 2 * 2 * (5 + 2*6); len(cells) != want || len(skips) != 0 {
		t.Fatalf("%d cells (%d skips), want %d", len(cells), len(skips), want)
	}
	c := cells[3]
	if c.ID != "ogm.alpha=0.1,modulation_starts=0_synth-av_linear-16_seed0" || c.Method != "ogm" || c.Seed != 0 {
		t.Errorf("cell 3: %+v", c)
	}
	cfg := c.Config
	if cfg.Hyper["alpha"] != "0.1" || cfg.Hyper["modulation_starts"] != "0" || cfg.Encoder != "linear:16" || *cfg.Train.Epochs != 2 || *cfg.Train.LR != 0.05 || *cfg.Train.Seed != 0 {
		t.Errorf("cell 3 config %+v", cfg)
	}
	var ids []string
	for _, c := range cells {
		ids = append(ids, c.ID)
	}
	for _, want := range []string{"unimodal.modality=text_synth-avt.signal.text=0.8_audio=linear-8_seed1", "baseline_synth-av_linear-16_seed1"} {
		if !slices.Contains(ids, want) {
			t.Errorf("no cell %s among %v", want, ids)
		}
	}
	last := cells[len(cells)-1]
	if last.Seed != 1 || last.Config.Encoders["audio"] != "linear:8" || last.Config.Data["signal.text"] != "0.8" {
		t.Errorf("last cell %+v", last)
	}
}

func TestGridErrorsNameTheFileAndField(t *testing.T) {
	base := "datasets: [synth-av]\n"
	tests := []struct {
		grid string
		want []string
	}{
		{"methods: [nope]\n" + base, []string{"g.yaml:1", "methods[0]", "unknown method \"nope\"", "baseline"}},
		{"methods: [{method: ogm, hp: {beta: 1}}]\n" + base, []string{"methods[0].hp.beta", "alpha"}},
		{"methods: [{method: ogm, hp: {alpha: [0.1, x]}}]\n" + base, []string{"methods[0].hp.alpha", "\"x\""}},
		{"methods: [{method: ogm, lr: 1}]\n" + base, []string{"methods[0]", "unknown field \"lr\"", "method, hp"}},
		{"methods: [baseline]\ndatasets: [nope]\n", []string{"datasets[0]", "unknown dataset"}},
		{"methods: [baseline]\ndatasets: [{dataset: synth-av, data: {noise: 1}}]\n", []string{"datasets[0].data.noise", "signal.audio"}},
		{"methods: [baseline]\n" + base + "train: {seed: 3}\n", []string{"train.seed", "seeds"}},
		{"methods: [baseline]\n" + base + "train: {epoch: 3}\n", []string{"g.yaml", "epoch", "not found"}},
		{"methods: [baseline]\n" + base + "preset: fast\n", []string{"preset", "unknown preset \"fast\"", "paper"}},
		{"methods: [baseline]\n" + base + "strength: {method: mla}\n", []string{"strength.param", "mla"}},
		{"methods: [baseline]\n" + base + "strength: {method: agm, values: [-1]}\n", []string{"strength.values", "alpha"}},
		{base, []string{"methods", "no methods"}},
		{"methods: [baseline]\n", []string{"datasets", "no datasets"}},
		{"methods: [baseline]\n" + base + "encoders: [[mlp]]\n", []string{"encoders[0]", "quote it"}},
		{"methods: [baseline]\n" + base + "encoders: [\"mlp:16\"]\n", []string{"g.yaml:3", "encoders[0]", "hidden width"}},
		{"methods: [baseline]\n" + base + "encoders: [{audio: \"conv\"}]\n", []string{"encoders[0].audio", "conv"}},
	}
	for _, tc := range tests {
		_, err := ParseGrid("g.yaml", []byte(tc.grid))
		if err == nil {
			t.Errorf("%q: no error", tc.grid)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not mention %q", tc.grid, err, w)
			}
		}
	}
}

// The paper's grid: every registry method on the seven datasets, three
// seeds, the paper preset; Greedy (ResNet18 encoders only) is left out on
// FOOD-101 and CMU-MOSEI, Unimodal runs once per modality.
func TestPaperGridIsTheWholeBenchmark(t *testing.T) {
	g, err := ParseGrid("paper.yaml", PaperGrid())
	if err != nil {
		t.Fatal(err)
	}
	cells, skips, err := g.Expand()
	if err != nil {
		t.Fatal(err)
	}
	if len(skips) != 2 || skips[0].Method != "greedy" || skips[0].Dataset != "food101" || skips[1].Dataset != "mosei" ||
		!strings.Contains(skips[0].Reason, "encoder bert") {
		t.Errorf("skips %+v", skips)
	}
	// 5 audio-visual and flow datasets × (18 methods + 2 Unimodal) + FOOD-101 × (17 + 2) + MOSEI × (17 + 3), × 3 seeds.
	if want := 3 * (5*20 + 19 + 20); len(cells) != want {
		t.Errorf("%d cells, want %d", len(cells), want)
	}
	per := map[string]int{}
	for _, c := range cells {
		per[c.Method]++
		if c.Config.Preset != "paper" || c.Config.DataRoot == "" {
			t.Fatalf("cell %s: preset %q, data root %q", c.ID, c.Config.Preset, c.Config.DataRoot)
		}
	}
	for _, info := range methods.All() {
		if per[info.Name] == 0 {
			t.Errorf("no cell of %s", info.Name)
		}
	}
	if per["unimodal"] != 3*(6*2+3) || per["greedy"] != 3*5 || per["agm"] != 3*7 {
		t.Errorf("cells per method %v", per)
	}
}

func TestBalanceGridSweepsTheStrength(t *testing.T) {
	data, err := BalanceGrid("agm", "cremad")
	if err != nil {
		t.Fatal(err)
	}
	g, err := ParseGrid("agm.yaml", data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	cells, _, err := g.Expand()
	if err != nil {
		t.Fatal(err)
	}
	if g.Strength.Param != "alpha" || strings.Join(g.Strength.Values, ",") != "0,0.025,0.05,0.1,0.2,0.4,0.8" {
		t.Errorf("strength %+v", g.Strength)
	}
	if len(cells) != 3*(1+7) || cells[1].Config.Hyper["alpha"] != "0" || cells[1].Config.DataRoot != "/data/CREMA-D" {
		t.Errorf("%d cells; cell 1 %+v", len(cells), cells[1])
	}
	if _, err := BalanceGrid("mla", "cremad"); err == nil || !strings.Contains(err.Error(), "agm") {
		t.Errorf("a method without a strength parameter: %v", err)
	}
	// Every preset's parameter is one the method declares.
	for _, info := range methods.All() {
		if name, ok := strengthParam(info.Name); ok {
			if _, ok := StrengthPreset(info); !ok {
				t.Errorf("%s: strength parameter %s is not one of its hyperparameters", info.Name, name)
			}
		}
	}
}

func TestArraySpecAndScript(t *testing.T) {
	for _, tc := range []struct {
		ids  []int
		want string
	}{{[]int{0, 1, 2, 3}, "0-3"}, {[]int{7, 1, 4, 5, 6}, "1,4-7"}, {[]int{9}, "9"}, {[]int{0, 2, 3, 5}, "0,2-3,5"}} {
		if got := arraySpec(tc.ids); got != tc.want {
			t.Errorf("arraySpec(%v) = %q, want %q", tc.ids, got, tc.want)
		}
	}
	s := &Sweep{Dir: "/scratch/my sweep", Manifest: Manifest{Name: "paper"}}
	o := SlurmOptions{Partition: "gpu", Time: "04:00:00", Mem: "16G", GPUs: 1, CPUsPerTask: 4, Account: "lab", MaxParallel: 10,
		Args: []string{"--constraint=a100"}, Setup: []string{"module load cuda"}}
	script := s.Script([]int{0, 1, 2, 5}, o, "/opt/bmc/bin/bmc")
	for _, want := range []string{
		"#!/bin/bash\n",
		"#SBATCH --job-name=bmc-paper\n",
		"#SBATCH --array=0-2,5%10\n",
		"#SBATCH --output=/scratch/my sweep/slurm/logs/%A_%a.out\n",
		"#SBATCH --cpus-per-task=4\n", "#SBATCH --partition=gpu\n", "#SBATCH --time=04:00:00\n", "#SBATCH --mem=16G\n",
		"#SBATCH --account=lab\n", "#SBATCH --gpus-per-task=1\n", "#SBATCH --constraint=a100\n",
		"module load cuda\n",
		"exec /opt/bmc/bin/bmc sweep cell '/scratch/my sweep' \"$SLURM_ARRAY_TASK_ID\" --threads \"${SLURM_CPUS_PER_TASK:-4}\"\n",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
}

func TestCreateKeepsCellsAndRefusesChangedOnes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sweep")
	grid := func(seeds string, epochs int) *Grid {
		g, err := ParseGrid("g.yaml", fmt.Appendf(nil, "methods: [baseline]\ndatasets: [synth-av]\nseeds: [%s]\ntrain: {epochs: %d}\n", seeds, epochs))
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	create := func(g *Grid) (*Sweep, error) {
		cells, _, err := g.Expand()
		if err != nil {
			t.Fatal(err)
		}
		return Create(dir, g, cells)
	}
	if _, err := create(grid("0", 2)); err != nil {
		t.Fatal(err)
	}
	s, err := create(grid("0, 1", 2))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Manifest.Cells) != 2 || s.Manifest.Cells[1].ID != "baseline_synth-av_seed1" {
		t.Errorf("cells after adding a seed: %+v", s.Manifest.Cells)
	}
	if _, err := create(grid("1", 3)); err == nil || !strings.Contains(err.Error(), "baseline_synth-av_seed1") || !strings.Contains(err.Error(), "another configuration") {
		t.Errorf("a changed cell: %v", err)
	}
	o, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Manifest.Cells) != 2 || *o.Manifest.Cells[0].Config.Train.Epochs != 2 {
		t.Errorf("reopened manifest %+v", o.Manifest)
	}
	for _, st := range o.Status(nil) {
		if st.State != StateNew || st.Epochs != 2 {
			t.Errorf("status %+v", st)
		}
	}
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a sweep directory") {
		t.Errorf("open a folder without a manifest: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte("cells: [{id: a, bogus: 1}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), ManifestFile) {
		t.Errorf("a broken manifest: %v", err)
	}
}

func TestQueueTaskFailedStates(t *testing.T) {
	for _, tc := range []struct {
		state string
		live  bool
		want  bool
	}{{"FAILED", false, true}, {"CANCELLED by 0", false, true}, {"TIMEOUT", false, true}, {"COMPLETED", false, false},
		{"", false, false}, {"RUNNING", true, false}, {"CANCELLED", true, false}} {
		if got := (&QueueTask{State: tc.state, Live: tc.live}).Failed(); got != tc.want {
			t.Errorf("%q live %v: failed %v, want %v", tc.state, tc.live, got, tc.want)
		}
	}
}
