package datasets

import (
	"cmp"
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

func openKinetics(o Options) (Dataset, error) {
	e := kineticsEntry()
	p, common, err := newParams(e, o, false)
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
	d := newAVDataset(common.size, npy.ReadFile, 3, kineticsFrames)
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
			if why := cmp.Or(checkAudioFile(clip.audio), checkFrameFolder(clip.visual, 4, "more than 3")); why != nil {
				problems = append(problems, droppedClip(split, list, n+1, f[0], why.Error()))
				continue
			}
			it := d.add(f[0], clip)
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
	return d.dataset(e.Name, classes, audioShape, train, test, common, problems)
}

// kineticsFrames picks frames frame_0000<t>.jpg of a clip's folder by
// pickClipped over its number of .jpg files.
func kineticsFrames(folder string, pick int, rng *rand.Rand) ([]videoFrame, error) {
	names, err := listDir(folder)
	if err != nil {
		return nil, err
	}
	jpgs := 0
	for _, n := range names {
		if strings.HasSuffix(n, "jpg") {
			jpgs++
		}
	}
	picked, err := pickClipped(jpgs, pick, 9, rng)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", folder, err)
	}
	var frames []videoFrame
	for _, t := range picked {
		frames = append(frames, videoFrame{path: filepath.Join(folder, "frame_0000"+strconv.Itoa(t)+".jpg")})
	}
	return frames, nil
}
