package datasets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"bmc/formats/hdf5"
	"bmc/formats/ndarray"
	"bmc/formats/pickle"
)

// BalancedAV (spec §3): a JSON annotation file {"labels": [class names],
// "database": {key: {"subset": "training"|"testing", "label": name}}}
// (the 3D-ResNets layout); audio_path/<key>.pkl holds a pickled 2-D numpy
// array; visual_path/<key>.hdf5 holds a dataset "video" of encoded JPEG
// frames. A key is kept when both files exist. Frames are picked as in
// Kinetics-Sounds, indexing the "video" array directly, with training
// numbers above 8 lowered to 8. The reference's training transform never
// runs (it tests mode == "training" where mode is "train"); bmc applies
// the intended RandomResizedCrop + flip.

func balancedAVEntry() Entry {
	return Entry{
		Name: "balancedav", Description: "BalancedAV, audio + video", Classes: 30,
		Modalities: []Modality{{Name: "audio"}, {Name: "visual", Shape: []int64{3, 3, 224, 224}}},
		Layout: "csv_path: JSON {labels: [names], database: {key: {subset: training|testing, label}}}; audio_path/<key>.pkl (pickled 2-D array); " +
			"visual_path/<key>.hdf5 (dataset video: one JPEG per frame)",
		Params: append([]Param{
			{Name: "csv_path", Default: "annotations.json", Doc: "the JSON annotation file (named csv_path in the reference)"},
			{Name: "audio_path", Default: "audio", Doc: "pickled audio arrays, <key>.pkl"},
			{Name: "visual_path", Default: "visual", Doc: "HDF5 videos, <key>.hdf5"},
			{Name: "audio_shape", Default: "auto", Doc: "audio array shape H×W, or auto: the first training clip's"},
		}, commonParamDocs(false)...),
		Available: true,
		open:      openBalancedAV,
	}
}

// readPickledArray reads a .pkl holding one numpy array.
func readPickledArray(path string) (*ndarray.Array, error) {
	v, err := pickle.ReadFile(path)
	if err != nil {
		return nil, err
	}
	a, ok := v.(*ndarray.Array)
	if !ok {
		return nil, fmt.Errorf("%s: holds a %T: want a numpy array", path, v)
	}
	return a, nil
}

// bavAnnotation is one database entry.
type bavAnnotation struct {
	Subset string `json:"subset"`
	Label  string `json:"label"`
}

func openBalancedAV(o Options) (Dataset, error) {
	e := balancedAVEntry()
	p, common, err := newParams(e, o, false)
	if err != nil {
		return nil, err
	}
	audioShape, err := p.shape("audio_shape")
	if err != nil {
		return nil, err
	}
	d := newAVDataset(common.size, readPickledArray, 3, balancedAVFrames)
	file := p.path("csv_path")
	keys, entries, labels, err := readBalancedAnnotations(file)
	if err != nil {
		return nil, err
	}
	classOf := map[string]int64{}
	for i, l := range labels {
		classOf[l] = int64(i)
	}
	audioDir, visualDir := p.path("audio_path"), p.path("visual_path")
	var problems []Problem
	items := map[string][]item{}
	for i, key := range keys {
		var split string
		switch entries[i].Subset {
		case "training":
			split = Train
		case "testing":
			split = Test
		default:
			continue
		}
		clip := avClip{audio: filepath.Join(audioDir, key+".pkl"), visual: filepath.Join(visualDir, key+".hdf5")}
		var missing []string
		for _, f := range []string{clip.visual, clip.audio} {
			if !isFile(f) {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			problems = append(problems, Problem{Split: split, File: file, Dropped: true, Msg: fmt.Sprintf("key %s: no file %v", key, missing)})
			continue
		}
		it := d.add(key, clip)
		c, ok := classOf[entries[i].Label]
		if !ok {
			it.err = fmt.Errorf("%s: database[%q].label %q is not in labels", file, key, entries[i].Label)
		}
		it.label = c
		items[split] = append(items[split], it)
	}
	return d.dataset(e.Name, len(labels), audioShape, items[Train], items[Test], common, problems)
}

// readBalancedAnnotations reads the annotation file, keeping the database
// keys in file order (sample order follows it).
func readBalancedAnnotations(file string) (keys []string, entries []bavAnnotation, labels []string, err error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("balancedav annotations: %w", err)
	}
	var top struct {
		Labels   []string        `json:"labels"`
		Database json.RawMessage `json:"database"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(top.Labels) < 2 || len(top.Database) == 0 {
		return nil, nil, nil, fmt.Errorf("%s: %d labels and no database: want {\"labels\": [...], \"database\": {...}}", file, len(top.Labels))
	}
	dec := json.NewDecoder(bytes.NewReader(top.Database))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, nil, fmt.Errorf("%s: database is not an object", file)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: database: %w", file, err)
		}
		key := tok.(string)
		var a bavAnnotation
		if err := dec.Decode(&a); err != nil {
			return nil, nil, nil, fmt.Errorf("%s: database[%q]: %w", file, key, err)
		}
		keys, entries = append(keys, key), append(entries, a)
	}
	return keys, entries, top.Labels, nil
}

// balancedAVFrames picks frames of the "video" array of a clip's HDF5
// file by pickClipped, frame number t indexing the array from 0.
func balancedAVFrames(file string, pick int, rng *rand.Rand) ([]videoFrame, error) {
	f, err := hdf5.Open(file)
	if err != nil {
		return nil, err
	}
	video, err := f.Dataset("video")
	if err != nil {
		return nil, err
	}
	jpegs, err := video.ReadVarBytes()
	if err != nil {
		return nil, err
	}
	picked, err := pickClipped(len(jpegs), pick, 8, rng)
	if err != nil {
		return nil, fmt.Errorf("%s: video: %w", file, err)
	}
	var frames []videoFrame
	for _, t := range picked {
		if t >= len(jpegs) {
			return nil, fmt.Errorf("%s: video holds %d frames: frame %d is past the end", file, len(jpegs), t)
		}
		frames = append(frames, videoFrame{name: fmt.Sprintf("%s video[%d]", file, t), data: jpegs[t]})
	}
	return frames, nil
}
