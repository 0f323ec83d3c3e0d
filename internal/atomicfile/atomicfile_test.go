package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteReplacesContent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(path, []byte("old content that is longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Write(path, func(w io.Writer) error {
		// Until Write returns, readers still see the old file.
		if got := readString(t, path); got != "old content that is longer" {
			t.Errorf("during the write the file holds %q", got)
		}
		_, err := io.WriteString(w, "new")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := readString(t, path); got != "new" {
		t.Errorf("file holds %q, want %q", got, "new")
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"f.txt"}) {
		t.Errorf("folder holds %v, want only f.txt", got)
	}
}

func TestWriteFailureKeepsOldFile(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name   string
		exists bool
		write  func(w io.Writer) error
	}{
		{"error before writing", true, func(io.Writer) error { return boom }},
		{"error after partial write", true, func(w io.Writer) error {
			if _, err := io.WriteString(w, strings.Repeat("x", 1<<20)); err != nil {
				return err
			}
			return boom
		}},
		{"error on a new file", false, func(w io.Writer) error {
			_, _ = io.WriteString(w, "partial")
			return boom
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.txt")
			if tc.exists {
				if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := Write(path, tc.write)
			if !errors.Is(err, boom) {
				t.Fatalf("Write error = %v, want one wrapping %v", err, boom)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the path", err)
			}
			want := []string(nil)
			if tc.exists {
				want = []string{"f.txt"}
				if got := readString(t, path); got != "old" {
					t.Errorf("file holds %q after a failed write, want %q", got, "old")
				}
			}
			if got := entries(t, dir); !slices.Equal(got, want) {
				t.Errorf("folder holds %v, want %v (no temporary files)", got, want)
			}
		})
	}
}

func TestWriteModes(t *testing.T) {
	tests := []struct {
		name     string
		existing fs.FileMode // 0: no file yet
		want     fs.FileMode
	}{
		{"new file", 0, 0o644},
		{"existing 0600", 0o600, 0o600},
		{"existing 0755", 0o755, 0o755},
		{"existing 0444", 0o444, 0o444},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			if tc.existing != 0 {
				if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
				// Chmod, unlike WriteFile, is not subject to the umask.
				if err := os.Chmod(path, tc.existing); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteBytes(path, []byte("data")); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tc.want {
				t.Errorf("mode %v, want %v", got, tc.want)
			}
			if got := readString(t, path); got != "data" {
				t.Errorf("file holds %q", got)
			}
		})
	}
}

func TestWriteOverDirectoryFails(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "sub")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	called := false
	err := Write(target, func(io.Writer) error { called = true; return nil })
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Write over a folder: err = %v, want a not-a-regular-file error", err)
	}
	if called {
		t.Error("the write function ran although the target is a folder")
	}
	if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
		t.Errorf("the folder was replaced: %v, %v", fi, err)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"sub"}) {
		t.Errorf("folder holds %v, want only sub", got)
	}
}

func TestWriteMissingFolderFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "f")
	if err := WriteBytes(path, []byte("x")); err == nil {
		t.Error("WriteBytes into a missing folder succeeded")
	}
}

func TestWriteRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := WriteBytes("rel.txt", []byte("here")); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, filepath.Join(dir, "rel.txt")); got != "here" {
		t.Errorf("file holds %q", got)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"rel.txt"}) {
		t.Errorf("folder holds %v", got)
	}
}

// RemoveStale removes the temporary files of interrupted writes and
// nothing else.
func TestRemoveStaleRemovesOnlyTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	if err := WriteBytes(filepath.Join(dir, "kept.json"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".kept.json.tmp-123", ".write-test.tmp-9", "notes.tmp-1", ".hidden"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveStale(dir); err != nil {
		t.Fatal(err)
	}
	if got, want := entries(t, dir), []string{".hidden", "kept.json", "notes.tmp-1"}; !slices.Equal(got, want) {
		t.Errorf("after RemoveStale: %v, want %v", got, want)
	}
	if err := RemoveStale(filepath.Join(dir, "absent")); err != nil {
		t.Errorf("a missing folder: %v", err)
	}
}
