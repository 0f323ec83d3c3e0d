package safetensors

import (
	"fmt"
	"io"
	"os"

	"bmc/internal/atomicfile"
)

// ReadFile reads and decodes the safetensors file at path. Errors name the
// file and what is wrong with it. The returned tensors share one buffer
// holding the whole file.
func ReadFile(path string) (File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("safetensors: %w", err)
	}
	f, err := decode(data)
	if err != nil {
		return File{}, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return f, nil
}

// WriteFile encodes f and stores it at path atomically (see package
// atomicfile): readers see either the old file or the complete new one, and
// an invalid File creates nothing at all.
func WriteFile(path string, f File) error {
	if _, _, err := encodeHeader(f); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := atomicfile.Write(path, func(w io.Writer) error { return Encode(w, f) }); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}
