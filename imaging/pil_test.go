package imaging

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// The fixtures in testdata/ are made by tools/fixtures/imaging/make.py with
// Debian's python3-pil (Pillow 9.4): PIL-decoded inputs and the outputs of
// the PIL calls torchvision 0.14 makes for each transform.

type fixtureInput struct {
	Name                    string
	Width, Height, Channels int
	Pixels                  string
	JPEG                    string
}

type fixtureCase struct {
	Name, Op, Input, Output string
	Params                  map[string]float64
	Width, Height, Channels int
}

type fixtures struct {
	Inputs []fixtureInput
	Cases  []fixtureCase
}

func loadFixtures(t *testing.T) (fixtures, map[string]*Image) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f fixtures
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	images := map[string]*Image{}
	for _, in := range f.Inputs {
		images[in.Name] = readRaw(t, in.Pixels, in.Width, in.Height, in.Channels)
	}
	return f, images
}

func readRaw(t *testing.T, name string, w, h, c int) *Image {
	t.Helper()
	pix, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	im := &Image{Width: w, Height: h, Channels: c, Pix: pix}
	if err := im.check(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return im
}

// maxDiff is the largest absolute pixel difference; it fails the test when
// the geometries differ.
func maxDiff(t *testing.T, got, want *Image) int {
	t.Helper()
	if got.Width != want.Width || got.Height != want.Height || got.Channels != want.Channels {
		t.Fatalf("got a %dx%dx%d image, want %dx%dx%d", got.Width, got.Height, got.Channels, want.Width, want.Height, want.Channels)
	}
	d := 0
	for i := range got.Pix {
		d = max(d, abs(int(got.Pix[i])-int(want.Pix[i])))
	}
	return d
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func TestTransformsMatchPIL(t *testing.T) {
	f, images := loadFixtures(t)
	var r Resampler
	ops := map[string]int{}
	for _, c := range f.Cases {
		if c.Op == "to_tensor" {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			src := images[c.Input]
			want := readRaw(t, c.Output, c.Width, c.Height, c.Channels)
			got := &Image{}
			p := c.Params
			switch c.Op {
			case "resize":
				r.Resize(got, src, int(p["width"]), int(p["height"]))
			case "resized_crop":
				var crop Image
				box := Box{Top: int(p["top"]), Left: int(p["left"]), Height: int(p["height"]), Width: int(p["width"])}
				if err := Crop(&crop, src, box); err != nil {
					t.Fatal(err)
				}
				r.Resize(got, &crop, int(p["size"]), int(p["size"]))
			case "hflip":
				got.Reset(src.Width, src.Height, src.Channels)
				copy(got.Pix, src.Pix)
				FlipHorizontal(got)
			case "rotate":
				Rotate(got, src, p["degrees"])
			default:
				t.Fatalf("unknown op %q", c.Op)
			}
			// The algorithms are Pillow's, so the outputs agree exactly.
			if d := maxDiff(t, got, want); d != 0 {
				t.Errorf("max difference from PIL %d levels, want 0", d)
			}
			ops[c.Op]++
		})
	}
	for _, op := range []string{"resize", "resized_crop", "hflip", "rotate"} {
		if ops[op] == 0 {
			t.Errorf("no %s case ran", op)
		}
	}
}

func TestToTensorMatchesTorch(t *testing.T) {
	f, images := loadFixtures(t)
	ran := 0
	for _, c := range f.Cases {
		if c.Op != "to_tensor" {
			continue
		}
		src := images[c.Input]
		raw, err := os.ReadFile(filepath.Join("testdata", c.Output))
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float32, len(raw)/4)
		for i := range want {
			want[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		var norm *Normalize
		if c.Params["normalize"] != 0 {
			n := ImageNet()
			norm = &n
		}
		plane := src.Width * src.Height
		got := make([]float32, plane*src.Channels)
		if err := ToTensor(got, plane, src, norm); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, want %d", c.Name, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: value %d = %v, want %v (float32 arithmetic as torch)", c.Name, i, got[i], want[i])
			}
		}
		ran++
	}
	if ran != 2 {
		t.Fatalf("%d to_tensor cases ran, want 2", ran)
	}
}

func TestDecodeJPEGCloseToPIL(t *testing.T) {
	f, images := loadFixtures(t)
	for _, in := range f.Inputs {
		if in.JPEG == "" {
			continue
		}
		t.Run(in.Name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", in.JPEG))
			if err != nil {
				t.Fatal(err)
			}
			var got Image
			if err := DecodeJPEG(&got, data, in.Channels); err != nil {
				t.Fatal(err)
			}
			want := images[in.Name]
			d := maxDiff(t, &got, want)
			sum := 0
			for i := range got.Pix {
				sum += abs(int(got.Pix[i]) - int(want.Pix[i]))
			}
			mean := float64(sum) / float64(len(got.Pix))
			t.Logf("Go decode vs PIL (libjpeg-turbo): max %d levels, mean %.3f", d, mean)
			// Chroma upsampling and colour conversion are libjpeg's; what is
			// left is Go's IDCT rounding differently from libjpeg's islow.
			if d > 3 || mean > 0.1 {
				t.Errorf("decode differs from PIL by up to %d levels (mean %.3f): want at most 3 (mean 0.1)", d, mean)
			}
		})
	}
}
