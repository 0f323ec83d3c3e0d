package datasets

import (
	"fmt"
	"slices"

	"bmc/formats/ndarray"
)

// Precomputed audio features: one 2-D float array per clip (a spectrogram
// or filterbank), read as (1, H, W). The preprocessing that made them is
// not part of the reference (spec §3), so bmc fixes the array shape per
// dataset (parameter audio_shape, or the first training clip's shape with
// "auto") and refuses a clip of another shape or with a non-finite value;
// nothing is padded or cropped.

// audioFeatures reads one dataset's audio arrays.
type audioFeatures struct {
	load  func(path string) (*ndarray.Array, error)
	shape []int64 // (H, W)
}

// settle fixes the shape: the parameter's value, or the shape of the
// array at firstPath when the parameter is "auto" (nil). With no clip to
// look at, "auto" is an error.
func (a *audioFeatures) settle(dataset string, param []int64, firstPath string) error {
	if param != nil {
		if len(param) != 2 {
			return fmt.Errorf("dataset %s: parameter audio_shape=%v: want two sizes, like 1024x128", dataset, param)
		}
		a.shape = param
		return nil
	}
	if firstPath == "" {
		return fmt.Errorf("dataset %s: audio_shape=auto needs a training clip to read the shape from, and train has none", dataset)
	}
	arr, err := a.load(firstPath)
	if err != nil {
		return fmt.Errorf("dataset %s: audio_shape=auto: %w", dataset, err)
	}
	if len(arr.Shape) != 2 {
		return fmt.Errorf("dataset %s: audio_shape=auto: %s holds an array of shape %v: want 2-D features", dataset, firstPath, arr.Shape)
	}
	a.shape = []int64{int64(arr.Shape[0]), int64(arr.Shape[1])}
	return nil
}

// modalityShape is the (1, H, W) sample shape.
func (a *audioFeatures) modalityShape() []int64 { return append([]int64{1}, a.shape...) }

// read loads the array at path into dst.
func (a *audioFeatures) read(path string, dst []float32) error {
	arr, err := a.load(path)
	if err != nil {
		return err
	}
	return a.put(arr, path, dst)
}

// put checks arr, from file, and copies it into dst.
func (a *audioFeatures) put(arr *ndarray.Array, file string, dst []float32) error {
	got := make([]int64, len(arr.Shape))
	for i, d := range arr.Shape {
		got[i] = int64(d)
	}
	if !slices.Equal(got, a.shape) {
		return fmt.Errorf("%s: audio array has shape %v, want %v (parameter audio_shape)", file, got, a.shape)
	}
	x, err := arr.Float32s()
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if err := checkFinite(x); err != nil {
		return fmt.Errorf("%s: audio %w", file, err)
	}
	copy(dst, x)
	return nil
}
