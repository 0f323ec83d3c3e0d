package methods_test

import (
	"math"
	"strings"
	"testing"

	"bmc/graph"
	"bmc/graph/nn"
	"bmc/methods"
)

func TestAllFollowsTable1(t *testing.T) {
	// Baseline and Unimodal, then the paper's Table 1 in order, with its
	// categories.
	want := []struct{ name, category string }{
		{"baseline", methods.CategoryReference},
		{"unimodal", methods.CategoryReference},
		{"sample", methods.CategoryData},
		{"mla", methods.CategoryFeedForward},
		{"opm", methods.CategoryFeedForward},
		{"greedy", methods.CategoryFeedForward},
		{"amco", methods.CategoryFeedForward},
		{"mmcosine", methods.CategoryObjective},
		{"umt", methods.CategoryObjective},
		{"mbsd", methods.CategoryObjective},
		{"cml", methods.CategoryObjective},
		{"mmpareto", methods.CategoryObjective},
		{"gblending", methods.CategoryObjective},
		{"lfm", methods.CategoryObjective},
		{"ogm", methods.CategoryOptimization},
		{"agm", methods.CategoryOptimization},
		{"pmr", methods.CategoryOptimization},
		{"relearning", methods.CategoryOptimization},
		{"reconboost", methods.CategoryOptimization},
	}
	all := methods.All()
	if len(all) != len(want) {
		t.Fatalf("All() has %d entries, want %d", len(all), len(want))
	}
	for i, w := range want {
		got := all[i]
		if got.Name != w.name || got.Category != w.category {
			t.Errorf("All()[%d] = %s (%s), want %s (%s)", i, got.Name, got.Category, w.name, w.category)
		}
		if got.Display == "" || got.Cost == "" || got.MaxModalities < 1 {
			t.Errorf("%s: display %q, cost %q, max modalities %d: incomplete entry", got.Name, got.Display, got.Cost, got.MaxModalities)
		}
		for _, p := range got.Params {
			switch p.Kind {
			case "float", "int", "bool", "choice", "string":
			default:
				t.Errorf("%s: hyperparameter %s has kind %q", got.Name, p.Name, p.Kind)
			}
		}
	}
}

// Every method of the registry is built: Lookup finds it, with the
// registry's taxonomy.
func TestEveryMethodIsBuilt(t *testing.T) {
	for _, info := range methods.All() {
		m, err := methods.Lookup(info.Name)
		if err != nil {
			t.Errorf("Lookup(%s): %v", info.Name, err)
			continue
		}
		if m.Info().Name != info.Name || m.Info().Category != info.Category {
			t.Errorf("Lookup(%s).Info() = %s (%s), the registry says %s (%s)", info.Name, m.Info().Name, m.Info().Category, info.Name, info.Category)
		}
	}
}

