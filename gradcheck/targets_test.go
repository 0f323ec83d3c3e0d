package gradcheck

import (
	"os"
	"testing"

	"bmc/runtime"
)

// deviceTolerance bounds the CUDA-versus-CPU difference of a case's output
// and gradients in fp32 (relative to the tensor's largest magnitude):
// cuDNN's algorithms sum in other orders than the CPU's, nothing more.
const deviceTolerance = 1e-4

// The conv, pool and batch-norm checks pass on the device that
// runtime.DeviceTestEnv names, and agree there with the CPU.
func TestGradientsOnDevice(t *testing.T) {
	name := os.Getenv(runtime.DeviceTestEnv)
	if name == "" {
		t.Skipf("%s is unset (tools/gpu/check.sh sets it on a GPU machine)", runtime.DeviceTestEnv)
	}
	d, err := runtime.ParseDevice(name)
	if err != nil {
		t.Fatalf("%s: %v", runtime.DeviceTestEnv, err)
	}
	target := runtime.Target{Device: d}
	if err := target.Check(); err != nil {
		t.Fatal(err)
	}
	for i, c := range append(convCases(), batchNormCases()...) {
		t.Run(c.Name, func(t *testing.T) {
			seed := uint64(500 + i)
			if _, err := CheckOn(c, seed, target); err != nil {
				t.Fatal(err)
			}
			agree, err := CompareTargets(c, seed, target, runtime.Target{})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s vs cpu: forward %.2g, gradient %.2g", target.Device, agree.Forward, agree.Gradient)
			if agree.Forward > deviceTolerance || agree.Gradient > deviceTolerance {
				t.Errorf("%s differs from the CPU: forward %.3g, gradient %.3g (tolerance %g)", target.Device, agree.Forward, agree.Gradient, deviceTolerance)
			}
		})
	}
}

// The difference measure sees a difference, and the CPU agrees with itself
// exactly (the same inputs reach both runs).
func TestCompareTargets(t *testing.T) {
	if d := relativeDifference([]float32{1, 2, 4}, []float32{1, 2, 4}); d != 0 {
		t.Errorf("equal tensors differ by %g", d)
	}
	if d := relativeDifference([]float32{1, 2, 3}, []float32{1, 2, 4}); d != 0.25 {
		t.Errorf("|3−4|/4 = %g, want 0.25", d)
	}
	c := convCases()[0]
	agree, err := CompareTargets(c, 1, runtime.Target{}, runtime.Target{})
	if err != nil {
		t.Fatal(err)
	}
	if agree.Forward != 0 || agree.Gradient != 0 {
		t.Errorf("the CPU disagrees with itself on %s: %+v", c.Name, agree)
	}
}
