package datasets

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"

	"bmc/formats/ndarray"
	"bmc/formats/pickle"
)

// CMU-MOSEI (spec §3): the MulT-style pickle <data>_data_noalign.pkl (or
// <data>_data.pkl when aligned), a dict of splits train, valid and test,
// each a dict of arrays text (N, L_t, 300), audio (N, L_a, 74), vision
// (N, L_v, 35) and labels (N, 1, 1). Binary sentiment: label 1 when
// labels[i][0, 0] ≥ 0. Audio values of −inf are set to 0, as the
// reference does; any other non-finite value is an error.

func moseiEntry() Entry {
	return Entry{
		Name: "mosei", Description: "CMU-MOSEI binary sentiment, text + audio + visual", Classes: 2,
		Modalities: []Modality{{Name: "text"}, {Name: "audio"}, {Name: "visual"}},
		Layout:     "<data>_data_noalign.pkl (or _data.pkl with if_align): {train, valid, test} × {text (N,L,300), audio (N,L,74), vision (N,L,35), labels (N,1,1)}",
		Params: append([]Param{
			{Name: "data", Default: "mosei_senti", Doc: "file name stem: <data>_data_noalign.pkl"},
			{Name: "if_align", Default: "false", Doc: "read the word-aligned <data>_data.pkl instead"},
		}, commonParamDocs(true)...),
		Available: true,
		open:      openMOSEI,
	}
}

// moseiArrays are the feature arrays of one split of the file (named as
// the file names it), per modality in Spec order.
type moseiArrays struct {
	split string
	feats [3]*ndarray.Array
}

// moseiKeys pairs each modality, in Spec order, with its key in the file.
func moseiKeys() [3]struct{ modality, key string } {
	return [3]struct{ modality, key string }{{"text", "text"}, {"audio", "audio"}, {"visual", "vision"}}
}

type mosei struct {
	file   string
	splits []moseiArrays
	rows   [][2]int // item.row → (split, sample)
}

func openMOSEI(o Options) (Dataset, error) {
	e := moseiEntry()
	p, common, err := newParams(e, o, true)
	if err != nil {
		return nil, err
	}
	aligned, err := p.bool("if_align")
	if err != nil {
		return nil, err
	}
	name := p.values["data"] + "_data_noalign.pkl"
	if aligned {
		name = p.values["data"] + "_data.pkl"
	}
	m := &mosei{file: filepath.Join(p.root, name)}
	v, err := pickle.ReadFile(m.file)
	if err != nil {
		return nil, err
	}
	top, ok := v.(*pickle.Dict)
	if !ok {
		return nil, fmt.Errorf("%s: holds a %T: want a dict of splits", m.file, v)
	}
	var shapes [3][]int64
	items := map[string][]item{}
	for si, split := range []struct{ file, bmc string }{{"train", Train}, {"valid", Val}, {"test", Test}} {
		sv, ok := top.Get(split.file)
		if !ok {
			return nil, fmt.Errorf("%s: no split %q", m.file, split.file)
		}
		sd, ok := sv.(*pickle.Dict)
		if !ok {
			return nil, fmt.Errorf("%s: split %s is a %T: want a dict of arrays", m.file, split.file, sv)
		}
		array := func(key string, dims int) (*ndarray.Array, error) {
			av, ok := sd.Get(key)
			if !ok {
				return nil, fmt.Errorf("%s: split %s has no %q array", m.file, split.file, key)
			}
			a, ok := av.(*ndarray.Array)
			if !ok || len(a.Shape) != dims || a.DType.Kind == ndarray.Object {
				return nil, fmt.Errorf("%s: %s[%q] is not a %d-D numeric array", m.file, split.file, key, dims)
			}
			return a, nil
		}
		arrs := moseiArrays{split: split.file}
		labels, err := array("labels", 3)
		if err != nil {
			return nil, err
		}
		n := labels.Shape[0]
		for mi, k := range moseiKeys() {
			a, err := array(k.key, 3)
			if err != nil {
				return nil, err
			}
			shape := []int64{int64(a.Shape[1]), int64(a.Shape[2])}
			switch {
			case a.Shape[0] != n:
				return nil, fmt.Errorf("%s: %s[%q] has %d samples, labels %d", m.file, split.file, k.key, a.Shape[0], n)
			case si == 0:
				shapes[mi] = shape
			case shape[0] != shapes[mi][0] || shape[1] != shapes[mi][1]:
				return nil, fmt.Errorf("%s: %s[%q] samples are %v, train's %v: bmc needs one shape per modality", m.file, split.file, k.key, shape, shapes[mi])
			}
			arrs.feats[mi] = a
		}
		ys, err := labels.Float32s()
		if err != nil {
			return nil, fmt.Errorf("%s: %s labels: %w", m.file, split.file, err)
		}
		per := len(ys) / max(n, 1)
		for i := range n {
			it := item{id: fmt.Sprintf("%s[%d]", split.file, i), row: len(m.rows)}
			m.rows = append(m.rows, [2]int{si, i})
			switch y := ys[i*per]; {
			case math.IsNaN(float64(y)):
				it.err = fmt.Errorf("%s: %s labels[%d] is NaN", m.file, split.file, i)
			case y >= 0:
				it.label = 1
			}
			items[split.bmc] = append(items[split.bmc], it)
		}
		m.splits = append(m.splits, arrs)
	}
	spec := Spec{Name: e.Name, Classes: 2}
	for mi, k := range moseiKeys() {
		spec.Modalities = append(spec.Modalities, Modality{Name: k.modality, Shape: shapes[mi]})
	}
	return newDiskDataset(spec, m.read, items[Train], items[Val], items[Test], common, nil), nil
}

func (m *mosei) read(it item, _ *rand.Rand, dst []Buffer) error {
	arrs, i := m.splits[m.rows[it.row][0]], m.rows[it.row][1]
	keys := moseiKeys()
	for mi, a := range arrs.feats {
		per := a.Shape[1] * a.Shape[2]
		size := a.DType.Size
		one, err := ndarray.New(a.DType, a.Shape[1:], a.Data[i*per*size:(i+1)*per*size], false)
		if err != nil {
			return fmt.Errorf("%s: %s[%q][%d]: %w", m.file, arrs.split, keys[mi].key, i, err)
		}
		x, err := one.Float32s()
		if err != nil {
			return fmt.Errorf("%s: %s[%q][%d]: %w", m.file, arrs.split, keys[mi].key, i, err)
		}
		if keys[mi].key == "audio" {
			for j, v := range x {
				if math.IsInf(float64(v), -1) {
					x[j] = 0
				}
			}
		}
		if err := checkFinite(x); err != nil {
			return fmt.Errorf("%s: %s[%q][%d]: %w", m.file, arrs.split, keys[mi].key, i, err)
		}
		copy(dst[mi].F32, x)
	}
	return nil
}
