package datasets

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"bmc/internal/machine"
	"bmc/internal/randstream"
)

// The synthetic datasets are generated in memory from a seed. Each modality
// m sees a class prototype scaled by its signal s_m plus unit Gaussian noise:
//
//	x_m = s_m · P_m[y] + ε,   P_m[c] ~ N(0, I),   ε ~ N(0, I)
//
// so s_m sets how informative the modality is. With the defaults the audio
// stream is easy and the visual stream is weak, which reproduces the
// imbalance of the paper's Figure 2: the weak modality learns less inside a
// jointly trained model than alone.
//
// A modality may take a tensor shape (shape.m=1x32x32) so convolutional and
// transformer encoders can run on it. Its prototypes are then smooth: constant
// over the cells of a 4×4 grid spanning the last two axes, so a pattern
// survives convolution and pooling. A modality may instead hold token ids
// (vocab.m=V): each position is, with probability min(1, s_m), a token drawn
// from the class's own slice of the vocabulary and otherwise any token in
// [1, V); id 0 is kept for padding.

type synthConfig struct {
	name       string
	modalities []string
	classes    int
	sizes      map[string]int
	dims       map[string]int
	shapes     map[string][]int64
	vocab      map[string]int
	signal     map[string]float64
	seed       uint64
}

func synthDefaults(name string) synthConfig {
	c := synthConfig{
		name:    name,
		classes: 10,
		sizes:   map[string]int{Train: 2000, Val: 500, Test: 1000},
		dims:    map[string]int{},
		shapes:  map[string][]int64{},
		vocab:   map[string]int{},
		signal:  map[string]float64{},
	}
	switch name {
	case "synth-av":
		c.modalities = []string{"audio", "visual"}
		c.signal["audio"], c.signal["visual"] = 0.6, 0.4
	case "synth-avt":
		c.modalities = []string{"audio", "visual", "text"}
		c.signal["audio"], c.signal["visual"], c.signal["text"] = 0.6, 0.4, 0.5
	}
	for _, m := range c.modalities {
		c.dims[m] = 32
	}
	return c
}

func synthParams(c synthConfig) []Param {
	ps := []Param{
		{Name: "classes", Default: strconv.Itoa(c.classes), Doc: "number of classes"},
		{Name: "train", Default: strconv.Itoa(c.sizes[Train]), Doc: "training samples"},
		{Name: "val", Default: strconv.Itoa(c.sizes[Val]), Doc: "validation samples"},
		{Name: "test", Default: strconv.Itoa(c.sizes[Test]), Doc: "test samples"},
		{Name: "seed", Default: "0", Doc: "data seed (independent of the training seed)"},
	}
	for _, m := range c.modalities {
		ps = append(ps,
			Param{Name: "dim." + m, Default: strconv.Itoa(c.dims[m]), Doc: m + " feature width"},
			Param{Name: "shape." + m, Default: "", Doc: m + " sample shape such as 1x32x32 (replaces dim." + m + ")"},
			Param{Name: "vocab." + m, Default: "", Doc: m + " as token ids in [0, V) (V ≥ 2·classes; length from shape." + m + ", default 16)"},
			Param{Name: "signal." + m, Default: strconv.FormatFloat(c.signal[m], 'g', -1, 64), Doc: m + " informativeness (prototype scale over unit noise)"},
		)
	}
	return ps
}

func synthEntries() []Entry {
	var out []Entry
	for _, name := range []string{"synth-av", "synth-avt"} {
		c := synthDefaults(name)
		var mods []Modality
		for _, m := range c.modalities {
			mods = append(mods, Modality{Name: m, Shape: []int64{int64(c.dims[m])}})
		}
		desc := fmt.Sprintf("built-in synthetic data, %d modalities (%s), generated in memory", len(c.modalities), strings.Join(c.modalities, ", "))
		out = append(out, Entry{
			Name: name, Description: desc, Modalities: mods, Classes: c.classes,
			Layout: "none: generated from the seed", Params: synthParams(c), Available: true,
			open: func(o Options) (Dataset, error) { return openSynth(name, o) },
		})
	}
	return out
}

