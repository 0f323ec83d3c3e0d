package datasets_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"bmc/datasets"
)

func TestCatalog(t *testing.T) {
	want := []struct {
		name      string
		classes   int
		available bool
	}{
		{"synth-av", 10, true},
		{"synth-avt", 10, true},
		{"cremad", 6, true},
		{"ks", 31, true},
		{"balancedav", 30, true},
		{"vggsound", 309, true},
		{"ucf101", 101, true},
		{"food101", 101, true},
		{"mosei", 2, true},
	}
	cat := datasets.Catalog()
	if len(cat) != len(want) {
		t.Fatalf("Catalog() has %d entries, want %d", len(cat), len(want))
	}
	for i, w := range want {
		e := cat[i]
		if e.Name != w.name || e.Classes != w.classes || e.Available != w.available {
			t.Errorf("Catalog()[%d] = %s (%d classes, available %v), want %s (%d, %v)", i, e.Name, e.Classes, e.Available, w.name, w.classes, w.available)
		}
		if len(e.Modalities) < 2 || e.Description == "" || e.Layout == "" {
			t.Errorf("%s: incomplete entry %+v", e.Name, e)
		}
		got, err := datasets.Lookup(w.name)
		if err != nil || got.Name != w.name {
			t.Errorf("Lookup(%s) = %s, %v", w.name, got.Name, err)
		}
	}
	if !slices.Equal(datasets.Names()[:2], []string{"synth-av", "synth-avt"}) {
		t.Errorf("Names() = %v, want the synthetic datasets first", datasets.Names())
	}
	mosei, _ := datasets.Lookup("mosei")
	if len(mosei.Modalities) != 3 {
		t.Errorf("mosei has %d modalities, want text, audio and visual", len(mosei.Modalities))
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
		want   []string
	}{
		{"cremad", nil, []string{"cremad", "--data-root"}},
		{"mosei", nil, []string{"mosei", "--data-root"}},
		{"imagenet", nil, []string{`"imagenet"`, "synth-av", "cremad", "mosei"}},
		{"synth-av", map[string]string{"colour": "red"}, []string{`"colour"`, "classes", "dim.audio", "dim.visual", "seed", "signal.audio", "signal.visual", "test", "train", "val"}},
		{"synth-av", map[string]string{"dim.text": "3"}, []string{`"dim.text"`, "dim.audio"}},
		{"synth-av", map[string]string{"classes": "1"}, []string{"classes", "at least 2"}},
		{"synth-av", map[string]string{"classes": "many"}, []string{"classes", `"many"`}},
		{"synth-av", map[string]string{"train": "0"}, []string{"train", `"0"`, "positive integer"}},
		{"synth-avt", map[string]string{"val": "-3"}, []string{"val", `"-3"`}},
		{"synth-av", map[string]string{"dim.visual": "0"}, []string{"dim.visual", `"0"`}},
		{"synth-av", map[string]string{"signal.audio": "-1"}, []string{"signal.audio", `"-1"`, "non-negative"}},
		{"synth-av", map[string]string{"signal.visual": "loud"}, []string{"signal.visual", `"loud"`}},
		{"synth-av", map[string]string{"signal.visual": "+Inf"}, []string{"signal.visual"}},
		{"synth-av", map[string]string{"seed": "x"}, []string{"seed", `"x"`, "non-negative integer"}},
		{"synth-av", map[string]string{"seed": "-1"}, []string{"seed"}},
	}
	for _, tc := range tests {
		_, err := datasets.Open(tc.name, datasets.Options{Params: tc.params})
		if err == nil {
			t.Errorf("Open(%s, %v) succeeded", tc.name, tc.params)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Open(%s, %v) error %q lacks %q", tc.name, tc.params, err, w)
			}
		}
	}
}

// open opens a synthetic dataset or fails the test.
func open(t *testing.T, name string, params map[string]string) datasets.Dataset {
	t.Helper()
	d, err := datasets.Open(name, datasets.Options{Params: params})
	if err != nil {
		t.Fatalf("Open(%s, %v): %v", name, params, err)
	}
	return d
}

// sample is one sample of every modality and its label.
type sample struct {
	x     [][]float32
	label int64
}

// readAll reads every sample of a split.
func readAll(t *testing.T, d datasets.Dataset, split string) []sample {
	t.Helper()
	sp, err := d.Split(split)
	if err != nil {
		t.Fatal(err)
	}
	spec := d.Spec()
	out := make([]sample, sp.Len())
	for i := range out {
		dst := sampleBuffers(spec)
		y, err := sp.Read(i, dst)
		if err != nil {
			t.Fatalf("%s[%d]: %v", split, i, err)
		}
		s := sample{label: y}
		for _, b := range dst {
			s.x = append(s.x, b.F32)
		}
		out[i] = s
	}
	return out
}

