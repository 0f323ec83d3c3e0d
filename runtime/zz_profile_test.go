package runtime_test

import (
	"os"
	"testing"

	"bmc/datasets"
	"bmc/experiment"
	"bmc/runtime"
)

func TestZZProfileStep(t *testing.T) {
	prof := os.Getenv("BMC_PROFILE")
	if prof == "" {
		t.Skip()
	}
	req := resNet18AV(t)
	req.Train.Threads = 1
	p, d, err := experiment.Compile(req)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := runtime.Load(p, runtime.Options{Threads: 1, Profile: prof})
	if err != nil {
		t.Fatal(err)
	}
	train, _ := d.Split(datasets.Train)
	batch, _ := pr.BatchOf("train")
	idx := make([]int, batch.Size)
	for i := range idx {
		idx[i] = i
	}
	fillRows(t, train, d.Spec(), batch, idx)
	for range 6 {
		if err := pr.Run("train"); err != nil {
			t.Fatal(err)
		}
	}
	pr.Close()
}
