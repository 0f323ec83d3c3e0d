package datasets_test

import (
	"strings"
	"testing"

	"bmc/datasets"
)

// fixtureParams open each benchmark dataset on its fixture.
var fixtureParams = map[string]map[string]string{
	"cremad":     {"size": "8"},
	"ks":         {"size": "8", "classes": "3", "audio_shape": "8x6"},
	"balancedav": {"size": "8"},
	"vggsound":   {"size": "8"},
	"ucf101":     {"size": "8"},
	"food101":    {"size": "8"},
	"mosei":      nil,
}

// Every benchmark dataset opens on its fixture with datasets.Open and
// every sample of every split reads without a problem.
func TestEveryBenchmarkDatasetReadsItsFixture(t *testing.T) {
	for _, e := range datasets.Catalog() {
		if strings.HasPrefix(e.Name, "synth-") {
			continue
		}
		t.Run(e.Name, func(t *testing.T) {
			params, ok := fixtureParams[e.Name]
			if !ok {
				t.Fatalf("no fixture parameters for %s", e.Name)
			}
			if !e.Available {
				t.Fatalf("%s is not available", e.Name)
			}
			d := openDisk(t, e.Name, "testdata/"+e.Name, params)
			r, err := datasets.Check(d, 2)
			if err != nil {
				t.Fatal(err)
			}
			if n := r.Failed(true); n != 0 {
				t.Errorf("%d problems: %+v", n, r)
			}
			for _, s := range r.Splits {
				if s.Samples == 0 {
					t.Errorf("split %s is empty", s.Name)
				}
			}
			for _, m := range d.Spec().Modalities {
				if m.Size() == 0 {
					t.Errorf("modality %s has shape %v", m.Name, m.Shape)
				}
			}
		})
	}
}
