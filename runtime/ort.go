// Package runtime runs bmc plans on ONNX Runtime: it finds and loads the
// library, opens sessions, keeps the training state (parameters, optimizer
// slots, method state) in pre-allocated tensors that are swapped between
// steps, runs the Trainer loop, and writes checkpoints, logs and exports.
package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"bmc/internal/machine"
)

// ORTVersion is the ONNX Runtime release the Makefile fetches.
const ORTVersion = "1.29.0"

// LibraryEnv is the environment variable that points bmc at an ONNX Runtime
// shared library.
const LibraryEnv = "BMC_ORT_LIB"

// CachedLibraryPath is where `make ort` puts the library:
// $XDG_CACHE_HOME/bmc/onnxruntime-<version>/libonnxruntime.so.1 (or under
// ~/.cache when XDG_CACHE_HOME is unset).
func CachedLibraryPath() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "bmc", "onnxruntime-"+ORTVersion, "libonnxruntime.so.1"), nil
}

// LibraryPath finds the ONNX Runtime library: $BMC_ORT_LIB when set, else the
// Makefile's cache. The error says how to get the library.
func LibraryPath() (string, error) {
	if p := os.Getenv(LibraryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w (point it at libonnxruntime.so.1, or unset it and run `make ort`)", LibraryEnv, p, err)
		}
		return p, nil
	}
	p, err := CachedLibraryPath()
	if err != nil {
		return "", fmt.Errorf("no ONNX Runtime library: %s is unset and the cache folder is unknown (%v); run `make ort` or set %s", LibraryEnv, err, LibraryEnv)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no ONNX Runtime library at %s: run `make ort` (fetches onnxruntime %s from the npm registry) or set %s to a libonnxruntime.so", p, ORTVersion, LibraryEnv)
	}
	return p, nil
}

// ORT's environment is one per process (the binding keeps it in globals), so
// loading it is guarded here once for the whole program.
var (
	initOnce sync.Once
	initErr  error
)

// Init loads ONNX Runtime once per process; later calls return the first result.
func Init() error {
	initOnce.Do(func() {
		var path string
		path, initErr = LibraryPath()
		if initErr != nil {
			return
		}
		ort.SetSharedLibraryPath(path)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			initErr = fmt.Errorf("load ONNX Runtime from %s: %w", path, err)
		}
	})
	return initErr
}

// Options configure a session.
type Options struct {
	// Threads is the intra-op thread count; 0 lets ORT choose.
	Threads int
	// Profile, when set, makes ONNX Runtime write a per-node timing profile
	// (Chrome trace JSON) to a file named with this prefix when the session
	// closes.
	Profile string
	// Target is the device and precision (zero: the CPU in fp32).
	Target
}

// Session is one ONNX graph loaded in ONNX Runtime, with its input and output
// names fixed at creation. It is not safe for concurrent use.
type Session struct {
	s       *ort.DynamicAdvancedSession
	Inputs  []string
	Outputs []string
}

// NewSession loads an ONNX model from bytes.
func NewSession(model []byte, inputs, outputs []string, opt Options) (*Session, error) {
	if err := opt.Target.Check(); err != nil {
		return nil, err
	}
	if err := Init(); err != nil {
		return nil, err
	}
	if err := machine.CheckThreads("ONNX Runtime threads", opt.Threads, true); err != nil {
		return nil, err
	}
	if err := checkProfilePrefix(opt.Profile); err != nil {
		return nil, err
	}
	if !opt.Device.CUDA {
		return newSession(model, inputs, outputs, opt)
	}
	var s *Session
	_, err := keepGoSignalHandlers(func() (err error) {
		s, err = newSession(model, inputs, outputs, opt)
		return err
	})
	return s, err
}

