//go:build !linux

package runtime

import "errors"

// cudaDeviceCount: bmc loads the CUDA provider on Linux only.
func cudaDeviceCount() (int, error) {
	return 0, errors.New("the CUDA provider is supported on Linux only")
}

// keepGoSignalHandlers runs f (no CUDA provider is ever loaded here).
func keepGoSignalHandlers(f func() error) (int, error) { return 0, f() }
