package datasets

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// UCF-101 (spec §3): RGB frames and TV-L1 optical flow of split 1.
//
//	stat_path   classInd.txt, lines "idx ClassName"; classes sorted by name
//	train_txt   trainlist01.txt, lines "ClassName/v_Name.avi[ idx]"
//	test_txt    testlist01.txt, the same without idx
//	visual_path <visual_path>/v_Name/frame_0000<k>.jpg, k = 1…6
//	flow_path_u <flow_path_u>/v_Name/frame00<kkkk>.jpg (grayscale)
//	flow_path_v the same for v
//
// A clip is kept when its three folders exist.

func ucf101Entry() Entry {
	return Entry{
		Name: "ucf101", Description: "UCF-101 action recognition, RGB + optical flow", Classes: 101,
		Modalities: []Modality{{Name: "visual", Shape: []int64{3, 3, 224, 224}}, {Name: "flow", Shape: []int64{2, 3, 224, 224}}},
		Layout: "stat_path: lines 'idx ClassName' (classes sorted by name); train_txt/test_txt: lines 'ClassName/v_Name.avi'; " +
			"visual_path/v_Name/frame_0000<k>.jpg, k=1..6; flow_path_u|v/v_Name/frame00<kkkk>.jpg grayscale",
		Params: append([]Param{
			{Name: "stat_path", Default: "classInd.txt", Doc: "class list, lines 'idx ClassName'"},
			{Name: "train_txt", Default: "trainlist01.txt", Doc: "training clips, lines 'ClassName/v_Name.avi'"},
			{Name: "test_txt", Default: "testlist01.txt", Doc: "test clips, lines 'ClassName/v_Name.avi'"},
			{Name: "visual_path", Default: "ucf101-frames-1fps/video-set", Doc: "RGB frame folders, one per clip"},
			{Name: "flow_path_u", Default: "tvl1_flow/u", Doc: "horizontal flow frame folders, one per clip"},
			{Name: "flow_path_v", Default: "tvl1_flow/v", Doc: "vertical flow frame folders, one per clip"},
		}, commonParamDocs(false)...),
		Available: true,
		open:      openUCF101,
	}
}

type ucf101 struct {
	visual, flowU, flowV string
	frames               *frameDecoder
}

func openUCF101(o Options) (Dataset, error) {
	e := ucf101Entry()
	p, common, err := newParams(e, o, false)
	if err != nil {
		return nil, err
	}
	u := &ucf101{visual: p.path("visual_path"), flowU: p.path("flow_path_u"), flowV: p.path("flow_path_v"), frames: newFrameDecoder(common.size)}
	statPath := p.path("stat_path")
	lines, err := readLines(statPath, "ucf101 class list")
	if err != nil {
		return nil, err
	}
	var classes []string
	for n, line := range lines {
		f := strings.Split(line, " ")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if len(f) < 2 || f[1] == "" {
			return nil, fmt.Errorf("%s:%d: %q: want 'idx ClassName'", statPath, n+1, line)
		}
		classes = append(classes, f[1])
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("%s: no classes", statPath)
	}
	slices.Sort(classes)
	var problems []Problem
	index := func(split, list string) ([]item, error) {
		lines, err := readLines(list, "ucf101 "+split+" list")
		if err != nil {
			return nil, err
		}
		var items []item
		for n, line := range lines {
			if strings.TrimSpace(line) == "" {
				continue
			}
			class, rest, ok := strings.Cut(line, "/")
			if !ok {
				return nil, fmt.Errorf("%s:%d: %q: want 'ClassName/v_Name.avi'", list, n+1, line)
			}
			name, _, _ := strings.Cut(strings.Split(rest, "/")[0], ".")
			var missing []string
			for _, dir := range []string{u.visual, u.flowU, u.flowV} {
				if !isDir(filepath.Join(dir, name)) {
					missing = append(missing, filepath.Join(dir, name))
				}
			}
			if len(missing) > 0 {
				problems = append(problems, Problem{Split: split, File: list, Line: n + 1, Dropped: true,
					Msg: "clip " + name + ": no folder " + strings.Join(missing, ", ")})
				continue
			}
			it := item{id: name}
			if c, ok := slices.BinarySearch(classes, class); ok {
				it.label = int64(c)
			} else {
				it.err = fmt.Errorf("%s:%d: class %q is not in %s", list, n+1, class, statPath)
			}
			items = append(items, it)
		}
		return items, nil
	}
	train, err := index(Train, p.path("train_txt"))
	if err != nil {
		return nil, err
	}
	test, err := index(Test, p.path("test_txt"))
	if err != nil {
		return nil, err
	}
	s := int64(common.size)
	spec := Spec{Name: e.Name, Classes: len(classes), Modalities: []Modality{
		{Name: "visual", Shape: []int64{3, 3, s, s}},
		{Name: "flow", Shape: []int64{2, 3, s, s}},
	}}
	return newDiskDataset(spec, u.read, train, nil, test, common, problems), nil
}

// ucfRGBFrames is the number of RGB frames the reference assumes per clip.
const ucfRGBFrames = 6

func (u *ucf101) read(it item, rng *rand.Rand, dst []Buffer) error {
	rgb, err := pickSegments(ucfRGBFrames, 3, rng)
	if err != nil {
		return err
	}
	for t, k := range rgb {
		path := filepath.Join(u.visual, it.id, "frame_0000"+strconv.Itoa(k)+".jpg")
		if err := u.frames.rgbFile(path, augResizeFlip, rng, dst[0].F32, t, 3); err != nil {
			return err
		}
	}
	uDir := filepath.Join(u.flowU, it.id)
	names, err := listDir(uDir)
	if err != nil {
		return err
	}
	if len(names) < 3 {
		return fmt.Errorf("%s holds %d flow frames, want at least 3", uDir, len(names))
	}
	picked, err := pickSegments(len(names), 3, rng)
	if err != nil {
		return fmt.Errorf("%s: %w", uDir, err)
	}
	for t, k := range picked {
		name := fmt.Sprintf("frame00%04d.jpg", k)
		uPath, vPath := filepath.Join(uDir, name), filepath.Join(u.flowV, it.id, name)
		ub, err := os.ReadFile(uPath)
		if err != nil {
			return err
		}
		vb, err := os.ReadFile(vPath)
		if err != nil {
			return err
		}
		if err := u.frames.flow(ub, vb, uPath, vPath, rng, dst[1].F32, t, 3); err != nil {
			return err
		}
	}
	return nil
}
