package sweep

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"bmc/datasets"
	"bmc/experiment"
	"bmc/methods"
)

// Cell is one run of a sweep.
type Cell struct {
	// ID names the cell and its run directory (runs/ID).
	ID      string `yaml:"id"`
	Method  string `yaml:"method"`
	Dataset string `yaml:"dataset"`
	Seed    uint64 `yaml:"seed"`
	// Variant is what the grid set besides method, dataset and seed
	// (hyperparameters, dataset parameters, preset, encoder), as k=v items.
	Variant string `yaml:"variant,omitempty"`
	// Config is the run configuration the cell trains (`bmc train
	// --config`).
	Config experiment.FileConfig `yaml:"config"`
}

// Skip is a method × dataset pair a grid names that cannot run.
type Skip struct {
	Method, Dataset, Reason string
}

// Expand lists a grid's cells, seeds slowest and methods fastest, with the
// method × dataset pairs it leaves out: those whose model the method
// refuses (Greedy on CMU-MOSEI's transformers or FOOD-101's BERT). A method
// with a modality hyperparameter (Unimodal) that the grid leaves unset runs
// once per modality of the dataset.
func (g *Grid) Expand() ([]Cell, []Skip, error) {
	presets := g.Presets
	if len(presets) == 0 {
		presets = []string{""}
	}
	encoders := g.Encoders
	if len(encoders) == 0 {
		encoders = [][]string{nil}
	}
	entries := slices.Clone(g.Methods)
	if s := g.Strength; s != nil {
		entries = append(entries, MethodEntry{Method: s.Method, Hyper: []Values{{Key: s.Param, Values: s.Values}}})
	}
	var cells []Cell
	var skips []Skip
	skipped := map[[2]string]bool{}
	for _, seed := range g.Seeds {
		for _, d := range g.Datasets {
			entry, err := datasets.Lookup(d.Dataset)
			if err != nil {
				return nil, nil, err
			}
			for _, data := range product(d.Data) {
				for _, preset := range presets {
					for _, enc := range encoders {
						for _, m := range entries {
							info, err := methodInfo(m.Method)
							if err != nil {
								return nil, nil, err
							}
							for _, hp := range methodVariants(info, m.Hyper, entry) {
								if _, err := methods.Resolve(info, hp); err != nil {
									return nil, nil, fmt.Errorf("%s: %w", g.Path, err)
								}
								if err := experiment.Supports(encoderRequest(m.Method, d.Dataset, hp, enc)); err != nil {
									if k := [2]string{m.Method, d.Dataset}; !skipped[k] {
										skipped[k] = true
										skips = append(skips, Skip{m.Method, d.Dataset, err.Error()})
									}
									continue
								}
								cells = append(cells, g.cell(m.Method, hp, d, data, preset, enc, seed))
							}
						}
					}
				}
			}
		}
	}
	if err := uniqueIDs(cells); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", g.Path, err)
	}
	return cells, skips, nil
}

// methodVariants are the hyperparameter settings of a method entry on a
// dataset.
func methodVariants(info methods.Info, hyper []Values, d datasets.Entry) []map[string]string {
	perModality := slices.ContainsFunc(info.Params, func(p methods.Param) bool { return p.Name == "modality" }) &&
		!slices.ContainsFunc(hyper, func(v Values) bool { return v.Key == "modality" })
	if perModality {
		var mods []string
		for _, m := range d.Modalities {
			mods = append(mods, m.Name)
		}
		hyper = append(slices.Clone(hyper), Values{Key: "modality", Values: mods})
	}
	return product(hyper)
}

func (g *Grid) cell(method string, hp map[string]string, d DatasetEntry, data map[string]string, preset string, enc []string, seed uint64) Cell {
	train := g.Train
	train.Seed = &seed
	root := d.DataRoot
	if root != "" {
		// Cells run from other folders (a Slurm task's, a rerun's).
		if abs, err := filepath.Abs(root); err == nil {
			root = abs
		}
	}
	cfg := experiment.FileConfig{Method: method, Dataset: d.Dataset, Preset: preset, DataRoot: root, Train: train}
	if len(hp) > 0 {
		cfg.Hyper = map[string]any{}
		for k, v := range hp {
			cfg.Hyper[k] = v
		}
	}
	if len(data) > 0 {
		cfg.Data = map[string]any{}
		for k, v := range data {
			cfg.Data[k] = v
		}
	}
	cfg.Encoder, cfg.Encoders = experiment.EncoderFlags(enc)
	var variant []string
	id := []string{method}
	if s := label(hp); s != "" {
		id[0] += "." + s
		variant = append(variant, s)
	}
	id = append(id, d.Dataset)
	if s := label(data); s != "" {
		id[1] += "." + s
		variant = append(variant, s)
	}
	if len(g.Presets) > 1 {
		id = append(id, preset)
		variant = append(variant, "preset="+preset)
	}
	if len(g.Encoders) > 1 {
		s := strings.Join(enc, ";")
		id = append(id, s)
		variant = append(variant, "encoder="+s)
	}
	id = append(id, fmt.Sprintf("seed%d", seed))
	return Cell{ID: safeName(strings.Join(id, "_")), Method: method, Dataset: d.Dataset, Seed: seed, Variant: strings.Join(variant, ","), Config: cfg}
}

// safeName keeps a cell ID to characters every file system and shell take
// unquoted.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("._=,+-", r):
			return r
		}
		return '-'
	}, s)
}

func uniqueIDs(cells []Cell) error {
	seen := map[string]int{}
	for i, c := range cells {
		if j, ok := seen[c.ID]; ok {
			return fmt.Errorf("cells %d and %d both have the ID %s (two settings that differ only in characters a directory name cannot hold)", j, i, c.ID)
		}
		seen[c.ID] = i
	}
	return nil
}

// encoderRequest is what experiment.Supports needs of a cell: its method,
// dataset, hyperparameters and encoder flags (SPEC or MODALITY=SPEC).
func encoderRequest(method, dataset string, hp map[string]string, enc []string) experiment.Request {
	r := experiment.Request{Method: method, Dataset: dataset, Hyper: hp}
	r.Encoder, r.Encoders = experiment.EncoderFlags(enc)
	return r
}
