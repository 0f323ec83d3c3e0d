package datasets

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"bmc/formats/ndarray"
)

// The audio-video datasets (CREMA-D, Kinetics-Sounds, VGGSound,
// BalancedAV) share their samples' form: modality "audio" is the clip's
// precomputed audio array (audio.go), modality "visual" a few RGB frames
// of the clip under the audio-video transforms. What differs — the clip
// lists, the file names and the frame choice — stays in each dataset's
// file; avDataset is the rest.

// avClip is a clip of an audio-video dataset: its audio file and its
// frame folder (or file).
type avClip struct {
	audio, visual string
}

// videoFrame is one picked frame: the JPEG file path, or, for a frame
// held inside a container file (path ""), the JPEG bytes data, which
// errors call name.
type videoFrame struct {
	path string
	name string
	data []byte
}

// framePicker picks the pick frames of the clip whose frame folder or
// video file is visual; rng is nil for evaluation's fixed choice.
type framePicker func(visual string, pick int, rng *rand.Rand) ([]videoFrame, error)

// avDataset indexes and reads one audio-video dataset.
type avDataset struct {
	clips      []avClip // indexed by item.row
	pick       int      // frames per sample
	pickFrames framePicker
	audio      audioFeatures
	frames     *frameDecoder
}

// newAVDataset starts an audio-video dataset whose audio arrays loadAudio
// reads and whose samples hold pick frames of side size.
func newAVDataset(size int, loadAudio func(path string) (*ndarray.Array, error), pick int, pickFrames framePicker) *avDataset {
	return &avDataset{pick: pick, pickFrames: pickFrames, audio: audioFeatures{load: loadAudio}, frames: newFrameDecoder(size)}
}

// add keeps a clip and returns its item (label unset).
func (d *avDataset) add(id string, clip avClip) item {
	it := item{id: id, row: len(d.clips)}
	d.clips = append(d.clips, clip)
	return it
}

// dataset fixes the audio shape (parameter audio_shape, or the first
// training clip's) and assembles the Dataset, holding val out of train.
func (d *avDataset) dataset(name string, classes int, audioShape []int64, train, test []item, common commonParams, problems []Problem) (Dataset, error) {
	var candidates []string
	for _, it := range train {
		if it.err == nil {
			candidates = append(candidates, d.clips[it.row].audio)
		}
	}
	passed, err := d.audio.settle(name, audioShape, candidates, common.skipBad)
	if err != nil {
		return nil, err
	}
	problems = append(problems, passed...)
	s := int64(common.size)
	spec := Spec{Name: name, Classes: classes, Modalities: []Modality{
		{Name: "audio", Shape: d.audio.modalityShape()},
		{Name: "visual", Shape: []int64{3, int64(d.pick), s, s}},
	}}
	return newDiskDataset(spec, d.read, train, nil, test, common, problems), nil
}

func (d *avDataset) read(it item, rng *rand.Rand, dst []Buffer) error {
	clip := d.clips[it.row]
	if err := d.audio.read(clip.audio, dst[0].F32); err != nil {
		return err
	}
	frames, err := d.pickFrames(clip.visual, d.pick, rng)
	if err != nil {
		return err
	}
	for i, f := range frames {
		if f.path != "" {
			err = d.frames.rgbFile(f.path, augCropFlip, rng, dst[1].F32, i, d.pick)
		} else {
			err = d.frames.rgb(f.data, f.name, augCropFlip, rng, dst[1].F32, i, d.pick)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkAudioFile is the reference's test that a clip has its audio file.
func checkAudioFile(path string) error {
	if isFile(path) {
		return nil
	}
	return errors.New("no audio file " + path)
}

// checkFrameFolder is the reference's test that a clip's frame folder
// exists and holds at least least files; want states the rule.
func checkFrameFolder(dir string, least int, want string) error {
	names, err := listDir(dir)
	if err != nil {
		return errors.New("no frame folder " + dir)
	}
	if len(names) < least {
		return fmt.Errorf("%s holds %d files, want %s", dir, len(names), want)
	}
	return nil
}

// droppedClip records a row left out of its split as the reference
// leaves it out.
func droppedClip(split, list string, line int, clip, why string) Problem {
	return Problem{Split: split, File: list, Line: line, Dropped: true, Msg: "clip " + clip + ": " + why}
}
