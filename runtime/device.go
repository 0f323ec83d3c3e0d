package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DeviceTestEnv names the device (cpu, cuda, cuda:N) that the device tests
// of runtime and gradcheck run on and compare with the CPU; they skip when
// it is unset. tools/gpu/check.sh sets it on a GPU machine.
const DeviceTestEnv = "BMC_TEST_DEVICE"

// Device is where ONNX Runtime runs a session's graphs: the CPU (the zero
// value) or one NVIDIA GPU through the CUDA execution provider.
type Device struct {
	// CUDA selects the CUDA execution provider.
	CUDA bool
	// Index is the CUDA device number (0 for the CPU).
	Index int
}

// ParseDevice reads cpu, cuda (device 0) or cuda:N.
func ParseDevice(s string) (Device, error) {
	switch {
	case s == "cpu":
		return Device{}, nil
	case s == "cuda":
		return Device{CUDA: true}, nil
	case strings.HasPrefix(s, "cuda:"):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "cuda:"))
		if err != nil || n < 0 {
			return Device{}, fmt.Errorf("%q: want cuda:N with N a CUDA device number (0, 1, …)", s)
		}
		return Device{CUDA: true, Index: n}, nil
	}
	return Device{}, fmt.Errorf("%q: want cpu, cuda or cuda:N", s)
}

// String is the form ParseDevice reads.
func (d Device) String() string {
	if !d.CUDA {
		return "cpu"
	}
	return fmt.Sprintf("cuda:%d", d.Index)
}

// Precision is the arithmetic ONNX Runtime uses for float32 graphs.
type Precision string

// The precisions bmc knows.
const (
	// FP32 is IEEE single precision throughout (the zero value means it).
	FP32 Precision = "fp32"
	// TF32 lets the CUDA provider run convolutions and matrix products on
	// tensor cores with 10-bit mantissas (inputs rounded, fp32 accumulation).
	TF32 Precision = "tf32"
	// BF16 is bfloat16 compute with fp32 master weights; not built yet.
	BF16 Precision = "bf16"
)

// ParsePrecision reads fp32, tf32 or bf16.
func ParsePrecision(s string) (Precision, error) {
	switch p := Precision(s); p {
	case FP32, TF32, BF16:
		return p, nil
	}
	return "", fmt.Errorf("%q: want fp32, tf32 or bf16", s)
}

// String is the precision's name ("fp32" for the zero value).
func (p Precision) String() string {
	if p == "" {
		return string(FP32)
	}
	return string(p)
}

// Target is where and at which precision a session runs; the zero value is
// the CPU in fp32.
type Target struct {
	Device    Device
	Precision Precision
}

// String names the target, e.g. "cuda:0 tf32".
func (t Target) String() string { return t.Device.String() + " " + t.Precision.String() }

// CUDA provider libraries ONNX Runtime loads from the core library's folder.
const (
	cudaProviderLib   = "libonnxruntime_providers_cuda.so"
	sharedProviderLib = "libonnxruntime_providers_shared.so"
)

// Check says whether the target can run here, before ONNX Runtime is asked
// for anything: the precision must suit the device, and for CUDA the
// provider libraries must sit beside the core library, the NVIDIA driver
// must load and the device must exist. Each error says what is missing.
func (t Target) Check() error {
	p := t.Precision.String()
	if !t.Device.CUDA {
		if p != string(FP32) {
			return fmt.Errorf("precision %s: the CPU provider runs fp32 only (tf32 and bf16 need --device cuda)", p)
		}
		return nil
	}
	switch Precision(p) {
	case BF16:
		return errors.New("precision bf16: not built yet: needs bf16 casts with fp32 master weights in the compiled graphs (use fp32 or tf32)")
	case FP32, TF32:
	default:
		return fmt.Errorf("precision %q: want fp32 or tf32 on CUDA", p)
	}
	lib, err := LibraryPath()
	if err != nil {
		return err
	}
	dir := filepath.Dir(lib)
	for _, name := range []string{sharedProviderLib, cudaProviderLib} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("device %s: no CUDA provider library %s beside the ONNX Runtime library %s: run `make ort-cuda` (or put ONNX Runtime %s's CUDA provider libraries there)", t.Device, filepath.Join(dir, name), lib, ORTVersion)
		}
	}
	n, err := cudaDeviceCount()
	if err != nil {
		return fmt.Errorf("device %s: %w", t.Device, err)
	}
	if n == 0 {
		return fmt.Errorf("device %s: no CUDA device (the NVIDIA driver sees none)", t.Device)
	}
	if t.Device.Index >= n {
		return fmt.Errorf("device %s: device %d out of range (have %d)", t.Device, t.Device.Index, n)
	}
	return nil
}

// cudaProviderOptions are the CUDA execution provider's settings for the
// target: cuDNN's heuristic algorithm choice (the exhaustive search times
// every algorithm on the first run of each shape), and tensor-core TF32 only
// when asked for (ONNX Runtime's default turns it on).
func (t Target) cudaProviderOptions() map[string]string {
	tf32 := "0"
	if t.Precision == TF32 {
		tf32 = "1"
	}
	return map[string]string{
		"device_id":              strconv.Itoa(t.Device.Index),
		"cudnn_conv_algo_search": "HEURISTIC",
		"use_tf32":               tf32,
	}
}
