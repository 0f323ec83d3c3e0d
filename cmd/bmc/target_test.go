package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bmc/runtime"
)

// cudaLibDir is a folder holding a link to the real ONNX Runtime core
// library and, when placeholders is set, empty files named as the CUDA
// provider libraries; it returns the BMC_ORT_LIB entry pointing there.
func cudaLibDir(t *testing.T, placeholders bool) string {
	t.Helper()
	core, err := runtime.LibraryPath()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lib := filepath.Join(dir, "libonnxruntime.so.1")
	if err := os.Symlink(core, lib); err != nil {
		t.Fatal(err)
	}
	if placeholders {
		for _, name := range []string{"libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"} {
			if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return runtime.LibraryEnv + "=" + lib
}

// --device cuda on a machine that cannot run it exits at once with the
// reason (the missing provider library, then the missing driver), and
// leaves no run folder; bad --device and --precision values name the flag.
func TestDeviceRefusals(t *testing.T) {
	tmp := t.TempDir()
	out := filepath.Join(tmp, "run")
	train := []string{"train", "--method", "baseline", "--dataset", "synth-av", "--epochs", "1", "--out", out}
	bench := []string{"bench", "--method", "baseline", "--dataset", "synth-av", "--iters", "1"}
	noProvider := []string{cudaLibDir(t, false)}
	cases := []refusal{
		{"train without the provider", noProvider, append(train, "--device", "cuda"), []string{"device cuda:0: no CUDA provider library", "libonnxruntime_providers_shared.so", "make ort-cuda"}},
		{"bench without the provider", noProvider, append(bench, "--device", "cuda:1"), []string{"device cuda:1: no CUDA provider library", "make ort-cuda"}},
		{"eval without the provider", noProvider, []string{"eval", filepath.Join(tmp, "model.onnx"), "--device", "cuda"}, []string{"no CUDA provider library"}},
		{"device number", nil, append(train, "--device", "cuda:x"), []string{`--device "cuda:x": want cuda:N`}},
		{"negative device number", nil, append(bench, "--device", "cuda:-1"), []string{`--device "cuda:-1": want cuda:N`}},
		{"unknown device", nil, append(train, "--device", "tpu"), []string{`--device "tpu": want cpu, cuda or cuda:N`}},
		{"unknown precision", nil, append(train, "--precision", "fp16"), []string{`--precision "fp16": want fp32, tf32 or bf16`}},
		{"bf16 on the CPU", nil, append(train, "--precision", "bf16"), []string{"precision bf16: the CPU provider runs fp32 only"}},
		{"tf32 on the CPU", nil, append(bench, "--precision", "tf32"), []string{"precision tf32: the CPU provider runs fp32 only"}},
		{"eval tf32 on the CPU", nil, []string{"eval", filepath.Join(tmp, "model.onnx"), "--precision", "tf32"}, []string{"precision tf32"}},
		{"bf16 on CUDA", noProvider, append(train, "--device", "cuda", "--precision", "bf16"), []string{"precision bf16: not built yet", "fp32 master weights"}},
	}
	placeholders := cudaLibDir(t, true)
	t.Setenv(runtime.LibraryEnv, strings.TrimPrefix(placeholders, runtime.LibraryEnv+"="))
	if err := (runtime.Target{Device: runtime.Device{CUDA: true}}).Check(); err != nil && strings.Contains(err.Error(), "no NVIDIA driver") {
		cases = append(cases, refusal{"train without a driver", []string{placeholders}, append(train, "--device", "cuda"),
			[]string{"device cuda:0: no NVIDIA driver: libcuda.so.1 not found"}})
	} else {
		t.Logf("an NVIDIA driver loads here (%v): the no-driver refusal is not checked", err)
	}
	checkRefusals(t, cases)
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a refused run left %s behind", out)
	}
}

// --device cpu trains as before, and results.json records the target.
func TestDeviceCPUTrains(t *testing.T) {
	dir := tinyRun(t, filepath.Join(t.TempDir(), "run"), "--dataset", "synth-av", "--data", "train=64,val=16,test=16", "--device", "cpu", "--precision", "fp32")
	res := readResult(t, dir)
	if res.Device != "cpu" || res.Precision != "fp32" {
		t.Errorf("results.json records device %q precision %q, want cpu fp32", res.Device, res.Precision)
	}
}
