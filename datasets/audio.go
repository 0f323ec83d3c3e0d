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

// settle fixes the shape: the parameter's value, or, when the parameter is
// "auto" (nil), the shape of the first training clip's array (candidates
// lists the training clips' files in order). With skipBad, clips that do
// not read as 2-D arrays are passed over, each returned as a problem, and
// the first readable one gives the shape; without, the first clip decides.
func (a *audioFeatures) settle(dataset string, param []int64, candidates []string, skipBad bool) ([]Problem, error) {
	if param != nil {
		if len(param) != 2 {
			return nil, fmt.Errorf("dataset %s: parameter audio_shape=%v: want two sizes, like 1024x128", dataset, param)
		}
		a.shape = param
		return nil, nil
	}
	if len(candidates) == 0 {
		return nil, fmt.Errorf("dataset %s: audio_shape=auto needs a training clip to read the shape from, and train has none", dataset)
	}
	var passed []Problem
	for _, path := range candidates {
		arr, err := a.load(path)
		if err == nil && len(arr.Shape) != 2 {
			err = fmt.Errorf("%s holds an array of shape %v: want 2-D features", path, arr.Shape)
		}
		if err == nil {
			a.shape = []int64{int64(arr.Shape[0]), int64(arr.Shape[1])}
			return passed, nil
		}
		if !skipBad {
			return nil, fmt.Errorf("dataset %s: audio_shape=auto reads the shape from the first training clip: %w (--skip-bad passes over unreadable clips; audio_shape=HxW names the shape)", dataset, err)
		}
		passed = append(passed, Problem{Split: Train, File: path, Msg: "audio_shape=auto passed over this clip: " + err.Error()})
	}
	return nil, fmt.Errorf("dataset %s: audio_shape=auto: none of the %d training clips reads as a 2-D array (the first: %s)", dataset, len(candidates), passed[0].Msg)
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