// checkProfilePrefix refuses a profile prefix whose folder cannot be
// written: ONNX Runtime would run without writing a trace and say nothing.
func checkProfilePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	dir := filepath.Dir(prefix)
	f, err := os.CreateTemp(dir, ".bmc-profile-check-*")
	if err != nil {
		return fmt.Errorf("profile prefix %s: ONNX Runtime writes its traces into the folder %s, which cannot be written: %w", prefix, dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

func newSession(model []byte, inputs, outputs []string, opt Options) (*Session, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	if opt.Device.CUDA {
		if err := appendCUDA(so, opt.Target); err != nil {
			return nil, err
		}
	}
	if opt.Threads > 0 {
		if err := so.SetIntraOpNumThreads(opt.Threads); err != nil {
			return nil, err
		}
		if err := so.SetInterOpNumThreads(1); err != nil {
			return nil, err
		}
	}
	// ORT's memory pattern preallocates each session's peak block of
	// intermediate tensors and keeps it; with a train and an eval session it
	// raised the ResNet18 bench process's peak RSS from 853 to 1108 MiB at no
	// measurable speed difference (docs/performance.md).
	if err := so.SetMemPattern(false); err != nil {
		return nil, err
	}
	if opt.Profile != "" {
		if err := so.EnableProfiling(opt.Profile); err != nil {
			return nil, err
		}
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, inputs, outputs, so)
	if err != nil {
		return nil, fmt.Errorf("ONNX Runtime rejected the graph: %w", err)
	}
	return &Session{s: s, Inputs: inputs, Outputs: outputs}, nil
}

// appendCUDA adds the CUDA execution provider for the target; nodes it has
// no kernel for fall back to the CPU.
func appendCUDA(so *ort.SessionOptions, t Target) error {
	co, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return fmt.Errorf("device %s: ONNX Runtime cannot make CUDA provider options (is the core library a CUDA-enabled build? `make ort` fetches one): %w", t.Device, err)
	}
	defer co.Destroy()
	if err := co.Update(t.cudaProviderOptions()); err != nil {
		return fmt.Errorf("device %s: CUDA provider options: %w", t.Device, err)
	}
	if err := so.AppendExecutionProviderCUDA(co); err != nil {
		return fmt.Errorf("device %s: ONNX Runtime cannot start the CUDA provider (CUDA 13 libraries libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10 and cuDNN 9 must be on LD_LIBRARY_PATH): %w", t.Device, err)
	}
	return nil
}

// Run runs the graph; outputs must be pre-allocated tensors of the right shapes.
func (s *Session) Run(inputs, outputs []*Tensor) error {
	in := make([]ort.Value, len(inputs))
	for i, t := range inputs {
		if t == nil {
			return fmt.Errorf("input %s has no tensor", s.Inputs[i])
		}
		in[i] = t.v
	}
	out := make([]ort.Value, len(outputs))
	for i, t := range outputs {
		if t == nil {
			return fmt.Errorf("output %s has no tensor", s.Outputs[i])
		}
		out[i] = t.v
	}
	return s.s.Run(in, out)
}

// Close releases the session.
func (s *Session) Close() error {
	if s == nil || s.s == nil {
		return nil
	}
	err := s.s.Destroy()
	s.s = nil
	return err
}

// Tensor is a tensor shared between Go and ONNX Runtime: Go reads and writes
// the slice, ORT reads and writes the same memory.
type Tensor struct {
	v     ort.Value
	Shape []int64
	F32   []float32 // float32 tensors
	I64   []int64   // int64 tensors
}

// ortShape checks a shape for the binding, which cannot create rank-0
// tensors that Go can write; bmc graphs use shape [1] for runtime scalars.
func ortShape(shape []int64) (ort.Shape, error) {
	if len(shape) == 0 {
		return nil, fmt.Errorf("rank-0 tensors cannot be shared with Go; use shape [1]")
	}
	return ort.NewShape(shape...), nil
}

// NewFloat32 allocates a zero float32 tensor.
func NewFloat32(shape []int64) (*Tensor, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	s, err := ortShape(shape)
	if err != nil {
		return nil, err
	}
	t, err := ort.NewEmptyTensor[float32](s)
	if err != nil {
		return nil, fmt.Errorf("allocate float32%v: %w", shape, err)
	}
	return &Tensor{v: t, Shape: append([]int64{}, shape...), F32: t.GetData()}, nil
}

// NewInt64 allocates a zero int64 tensor.
func NewInt64(shape []int64) (*Tensor, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	s, err := ortShape(shape)
	if err != nil {
		return nil, err
	}
	t, err := ort.NewEmptyTensor[int64](s)
	if err != nil {
		return nil, fmt.Errorf("allocate int64%v: %w", shape, err)
	}
	return &Tensor{v: t, Shape: append([]int64{}, shape...), I64: t.GetData()}, nil
}

// Close releases the tensor.
func (t *Tensor) Close() error {
	if t == nil || t.v == nil {
		return nil
	}
	err := t.v.Destroy()
	t.v = nil
	return err
}
