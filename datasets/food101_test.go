package datasets_test

import (
	"math"
	"os"
	"slices"
	"testing"

	"bmc/datasets"
)

var foodParams = map[string]string{"size": "8", "val_fraction": "0.34"}

// foodIDs are the token ids of each fixture caption (clip numbers as in
// make.py) after cleaning, with the fixture vocabulary: [CLS] 2, [SEP] 3,
// [PAD] 0; "Grandma's" is grand ##ma ' s, "Homemade" home ##made.
var foodIDs = map[int][]int64{
	0:  {2, 17, 32, 6, 26, 12, 21, 24, 3}, // RT Grandma's apple pie recipe http://…
	1:  {2, 12, 21, 7, 15, 11, 22, 3},     // #apple pie, easy and quick
	2:  {2, 30, 14, 12, 21, 3},            // The best apple pie
	3:  {2, 28, 23, 27, 3},                // Spicy ramen soup
	4:  {2, 18, 33, 23, 20, 3},            // Homemade #ramen noodles
	5:  {2, 23, 31, 16, 7, 30, 14, 3},     // ramen with egg, the best
	6:  {2, 29, 25, 13, 18, 3},            // sushi rolls at home
	7:  {2, 15, 29, 24, 3},                // Easy sushi recipe https://…
	8:  {2, 22, 29, 3},                    // quick sushi
	9:  {2, 12, 21, 3},                    // apple pie
	10: {2, 23, 20, 24, 3},                // ramen noodles recipe
	11: {2, 29, 7, 14, 11, 15, 3},         // sushi, best and easy
}

func foodWant(clip int) []int64 {
	return append(slices.Clone(foodIDs[clip]), make([]int64, 40-len(foodIDs[clip]))...)
}

func TestFood101(t *testing.T) {
	d := openDisk(t, "food101", "testdata/food101", foodParams)
	spec := d.Spec()
	if spec.Classes != 3 || spec.Sizes[datasets.Train] != 6 || spec.Sizes[datasets.Val] != 3 || spec.Sizes[datasets.Test] != 3 {
		t.Fatalf("spec %+v", spec)
	}
	if m := spec.Modalities; !slices.Equal(m[0].Shape, []int64{3, 1, 8, 8}) || !slices.Equal(m[1].Shape, []int64{1, 40}) || !m[1].Int || m[0].Int {
		t.Errorf("modalities %+v", m)
	}
	if ps := problems(d); len(ps) != 0 {
		t.Errorf("problems on the clean fixture: %v", ps)
	}
	for i := range 3 {
		dst, y := readSeeded(t, d, datasets.Test, i, 4)
		v := video{dst[0].F32, 3, 1, 8}
		ks, clip, mirrored := v.frames(t)
		if clip != 9+i || y != int64(i) || ks[0] != 1 || mirrored[0] {
			t.Errorf("test[%d]: clip %d label %d mirrored %v, want clip %d label %d plain", i, clip, y, mirrored[0], 9+i, i)
		}
		if !slices.Equal(dst[1].I64, foodWant(clip)) {
			t.Errorf("test[%d] ids %v, want %v", i, dst[1].I64, foodWant(clip))
		}
		g := (60.0/255 - 0.456) / 0.224
		if got := float64(v.at(1, 0, 3, 0)); math.Abs(got-g) > 3.0/255/0.224 {
			t.Errorf("test[%d] green at (3, 0) = %.4f, want %.4f", i, got, g)
		}
	}
	augmented := false
	clips := map[int]bool{}
	for seed := range uint64(12) {
		for _, split := range []string{datasets.Train, datasets.Val} {
			for i := range spec.Sizes[split] {
				dst, y := readSeeded(t, d, split, i, seed)
				_, clip, green := (video{dst[0].F32, 3, 1, 8}).frameAt(t, 0)
				clips[clip] = true
				if y != int64(clip/3) || !slices.Equal(dst[1].I64, foodWant(clip)) {
					t.Errorf("%s[%d]: clip %d label %d ids %v", split, i, clip, y, dst[1].I64)
				}
				if split == datasets.Val && math.Abs(green-60) > 3 {
					t.Errorf("val[%d] seed %d was augmented", i, seed)
				}
				augmented = augmented || (split == datasets.Train && math.Abs(green-60) > 3)
			}
		}
	}
	if !augmented || len(clips) != 9 {
		t.Errorf("training augmented %v; clips seen %v, want all 9", augmented, clips)
	}
}

func TestFood101BadData(t *testing.T) {
	e := fixtureEdit{t, copyFixture(t, "food101")}
	e.truncate("images/test/ramen/ramen_9.jpg")
	e.must(os.Remove(e.path("images/test/sushi/sushi_9.jpg")))
	b, err := os.ReadFile(e.path("texts/test_titles.csv"))
	e.must(err)
	e.write("texts/test_titles.csv", string(b)+"pizza_1.jpg,pizza,pizza\n")
	e.must(os.Mkdir(e.path("images/test/pizza"), 0o755))
	d := openDisk(t, "food101", e.root, foodParams)
	ps := problems(d)
	if len(ps) != 1 {
		t.Fatalf("problems %v, want the class folders of images/test", ps)
	}
	wantErr(t, "class folders", errString(ps[0].String()), "images/test", "[apple_pie pizza ramen sushi]", "differ")
	wantErr(t, "truncated image", readErr(t, d, datasets.Test, 1), "ramen_9.jpg", "decode JPEG")
	wantErr(t, "missing image", readErr(t, d, datasets.Test, 2), "sushi_9.jpg", "no such file")
	wantErr(t, "unknown label", readErr(t, d, datasets.Test, 3), "test_titles.csv:5", `label "pizza"`)

	e.write("texts/test_titles.csv", "Image_path,caption,label\n")
	_, err = datasets.Open("food101", datasets.Options{Root: e.root})
	wantErr(t, "no text column", err, "test_titles.csv", `no column "text"`)
	_, err = datasets.Open("food101", datasets.Options{Root: e.root, Params: map[string]string{"vocab": "nope.txt"}})
	wantErr(t, "no vocabulary", err, "nope.txt", "no such file")
}
