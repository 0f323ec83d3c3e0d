package datasets

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"bmc/formats/torchpt"
)

// CREMA-D (spec §3): split CSVs of rows "clip_id,EMO"; audio_path/<clip>.pt
// holds a precomputed (T, F) filterbank tensor (torch.save); visual_path/
// <clip>/ holds the clip's frames. A row is kept when its label is one of
// the six emotions, its .pt exists and its frame folder has at least fps
// files. The reference picks frames from the folder's unsorted listing;
// bmc sorts it by name, so the choice does not depend on the filesystem.

// cremadClasses are the emotion codes in label order.
func cremadClasses() []string { return []string{"NEU", "HAP", "SAD", "FEA", "DIS", "ANG"} }

func cremadEntry() Entry {
	return Entry{
		Name: "cremad", Description: "CREMA-D emotion recognition, audio + video", Classes: len(cremadClasses()),
		Modalities: []Modality{{Name: "audio"}, {Name: "visual", Shape: []int64{3, 2, 224, 224}}},
		Layout: "train_txt/test_txt: CSV rows 'clip_id,EMO' (NEU HAP SAD FEA DIS ANG); audio_path/<clip>.pt (torch.save'd (T, F) fbank); " +
			"visual_path/<clip>/ frames (sorted by name, fps picked)",
		Params: append([]Param{
			{Name: "train_txt", Default: "train.csv", Doc: "training clips, CSV rows 'clip_id,EMO'"},
			{Name: "test_txt", Default: "test.csv", Doc: "test clips, CSV rows 'clip_id,EMO'"},
			{Name: "audio_path", Default: "audio", Doc: "filterbank tensors, <clip>.pt"},
			{Name: "visual_path", Default: "visual", Doc: "frame folders, one per clip"},
			{Name: "fps", Default: "2", Doc: "frames picked per clip"},
			{Name: "audio_shape", Default: "auto", Doc: "filterbank shape T×F, or auto: the first training clip's"},
		}, commonParamDocs(false)...),
		Available: true,
		open:      openCremad,
	}
}

type cremad struct {
	clips  []avClip
	fps    int
	audio  audioFeatures
	frames *frameDecoder
}

func openCremad(o Options) (Dataset, error) {
	e := cremadEntry()
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
	c := &cremad{audio: audioFeatures{load: torchpt.ReadTensor}, frames: newFrameDecoder(common.size)}
	if c.fps, err = p.int("fps", 1); err != nil {
		return nil, err
	}
	audioDir, visualDir := p.path("audio_path"), p.path("visual_path")
	classes := cremadClasses()
	var problems []Problem
	index := func(split, list string) ([]item, error) {
		f, err := os.Open(list)
		if err != nil {
			return nil, fmt.Errorf("cremad %s list: %w", split, err)
		}
		defer f.Close()
		r := csv.NewReader(f)
		r.FieldsPerRecord = -1
		var items []item
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				return items, nil
			}
			if err != nil {
				return nil, fmt.Errorf("cremad %s list: %w", split, err)
			}
			line, _ := r.FieldPos(0)
			if len(rec) < 2 {
				return nil, fmt.Errorf("%s:%d: %d field: want clip_id,EMO", list, line, len(rec))
			}
			drop := func(msg string) {
				problems = append(problems, Problem{Split: split, File: list, Line: line, Dropped: true, Msg: "clip " + rec[0] + ": " + msg})
			}
			label := slices.Index(classes, rec[1])
			clip := avClip{audio: filepath.Join(audioDir, rec[0]+".pt"), visual: filepath.Join(visualDir, rec[0])}
			if label < 0 {
				drop(fmt.Sprintf("label %q is not one of %v", rec[1], classes))
				continue
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
			if len(names) < c.fps {
				drop(fmt.Sprintf("%s holds %d files, want at least fps=%d", clip.visual, len(names), c.fps))
				continue
			}
			items = append(items, item{id: rec[0], label: int64(label), row: len(c.clips)})
			c.clips = append(c.clips, clip)
		}
	}
	train, err := index(Train, p.path("train_txt"))
	if err != nil {
		return nil, err
	}
	test, err := index(Test, p.path("test_txt"))
	if err != nil {
		return nil, err
	}
	first := ""
	if len(train) > 0 {
		first = c.clips[train[0].row].audio
	}
	if err := c.audio.settle(e.Name, audioShape, first); err != nil {
		return nil, err
	}
	s := int64(common.size)
	spec := Spec{Name: e.Name, Classes: len(cremadClasses()), Modalities: []Modality{
		{Name: "audio", Shape: c.audio.modalityShape()},
		{Name: "visual", Shape: []int64{3, int64(c.fps), s, s}},
	}}
	return newDiskDataset(spec, c.read, train, nil, test, common, problems), nil
}

func (c *cremad) read(it item, rng *rand.Rand, dst []Buffer) error {
	clip := c.clips[it.row]
	if err := c.audio.read(clip.audio, dst[0].F32); err != nil {
		return err
	}
	names, err := listDir(clip.visual)
	if err != nil {
		return err
	}
	if len(names) < c.fps {
		return fmt.Errorf("%s holds %d files, want at least fps=%d", clip.visual, len(names), c.fps)
	}
	aug := augNone
	if rng != nil {
		aug = augCropFlip
	}
	for i, idx := range pickMiddle(len(names), c.fps, rng) {
		if err := c.frames.rgbFile(filepath.Join(clip.visual, names[idx]), aug, rng, dst[1].F32, i, c.fps); err != nil {
			return err
		}
	}
	return nil
}
