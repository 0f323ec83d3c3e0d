package safetensors

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dirEntries returns the names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	files := []File{
		{Tensors: map[string]Tensor{"a": Float32s([]int64{2}, []float32{1, 2})}, Metadata: map[string]string{"v": "1"}},
		{Tensors: map[string]Tensor{"b": Int64s([]int64{1, 1}, []int64{3})}}, // overwrites the first
		{},
	}
	for i, f := range files {
		if err := WriteFile(path, f); err != nil {
			t.Fatalf("WriteFile #%d: %v", i, err)
		}
		got, err := ReadFile(path)
		if err != nil {
			t.Fatalf("ReadFile #%d: %v", i, err)
		}
		sameFile(t, got, f)
		if names := dirEntries(t, dir); len(names) != 1 || names[0] != "model.safetensors" {
			t.Errorf("directory holds %v after write #%d, want only model.safetensors", names, i)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", fi.Mode().Perm())
	}
}

func TestWriteFileKeepsMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, File{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
}

func TestWriteFileFailureLeavesOldFile(t *testing.T) {
	good := File{Tensors: map[string]Tensor{"a": Float32s([]int64{1}, []float32{5})}}
	tests := []struct {
		name string
		bad  File
		want string
	}{
		{"data shorter than shape", File{Tensors: map[string]Tensor{"a": Float32s([]int64{3}, []float32{1})}}, `tensor "a": data is 4 bytes, want 12`},
		{"unknown dtype", File{Tensors: map[string]Tensor{"z": {DType: "X", Shape: []int64{}, Data: []byte{1}}}}, `unknown dtype "X"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "m.safetensors")
			if err := WriteFile(path, good); err != nil {
				t.Fatal(err)
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			err = WriteFile(path, tc.bad)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("WriteFile error = %v, want it to name %s and contain %q", err, path, tc.want)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Errorf("failed WriteFile changed the existing file")
			}
			if names := dirEntries(t, dir); len(names) != 1 {
				t.Errorf("directory holds %v, want only m.safetensors", names)
			}
		})
	}
}

func TestWriteFileBadPath(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
	}{
		{"missing directory", filepath.Join(dir, "nope", "m.safetensors")},
		{"path is a directory", sub},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteFile(tc.path, File{})
			if err == nil || !strings.Contains(err.Error(), tc.path) {
				t.Fatalf("WriteFile error = %v, want one naming %s", err, tc.path)
			}
			if names := dirEntries(t, dir); len(names) != 1 || names[0] != "sub" {
				t.Errorf("directory holds %v, want only sub", names)
			}
			if names := dirEntries(t, sub); len(names) != 0 {
				t.Errorf("sub holds %v, want nothing", names)
			}
		})
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content []byte // nil: do not create the file
		want    string
	}{
		{"missing file", nil, "no such file"},
		{"truncated", []byte{1, 2, 3}, "shorter than the 8-byte"},
		{"bad tensor", withHeader(`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, nil), `tensor "w": shape [-1]`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "f"+string(rune('0'+i))+".safetensors")
			if tc.content != nil {
				if err := os.WriteFile(path, tc.content, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := ReadFile(path)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadFile error = %v, want one naming %s and containing %q", err, path, tc.want)
			}
		})
	}
}
