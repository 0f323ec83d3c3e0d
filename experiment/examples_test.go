package experiment

import (
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"bmc/datasets"
	"bmc/methods"
)

// The example configurations load; each dataset example restates its
// dataset's default preset exactly (so it stays the preset's documentation),
// names only parameters its dataset has, and each method example names its
// method's hyperparameters; the examples on the built-in data compile.
func TestExampleConfigurations(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "examples", "*", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	families := map[string]bool{}
	var presets []string
	for _, f := range files {
		r, err := ReadConfig(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		entry, err := datasets.Lookup(r.Dataset)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for k := range r.DataParams {
			if !slices.ContainsFunc(entry.Params, func(p datasets.Param) bool { return p.Name == k }) {
				t.Errorf("%s: dataset %s has no parameter %s", f, r.Dataset, k)
			}
		}
		var info methods.Info
		for _, i := range methods.All() {
			if i.Name == r.Method {
				info = i
			}
		}
		if info.Name == "" {
			t.Errorf("%s: unknown method %q", f, r.Method)
			continue
		}
		if _, err := methods.Resolve(info, r.Hyper); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		switch filepath.Base(filepath.Dir(f)) {
		case "datasets":
			preset, err := Preset(r.Dataset, r.Preset)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Train.apply(preset); !reflect.DeepEqual(got, preset) {
				t.Errorf("%s restates the %s preset as %+v, the preset is %+v", f, r.Dataset, got, preset)
			}
			presets = append(presets, r.Dataset)
		case "methods":
			families[info.Category] = true
		}
		if strings.HasPrefix(r.Dataset, "synth-") {
			r.DataParams = mergeMaps(r.DataParams, map[string]string{"train": "128", "val": "32", "test": "32"})
			if _, _, err := Compile(r); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
	slices.Sort(presets)
	if want := slices.Sorted(slices.Values(datasets.Names())); !slices.Equal(presets, want) {
		t.Errorf("dataset examples for %v, want one per dataset %v", presets, want)
	}
	for _, i := range methods.All() {
		if !families[i.Category] {
			t.Errorf("no method example of the %s family", i.Category)
		}
	}
}
