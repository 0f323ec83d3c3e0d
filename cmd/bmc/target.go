package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"bmc/runtime"
)

// targetFlags are --device and --precision: where ONNX Runtime runs the
// graphs (train, eval, bench).
type targetFlags struct{ device, precision string }

func (f *targetFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.device, "device", "cpu", "where ONNX Runtime runs the graphs: cpu, cuda or cuda:N (CUDA needs `make ort-cuda`, an NVIDIA driver and CUDA 13 libraries)")
	fs.StringVar(&f.precision, "precision", "fp32", "float arithmetic: fp32, or tf32 on CUDA (tensor cores; bf16 is not built yet)")
}

// target parses the flags and checks that the target can run here (the
// CUDA provider libraries, the driver, the device), before anything is
// compiled or written.
func (f *targetFlags) target() (runtime.Target, error) {
	d, err := runtime.ParseDevice(f.device)
	if err != nil {
		return runtime.Target{}, fmt.Errorf("--device %w", err)
	}
	p, err := runtime.ParsePrecision(f.precision)
	if err != nil {
		return runtime.Target{}, fmt.Errorf("--precision %w", err)
	}
	t := runtime.Target{Device: d, Precision: p}
	// Check's errors name the device or the precision they are about.
	return t, t.Check()
}
