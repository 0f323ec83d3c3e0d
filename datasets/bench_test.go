package datasets_test

import (
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"maps"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"testing"

	"bmc/datasets"
)

// writeJPEG writes a w×h JPEG with smooth gradients (gray when gray).
func writeJPEG(b *testing.B, path string, w, h int, gray bool, seed int) {
	b.Helper()
	var img image.Image
	if gray {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				g.SetGray(x, y, color.Gray{Y: uint8(x + y + seed)})
			}
		}
		img = g
	} else {
		c := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				c.SetRGBA(x, y, color.RGBA{R: uint8(x + seed), G: uint8(y), B: uint8(x ^ y), A: 255})
			}
		}
		img = c
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := jpeg.Encode(f, img, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReadUCF101 reads one UCF-101 sample (3 RGB frames and 3 flow
// pairs of 320×240, the dataset's frame size) at 224, in training (crop
// choice, flips) and evaluation.
func BenchmarkReadUCF101(b *testing.B) {
	root := b.TempDir()
	const clips = 4
	var train, test string
	for c := range clips {
		name := fmt.Sprintf("v_Bench_g01_c%02d", c)
		for k := 1; k <= 6; k++ {
			writeJPEG(b, filepath.Join(root, "ucf101-frames-1fps/video-set", name, fmt.Sprintf("frame_0000%d.jpg", k)), 320, 240, false, k)
		}
		for k := 1; k <= 12; k++ {
			for _, uv := range []string{"u", "v"} {
				writeJPEG(b, filepath.Join(root, "tvl1_flow", uv, name, fmt.Sprintf("frame00%04d.jpg", k)), 320, 240, true, k)
			}
		}
		train += "Bench/" + name + ".avi 1\n"
		test += "Bench/" + name + ".avi\n"
	}
	for file, content := range map[string]string{"classInd.txt": "1 Bench\n2 Other\n", "trainlist01.txt": train, "testlist01.txt": test} {
		if err := os.WriteFile(filepath.Join(root, file), []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	d, err := datasets.Open("ucf101", datasets.Options{Root: root, Params: map[string]string{"val_fraction": "0.25"}})
	if err != nil {
		b.Fatal(err)
	}
	for _, split := range []string{datasets.Train, datasets.Test} {
		b.Run(split, func(b *testing.B) {
			sp, err := d.Split(split)
			if err != nil {
				b.Fatal(err)
			}
			r := sp.(datasets.SeededReader)
			dst := sampleBuffers(d.Spec())
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := r.ReadSeeded(i%sp.Len(), uint64(i), dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLoaders reads each benchmark dataset's fixture through the
// parallel loader at the full image size (224) with one worker per CPU, in
// training mode (augmentation, random frames), and reports samples per
// second. The fixtures' source images are small, so this times the resize,
// augmentation, normalisation and the file formats more than JPEG decoding
// (BenchmarkReadUCF101 decodes 320×240 frames).
func BenchmarkLoaders(b *testing.B) {
	for _, name := range slices.Sorted(maps.Keys(fixtureParams)) {
		b.Run(name, func(b *testing.B) {
			params := maps.Clone(fixtureParams[name])
			if _, ok := params["size"]; ok {
				params["size"] = "224"
			}
			d, err := datasets.Open(name, datasets.Options{Root: "testdata/" + name, Params: params})
			if err != nil {
				b.Fatal(err)
			}
			sp, err := d.Split(datasets.Train)
			if err != nil {
				b.Fatal(err)
			}
			l, err := datasets.NewLoader(sp, d.Spec(), datasets.LoaderOptions{BatchSize: 1, Workers: goruntime.NumCPU(), Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			order := make([]int, sp.Len())
			for i := range order {
				order[i] = i
			}
			samples := 0
			for epoch := 0; b.Loop(); epoch++ {
				samples += drainEpoch(b, l, epoch, order)
			}
			b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