func TestLookupUnknownListsMethods(t *testing.T) {
	_, err := methods.Lookup("nope")
	if err == nil {
		t.Fatal("Lookup(nope) succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, `"nope"`) {
		t.Errorf("error %q does not name the method", msg)
	}
	for _, info := range methods.All() {
		if !strings.Contains(msg, info.Name) {
			t.Errorf("error %q does not list %s", msg, info.Name)
		}
	}
}

func info(t *testing.T, name string) methods.Info {
	t.Helper()
	for _, i := range methods.All() {
		if i.Name == name {
			return i
		}
	}
	t.Fatalf("no method %s", name)
	return methods.Info{}
}

func TestResolveDefaults(t *testing.T) {
	ogm, err := methods.Resolve(info(t, "ogm"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ogm.Float("alpha") != 0.3 || ogm.Int("modulation_starts") != 10 || ogm.Int("modulation_ends") != 80 ||
		ogm.String("method") != "OGM_GE" || ogm.Bool("compat") {
		t.Errorf("ogm defaults: alpha %g, starts %d, ends %d, method %q, compat %v",
			ogm.Float("alpha"), ogm.Int("modulation_starts"), ogm.Int("modulation_ends"), ogm.String("method"), ogm.Bool("compat"))
	}
	want := map[string]string{"alpha": "0.3", "method": "OGM_GE", "compat": "false", "modulation_starts": "10", "modulation_ends": "80"}
	got := ogm.Values()
	if len(got) != len(want) {
		t.Errorf("ogm Values() = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("ogm Values()[%s] = %q, want %q", k, got[k], v)
		}
	}
	got["alpha"] = "9"
	if ogm.String("alpha") != "0.3" {
		t.Error("Values() returned the Hyper's own map")
	}

	agm, err := methods.Resolve(info(t, "agm"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if agm.Float("alpha") != 0.1 || agm.Bool("compat") {
		t.Errorf("agm defaults: alpha %g, compat %v; want 0.1, false", agm.Float("alpha"), agm.Bool("compat"))
	}

	set, err := methods.Resolve(info(t, "ogm"), map[string]string{"alpha": "0.5", "method": "OGM", "compat": "true", "modulation_starts": "0"})
	if err != nil {
		t.Fatal(err)
	}
	if set.Float("alpha") != 0.5 || set.String("method") != "OGM" || !set.Bool("compat") || set.Int("modulation_starts") != 0 || set.Int("modulation_ends") != 80 {
		t.Errorf("ogm with overrides: %v", set.Values())
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		method string
		raw    map[string]string
		want   []string
	}{
		{"ogm", map[string]string{"beta": "1"}, []string{`"beta"`, "alpha, method, compat, modulation_starts, modulation_ends"}},
		{"agm", map[string]string{"modulation_starts": "1"}, []string{`"modulation_starts"`, "alpha, compat"}},
		{"baseline", map[string]string{"alpha": "1"}, []string{"baseline", "takes no hyperparameters", `"alpha"`}},
		{"ogm", map[string]string{"alpha": "strong"}, []string{"alpha", `"strong"`, "a finite number"}},
		{"ogm", map[string]string{"alpha": "Inf"}, []string{"alpha", `"Inf"`, "a finite number"}},
		{"ogm", map[string]string{"alpha": "NaN"}, []string{"alpha", `"NaN"`, "a finite number"}},
		{"agm", map[string]string{"alpha": "-1"}, []string{"alpha", `"-1"`, "a number in [0, ∞)"}},
		{"ogm", map[string]string{"modulation_starts": "-2"}, []string{"modulation_starts", `"-2"`, "an integer in [0, ∞)"}},
		{"ogm", map[string]string{"modulation_starts": "1.5"}, []string{"modulation_starts", `"1.5"`, "an integer"}},
		{"agm", map[string]string{"compat": "maybe"}, []string{"compat", `"maybe"`, "true or false"}},
		{"ogm", map[string]string{"method": "OGM_XL"}, []string{"method", `"OGM_XL"`, "one of OGM_GE, OGM, OGM_GE3"}},
	}
	for _, tc := range tests {
		_, err := methods.Resolve(info(t, tc.method), tc.raw)
		if err == nil {
			t.Errorf("Resolve(%s, %v) succeeded", tc.method, tc.raw)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Resolve(%s, %v) error %q lacks %q", tc.method, tc.raw, err, w)
			}
		}
	}
}

func modelSpec(names ...string) nn.ModelSpec {
	spec := nn.ModelSpec{Classes: 4, Fusion: nn.FusionConcat}
	for _, n := range names {
		spec.Modalities = append(spec.Modalities, nn.ModalitySpec{Name: n, Shape: graph.Shape{3}, Encoder: nn.EncoderSpec{Kind: "linear", Out: 2}})
	}
	return spec
}

func TestUnimodalModel(t *testing.T) {
	m, err := methods.Lookup("unimodal")
	if err != nil {
		t.Fatal(err)
	}
	hp, err := methods.Resolve(m.Info(), map[string]string{"modality": "visual"})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := m.Model(modelSpec("audio", "visual"), hp)
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Modalities) != 1 || spec.Modalities[0].Name != "visual" {
		t.Errorf("unimodal visual keeps %v", spec.Modalities)
	}

	for _, raw := range []map[string]string{nil, {"modality": "text"}} {
		hp, err := methods.Resolve(m.Info(), raw)
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.Model(modelSpec("audio", "visual"), hp)
		if err == nil || !strings.Contains(err.Error(), "modality") || !strings.Contains(err.Error(), "audio, visual") {
			t.Errorf("unimodal with %v: error %v, want one listing the modalities", raw, err)
		}
	}
}

func TestMultimodalMethodsRejectModalityCounts(t *testing.T) {
	for _, name := range []string{"ogm", "agm", "opm", "amco", "umt", "gblending", "mmcosine", "mbsd", "cml", "mmpareto"} {
		m, err := methods.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		hp, err := methods.Resolve(m.Info(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			mods []string
			ok   bool
		}{
			{[]string{"visual"}, false},
			{[]string{"audio", "visual"}, true},
			{[]string{"audio", "visual", "text"}, true},
			{[]string{"audio", "visual", "text", "depth"}, false},
		} {
			_, err := m.Model(modelSpec(tc.mods...), hp)
			if tc.ok && err != nil {
				t.Errorf("%s.Model with %d modalities: %v", name, len(tc.mods), err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "2 or 3 modalities")) {
				t.Errorf("%s.Model with %d modalities: error %v, want one saying it takes 2 or 3", name, len(tc.mods), err)
			}
		}
	}
}

func TestRangeContains(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		r    methods.Range
		x    float64
		want bool
		str  string
	}{
		{methods.Range{Min: 0, Max: inf}, 0, true, "[0, ∞)"},
		{methods.Range{Min: 0, Max: inf, MinOpen: true}, 0, false, "(0, ∞)"},
		{methods.Range{Min: 0, Max: 1}, 1, true, "[0, 1]"},
		{methods.Range{Min: 0, Max: 1, MaxOpen: true}, 1, false, "[0, 1)"},
		{methods.Range{Min: 0, Max: 1}, -0.5, false, "[0, 1]"},
	}
	for _, tc := range tests {
		if got := tc.r.Contains(tc.x); got != tc.want {
			t.Errorf("%v.Contains(%v) = %v, want %v", tc.r, tc.x, got, tc.want)
		}
		if got := tc.r.String(); got != tc.str {
			t.Errorf("String() = %q, want %q", got, tc.str)
		}
	}
}

// Every numeric default lies in its own range.
func TestDefaultsResolve(t *testing.T) {
	for _, info := range methods.All() {
		raw := map[string]string{}
		if info.Name == "unimodal" {
			raw["modality"] = "audio"
		}
		if _, err := methods.Resolve(info, raw); err != nil {
			t.Errorf("%s: defaults do not resolve: %v", info.Name, err)
		}
	}
}
