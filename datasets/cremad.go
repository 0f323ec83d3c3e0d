package datasets

import (
	"cmp"
	"fmt"
	"math/rand/v2"
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

func openCremad(o Options) (Dataset, error) {
	e := cremadEntry()
	p, common, err := newParams(e, o, false)
	if err != nil {
		return nil, err
	}
	audioShape, err := p.shape("audio_shape")
	if err != nil {
		return nil, err
	}
	fps, err := p.int("fps", 1)
	if err != nil {
		return nil, err
	}
	d := newAVDataset(common.size, torchpt.ReadTensor, fps, cremadFrames)
	audioDir, visualDir := p.path("audio_path"), p.path("visual_path")
	classes := cremadClasses()
	var problems []Problem
	index := func(split, list string) ([]item, error) {
		var items []item
		err := eachCSVRecord(list, "cremad "+split+" list", func(rec []string, line int) error {
			if len(rec) < 2 {
				return fmt.Errorf("%s:%d: %d field: want clip_id,EMO", list, line, len(rec))
			}
			label := slices.Index(classes, rec[1])
			clip := avClip{audio: filepath.Join(audioDir, rec[0]+".pt"), visual: filepath.Join(visualDir, rec[0])}
			var why error
			if label < 0 {
				why = fmt.Errorf("label %q is not one of %v", rec[1], classes)
			} else {
				why = cmp.Or(checkAudioFile(clip.audio), checkFrameFolder(clip.visual, fps, fmt.Sprintf("at least fps=%d", fps)))
			}
			if why != nil {
				problems = append(problems, droppedClip(split, list, line, rec[0], why.Error()))
				return nil
			}
			it := d.add(rec[0], clip)
			it.label = int64(label)
			items = append(items, it)
			return nil
		})
		return items, err
	}
	train, err := index(Train, p.path("train_txt"))
	if err != nil {
		return nil, err
	}
	test, err := index(Test, p.path("test_txt"))
	if err != nil {
		return nil, err
	}
	return d.dataset(e.Name, len(classes), audioShape, train, test, common, problems)
}

// cremadFrames picks fps frames of a clip's folder by pickMiddle.
func cremadFrames(folder string, fps int, rng *rand.Rand) ([]videoFrame, error) {
	names, err := listDir(folder)
	if err != nil {
		return nil, err
	}
	if len(names) < fps {
		return nil, fmt.Errorf("%s holds %d files, want at least fps=%d", folder, len(names), fps)
	}
	var frames []videoFrame
	for _, idx := range pickMiddle(len(names), fps, rng) {
		frames = append(frames, videoFrame{path: filepath.Join(folder, names[idx])})
	}
	return frames, nil
}
