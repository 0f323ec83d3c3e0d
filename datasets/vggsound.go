package datasets

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
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

type vggsound struct {
	clips  []avClip
	pick   int
	audio  audioFeatures
	frames *frameDecoder
}

func openVGGSound(o Options) (Dataset, error) {
	e := vggsoundEntry()
	p, err := newParams(e.Name, e.Params, o)
	if err != nil {
		return nil, err
	}
	common, err := p.common(false)
	if err != nil {
		return nil, err
	}
	audioShape, err := p.shape("audio_shape")
	if err != nil {
		return nil, err
	}
	v := &vggsound{audio: audioFeatures{load: npy.ReadFile}, frames: newFrameDecoder(common.size)}
	if v.pick, err = p.int("use_video_frames", 1); err != nil {
		return nil, err
	}
	list := p.path("csv_root")
	f, err := os.Open(list)
	if err != nil {
		return nil, fmt.Errorf("vggsound clip list: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	type row struct {
		line  int
		id    string
		label string
		clip  avClip
	}
	rows := map[string][]row{}
	var problems []Problem
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("vggsound clip list: %w", err)
		}
		line, _ := r.FieldPos(0)
		if len(rec) < 4 {
			return nil, fmt.Errorf("%s:%d: %d fields: want ytid,start,label,split", list, line, len(rec))
		}
		split := rec[3]
		if split != Train && split != Test {
			continue
		}
		id := rec[0] + "_" + rec[1]
		clip := avClip{audio: filepath.Join(p.path("audio_"+split+"_root"), id+".npy"), visual: filepath.Join(p.path("video_"+split+"_root"), id)}
		drop := func(msg string) {
			problems = append(problems, Problem{Split: split, File: list, Line: line, Dropped: true, Msg: "clip " + id + ": " + msg})
		}
		names, err := listDir(clip.visual)
		switch {
		case err != nil:
			drop("no frame folder " + clip.visual)
		case len(names) <= 3:
			drop(fmt.Sprintf("%s holds %d files, want more than 3", clip.visual, len(names)))
		case !isFile(clip.audio):
			drop("no audio file " + clip.audio)
		default:
			rows[split] = append(rows[split], row{line: line, id: id, label: rec[2], clip: clip})
		}
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
			it := item{id: rw.id, row: len(v.clips)}
			v.clips = append(v.clips, rw.clip)
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
	first := ""
	if len(items[Train]) > 0 {
		first = v.clips[items[Train][0].row].audio
	}
	if err := v.audio.settle(e.Name, audioShape, first); err != nil {
		return nil, err
	}
	s := int64(common.size)
	spec := Spec{Name: e.Name, Classes: len(trainClasses), Modalities: []Modality{
		{Name: "audio", Shape: v.audio.modalityShape()},
		{Name: "visual", Shape: []int64{3, int64(v.pick), s, s}},
	}}
	return newDiskDataset(spec, v.read, items[Train], nil, items[Test], common, problems), nil
}

func (v *vggsound) read(it item, rng *rand.Rand, dst []Buffer) error {
	clip := v.clips[it.row]
	if err := v.audio.read(clip.audio, dst[0].F32); err != nil {
		return err
	}
	names, err := listDir(clip.visual)
	if err != nil {
		return err
	}
	aug := augNone
	if rng != nil {
		aug = augCropFlip
	}
	for i, t := range pickClipped(len(names), v.pick, 9, rng) {
		if t > len(names) {
			return fmt.Errorf("%s holds %d files: frame %d is past the end", clip.visual, len(names), t)
		}
		path := filepath.Join(clip.visual, names[t-1])
		if err := v.frames.rgbFile(path, aug, rng, dst[1].F32, i, v.pick); err != nil {
			return err
		}
	}
	return nil
}
