package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLibraryPathSaysHowToGetTheLibrary(t *testing.T) {
	t.Setenv(LibraryEnv, filepath.Join(t.TempDir(), "missing.so"))
	if _, err := LibraryPath(); err == nil || !strings.Contains(err.Error(), LibraryEnv) || !strings.Contains(err.Error(), "make ort") {
		t.Errorf("a missing %s: %v", LibraryEnv, err)
	}
	t.Setenv(LibraryEnv, "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	if _, err := LibraryPath(); err == nil || !strings.Contains(err.Error(), "make ort") || !strings.Contains(err.Error(), "npm") {
		t.Errorf("an empty cache: %v", err)
	}
	lib := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := os.WriteFile(lib, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(LibraryEnv, lib)
	if got, err := LibraryPath(); err != nil || got != lib {
		t.Errorf("%s=%s gives %q, %v", LibraryEnv, lib, got, err)
	}
}
