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
	"strings"

	"bmc/text"
)

// UPMC FOOD-101 (spec §3): texts/{train,test}_titles.csv with a header
// naming the columns text, label (a class name) and Image_path; images at
// images/{phase}/{label}/{Image_path}; classes are the sorted folder names
// of images/train. Each caption is cleaned (leading "RT", URLs, '#') and
// encoded by BERT's uncased WordPiece tokenizer to 40 ids ([CLS] … [SEP]
// [PAD]…); there is no attention mask.

// foodTextLen is the number of token ids per caption.
const foodTextLen = 40

func food101Entry() Entry {
	return Entry{
		Name: "food101", Description: "UPMC FOOD-101, image + text", Classes: 101,
		Modalities: []Modality{{Name: "visual", Shape: []int64{3, 1, 224, 224}}, {Name: "text", Shape: []int64{1, foodTextLen}, Int: true}},
		Layout: "texts/{train,test}_titles.csv (header with text, label, Image_path); images/{train,test}/<label>/<Image_path>; " +
			"classes = sorted folders of images/train; a BERT uncased vocab.txt",
		Params: append([]Param{
			{Name: "vocab", Default: "bert-base-uncased/vocab.txt", Doc: "BERT WordPiece vocabulary (bert-base-uncased's vocab.txt)"},
		}, commonParamDocs(false)...),
		Available: true,
		open:      openFood101,
	}
}

type foodRow struct {
	image, caption string
}

type food101 struct {
	rows   []foodRow
	tok    *text.Tokenizer
	frames *frameDecoder
}

func openFood101(o Options) (Dataset, error) {
	e := food101Entry()
	p, common, err := newParams(e, o, false)
	if err != nil {
		return nil, err
	}
	f := &food101{frames: newFrameDecoder(common.size)}
	if f.tok, err = text.LoadVocab(p.path("vocab")); err != nil {
		return nil, fmt.Errorf("dataset food101: %w", err)
	}
	classDirs := func(phase string) ([]string, error) {
		dir := filepath.Join(p.root, "images", phase)
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("food101 classes: %w", err)
		}
		var classes []string
		for _, en := range entries {
			if en.IsDir() {
				classes = append(classes, en.Name())
			}
		}
		slices.Sort(classes)
		return classes, nil
	}
	classes, err := classDirs(Train)
	if err != nil {
		return nil, err
	}
	if len(classes) < 2 {
		return nil, fmt.Errorf("food101: %s holds %d class folders: want at least 2", filepath.Join(p.root, "images", Train), len(classes))
	}
	var problems []Problem
	if testClasses, err := classDirs(Test); err != nil {
		return nil, err
	} else if !slices.Equal(testClasses, classes) {
		problems = append(problems, Problem{Split: Test, File: filepath.Join(p.root, "images", Test),
			Msg: fmt.Sprintf("class folders %v differ from images/train's %v; bmc numbers test labels by train's", testClasses, classes)})
	}
	items := map[string][]item{}
	for _, phase := range []string{Train, Test} {
		list := filepath.Join(p.root, "texts", phase+"_titles.csv")
		if items[phase], err = f.index(list, phase, p.root, classes); err != nil {
			return nil, err
		}
	}
	s := int64(common.size)
	spec := Spec{Name: e.Name, Classes: len(classes), Modalities: []Modality{
		{Name: "visual", Shape: []int64{3, 1, s, s}},
		{Name: "text", Shape: []int64{1, foodTextLen}, Int: true},
	}}
	return newDiskDataset(spec, f.read, items[Train], nil, items[Test], common, problems), nil
}

// index reads one phase's caption CSV.
func (f *food101) index(list, phase, root string, classes []string) ([]item, error) {
	fh, err := os.Open(list)
	if err != nil {
		return nil, fmt.Errorf("food101 %s captions: %w", phase, err)
	}
	defer fh.Close()
	r := csv.NewReader(fh)
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", list, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	for _, need := range []string{"text", "label", "Image_path"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("%s: header %v has no column %q: want text, label and Image_path", list, header, need)
		}
	}
	var items []item
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return items, nil
		}
		if err != nil {
			return nil, fmt.Errorf("food101 %s captions: %w", phase, err)
		}
		line, _ := r.FieldPos(0)
		if len(rec) != len(header) {
			return nil, fmt.Errorf("%s:%d: %d fields, the header has %d", list, line, len(rec), len(header))
		}
		label, image := rec[col["label"]], rec[col["Image_path"]]
		it := item{id: image, row: len(f.rows)}
		f.rows = append(f.rows, foodRow{image: filepath.Join(root, "images", phase, label, image), caption: rec[col["text"]]})
		if c, ok := slices.BinarySearch(classes, label); ok {
			it.label = int64(c)
		} else {
			it.err = fmt.Errorf("%s:%d: label %q is not a class folder of images/train", list, line, label)
		}
		items = append(items, it)
	}
}

func (f *food101) read(it item, rng *rand.Rand, dst []Buffer) error {
	row := f.rows[it.row]
	if err := f.frames.rgbFile(row.image, augRotateResizeFlip, rng, dst[0].F32, 0, 1); err != nil {
		return err
	}
	_, err := f.tok.Encode(dst[1].I64, text.CleanFoodCaption(row.caption))
	return err
}
