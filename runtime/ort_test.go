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

// A profile prefix in a folder that does not exist (or cannot be written)
// is refused before the session opens: ONNX Runtime would run without a
// trace and say nothing. A writable one leaves no file of the check behind.
func TestProfilePrefixMustBeWritable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-folder", "trace")
	if _, err := NewSession(nil, nil, nil, Options{Profile: missing}); err == nil || !strings.Contains(err.Error(), "profile prefix "+missing) {
		t.Errorf("profile prefix %s: got %v, want a refusal naming it", missing, err)
	}
	dir := t.TempDir()
	if err := checkProfilePrefix(filepath.Join(dir, "trace")); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("the check left %v in %s", left, dir)
	}
}
