package datasets_test

import (
	"math"
	"os"
	"slices"
	"testing"

	"bmc/datasets"
)

var ucfParams = map[string]string{"size": "8", "val_fraction": "0.34"}

// ucfFlow decodes flow frame ft's number from its u and v planes (fixture
// levels u = 10+12k, v = 200−12k, each +40 / +30 in the right half) and
// whether each plane was mirrored.
func ucfFlow(t *testing.T, f video, ft int) (k int, uMirrored, vMirrored bool) {
	t.Helper()
	u := float64(f.at(0, ft, f.s/2, 0)) * 255
	v := float64(f.at(1, ft, f.s/2, 0)) * 255
	for k = 1; k <= 12; k++ {
		uk, vk := float64(10+12*k), float64(200-12*k)
		uOK, uM := math.Abs(u-uk) <= 3, math.Abs(u-uk-40) <= 3
		vOK, vM := math.Abs(v-vk) <= 3, math.Abs(v-vk-30) <= 3
		if (uOK || uM) && (vOK || vM) {
			return k, uM, vM
		}
	}
	t.Fatalf("flow frame %d: u %.1f, v %.1f match no fixture frame", ft, u, v)
	return 0, false, false
}

func TestUCF101(t *testing.T) {
	d := openDisk(t, "ucf101", "testdata/ucf101", ucfParams)
	spec := d.Spec()
	if spec.Classes != 3 || spec.Sizes[datasets.Train] != 6 || spec.Sizes[datasets.Val] != 3 || spec.Sizes[datasets.Test] != 3 {
		t.Fatalf("spec %+v", spec)
	}
	if !slices.Equal(spec.Modalities[0].Shape, []int64{3, 3, 8, 8}) || !slices.Equal(spec.Modalities[1].Shape, []int64{2, 3, 8, 8}) {
		t.Errorf("shapes %v", spec.Modalities)
	}
	if len(problems(d)) != 0 {
		t.Errorf("problems on the clean fixture: %v", problems(d))
	}
	// Classes sorted by name: ApplyLipstick 0, Bowling 1, Drumming 2. The
	// fixture's train clips 0–2 are Bowling, 3–5 ApplyLipstick, 6–8 Drumming.
	classOfClip := func(c int) int64 { return []int64{1, 0, 2}[c%9/3] }

	// Test: RGB frames 1, 3, 5; flow i·seg + max(⌊seg/2⌋, 1) of 7 + c%3 frames.
	for i, want := range []struct {
		clip  int
		label int64
		flow  []int
	}{{9, 1, []int{1, 3, 5}}, {10, 0, []int{1, 3, 5}}, {11, 2, []int{1, 4, 7}}} {
		dst, y := readSeeded(t, d, datasets.Test, i, 5)
		rgb := video{dst[0].F32, 3, 3, 8}
		ks, clip, mirrored := rgb.frames(t)
		if y != want.label || clip != want.clip || !slices.Equal(ks, []int{1, 3, 5}) || slices.Contains(mirrored, true) {
			t.Errorf("test[%d]: label %d clip %d frames %v mirrored %v, want %d %d [1 3 5] none", i, y, clip, ks, mirrored, want.label, want.clip)
		}
		flow := video{dst[1].F32, 2, 3, 8}
		for ft, wk := range want.flow {
			if k, um, vm := ucfFlow(t, flow, ft); k != wk || um || vm {
				t.Errorf("test[%d] flow frame %d = %d (mirrored u %v v %v), want %d unmirrored", i, ft, k, um, vm, wk)
			}
		}
		// Exact value after normalisation at the frame's left edge.
		r := (float64(10+12*1)/255 - 0.485) / 0.229
		if got := float64(rgb.at(0, 0, 4, 0)); math.Abs(got-r) > 2.0/255/0.229 {
			t.Errorf("test[%d] R at (4, 0) = %.4f, want %.4f", i, got, r)
		}
	}

	// Train: frame k ∈ {2i+1, 2i+2}, flow k uniform in its segment, one flip
	// per RGB frame and one per flow frame shared by u and v.
	seen := map[string]bool{}
	for seed := range uint64(24) {
		for i := range spec.Sizes[datasets.Train] {
			dst, y := readSeeded(t, d, datasets.Train, i, seed)
			rgb := video{dst[0].F32, 3, 3, 8}
			ks, clip, mirrored := rgb.frames(t)
			if y != classOfClip(clip) {
				t.Errorf("train[%d]: clip %d has label %d", i, clip, y)
			}
			for ft, k := range ks {
				if k != 2*ft+1 && k != 2*ft+2 {
					t.Errorf("train[%d] seed %d: RGB frame %d is %d, want %d or %d", i, seed, ft, k, 2*ft+1, 2*ft+2)
				}
				seen[map[bool]string{true: "late", false: "early"}[k == 2*ft+2]] = true
				seen[map[bool]string{true: "mirrored", false: "plain"}[mirrored[ft]]] = true
			}
			seg := (7 + clip%3) / 3
			flow := video{dst[1].F32, 2, 3, 8}
			for ft := range 3 {
				k, um, vm := ucfFlow(t, flow, ft)
				if k < ft*seg+1 || k > ft*seg+seg {
					t.Errorf("train[%d] seed %d: flow frame %d is %d, outside [%d, %d]", i, seed, ft, k, ft*seg+1, ft*seg+seg)
				}
				if um != vm {
					t.Errorf("train[%d] seed %d: flow frame %d mirrors u %v but v %v", i, seed, ft, um, vm)
				}
				seen[map[bool]string{true: "flow mirrored", false: "flow plain"}[um]] = true
			}
			again, _ := readSeeded(t, d, datasets.Train, i, seed)
			if !sameBuffers(dst, again) {
				t.Fatalf("train[%d] seed %d read twice differs", i, seed)
			}
		}
	}
	for _, w := range []string{"early", "late", "mirrored", "plain", "flow mirrored", "flow plain"} {
		if !seen[w] {
			t.Errorf("24 seeds never gave a %s frame", w)
		}
	}

	// Val is held out of train and read with the evaluation transform.
	for i := range spec.Sizes[datasets.Val] {
		a, _ := readSeeded(t, d, datasets.Val, i, 1)
		b, _ := readSeeded(t, d, datasets.Val, i, 2)
		if !sameBuffers(a, b) {
			t.Errorf("val[%d] depends on the seed", i)
		}
		if ks, _, mirrored := (video{a[0].F32, 3, 3, 8}).frames(t); !slices.Equal(ks, []int{1, 3, 5}) || slices.Contains(mirrored, true) {
			t.Errorf("val[%d] frames %v mirrored %v, want the evaluation choice", i, ks, mirrored)
		}
	}
}

