package datasets

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"

	"bmc/formats/npy"
)

// Kinetics-Sounds (spec §3): split lines "<name> … <label>" (space
// separated, integer label last), <audio>/<name>.npy and 1 fps frame
// folders <visual>/<name>/frame_0000<t>.jpg, each for train and test. A
// clip is kept when its .npy exists and its frame folder has more than 3
// files.

func kineticsEntry() Entry {
	return Entry{
		Name: "ks", Description: "Kinetics-Sounds, audio + video", Classes: 31,
		Modalities: []Modality{{Name: "audio", Shape: []int64{1, 1024, 128}}, {Name: "visual", Shape: []int64{3, 3, 224, 224}}},
		Layout: "csv_path_train|test: lines '<name> ... <label>'; audio_path_train|test/<name>.npy (2-D features); " +
			"visual_path_train|test/<name>/frame_0000<t>.jpg (1 fps)",
		Params: append([]Param{
			{Name: "csv_path_train", Default: "ks_train.txt", Doc: "training clips, lines '<name> ... <label>'"},
			{Name: "csv_path_test", Default: "ks_test.txt", Doc: "test clips, lines '<name> ... <label>'"},
			{Name: "audio_path_train", Default: "train_spec", Doc: "training audio features, <name>.npy"},
			{Name: "audio_path_test", Default: "test_spec", Doc: "test audio features, <name>.npy"},
			{Name: "visual_path_train", Default: "train-frames-1fps/train", Doc: "training frame folders"},
			{Name: "visual_path_test", Default: "test-frames-1fps/test", Doc: "test frame folders"},
			{Name: "classes", Default: "31", Doc: "number of classes; labels must lie in [0, classes)"},
			{Name: "audio_shape", Default: "1024x128", Doc: "audio array shape H×W (fbank frames × mel bins), or auto: the first training clip's"},
		}, commonParamDocs(false)...),
		Available: true,
		open:      openKinetics,
	}
}

// avClip is a clip of an audio-video dataset: its audio file and its
// frame folder (or file).
type avClip struct {
	audio, visual string
}

type kinetics struct {
	clips  []avClip // indexed by item.row
	audio  audioFeatures
	frames *frameDecoder
}

func openKinetics(o Options) (Dataset, error) {
	e := kineticsEntry()
	p, err := newParams(e.Name, e.Params, o)
	if err != nil {
		return nil, err
	}
	common, err := p.common(false)
	if err != nil {
		return nil, err
	}
	classes, err := p.int("classes", 2)
	if err != nil {
		return nil, err
	}
	audioShape, err := p.shape("audio_shape")
	if err != nil {
		return nil, err
	}
	k := &kinetics{audio: audioFeatures{load: npy.ReadFile}, frames: newFrameDecoder(common.size)}
	var problems []Problem
	index := func(split string) ([]item, error) {
		list := p.path("csv_path_" + split)
		audioDir, visualDir := p.path("audio_path_"+split), p.path("visual_path_"+split)
		lines, err := readLines(list, "ks "+split+" list")
		if err != nil {
			return nil, err
		}
		var items []item
		for n, line := range lines {
			f := strings.Split(line, " ")
			if f[0] == "" {
				continue
			}
			clip := avClip{audio: filepath.Join(audioDir, f[0]+".npy"), visual: filepath.Join(visualDir, f[0])}
			drop := func(msg string) {
				problems = append(problems, Problem{Split: split, File: list, Line: n + 1, Dropped: true, Msg: "clip " + f[0] + ": " + msg})
			}
			if !isFile(clip.audio) {
				drop("no audio file " + clip.audio)
				continue
			}
			names, err := listDir(clip.visual)
			if err != nil {
				drop("no frame folder " + clip.visual)
				continue
			}
			if len(names) <= 3 {
				drop(fmt.Sprintf("%s holds %d files, want more than 3", clip.visual, len(names)))
				continue
			}
			it := item{id: f[0], row: len(k.clips)}
			k.clips = append(k.clips, clip)
			label, err := strconv.Atoi(f[len(f)-1])
			switch {
			case err != nil:
				it.err = fmt.Errorf("%s:%d: label %q: want an integer, last on the line", list, n+1, f[len(f)-1])
			case label < 0 || label >= classes:
				it.err = fmt.Errorf("%s:%d: label %d is outside [0, %d) (parameter classes)", list, n+1, label, classes)
			}
			it.label = int64(label)
			items = append(items, it)
		}
		return items, nil
	}
	train, err := index(Train)
	if err != nil {
		return nil, err
	}
	test, err := index(Test)
	if err != nil {
		return nil, err
	}
	first := ""
	if len(train) > 0 {
		first = k.clips[train[0].row].audio
	}
	if err := k.audio.settle(e.Name, audioShape, first); err != nil {
		return nil, err
	}
	s := int64(common.size)
	spec := Spec{Name: e.Name, Classes: classes, Modalities: []Modality{
		{Name: "audio", Shape: k.audio.modalityShape()},
		{Name: "visual", Shape: []int64{3, 3, s, s}},
	}}
	return newDiskDataset(spec, k.read, train, nil, test, common, problems), nil
}

func (k *kinetics) read(it item, rng *rand.Rand, dst []Buffer) error {
	clip := k.clips[it.row]
	if err := k.audio.read(clip.audio, dst[0].F32); err != nil {
		return err
	}
	names, err := listDir(clip.visual)
	if err != nil {
		return err
	}
	jpgs := 0
	for _, n := range names {
		if strings.HasSuffix(n, "jpg") {
			jpgs++
		}
	}
	aug := augNone
	if rng != nil {
		aug = augCropFlip
	}
	for i, t := range pickClipped(jpgs, 3, 9, rng) {
		path := filepath.Join(clip.visual, "frame_0000"+strconv.Itoa(t)+".jpg")
		if err := k.frames.rgbFile(path, aug, rng, dst[1].F32, i, 3); err != nil {
			return err
		}
	}
	return nil
}