func sameSamples(a, b []sample) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].label != b[i].label || len(a[i].x) != len(b[i].x) {
			return false
		}
		for m := range a[i].x {
			if !slices.Equal(a[i].x[m], b[i].x[m]) {
				return false
			}
		}
	}
	return true
}

func TestSynthSpecFollowsParams(t *testing.T) {
	d := open(t, "synth-avt", map[string]string{"train": "50", "val": "20", "test": "30", "classes": "4", "dim.audio": "3", "dim.visual": "5", "dim.text": "2"})
	spec := d.Spec()
	if spec.Name != "synth-avt" || spec.Classes != 4 {
		t.Errorf("spec %s with %d classes", spec.Name, spec.Classes)
	}
	wantMods := []struct {
		name string
		dim  int64
	}{{"audio", 3}, {"visual", 5}, {"text", 2}}
	if len(spec.Modalities) != len(wantMods) {
		t.Fatalf("modalities %v", spec.Modalities)
	}
	for i, w := range wantMods {
		m := spec.Modalities[i]
		if m.Name != w.name || !slices.Equal(m.Shape, []int64{w.dim}) || m.Int || m.Size() != int(w.dim) {
			t.Errorf("modality %d = %+v, want %s [%d]", i, m, w.name, w.dim)
		}
		if got, ok := spec.Modality(w.name); !ok || got.Name != w.name {
			t.Errorf("Spec.Modality(%s) = %v, %v", w.name, got, ok)
		}
	}
	if _, ok := spec.Modality("depth"); ok {
		t.Error("Spec.Modality(depth) found a modality")
	}
	for split, n := range map[string]int{datasets.Train: 50, datasets.Val: 20, datasets.Test: 30} {
		if spec.Sizes[split] != n {
			t.Errorf("Sizes[%s] = %d, want %d", split, spec.Sizes[split], n)
		}
		samples := readAll(t, d, split)
		if len(samples) != n {
			t.Errorf("%s has %d samples, want %d", split, len(samples), n)
		}
		for i, s := range samples {
			if s.label < 0 || s.label >= 4 {
				t.Errorf("%s[%d] has label %d outside [0, 4)", split, i, s.label)
			}
		}
	}
	if _, err := d.Split("dev"); err == nil || !strings.Contains(err.Error(), `"dev"`) {
		t.Errorf("Split(dev) error = %v", err)
	}

	// Defaults: 10 classes, 32 features per modality, 2000/500/1000 samples.
	def := open(t, "synth-av", nil).Spec()
	if def.Classes != 10 || def.Sizes[datasets.Train] != 2000 || def.Sizes[datasets.Val] != 500 || def.Sizes[datasets.Test] != 1000 {
		t.Errorf("default spec %+v", def)
	}
	for _, m := range def.Modalities {
		if !slices.Equal(m.Shape, []int64{32}) {
			t.Errorf("default %s shape %v, want [32]", m.Name, m.Shape)
		}
	}
}

func TestSynthEveryClassPresent(t *testing.T) {
	d := open(t, "synth-av", map[string]string{"train": "300", "val": "100", "test": "100", "classes": "7"})
	for _, split := range []string{datasets.Train, datasets.Val, datasets.Test} {
		count := make([]int, 7)
		for _, s := range readAll(t, d, split) {
			count[s.label]++
		}
		for c, n := range count {
			if n == 0 {
				t.Errorf("%s: class %d has no sample", split, c)
			}
		}
	}
}

func TestSynthDeterminism(t *testing.T) {
	params := func(seed string) map[string]string {
		return map[string]string{"train": "40", "val": "40", "test": "40", "classes": "3", "dim.audio": "4", "dim.visual": "3", "seed": seed}
	}
	a := open(t, "synth-av", params("7"))
	b := open(t, "synth-av", params("7"))
	c := open(t, "synth-av", params("8"))
	splits := map[string][]sample{}
	for _, split := range []string{datasets.Train, datasets.Val, datasets.Test} {
		sa, sb, sc := readAll(t, a, split), readAll(t, b, split), readAll(t, c, split)
		if !sameSamples(sa, sb) {
			t.Errorf("%s: the same seed gave different data", split)
		}
		if sameSamples(sa, sc) {
			t.Errorf("%s: seeds 7 and 8 gave the same data", split)
		}
		splits[split] = sa
	}
	if sameSamples(splits[datasets.Train], splits[datasets.Val]) || sameSamples(splits[datasets.Val], splits[datasets.Test]) {
		t.Error("two splits hold the same samples")
	}
	if splits[datasets.Train][0].x[0][0] == splits[datasets.Val][0].x[0][0] {
		t.Error("train and val start with the same value")
	}
}