func TestUCF101BadData(t *testing.T) {
	e := fixtureEdit{t, copyFixture(t, "ucf101")}
	// A clip without flow: dropped, as the reference drops it, and reported.
	e.must(os.RemoveAll(e.path("tvl1_flow/v/v_Drumming_g08_c01")))
	// A class outside classInd; a clip whose folders are absent.
	b, err := os.ReadFile(e.path("testlist01.txt"))
	e.must(err)
	e.write("testlist01.txt", string(b)+"Skiing/v_Bowling_g01_c01.avi\nBowling/v_Bowling_g99_c01.avi\n")
	// A truncated JPEG and a missing one.
	e.truncate("ucf101-frames-1fps/video-set/v_Bowling_g08_c01/frame_00003.jpg")
	e.must(os.Remove(e.path("ucf101-frames-1fps/video-set/v_ApplyLipstick_g08_c01/frame_00005.jpg")))

	d := openDisk(t, "ucf101", e.root, ucfParams)
	ps := problems(d)
	if len(ps) != 2 || !ps[0].Dropped || !ps[1].Dropped {
		t.Fatalf("problems %v, want the two dropped clips", ps)
	}
	wantErr(t, "problem 0", errString(ps[0].String()), "test", "testlist01.txt:3", "v_Drumming_g08_c01", "tvl1_flow/v/v_Drumming_g08_c01", "dropped")
	wantErr(t, "problem 1", errString(ps[1].String()), "testlist01.txt:5", "v_Bowling_g99_c01")
	if n := d.Spec().Sizes[datasets.Test]; n != 3 {
		t.Fatalf("test has %d clips, want 3 (two kept, one with a bad class)", n)
	}
	wantErr(t, "truncated JPEG", readErr(t, d, datasets.Test, 0), "frame_00003.jpg", "decode JPEG")
	wantErr(t, "missing frame", readErr(t, d, datasets.Test, 1), "frame_00005.jpg", "no such file")
	wantErr(t, "unknown class", readErr(t, d, datasets.Test, 2), "testlist01.txt:4", `class "Skiing"`, "classInd.txt")

	// Files the dataset cannot start without.
	e.must(os.Remove(e.path("classInd.txt")))
	_, err = datasets.Open("ucf101", datasets.Options{Root: e.root, Params: ucfParams})
	wantErr(t, "no class list", err, "classInd.txt", "no such file")
	_, err = datasets.Open("ucf101", datasets.Options{Params: ucfParams})
	wantErr(t, "no root", err, "--data-root")
}
