package datasets_test

import (
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bmc/datasets"
)

// The fixtures under testdata/ are made by tools/fixtures/datasets/make.py;
// its doc comment says how every pixel and audio value encodes the frame,
// the clip and a mirror image, which these helpers decode.

// copyFixture copies testdata/<name> into a temporary folder a test may
// break.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("testdata", name)
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// fixtureEdit breaks a copied fixture; every step fails the test on error.
type fixtureEdit struct {
	t    *testing.T
	root string
}

func (e fixtureEdit) path(rel string) string { return filepath.Join(e.root, rel) }

func (e fixtureEdit) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// write replaces a file's content.
func (e fixtureEdit) write(rel, content string) {
	e.t.Helper()
	e.must(os.WriteFile(e.path(rel), []byte(content), 0o644))
}

// copyIn copies testdata/broken/<name> over rel.
func (e fixtureEdit) copyIn(name, rel string) {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/broken", name))
	e.must(err)
	e.must(os.WriteFile(e.path(rel), b, 0o644))
}

// truncate cuts a file to half its length.
func (e fixtureEdit) truncate(rel string) {
	e.t.Helper()
	b, err := os.ReadFile(e.path(rel))
	e.must(err)
	e.must(os.WriteFile(e.path(rel), b[:len(b)/2], 0o644))
}

// clone copies a file or a folder (one level) to a new name.
func (e fixtureEdit) clone(src, dst string) {
	e.t.Helper()
	st, err := os.Stat(e.path(src))
	e.must(err)
	if !st.IsDir() {
		b, err := os.ReadFile(e.path(src))
		e.must(err)
		e.must(os.WriteFile(e.path(dst), b, 0o644))
		return
	}
	e.must(os.MkdirAll(e.path(dst), 0o755))
	entries, err := os.ReadDir(e.path(src))
	e.must(err)
	for _, en := range entries {
		e.clone(filepath.Join(src, en.Name()), filepath.Join(dst, en.Name()))
	}
}

func openDisk(t *testing.T, name, root string, params map[string]string) datasets.Dataset {
	t.Helper()
	d, err := datasets.Open(name, datasets.Options{Root: root, Params: params})
	if err != nil {
		t.Fatalf("Open(%s, %s): %v", name, root, err)
	}
	return d
}

// readSeeded reads sample i of a split with a seed.
func readSeeded(t *testing.T, d datasets.Dataset, split string, i int, seed uint64) ([]datasets.Buffer, int64) {
	t.Helper()
	sp, err := d.Split(split)
	if err != nil {
		t.Fatal(err)
	}
	dst := sampleBuffers(d.Spec())
	y, err := sp.(datasets.SeededReader).ReadSeeded(i, seed, dst)
	if err != nil {
		t.Fatalf("%s[%d] seed %d: %v", split, i, seed, err)
	}
	return dst, y
}

// readErr reads sample i of a split and returns its error.
func readErr(t *testing.T, d datasets.Dataset, split string, i int) error {
	t.Helper()
	sp, err := d.Split(split)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sp.Read(i, sampleBuffers(d.Spec()))
	return err
}

// video reads a (C, T, s, s) tensor.
type video struct {
	x       []float32
	c, t, s int
}

func (v video) at(c, t, y, x int) float32 { return v.x[((c*v.t+t)*v.s+y)*v.s+x] }

// rgb8 undoes ImageNet normalisation at one pixel of frame t: 0…255 values.
func (v video) rgb8(t, y, x int) [3]float64 {
	mean := []float64{0.485, 0.456, 0.406}
	std := []float64{0.229, 0.224, 0.225}
	var out [3]float64
	for c := range 3 {
		out[c] = (float64(v.at(c, t, y, x))*std[c] + mean[c]) * 255
	}
	return out
}

// frameAt decodes a fixture RGB frame's number and clip from its R and B
// levels (R = 10+12k, B = 10+8c, flat over the frame, so crops keep them)
// and returns the green level of its left-most pixel (60 in the left half,
// 180 in the right).
func (v video) frameAt(t *testing.T, ft int) (k, clip int, green float64) {
	t.Helper()
	p := v.rgb8(ft, v.s/2, 0)
	k = int(math.Round((p[0] - 10) / 12))
	clip = int(math.Round((p[2] - 10) / 8))
	if math.Abs(p[0]-float64(10+12*k)) > 3 || math.Abs(p[2]-float64(10+8*clip)) > 3 {
		t.Fatalf("frame %d pixel %v is not a fixture colour", ft, p)
	}
	return k, clip, p[1]
}

// frames decodes every frame of a video tensor: the frame numbers, the
// clip, and which frames were mirrored (a frame that is neither plain nor
// mirrored fails the test; crops make such frames, so training reads of
// cropping datasets use frameAt).
func (v video) frames(t *testing.T) (ks []int, clip int, mirrored []bool) {
	t.Helper()
	for ft := range v.t {
		k, c, green := v.frameAt(t, ft)
		if ft > 0 && c != clip {
			t.Fatalf("frames of clips %d and %d in one sample", clip, c)
		}
		switch {
		case math.Abs(green-60) <= 3:
			mirrored = append(mirrored, false)
		case math.Abs(green-180) <= 3:
			mirrored = append(mirrored, true)
		default:
			t.Fatalf("frame %d green %.1f is neither half's", ft, green)
		}
		ks, clip = append(ks, k), c
	}
	return ks, clip, mirrored
}

func wantErr(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q lacks %q", what, err, p)
		}
	}
}

// errString makes a string an error for wantErr.
type errString string

func (e errString) Error() string { return string(e) }

func problems(d datasets.Dataset) []datasets.Problem {
	return d.(datasets.ProblemLister).Problems()
}

// sameBuffers reports whether two samples are equal.
func sameBuffers(a, b []datasets.Buffer) bool {
	for m := range a {
		if !slices.Equal(a[m].F32, b[m].F32) || !slices.Equal(a[m].I64, b[m].I64) {
			return false
		}
	}
	return true
}