func TestReadErrors(t *testing.T) {
	d := open(t, "synth-av", map[string]string{"train": "5", "val": "5", "test": "5", "dim.audio": "3", "dim.visual": "2"})
	sp, err := d.Split(datasets.Train)
	if err != nil {
		t.Fatal(err)
	}
	good := func() []datasets.Buffer {
		return []datasets.Buffer{{F32: make([]float32, 3)}, {F32: make([]float32, 2)}}
	}
	tests := []struct {
		name string
		i    int
		dst  []datasets.Buffer
		want string
	}{
		{"negative index", -1, good(), "out of range"},
		{"index past the end", 5, good(), "out of range"},
		{"one buffer for two modalities", 0, good()[:1], "1 buffers for 2 modalities"},
		{"short buffer", 0, []datasets.Buffer{{F32: make([]float32, 2)}, {F32: make([]float32, 2)}}, "holds 2 floats, a sample has 3"},
		{"long buffer", 0, []datasets.Buffer{{F32: make([]float32, 3)}, {F32: make([]float32, 4)}}, "holds 4 floats, a sample has 2"},
	}
	for _, tc := range tests {
		if _, err := sp.Read(tc.i, tc.dst); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Read error = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := sp.Read(4, good()); err != nil {
		t.Errorf("Read of the last sample: %v", err)
	}
}

// prototypeAccuracy fits a nearest-class-mean classifier on one modality of
// the train split and returns its test accuracy and the mean distance
// between the class means.
func prototypeAccuracy(t *testing.T, d datasets.Dataset, modality int) (acc, separation float64) {
	t.Helper()
	classes := d.Spec().Classes
	dim := d.Spec().Modalities[modality].Size()
	means := make([][]float64, classes)
	counts := make([]int, classes)
	for c := range means {
		means[c] = make([]float64, dim)
	}
	for _, s := range readAll(t, d, datasets.Train) {
		counts[s.label]++
		for j, v := range s.x[modality] {
			means[s.label][j] += float64(v)
		}
	}
	for c := range means {
		for j := range means[c] {
			means[c][j] /= float64(counts[c])
		}
	}
	dist := func(a []float64, b []float32) float64 {
		var s float64
		for j := range a {
			diff := a[j] - float64(b[j])
			s += diff * diff
		}
		return s
	}
	test := readAll(t, d, datasets.Test)
	correct := 0
	for _, s := range test {
		best, bestDist := -1, math.Inf(1)
		for c := range means {
			if dd := dist(means[c], s.x[modality]); dd < bestDist {
				best, bestDist = c, dd
			}
		}
		if int64(best) == s.label {
			correct++
		}
	}
	pairs := 0
	for a := range means {
		for b := a + 1; b < classes; b++ {
			var s float64
			for j := range means[a] {
				diff := means[a][j] - means[b][j]
				s += diff * diff
			}
			separation += math.Sqrt(s)
			pairs++
		}
	}
	return float64(correct) / float64(len(test)), separation / float64(pairs)
}

func TestSignalSetsInformativeness(t *testing.T) {
	// The visual signal varies; the audio one stays put. Same seed, so the
	// prototypes and noise are the same draws, scaled differently.
	signals := []string{"0", "0.2", "1"}
	var accs, seps []float64
	for _, sig := range signals {
		d := open(t, "synth-av", map[string]string{
			"train": "1000", "val": "10", "test": "500", "classes": "5",
			"dim.audio": "8", "dim.visual": "16", "signal.audio": "0.5", "signal.visual": sig, "seed": "3",
		})
		acc, sep := prototypeAccuracy(t, d, 1)
		t.Logf("signal.visual=%s: accuracy %.3f, class-mean separation %.3f", sig, acc, sep)
		accs = append(accs, acc)
		seps = append(seps, sep)
	}
	for i := 1; i < len(signals); i++ {
		if !(seps[i] > seps[i-1]) {
			t.Errorf("class-mean separation %.3f at signal %s is not above %.3f at signal %s", seps[i], signals[i], seps[i-1], signals[i-1])
		}
		if !(accs[i] > accs[i-1]) {
			t.Errorf("nearest-prototype accuracy %.3f at signal %s is not above %.3f at signal %s", accs[i], signals[i], accs[i-1], signals[i-1])
		}
	}
	// Signal 0 is noise (chance is 0.2); signal 1 over 16 features separates
	// the classes almost perfectly.
	if accs[0] > 0.35 {
		t.Errorf("accuracy %.3f at signal 0, want about chance (0.2)", accs[0])
	}
	if accs[2] < 0.9 {
		t.Errorf("accuracy %.3f at signal 1, want ≥ 0.9", accs[2])
	}
}

func TestDefaultImbalance(t *testing.T) {
	// By default audio (signal 0.6) is more informative than visual (0.4).
	d := open(t, "synth-av", map[string]string{"train": "1000", "val": "10", "test": "1000"})
	audio, _ := prototypeAccuracy(t, d, 0)
	visual, _ := prototypeAccuracy(t, d, 1)
	t.Logf("nearest-prototype accuracy: audio %.3f, visual %.3f", audio, visual)
	if !(audio > visual) {
		t.Errorf("audio accuracy %.3f is not above visual %.3f", audio, visual)
	}
}
