package experiment

import (
	"strings"
	"testing"

	"bmc/datasets"
)

// Every benchmark dataset's modalities have their paper encoder by default.
func TestDefaultEncodersCoverTheBenchmark(t *testing.T) {
	defaults := defaultEncoders()
	for _, e := range datasets.Catalog() {
		if strings.HasPrefix(e.Name, "synth") {
			continue
		}
		for _, m := range e.Modalities {
			spec := defaults[e.Name][m.Name]
			if spec == "" {
				t.Errorf("dataset %s modality %s has no default encoder", e.Name, m.Name)
				continue
			}
			if _, err := ParseEncoder(spec); err != nil {
				t.Errorf("dataset %s modality %s: %v", e.Name, m.Name, err)
			}
		}
	}
	for name := range defaults {
		if _, err := datasets.Lookup(name); err != nil {
			t.Errorf("defaults for %s: %v", name, err)
		}
	}
}
