package hdf5

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bmc/formats/internal/fixture"
)

// sidecar is what make.py records per file: for video files the frames in
// hex, for numeric files each dataset as an array.
type sidecar map[string]struct {
	FramesHex []string `json:"frames_hex"`
	fixture.Array
}

func load(t *testing.T) map[string]sidecar {
	var want map[string]sidecar
	fixture.Load(t, "testdata/expected.json", &want)
	return want
}

// TestFiles reads every dataset of every file h5py wrote and compares it
// with the sidecar: frames byte for byte, numbers value for value.
func TestFiles(t *testing.T) {
	want := load(t)
	if len(want) != 7 {
		t.Fatalf("sidecar lists %d files", len(want))
	}
	for name, datasets := range want {
		t.Run(name, func(t *testing.T) {
			f, err := Open(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			for path, w := range datasets {
				d, err := f.Dataset(path)
				if err != nil {
					t.Fatal(err)
				}
				if w.FramesHex != nil {
					frames, err := d.ReadVarBytes()
					if err != nil {
						t.Fatal(err)
					}
					if len(frames) != len(w.FramesHex) || len(d.Shape) != 1 || d.Shape[0] != len(frames) {
						t.Fatalf("%s: %d frames, shape %v, want %d", path, len(frames), d.Shape, len(w.FramesHex))
					}
					for i, fr := range frames {
						if hex.EncodeToString(fr) != w.FramesHex[i] {
							t.Fatalf("%s: frame %d differs (%d bytes, want %d)", path, i, len(fr), len(w.FramesHex[i])/2)
						}
					}
					continue
				}
				a, err := d.ReadArray()
				if err != nil {
					t.Fatal(err)
				}
				fixture.CheckArray(t, name+":"+path, a, w.Array)
			}
		})
	}
}

// TestFramesAreJPEGShaped checks the BalancedAV case end to end without the
// sidecar: 40 frames, each starting with the JPEG SOI and ending with EOI.
func TestFramesAreJPEGShaped(t *testing.T) {
	f, err := Open("testdata/video_vlen.hdf5")
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.Dataset("video")
	if err != nil {
		t.Fatal(err)
	}
	if d.DType.String() != "vlen(uint8)" {
		t.Errorf("dtype %s, want vlen(uint8)", d.DType)
	}
	frames, err := d.ReadVarBytes()
	if err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		// make.py: 2 + (50 + 37*(i%7)) + 2 bytes, SOI ... EOI.
		if len(fr) != 54+37*(i%7) || fr[0] != 0xff || fr[1] != 0xd8 || fr[len(fr)-2] != 0xff || fr[len(fr)-1] != 0xd9 {
			t.Fatalf("frame %d: %d bytes, % x ... % x", i, len(fr), fr[:2], fr[len(fr)-2:])
		}
	}
	if len(frames) != 40 {
		t.Fatalf("%d frames, want 40", len(frames))
	}
}

func TestNames(t *testing.T) {
	f, err := Open("testdata/numeric.hdf5")
	if err != nil {
		t.Fatal(err)
	}
	names, err := f.Names("many")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 20 || names[0] != "d00" || names[19] != "d19" {
		t.Errorf("Names(many) = %v, want d00..d19", names)
	}
}

// TestErrors checks the messages for unsupported features and misuse: each
// names the file and what is wrong.
func TestErrors(t *testing.T) {
	tests := []struct {
		file, dataset, wantErr string
		read                   func(*Dataset) error
	}{
		{"numeric_latest.hdf5", "v4/fixed_array", "unsupported HDF5 feature: chunk index type 3", nil},
		{"numeric_latest.hdf5", "dense/d01", "unsupported HDF5 feature: dense link storage", nil},
		{"numeric.hdf5", "nope", `no object "nope" in group "/"`, nil},
		{"numeric.hdf5", "g", "not a dataset", nil},
		{"numeric.hdf5", "floats/x", "not a group", nil},
		{"numeric.hdf5", "floats", "ReadVarBytes of float32", func(d *Dataset) error { _, err := d.ReadVarBytes(); return err }},
		{"video_vlen.hdf5", "video", "not numbers", func(d *Dataset) error { _, err := d.ReadFloat32(); return err }},
		{"numeric.hdf5", "floats", "cannot convert <f4 elements to int64", func(d *Dataset) error { _, err := d.ReadInt64(); return err }},
	}
	for _, tc := range tests {
		f, err := Open(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		d, err := f.Dataset(tc.dataset)
		if err == nil && tc.read != nil {
			err = tc.read(d)
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.file) {
			t.Errorf("%s %s: got %v, want an error naming the file and containing %q", tc.file, tc.dataset, err, tc.wantErr)
		}
	}
	if _, err := FromBytes("x.h5", []byte("not hdf5")); err == nil || !strings.Contains(err.Error(), "not an HDF5 file") {
		t.Errorf("garbage: %v", err)
	}
}

// readEverything opens data and reads every dataset the sidecar lists for
// name, returning the first error.
func readEverything(name string, data []byte, datasets sidecar, checkEOF bool) error {
	f := &File{name: name, data: data}
	if checkEOF {
		var err error
		if f, err = FromBytes(name, data); err != nil {
			return err
		}
	} else if err := f.readSuperblock(); err != nil {
		return err
	}
	for path, w := range datasets {
		d, err := f.Dataset(path)
		if err != nil {
			return err
		}
		if w.FramesHex != nil {
			_, err = d.ReadVarBytes()
		} else {
			_, err = d.ReadFloat32()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// TestTruncated cuts files at many offsets. Through the public API every
// cut must fail (the superblock records the length). With that check
// bypassed, the structure parsers themselves meet the cut: they must return
// an error or, when the cut only removed bytes no dataset needs, succeed,
// and never panic.
func TestTruncated(t *testing.T) {
	want := load(t)
	for _, name := range []string{"video_vlen.hdf5", "video_vlen_gzip.hdf5", "numeric.hdf5", "numeric_latest.hdf5"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		step := max(1, len(data)/1500)
		failed := 0
		for n := 0; n < len(data); n += step {
			if err := readEverything(name, data[:n], want[name], true); err == nil {
				t.Fatalf("%s cut to %d of %d bytes read without error", name, n, len(data))
			}
			if readEverything(name, data[:n], want[name], false) != nil {
				failed++
			}
		}
		if failed == 0 {
			t.Errorf("%s: no cut made the structure parsers fail", name)
		}
	}
}

// TestCorrupted overwrites each byte of a file in turn with values that
// break lengths and addresses; reading must never panic.
func TestCorrupted(t *testing.T) {
	want := load(t)
	for _, name := range []string{"video_vlen.hdf5", "numeric_latest.hdf5", "video_vlen_gzip.hdf5"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(data))
		step := max(1, len(data)/2000)
		for i := 0; i < len(data); i += step {
			for _, v := range []byte{0x00, 0xff, 0x7f} {
				copy(buf, data)
				buf[i] = v
				_ = readEverything(name, buf, want[name], true)
			}
		}
	}
}

func FuzzOpen(f *testing.F) {
	for _, name := range []string{"video_vlen.hdf5", "video_vlen_latest.hdf5", "video_fixed.hdf5"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := FromBytes("fuzz.h5", data)
		if err != nil {
			return
		}
		if d, err := file.Dataset("video"); err == nil {
			_, _ = d.ReadVarBytes()
		}
	})
}
