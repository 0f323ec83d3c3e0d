package npy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bmc/formats/internal/fixture"
)

// TestReadNumpyFiles reads every file numpy wrote (tools/fixtures/formats)
// and compares it with the sidecar the same script wrote.
func TestReadNumpyFiles(t *testing.T) {
	var want map[string]fixture.Array
	fixture.Load(t, "testdata/expected.json", &want)
	if len(want) < 15 {
		t.Fatalf("sidecar lists %d files", len(want))
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			a, err := ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			fixture.CheckArray(t, name, a, w)
		})
	}
}

// TestArangeRecomputed checks f4_c.npy against values computed here rather
// than taken from the sidecar: arange(24).reshape(2,3,4) * 0.5.
func TestArangeRecomputed(t *testing.T) {
	a, err := ReadFile("testdata/f4_c.npy")
	if err != nil {
		t.Fatal(err)
	}
	v, err := a.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range v {
		if x != float32(i)*0.5 {
			t.Fatalf("element %d is %v, want %v", i, x, float32(i)*0.5)
		}
	}
	if _, err := a.Int64s(); err == nil {
		t.Error("Int64s of a float array succeeded")
	}
}

func TestRejectsObjectArray(t *testing.T) {
	_, err := ReadFile("testdata/object.npy")
	if err == nil || !strings.Contains(err.Error(), "object array") || !strings.Contains(err.Error(), "object.npy") {
		t.Fatalf("got %v, want an object-array error naming the file", err)
	}
}

// TestTruncated cuts a good file at every offset: each prefix must fail with
// an error, never panic or succeed.
func TestTruncated(t *testing.T) {
	for _, name := range []string{"f8_fortran.npy", "v2.npy", "u3.npy"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(data) {
			if _, err := Decode(data[:n]); err == nil {
				t.Fatalf("%s cut to %d of %d bytes decoded without error", name, n, len(data))
			}
		}
		if _, err := Decode(append(bytes.Clone(data), 0)); err == nil {
			t.Errorf("%s with a trailing byte decoded without error", name)
		}
	}
}

// TestBadHeaders checks that each malformed header is rejected with an
// error naming the field at fault.
func TestBadHeaders(t *testing.T) {
	tests := []struct {
		header, wantErr string
	}{
		{"{'descr': '<f4', 'fortran_order': False}", "field 'shape' missing"},
		{"{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "field 'descr'"},
		{"{'descr': '<f3', 'fortran_order': False, 'shape': (1,), }", "field 'descr'"},
		{"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "field 'descr'"},
		{"{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", "field 'fortran_order'"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "field 'shape'"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': [1], }", "field 'shape'"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", "unexpected field 'x'"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (1,) 'x'}", "after field 'shape'"},
		{"['descr']", "want a dict"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } junk", "after the dict"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }", "field 'shape'"},
	}
	for _, tc := range tests {
		file := []byte(magic + "\x01\x00")
		h := tc.header + "\n"
		file = append(file, byte(len(h)), byte(len(h)>>8))
		file = append(file, h...)
		file = append(file, 0, 0, 0, 0)
		_, err := Decode(file)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("header %s: got error %v, want one containing %q", tc.header, err, tc.wantErr)
		}
	}
	if _, err := Decode([]byte("\x93NUMPY\x04\x00")); err == nil || !strings.Contains(err.Error(), "version") {
		t.Errorf("version 4.0: got %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"f4_c.npy", "f8_fortran3d.npy", "v3.npy", "u3.npy", "be_f8.npy"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Decode(data)
		if err != nil {
			return
		}
		// Whatever decodes must convert without panicking.
		_, _ = a.Float32s()
		_, _ = a.Int64s()
		_, _ = a.Strings()
	})
}
