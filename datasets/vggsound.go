package datasets

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"path/filepath"

	"bmc/formats/npy"
)

// VGGSound (spec §3): one CSV of rows "ytid,start_seconds,label text,split"
// (split train or test); the sample id is <ytid>_<start>; audio
// <audio_root>/<id>.npy and frame folders <video_root>/<id>/ per split. A
// row is kept when its frame folder has more than 3 files and its .npy
// exists. Classes are numbered in order of first appearance among the kept
// training rows.

func vggsoundEntry() Entry {
	return Entry{
		Name: "vggsound", Description: "VGGSound, audio + video", Classes: 309,
		Modalities: []Modality{{Name: "audio"}, {Name: "visual", Shape: []int64{3, 3, 224, 224}}},
		Layout: "csv_root: rows 'ytid,start,label text,train|test'; audio_train_root|audio_test_root/<ytid>_<start>.npy (2-D features); " +
			"video_train_root|video_test_root/<ytid>_<start>/ frames (sorted by name)",
		Params: append([]Param{
			{Name: "csv_root", Default: "vggsound.csv", Doc: "the clip list, rows 'ytid,start,label text,split'"},
			{Name: "video_train_root", Default: "video/train", Doc: "training frame folders"},
			{Name: "video_test_root", Default: "video/test", Doc: "test frame folders"},
			{Name: "audio_train_root", Default: "audio/train", Doc: "training audio features, <ytid>_<start>.npy"},
			{Name: "audio_test_root", Default: "audio/test", Doc: "test audio features, <ytid>_<start>.npy"},
			{Name: "use_video_frames", Default: "3", Doc: "frames per clip"},
			{Name: "audio_shape", Default: "auto", Doc: "audio array shape H×W, or auto: the first training clip's"},
		}, commonParamDocs(false)...),
		Available: true,
		open:      openVGGSound,
	}
}

func openVGGSound(o Options) (Dataset, error) {
	e := vggsoundEntry()
	p, common, err := newParams(e, o, false)
	if err != nil {
		return nil, err
	}
	audioShape, err := p.shape("audio_shape")
	if err != nil {
		return nil, err
	}
	pick, err := p.int("use_video_frames", 1)
	if err != nil {
		return nil, err
	}
	d := newAVDataset(common.size, npy.ReadFile, pick, vggsoundFrames)
	list := p.path("csv_root")
	type row struct {
		line  int
		id    string
		label string
		clip  avClip
	}
	rows := map[string][]row{}
	var problems []Problem
	err = eachCSVRecord(list, "vggsound clip list", func(rec []string, line int) error {
		if len(rec) < 4 {
			return fmt.Errorf("%s:%d: %d fields: want ytid,start,label,split", list, line, len(rec))
		}
		split := rec[3]
		if split != Train && split != Test {
			return nil
		}
		id := rec[0] + "_" + rec[1]
		clip := avClip{audio: filepath.Join(p.path("audio_"+split+"_root"), id+".npy"), visual: filepath.Join(p.path("video_"+split+"_root"), id)}
		if why := cmp.Or(checkFrameFolder(clip.visual, 4, "more than 3"), checkAudioFile(clip.audio)); why != nil {
			problems = append(problems, droppedClip(split, list, line, id, why.Error()))
			return nil
		}
		rows[split] = append(rows[split], row{line: line, id: id, label: rec[2], clip: clip})
		return nil
	})
	if err != nil {
		return nil, err
	}
	classOf := map[string]int64{}
	var trainClasses []string
	for _, rw := range rows[Train] {
		if _, ok := classOf[rw.label]; !ok {
			classOf[rw.label] = int64(len(trainClasses))
			trainClasses = append(trainClasses, rw.label)
		}
	}
	if len(trainClasses) < 2 {
		return nil, fmt.Errorf("%s: %d classes among the kept training rows: want at least 2", list, len(trainClasses))
	}
	items := map[string][]item{}
	testClasses := map[string]bool{}
	for _, split := range []string{Train, Test} {
		for _, rw := range rows[split] {
			it := d.add(rw.id, rw.clip)
			c, ok := classOf[rw.label]
			if !ok {
				it.err = fmt.Errorf("%s:%d: label %q does not occur among the kept training rows", list, rw.line, rw.label)
			}
			if split == Test {
				testClasses[rw.label] = true
			}
			it.label = c
			items[split] = append(items[split], it)
		}
	}
	if len(testClasses) != len(trainClasses) {
		problems = append(problems, Problem{Split: Test, File: list,
			Msg: fmt.Sprintf("the kept test rows have %d classes, the kept training rows %d (the reference requires equal counts)", len(testClasses), len(trainClasses))})
	}
	return d.dataset(e.Name, len(trainClasses), audioShape, items[Train], items[Test], common, problems)
}

// vggsoundFrames picks frames of a clip's sorted folder listing by
// pickClipped; frame number t is the t-th file.
func vggsoundFrames(folder string, pick int, rng *rand.Rand) ([]videoFrame, error) {
	names, err := listDir(folder)
	if err != nil {
		return nil, err
	}
	picked, err := pickClipped(len(names), pick, 9, rng)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", folder, err)
	}
	var frames []videoFrame
	for _, t := range picked {
		if t > len(names) {
			return nil, fmt.Errorf("%s holds %d files: frame %d is past the end", folder, len(names), t)
		}
		frames = append(frames, videoFrame{path: filepath.Join(folder, names[t-1])})
	}
	return frames, nil
}
