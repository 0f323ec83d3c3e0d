package nn_test

import (
	"encoding/json"
	"os"
	"testing"
)

// readJSON decodes a PyTorch reference fixture (testdata/*/*.json, written
// by tools/fixtures) into v.
func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