func openSynth(name string, o Options) (Dataset, error) {
	c := synthDefaults(name)
	positive := func(key string) (int, error) {
		v, err := strconv.Atoi(o.Params[key])
		if err != nil || v < 1 {
			return 0, fmt.Errorf("dataset %s: parameter %s=%q: want a positive integer", name, key, o.Params[key])
		}
		return v, nil
	}
	for key, val := range o.Params {
		var err error
		switch {
		case key == "classes":
			c.classes, err = positive(key)
			if err == nil && c.classes < 2 {
				err = fmt.Errorf("dataset %s: parameter classes=%d: want at least 2", name, c.classes)
			}
		case key == Train || key == Val || key == Test:
			c.sizes[key], err = positive(key)
		case key == "seed":
			c.seed, err = strconv.ParseUint(val, 10, 64)
			if err != nil {
				err = fmt.Errorf("dataset %s: parameter seed=%q: want a non-negative integer", name, val)
			}
		case strings.HasPrefix(key, "dim."):
			c.dims[strings.TrimPrefix(key, "dim.")], err = positive(key)
		case strings.HasPrefix(key, "shape."):
			c.shapes[strings.TrimPrefix(key, "shape.")], err = parseShape(name, key, val)
		case strings.HasPrefix(key, "vocab."):
			c.vocab[strings.TrimPrefix(key, "vocab.")], err = positive(key)
		case strings.HasPrefix(key, "signal."):
			var s float64
			s, err = strconv.ParseFloat(val, 64)
			if err != nil || !(s >= 0) || math.IsInf(s, 0) {
				err = fmt.Errorf("dataset %s: parameter %s=%q: want a non-negative number", name, key, val)
			}
			c.signal[strings.TrimPrefix(key, "signal.")] = s
		}
		if err != nil {
			return nil, err
		}
	}
	for m, v := range c.vocab {
		if v < 2*c.classes {
			return nil, fmt.Errorf("dataset %s: parameter vocab.%s=%d: want at least 2·classes = %d", name, m, v, 2*c.classes)
		}
		if _, ok := c.shapes[m]; !ok {
			c.shapes[m] = []int64{16}
		}
	}
	if err := c.checkSize(); err != nil {
		return nil, err
	}
	return newSynth(c), nil
}

// checkSize refuses, before anything is allocated, a synthetic dataset
// whose samples cannot be held in memory (sizes are multiplied in float64,
// which does not overflow).
func (c synthConfig) checkSize() error {
	var perSample float64 // bytes
	for _, m := range c.modalities {
		n := 1.0
		for _, d := range c.shape(m) {
			n *= float64(d)
		}
		if n > MaxSampleElements {
			return fmt.Errorf("dataset %s: modality %s has %.4g values per sample (shape %v); at most %d are supported", c.name, m, n, c.shape(m), MaxSampleElements)
		}
		elem := 4.0
		if c.vocab[m] > 0 {
			elem = 8
		}
		perSample += n * elem
	}
	samples := float64(c.sizes[Train]) + float64(c.sizes[Val]) + float64(c.sizes[Test])
	what := fmt.Sprintf("dataset %s (%.4g samples of %s each)", c.name, samples, machine.FormatBytes(perSample))
	return machine.CheckMemory(what, samples*perSample)
}

// parseShape reads a sample shape "AxBxC" of positive sizes.
func parseShape(name, key, val string) ([]int64, error) {
	var shape []int64
	for _, f := range strings.Split(val, "x") {
		d, err := strconv.ParseInt(f, 10, 64)
		if err != nil || d < 1 {
			return nil, fmt.Errorf("dataset %s: parameter %s=%q: want positive sizes joined by x, such as 1x32x32", name, key, val)
		}
		shape = append(shape, d)
	}
	return shape, nil
}

// shape is a modality's sample shape.
func (c synthConfig) shape(m string) []int64 {
	if s, ok := c.shapes[m]; ok {
		return s
	}
	return []int64{int64(c.dims[m])}
}

// protoIndex maps element j of a sample to its prototype element: itself for
// vectors, the element's cell of a 4×4 grid over the last two axes
// otherwise (the prototype then has 16 values per leading index).
func protoIndex(shape []int64, j int) int {
	r := len(shape)
	if r < 2 {
		return j
	}
	h, w := int(shape[r-2]), int(shape[r-1])
	lead, rest := j/(h*w), j%(h*w)
	y, x := rest/w, rest%w
	return lead*16 + (y*4/h)*4 + x*4/w
}

