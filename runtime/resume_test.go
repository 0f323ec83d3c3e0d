package runtime

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bmc/experiment"
)

func TestTrimLogKeepsTheCheckpointedEpochs(t *testing.T) {
	path := filepath.Join(t.TempDir(), LogFile)
	content := `{"epoch":0}` + "\n" + `{"epoch":1}` + "\n" + `{"epoch":2}` + "\n" + `{"epo`
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := trimLog(path, 1); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := `{"epoch":0}` + "\n" + `{"epoch":1}` + "\n"; string(got) != want {
		t.Errorf("trimmed log = %q, want %q", got, want)
	}
	if err := trimLog(filepath.Join(t.TempDir(), "absent"), 3); err != nil {
		t.Errorf("a missing log: %v", err)
	}
}

func TestResumeNeedsAResumableRun(t *testing.T) {
	dir := t.TempDir()
	if err := checkResumable(dir); err == nil || !strings.Contains(err.Error(), LastCheckpoint) {
		t.Errorf("no checkpoint: %v", err)
	}
	os.WriteFile(filepath.Join(dir, ResultsFile), []byte("{}"), 0o644)
	if err := checkResumable(dir); err == nil || !strings.Contains(err.Error(), "finished") {
		t.Errorf("a finished run: %v", err)
	}
}

func TestNonFiniteStateStopsTheRun(t *testing.T) {
	p, _, err := experiment.Compile(experiment.Request{Method: "baseline", Dataset: "synth-av"})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := Load(p, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	tr := &trainer{pr: pr}
	if err := tr.checkFinite(4); err != nil {
		t.Fatalf("initial state: %v", err)
	}
	w, _ := pr.State("fusion_module.fc_out.weight")
	w[3] = float32(math.Inf(1))
	err = tr.checkFinite(4)
	if err == nil || !strings.Contains(err.Error(), "epoch 4") || !strings.Contains(err.Error(), "fusion_module.fc_out.weight") || !strings.Contains(err.Error(), "element 3") {
		t.Errorf("an Inf parameter: %v", err)
	}
}
