package datasets_test

import (
	"os"
	"testing"

	"bmc/datasets"
)

// avParams are the fixture parameters of an audio-video case.
func avParams(name string) map[string]string {
	for _, c := range avCases {
		if c.name == name {
			return c.params
		}
	}
	panic("no audio-video case " + name)
}

func TestKineticsBadData(t *testing.T) {
	e := fixtureEdit{t, copyFixture(t, "ks")}
	e.clone("test_spec/ks_c9.npy", "test_spec/ks_t1.npy")
	e.clone("test-frames-1fps/test/ks_c9", "test-frames-1fps/test/ks_t1")
	e.truncate("test_spec/ks_t1.npy")
	e.clone("test_spec/ks_a9.npy", "test_spec/ks_t2.npy")
	e.clone("test-frames-1fps/test/ks_a9", "test-frames-1fps/test/ks_t2")
	e.truncate("test-frames-1fps/test/ks_t2/frame_00004.jpg")
	e.clone("test_spec/ks_c9.npy", "test_spec/ks_t3.npy")
	e.must(os.MkdirAll(e.path("test-frames-1fps/test/ks_t3"), 0o755))
	e.copyIn("nan.npy", "test_spec/ks_a9.npy")
	e.copyIn("shape7x6.npy", "test_spec/ks_b9.npy")
	e.write("ks_test.txt", "ks_a9 playing drums 0\nks_b9 bowling 1\nks_c9 lawn mowing 5\nks_zz bowling 1\nks_c9 lawn mowing two\nks_t1 x 0\nks_t2 x 0\nks_t3 x 0\n")
	d := openDisk(t, "ks", e.root, avParams("ks"))
	ps := problems(d)
	if len(ps) != 2 {
		t.Fatalf("problems %v, want ks_zz and ks_t3 dropped", ps)
	}
	wantErr(t, "problem 0", errString(ps[0].String()), "ks_test.txt:4", "ks_zz", "no audio file", "dropped")
	wantErr(t, "problem 1", errString(ps[1].String()), "ks_test.txt:8", "ks_t3", "holds 0 files, want more than 3")
	for i, want := range [][]string{
		{"ks_a9.npy", "NaN"},
		{"ks_b9.npy", "shape [7 6]", "want [8 6]"},
		{"ks_test.txt:3", "label 5", "[0, 3)"},
		{"ks_test.txt:5", `label "two"`, "integer"},
		{"ks_t1.npy", "truncated"},
		{"ks_t2/frame_00004.jpg", "decode JPEG"},
	} {
		wantErr(t, want[0], readErr(t, d, datasets.Test, i), want...)
	}
	_, err := datasets.Open("ks", datasets.Options{Root: e.root, Params: map[string]string{"audio_shape": "1024"}})
	wantErr(t, "one audio size", err, "audio_shape", "two sizes")
	_, err = datasets.Open("ks", datasets.Options{Root: e.root, Params: map[string]string{"audio_shape": "8xx"}})
	wantErr(t, "bad audio_shape", err, "audio_shape", `"8xx"`)
	_, err = datasets.Open("ks", datasets.Options{Root: e.root, Params: map[string]string{"val_fraction": "1"}})
	wantErr(t, "val_fraction 1", err, "val_fraction", "(0, 1)")
}

func TestVGGSoundBadData(t *testing.T) {
	e := fixtureEdit{t, copyFixture(t, "vggsound")}
	e.copyIn("nan.npy", "audio/test/yt-gtr9_3.npy")
	e.clone("audio/test/yt-cat9_20.npy", "audio/test/yt-new_1.npy")
	e.clone("video/test/yt-cat9_20", "video/test/yt-new_1")
	b, err := os.ReadFile(e.path("vggsound.csv"))
	e.must(err)
	e.write("vggsound.csv", string(b)+"yt-new,1,\"barking, loud\",test\nyt-gone,4,dog barking,test\n")
	d := openDisk(t, "vggsound", e.root, avParams("vggsound"))
	ps := problems(d)
	if len(ps) != 2 {
		t.Fatalf("problems %v, want a dropped row and a class count", ps)
	}
	wantErr(t, "dropped", errString(ps[0].String()), "vggsound.csv:14", "yt-gone_4", "no frame folder", "dropped")
	wantErr(t, "class count", errString(ps[1].String()), "test rows have 4 classes", "training rows 3")
	wantErr(t, "NaN audio", readErr(t, d, datasets.Test, 0), "yt-gtr9_3.npy", "NaN")
	wantErr(t, "unknown label", readErr(t, d, datasets.Test, 3), "vggsound.csv:13", `"barking, loud"`)

	e.write("vggsound.csv", string(b)+"yt-short,2\n")
	_, err = datasets.Open("vggsound", datasets.Options{Root: e.root})
	wantErr(t, "short row", err, "vggsound.csv:13", "2 fields")
}

