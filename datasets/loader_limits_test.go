package datasets_test

import (
	"strings"
	"testing"

	"bmc/datasets"
	"bmc/internal/machine"
)

// A loader whose buffers cannot exist is refused before they are made.
func TestLoaderRefusesBuffersBeyondMemory(t *testing.T) {
	base, _ := openSynthTrain(t)
	huge := datasets.Spec{Name: "x", Modalities: []datasets.Modality{{Name: "audio", Shape: []int64{1 << 20, 1 << 20}}}}
	if _, err := datasets.NewLoader(base, huge, datasets.LoaderOptions{BatchSize: 1}); err == nil || !strings.Contains(err.Error(), "1.1e+12 values per sample") {
		t.Errorf("a sample of 2^40 values: %v", err)
	}
	t.Setenv(machine.MemoryEnv, "64M")
	big := datasets.Spec{Name: "x", Modalities: []datasets.Modality{{Name: "audio", Shape: []int64{1 << 20}}}}
	_, err := datasets.NewLoader(base, big, datasets.LoaderOptions{BatchSize: 64, Workers: 2})
	if err == nil || !strings.Contains(err.Error(), "reading x in batches of 64 with 2 workers (4 MiB per sample) needs about 1.02 GiB") {
		t.Errorf("batches of 4 MiB samples under a 64 MiB limit: %v", err)
	}
}
