package torchpt

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bmc/formats/internal/fixture"
	"bmc/formats/ndarray"
	"bmc/formats/pickle"
)

// TestFiles reads each file torch.save wrote and compares every tensor with
// the sidecar: the key "" is a file holding one tensor.
func TestFiles(t *testing.T) {
	var want map[string]map[string]fixture.Array
	fixture.Load(t, "testdata/expected.json", &want)
	if len(want) != 3 {
		t.Fatalf("sidecar lists %d files", len(want))
	}
	for name, tensors := range want {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join("testdata", name)
			if w, ok := tensors[""]; ok {
				a, err := ReadTensor(file)
				if err != nil {
					t.Fatal(err)
				}
				fixture.CheckArray(t, name, a, w)
				return
			}
			got, err := ReadTensors(file)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tensors) {
				t.Errorf("%d tensors, want %d", len(got), len(tensors))
			}
			for k, w := range tensors {
				a, ok := got[k]
				if !ok {
					t.Fatalf("tensor %q missing", k)
				}
				fixture.CheckArray(t, name+"/"+k, a, w)
			}
		})
	}
}

// TestViewsRecomputed checks the strided and transposed views of
// base = arange(24).reshape(4, 6) against values computed here.
func TestViewsRecomputed(t *testing.T) {
	got, err := ReadTensors("testdata/dict.pt")
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, shape []int, at func(i, j int) float32) {
		a := got[name]
		v, err := a.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Shape) != 2 || a.Shape[0] != shape[0] || a.Shape[1] != shape[1] {
			t.Fatalf("%s: shape %v, want %v", name, a.Shape, shape)
		}
		for i := range shape[0] {
			for j := range shape[1] {
				if x := v[i*shape[1]+j]; x != at(i, j) {
					t.Fatalf("%s[%d,%d] = %v, want %v", name, i, j, x, at(i, j))
				}
			}
		}
	}
	check("view_strided", []int{3, 3}, func(i, j int) float32 { return float32(6*(i+1) + 2*j) }) // base[1:, ::2]
	check("view_t", []int{6, 4}, func(i, j int) float32 { return float32(6*j + i) })             // base.t()
}

func TestRejects(t *testing.T) {
	if _, err := Decode([]byte("not a torch file")); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Errorf("garbage: %v", err)
	}
	if _, err := ReadTensor("testdata/dict.pt"); err == nil || !strings.Contains(err.Error(), "not a single tensor") {
		t.Errorf("ReadTensor of a dict: %v", err)
	}
	// A storage class torch has but this package does not convert.
	l := &loader{}
	_, err := pickle.Decode([]byte("\x80\x02(X\x07\x00\x00\x00storagectorch\nBFloat16Storage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x02tQ."), l.options())
	if err == nil || !strings.Contains(err.Error(), "torch.BFloat16Storage is not supported") {
		t.Errorf("bfloat16 storage: %v", err)
	}
	// A view running past its storage.
	s := &storage{dtype: ndarray.DType{Kind: ndarray.Float, Size: 4}, numel: 4, data: make([]byte, 16)}
	for _, v := range []*tensor{
		{storage: s, offset: 1, size: []int{2, 2}, stride: []int{2, 1}},
		{storage: s, offset: 0, size: []int{5}, stride: []int{1}},
		{storage: s, offset: 0, size: []int{1 << 30, 1 << 30}, stride: []int{0, 0}},
	} {
		if _, err := v.array(); err == nil {
			t.Errorf("view %+v of a 4-element storage materialized", *v)
		}
	}
}

// TestTruncated cuts each file at every offset: each prefix must give an
// error, never a panic or a value.
func TestTruncated(t *testing.T) {
	for _, name := range []string{"fbank.pt", "legacy.pt"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(data) {
			if _, err := Decode(data[:n]); err == nil {
				t.Fatalf("%s cut to %d of %d bytes decoded without error", name, n, len(data))
			}
		}
	}
}

// TestCorruptStorage shortens the legacy file's last storage by two bytes,
// keeping its recorded element count.
func TestCorruptStorage(t *testing.T) {
	data, err := os.ReadFile("testdata/legacy.pt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(append(bytes.Clone(data[:len(data)-4]), 0, 0)); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("short storage: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"fbank.pt", "legacy.pt", "dict.pt"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Decode(data)
	})
}