func TestCremadBadData(t *testing.T) {
	e := fixtureEdit{t, copyFixture(t, "cremad")}
	e.clone("audio/1091_TIE_ANG_XX.pt", "audio/1092_TIE_ANG_XX.pt")
	e.clone("visual/1091_TIE_ANG_XX", "visual/1092_TIE_ANG_XX")
	e.truncate("audio/1092_TIE_ANG_XX.pt")
	e.copyIn("nan.pt", "audio/1091_DFA_NEU_XX.pt")
	e.copyIn("shape9x8.pt", "audio/1091_IEO_HAP_HI.pt")
	e.write("test.csv", "1091_DFA_NEU_XX,NEU\n1091_IEO_HAP_HI,HAP\n1091_TIE_ANG_XX,XXX\n1003_TIE_ANG_XX,ANG\n1092_TIE_ANG_XX,ANG\n")
	d := openDisk(t, "cremad", e.root, map[string]string{"size": "8", "val_fraction": "0.34", "fps": "3"})
	ps := problems(d)
	var dropped []string
	for _, p := range ps {
		if p.Dropped && p.Split == datasets.Test {
			dropped = append(dropped, p.String())
		}
	}
	if len(dropped) != 2 {
		t.Fatalf("test problems %v, want an unknown label and a short clip dropped", dropped)
	}
	wantErr(t, "unknown label", errString(dropped[0]), "test.csv:3", `label "XXX"`, "NEU")
	wantErr(t, "short clip", errString(dropped[1]), "test.csv:4", "holds 2 files, want at least fps=3")
	wantErr(t, "NaN fbank", readErr(t, d, datasets.Test, 0), "1091_DFA_NEU_XX.pt", "NaN")
	wantErr(t, "wrong shape", readErr(t, d, datasets.Test, 1), "1091_IEO_HAP_HI.pt", "shape [9 8]", "want [10 8]")
	wantErr(t, "truncated .pt", readErr(t, d, datasets.Test, 2), "1092_TIE_ANG_XX.pt")

	e.write("test.csv", "1091_DFA_NEU_XX\n")
	_, err := datasets.Open("cremad", datasets.Options{Root: e.root})
	wantErr(t, "one field", err, "test.csv:1", "want clip_id,EMO")
}

func TestBalancedAVBadData(t *testing.T) {
	e := fixtureEdit{t, copyFixture(t, "balancedav")}
	e.copyIn("nan.pkl", "audio/bav_p9.pkl")
	e.copyIn("shape7x6.pkl", "audio/bav_s9.pkl")
	e.truncate("visual/bav_w9.hdf5")
	e.clone("audio/bav_p1.pkl", "audio/bav_x1.pkl")
	e.clone("visual/bav_p1.hdf5", "visual/bav_x1.hdf5")
	e.write("annotations.json", `{"labels": ["playing piano", "singing", "whistling"], "database": {
		"bav_p1": {"subset": "training", "label": "playing piano"},
		"bav_s1": {"subset": "training", "label": "singing"},
		"bav_p9": {"subset": "testing", "label": "playing piano"},
		"bav_s9": {"subset": "testing", "label": "singing"},
		"bav_w9": {"subset": "testing", "label": "whistling"},
		"bav_x1": {"subset": "testing", "label": "humming"},
		"bav_gone": {"subset": "testing", "label": "singing"}}}`)
	d := openDisk(t, "balancedav", e.root, map[string]string{"size": "8"})
	ps := problems(d)
	if len(ps) != 1 || !ps[0].Dropped {
		t.Fatalf("problems %v, want bav_gone dropped", ps)
	}
	wantErr(t, "dropped", errString(ps[0].String()), "annotations.json", "key bav_gone", "bav_gone.hdf5", "bav_gone.pkl")
	wantErr(t, "NaN audio", readErr(t, d, datasets.Test, 0), "bav_p9.pkl", "NaN")
	wantErr(t, "wrong shape", readErr(t, d, datasets.Test, 1), "bav_s9.pkl", "shape [7 6]", "want [8 6]")
	wantErr(t, "truncated HDF5", readErr(t, d, datasets.Test, 2), "bav_w9.hdf5")
	wantErr(t, "unknown label", readErr(t, d, datasets.Test, 3), `database["bav_x1"].label "humming"`)

	e.write("annotations.json", `{"labels": ["a", "b"], "database": [1, 2]}`)
	_, err := datasets.Open("balancedav", datasets.Options{Root: e.root})
	wantErr(t, "database list", err, "annotations.json", "not an object")
}
