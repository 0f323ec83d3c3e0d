package tensorfile

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteNPYHeader(t *testing.T) {
	tests := []struct {
		shape []int
		dict  string
	}{
		{[]int{2, 3}, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"},
		{[]int{6}, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }"},
		{[]int{1, 2, 3}, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }"},
	}
	data := []float32{1, 2, 3, 4, 5, -0.5}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := WriteNPY(&b, tt.shape, data); err != nil {
			t.Fatal(err)
		}
		out := b.Bytes()
		// The dictionary needs more than 54 bytes, so the header fills 128.
		if len(out) != 128+24 || !bytes.HasPrefix(out, []byte("\x93NUMPY\x01\x00\x76\x00"+tt.dict)) || out[127] != '\n' {
			t.Errorf("shape %v: header %q", tt.shape, out[:min(len(out), 128)])
		}
		if !bytes.Equal(out[128+20:], []byte{0, 0, 0, 0xbf}) {
			t.Errorf("shape %v: last value bytes %x, want -0.5 little-endian", tt.shape, out[148:])
		}
	}
	if err := WriteNPY(&bytes.Buffer{}, []int{4, 2}, data); err == nil || !strings.Contains(err.Error(), "shape [4 2] holds 8 values, data has 6") {
		t.Errorf("mismatched shape: %v", err)
	}
}

func TestWriteTorchAlignsRecords(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTorch(&b, []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(b.Bytes()), int64(b.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		off, err := f.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		if off%64 != 0 || f.Method != zip.Store {
			t.Errorf("%s: data at %d (method %d), want a multiple of 64, stored", f.Name, off, f.Method)
		}
	}
	if got := strings.Join(names, " "); got != "archive/data.pkl archive/byteorder archive/data/0 archive/version" {
		t.Errorf("records %s", got)
	}
}

// python finds a Python with torch and numpy (Debian's python3-torch), or
// skips: CI does not install PyTorch, and the round trip below is run where
// it is.
func python(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starting PyTorch takes seconds")
	}
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import torch, numpy").Run() == nil {
			return py
		}
	}
	t.Skip("no python3 with torch and numpy (apt-get install python3-torch)")
	return ""
}

// TestPythonLoadsTheFiles is the proof that the formats are right: numpy.load
// and torch.load (with and without weights_only where the installed torch
// has it) read back what was written.
func TestPythonLoadsTheFiles(t *testing.T) {
	py := python(t)
	dir := t.TempDir()
	shape := []int{3, 4, 5}
	data := make([]float32, 60)
	for i := range data {
		data[i] = float32(i)*0.25 - 7
	}
	write := func(name string, f func(*bytes.Buffer) error) string {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	npy := write("x.npy", func(b *bytes.Buffer) error { return WriteNPY(b, shape, data) })
	pt := write("x.pt", func(b *bytes.Buffer) error { return WriteTorch(b, shape, data) })
	script := `
import inspect, json, sys
import numpy, torch
a = numpy.load(sys.argv[1])
kw = {"weights_only": True} if "weights_only" in inspect.signature(torch.load).parameters else {}
t = torch.load(sys.argv[2], **kw)
print(json.dumps({"npy_dtype": str(a.dtype), "npy_shape": list(a.shape), "npy": a.ravel().tolist(),
                  "pt_dtype": str(t.dtype), "pt_shape": list(t.shape), "pt": t.reshape(-1).tolist(),
                  "pt_contiguous": t.is_contiguous(), "weights_only": bool(kw), "torch": torch.__version__}))
`
	out, err := exec.Command(py, "-c", script, npy, pt).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	var got struct {
		NpyDtype     string    `json:"npy_dtype"`
		NpyShape     []int     `json:"npy_shape"`
		Npy          []float32 `json:"npy"`
		PtDtype      string    `json:"pt_dtype"`
		PtShape      []int     `json:"pt_shape"`
		Pt           []float32 `json:"pt"`
		PtContiguous bool      `json:"pt_contiguous"`
		WeightsOnly  bool      `json:"weights_only"`
		Torch        string    `json:"torch"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("torch %s, weights_only=%v", got.Torch, got.WeightsOnly)
	if got.NpyDtype != "float32" || got.PtDtype != "torch.float32" || !got.PtContiguous {
		t.Errorf("dtypes %s and %s, contiguous %v", got.NpyDtype, got.PtDtype, got.PtContiguous)
	}
	for name, s := range map[string][]int{"npy": got.NpyShape, "pt": got.PtShape} {
		if len(s) != 3 || s[0] != 3 || s[1] != 4 || s[2] != 5 {
			t.Errorf("%s shape %v, want %v", name, s, shape)
		}
	}
	for i, v := range data {
		if got.Npy[i] != v || got.Pt[i] != v {
			t.Fatalf("value %d: npy %g, pt %g, want %g", i, got.Npy[i], got.Pt[i], v)
		}
	}
}
