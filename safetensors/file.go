package safetensors

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// defaultMode is the permission of a file WriteFile creates.
const defaultMode fs.FileMode = 0o644

// WriteFile encodes f and stores it at path atomically: it writes a
// temporary file in the same directory, syncs it to stable storage, renames
// it over path and syncs the directory. Readers see either the old file or
// the complete new one. On any error the temporary file is removed and a
// file already at path is left untouched (unless the error comes from the
// final directory sync, after the rename has taken place). An existing
// file's permission bits are kept; a new file gets mode 0644.
func WriteFile(path string, f File) (err error) {
	// Validate before touching the file system, so an invalid File
	// creates nothing at all.
	if _, _, err := encodeHeader(f); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}

	mode := defaultMode
	if fi, err := os.Stat(path); err == nil {
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("safetensors: write %s: not a regular file", path)
		}
		mode = fi.Mode().Perm()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}

	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close() // may already be closed; the error is moot then
			_ = os.Remove(tmpName)
		}
	}()

	w := bufio.NewWriter(tmp)
	if err := Encode(w, f); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("safetensors: write %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("safetensors: write %s: sync directory: %w", path, err)
	}
	return nil
}

// syncDir flushes the directory entry changes of dir to stable storage.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return err
	}
	return d.Close()
}