// protoSize is the number of prototype values per class.
func protoSize(shape []int64) int {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	if r := len(shape); r >= 2 {
		n = n / int(shape[r-2]*shape[r-1]) * 16
	}
	return n
}

type synth struct {
	spec   Spec
	splits map[string]*synthSplit
}

type synthSplit struct {
	labels []int64
	data   [][]float32 // per float modality, [n·d]
	tokens [][]int64   // per token modality, [n·d]
	dims   []int
}

func newSynth(c synthConfig) *synth {
	s := &synth{splits: map[string]*synthSplit{}}
	s.spec = Spec{Name: c.name, Classes: c.classes, Sizes: map[string]int{}}
	protos := make([][]float64, len(c.modalities))
	dims := make([]int, len(c.modalities))
	for mi, m := range c.modalities {
		shape := c.shape(m)
		mod := Modality{Name: m, Shape: shape, Int: c.vocab[m] > 0}
		dims[mi] = mod.Size()
		s.spec.Modalities = append(s.spec.Modalities, mod)
		rng := randstream.New(c.seed, "prototypes/"+m, 0)
		p := make([]float64, c.classes*protoSize(shape))
		for i := range p {
			p[i] = rng.NormFloat64()
		}
		protos[mi] = p
	}
	for _, split := range []string{Train, Val, Test} {
		n := c.sizes[split]
		s.spec.Sizes[split] = n
		rng := randstream.New(c.seed, "samples/"+split, 0)
		sp := &synthSplit{labels: make([]int64, n), dims: dims, data: make([][]float32, len(c.modalities)), tokens: make([][]int64, len(c.modalities))}
		for mi, m := range c.modalities {
			if c.vocab[m] > 0 {
				sp.tokens[mi] = make([]int64, n*dims[mi])
			} else {
				sp.data[mi] = make([]float32, n*dims[mi])
			}
		}
		for i := range n {
			y := rng.IntN(c.classes)
			sp.labels[i] = int64(y)
			for mi, m := range c.modalities {
				d := dims[mi]
				if v := c.vocab[m]; v > 0 {
					// Class y owns tokens [1+y·k, 1+(y+1)·k).
					k := (v - 1) / c.classes
					for j := range sp.tokens[mi][i*d : (i+1)*d] {
						tok := 1 + rng.IntN(v-1)
						if rng.Float64() < c.signal[m] {
							tok = 1 + y*k + rng.IntN(k)
						}
						sp.tokens[mi][i*d+j] = int64(tok)
					}
					continue
				}
				shape, per := c.shape(m), protoSize(c.shape(m))
				row := sp.data[mi][i*d : (i+1)*d]
				for j := range row {
					row[j] = float32(c.signal[m]*protos[mi][y*per+protoIndex(shape, j)] + rng.NormFloat64())
				}
			}
		}
		s.splits[split] = sp
	}
	return s
}

func (s *synth) Spec() Spec { return s.spec }

func (s *synth) Split(name string) (Split, error) {
	sp, ok := s.splits[name]
	if !ok {
		return nil, fmt.Errorf("dataset %s has no split %q (splits: train, val, test)", s.spec.Name, name)
	}
	return sp, nil
}

func (sp *synthSplit) Len() int { return len(sp.labels) }

func (sp *synthSplit) Read(i int, dst []Buffer) (int64, error) {
	if i < 0 || i >= len(sp.labels) {
		return 0, fmt.Errorf("sample %d is out of range [0, %d)", i, len(sp.labels))
	}
	if len(dst) != len(sp.data) {
		return 0, fmt.Errorf("%d buffers for %d modalities", len(dst), len(sp.data))
	}
	for m, d := range sp.dims {
		if sp.tokens[m] != nil {
			if len(dst[m].I64) != d {
				return 0, fmt.Errorf("modality %d buffer holds %d token ids, a sample has %d", m, len(dst[m].I64), d)
			}
			copy(dst[m].I64, sp.tokens[m][i*d:(i+1)*d])
			continue
		}
		if len(dst[m].F32) != d {
			return 0, fmt.Errorf("modality %d buffer holds %d floats, a sample has %d", m, len(dst[m].F32), d)
		}
		copy(dst[m].F32, sp.data[m][i*d:(i+1)*d])
	}
	return sp.labels[i], nil
}
