package sweep

import (
	"fmt"
	"strings"

	"bmc/datasets"
	"bmc/methods"
)

// paperDatasets are the benchmark's seven datasets (paper §5.1) in the
// order of its Table 2, each with a placeholder data root.
func paperDatasets() [][2]string {
	return [][2]string{
		{"ks", "/data/KineticsSounds"}, {"cremad", "/data/CREMA-D"}, {"ucf101", "/data/UCF-101"},
		{"food101", "/data/FOOD-101"}, {"mosei", "/data/CMU-MOSEI"}, {"balancedav", "/data/BalancedAV"},
		{"vggsound", "/data/VGGSound"},
	}
}

// PaperGrid is the paper's whole Table 2 grid as a grid file: every method
// of the registry (Baseline, Unimodal once per modality, the 17 methods)
// on the seven datasets over three seeds with the paper's training preset.
// The data roots are placeholders to set.
func PaperGrid() []byte {
	var b strings.Builder
	b.WriteString(`# The BalanceBenchmark paper's grid (Table 2): Baseline, Unimodal per modality and the 17 methods
# on the seven datasets, three seeds, the paper's per-dataset training preset (spec §6).
# Set each data_root to the dataset's folder (bmc datasets shows the layouts), then
#   bmc sweep paper.yaml --executor slurm     (or --executor local --jobs N)
#   bmc sweep status runs/paper
#   bmc report runs/paper -o runs/paper/report
name: paper
out: runs/paper
preset: paper
seeds: [0, 1, 2]
datasets:
`)
	for _, d := range paperDatasets() {
		fmt.Fprintf(&b, "  - {dataset: %s, data_root: %s}\n", d[0], d[1])
	}
	b.WriteString("methods:\n")
	for _, info := range methods.All() {
		note := info.Display + ", " + info.Category
		if info.Name == "unimodal" {
			note += "; one cell per modality"
		}
		fmt.Fprintf(&b, "  - %-12s # %s\n", info.Name, note)
	}
	b.WriteString(`slurm:
  time: "48:00:00"
  cpus_per_task: 8
  mem: 32G
  # partition: gpu
  # account: my-account
  # max_parallel: 50
  # setup: ["module load gcc"]
`)
	return []byte(b.String())
}

// BalanceGrid is a relative-balance sweep (the paper's Fig. 3) as a grid
// file: the method at its preset strengths next to the Baseline, on one
// dataset over three seeds.
func BalanceGrid(method, dataset string) ([]byte, error) {
	info, err := methodInfo(method)
	if err != nil {
		return nil, err
	}
	s, ok := StrengthPreset(info)
	if !ok {
		var with []string
		for _, m := range methods.All() {
			if _, ok := StrengthPreset(m); ok {
				with = append(with, m.Name)
			}
		}
		return nil, fmt.Errorf("method %s has no preset strength parameter (methods with one: %s)", method, strings.Join(with, ", "))
	}
	if _, err := datasets.Lookup(dataset); err != nil {
		return nil, err
	}
	root := ""
	for _, d := range paperDatasets() {
		if d[0] == dataset {
			root = ", data_root: " + d[1]
		}
	}
	return fmt.Appendf(nil, `# Relative balance (the paper's Fig. 3): %s's %s swept next to the Baseline on %s.
#   bmc sweep THIS.yaml --jobs N
#   bmc report runs/balance-%s-%s -o runs/balance-%s-%s/report   (accuracy and I against %s,
#   the relative balance point = best accuracy, the absolute balance point = lowest I)
name: balance-%s-%s
out: runs/balance-%s-%s
seeds: [0, 1, 2]
datasets:
  - {dataset: %s%s}
methods: [baseline]
strength:
  method: %s
  param: %s
  values: [%s]
`, info.Display, s.Param, dataset, method, dataset, method, dataset, s.Param, method, dataset, method, dataset,
		dataset, root, method, s.Param, strings.Join(s.Values, ", ")), nil
}
