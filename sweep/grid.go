// Package sweep runs grids of experiments: a grid file (methods, datasets,
// seeds, encoders, presets, hyperparameter and dataset-parameter values)
// expands into cells, one `bmc train` run directory per cell under a sweep
// directory with a manifest. Cells run as real `bmc train` processes, in
// parallel on this machine or as a Slurm job array; a cell that was killed
// resumes with `bmc train --resume`, a finished one is skipped, and a
// failing one is recorded with its error while the others go on.
package sweep

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"bmc/datasets"
	"bmc/experiment"
	"bmc/methods"
)

// Grid is a parsed grid file.
type Grid struct {
	// Path is the file it was read from (for error messages).
	Path string
	// Name names the sweep (default: the file's base name).
	Name string
	// Out is the sweep directory, relative to the working directory.
	Out      string
	Methods  []MethodEntry
	Datasets []DatasetEntry
	Seeds    []uint64
	Presets  []string
	// Encoders are the encoder settings swept; each is the list of
	// --encoder values of one setting (SPEC or MODALITY=SPEC). Empty: the
	// dataset's default encoders.
	Encoders [][]string
	// Train overrides the preset's training settings in every cell.
	Train experiment.TrainFile
	// Strength is a relative-balance sweep of one method's strength.
	Strength *Strength
	Slurm    SlurmOptions
	// Jobs is the local executor's default parallelism.
	Jobs int
}

// MethodEntry is one method of the grid with its hyperparameter values; a
// name with several values is swept.
type MethodEntry struct {
	Method string
	Hyper  []Values
}

// DatasetEntry is one dataset of the grid with its parameter values.
type DatasetEntry struct {
	Dataset  string
	Data     []Values
	DataRoot string
}

// Values are the values one setting takes in a grid.
type Values struct {
	Key    string
	Values []string
}

// Strength sweeps a method's strength hyperparameter (the paper's Fig. 3).
type Strength struct {
	Method string   `yaml:"method"`
	Param  string   `yaml:"param,omitempty"`
	Values []string `yaml:"values,omitempty"`
}

// SlurmOptions are the sbatch settings of a Slurm sweep; flags override
// the grid file's.
type SlurmOptions struct {
	Partition   string `yaml:"partition,omitempty"`
	Time        string `yaml:"time,omitempty"`
	Mem         string `yaml:"mem,omitempty"`
	GPUs        int    `yaml:"gpus,omitempty"`
	CPUsPerTask int    `yaml:"cpus_per_task,omitempty"`
	Account     string `yaml:"account,omitempty"`
	QOS         string `yaml:"qos,omitempty"`
	// MaxParallel caps the array's running tasks (sbatch --array=…%N).
	MaxParallel int `yaml:"max_parallel,omitempty"`
	// Args are more sbatch options, one per item (--constraint=a100).
	Args []string `yaml:"sbatch_args,omitempty"`
	// Setup are shell lines run before bmc in every task (module load …).
	Setup []string `yaml:"setup,omitempty"`
}

// gridFile is the YAML form of a grid; the fields that take a value or a
// list of values, or a name or a mapping, stay nodes until parsed.
type gridFile struct {
	Name     string               `yaml:"name"`
	Out      string               `yaml:"out"`
	Methods  []yaml.Node          `yaml:"methods"`
	Datasets []yaml.Node          `yaml:"datasets"`
	Seeds    []uint64             `yaml:"seeds"`
	Preset   yaml.Node            `yaml:"preset"`
	Presets  yaml.Node            `yaml:"presets"`
	Encoders []yaml.Node          `yaml:"encoders"`
	Hyper    yaml.Node            `yaml:"hp"`
	Train    experiment.TrainFile `yaml:"train"`
	Strength *Strength            `yaml:"strength"`
	Slurm    SlurmOptions         `yaml:"slurm"`
	Jobs     int                  `yaml:"jobs"`
}

// ReadGrid reads and checks a grid file.
func ReadGrid(path string) (*Grid, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseGrid(path, data)
}

// ParseGrid parses a grid file's content; path names it in errors.
func ParseGrid(path string, data []byte) (*Grid, error) {
	var f gridFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty grid file (want methods, datasets and seeds)", path)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p := gridParser{path: path}
	g := &Grid{Path: path, Name: f.Name, Out: f.Out, Seeds: f.Seeds, Train: f.Train, Strength: f.Strength, Slurm: f.Slurm, Jobs: f.Jobs}
	if g.Name == "" {
		g.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	if len(g.Seeds) == 0 {
		g.Seeds = []uint64{0}
	}
	if f.Train.Seed != nil {
		return nil, p.errorf(nil, "train.seed", "the seeds go in the grid's seeds list, not in train")
	}
	if f.Jobs < 0 {
		return nil, p.errorf(nil, "jobs", "want a positive number of parallel cells, got %d", f.Jobs)
	}
	var errs []error
	common, err := p.valueList(&f.Hyper, "hp")
	errs = append(errs, err)
	for i := range f.Methods {
		m, err := p.method(&f.Methods[i], fmt.Sprintf("methods[%d]", i), common)
		errs = append(errs, err)
		g.Methods = append(g.Methods, m)
	}
	for i := range f.Datasets {
		d, err := p.dataset(&f.Datasets[i], fmt.Sprintf("datasets[%d]", i))
		errs = append(errs, err)
		g.Datasets = append(g.Datasets, d)
	}
	if !f.Preset.IsZero() && !f.Presets.IsZero() {
		errs = append(errs, p.errorf(&f.Presets, "presets", "give preset or presets, not both"))
	}
	for _, n := range []struct {
		node  *yaml.Node
		field string
	}{{&f.Preset, "preset"}, {&f.Presets, "presets"}} {
		vals, err := p.scalars(n.node, n.field)
		errs = append(errs, err)
		for _, v := range vals {
			if !slices.Contains(experiment.PresetNames(), v) {
				errs = append(errs, p.errorf(n.node, n.field, "unknown preset %q (presets: %s)", v, strings.Join(experiment.PresetNames(), ", ")))
			}
		}
		g.Presets = append(g.Presets, vals...)
	}
	for i := range f.Encoders {
		e, err := p.encoder(&f.Encoders[i], fmt.Sprintf("encoders[%d]", i))
		errs = append(errs, err)
		g.Encoders = append(g.Encoders, e)
	}
	if g.Strength != nil {
		errs = append(errs, p.strength(g.Strength))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(g.Methods) == 0 && g.Strength == nil {
		return nil, p.errorf(nil, "methods", "the grid has no methods (want a list of method names, see bmc methods)")
	}
	if len(g.Datasets) == 0 {
		return nil, p.errorf(nil, "datasets", "the grid has no datasets (want a list of dataset names, see bmc datasets)")
	}
	return g, nil
}

// gridParser turns a grid file's nodes into values, with errors that name
// the file, the line and the field.
type gridParser struct{ path string }

func (p gridParser) errorf(n *yaml.Node, field, format string, args ...any) error {
	where := p.path
	if n != nil && n.Line > 0 {
		where = fmt.Sprintf("%s:%d", p.path, n.Line)
	}
	return fmt.Errorf("%s: %s: %s", where, field, fmt.Sprintf(format, args...))
}

// scalars reads a value or a list of values.
func (p gridParser) scalars(n *yaml.Node, field string) ([]string, error) {
	switch n.Kind {
	case 0:
		return nil, nil
	case yaml.ScalarNode:
		return []string{n.Value}, nil
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, p.errorf(c, field, "want a value or a list of values")
			}
			out = append(out, c.Value)
		}
		if len(out) == 0 {
			return nil, p.errorf(n, field, "an empty list sweeps nothing")
		}
		return out, nil
	}
	return nil, p.errorf(n, field, "want a value or a list of values")
}

// valueList reads a mapping of names to values or lists of values.
func (p gridParser) valueList(n *yaml.Node, field string) ([]Values, error) {
	if n.Kind == 0 {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, p.errorf(n, field, "want a mapping of names to a value or a list of values")
	}
	var out []Values
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		vals, err := p.scalars(n.Content[i+1], field+"."+k)
		if err != nil {
			return nil, err
		}
		out = append(out, Values{Key: k, Values: vals})
	}
	return out, nil
}

// mapping iterates a mapping's keys, failing on keys it does not know.
func (p gridParser) mapping(n *yaml.Node, field string, known []string, fn func(key string, v *yaml.Node) error) error {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if !slices.Contains(known, k) {
			return p.errorf(n.Content[i], field, "unknown field %q (fields: %s)", k, strings.Join(known, ", "))
		}
		if err := fn(k, n.Content[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// method reads a method entry: a name, or {method: NAME, hp: {...}}. The
// grid-wide hp values come first.
func (p gridParser) method(n *yaml.Node, field string, common []Values) (MethodEntry, error) {
	m := MethodEntry{Hyper: slices.Clone(common)}
	switch n.Kind {
	case yaml.ScalarNode:
		m.Method = n.Value
	case yaml.MappingNode:
		err := p.mapping(n, field, []string{"method", "hp"}, func(k string, v *yaml.Node) error {
			if k == "method" {
				m.Method = v.Value
				return nil
			}
			hp, err := p.valueList(v, field+".hp")
			m.Hyper = append(m.Hyper, hp...)
			return err
		})
		if err != nil {
			return m, err
		}
	default:
		return m, p.errorf(n, field, "want a method name or a mapping with method and hp")
	}
	info, err := methodInfo(m.Method)
	if err != nil {
		return m, p.errorf(n, field, "%v", err)
	}
	for _, hv := range m.Hyper {
		for _, v := range hv.Values {
			if _, err := methods.Resolve(info, map[string]string{hv.Key: v}); err != nil {
				return m, p.errorf(n, field+".hp."+hv.Key, "%v", err)
			}
		}
	}
	return m, nil
}

// dataset reads a dataset entry: a name, or {dataset: NAME, data: {...},
// data_root: DIR}.
func (p gridParser) dataset(n *yaml.Node, field string) (DatasetEntry, error) {
	var d DatasetEntry
	switch n.Kind {
	case yaml.ScalarNode:
		d.Dataset = n.Value
	case yaml.MappingNode:
		err := p.mapping(n, field, []string{"dataset", "data", "data_root"}, func(k string, v *yaml.Node) error {
			var err error
			switch k {
			case "dataset":
				d.Dataset = v.Value
			case "data_root":
				d.DataRoot = v.Value
			case "data":
				d.Data, err = p.valueList(v, field+".data")
			}
			return err
		})
		if err != nil {
			return d, err
		}
	default:
		return d, p.errorf(n, field, "want a dataset name or a mapping with dataset, data and data_root")
	}
	e, err := datasets.Lookup(d.Dataset)
	if err != nil {
		return d, p.errorf(n, field, "%v", err)
	}
	for _, dv := range d.Data {
		if !slices.ContainsFunc(e.Params, func(q datasets.Param) bool { return q.Name == dv.Key }) {
			var names []string
			for _, q := range e.Params {
				names = append(names, q.Name)
			}
			return d, p.errorf(n, field+".data."+dv.Key, "dataset %s has no parameter %q (parameters: %s)", d.Dataset, dv.Key, strings.Join(names, ", "))
		}
	}
	return d, nil
}

// encoder reads one encoder setting: a SPEC for every modality, or a
// mapping of modalities to specs.
func (p gridParser) encoder(n *yaml.Node, field string) ([]string, error) {
	check := func(v *yaml.Node, field string) error {
		if _, err := experiment.ParseEncoder(v.Value); err != nil {
			return p.errorf(v, field, "%v", err)
		}
		return nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if err := check(n, field); err != nil {
			return nil, err
		}
		return []string{n.Value}, nil
	case yaml.MappingNode:
		var out []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, v := n.Content[i].Value, n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				return nil, p.errorf(v, field+"."+key, "want an encoder spec such as mlp:64,32")
			}
			if err := check(v, field+"."+key); err != nil {
				return nil, err
			}
			out = append(out, key+"="+v.Value)
		}
		return out, nil
	}
	return nil, p.errorf(n, field, "want an encoder spec (quote it: \"mlp:64,32\") or a mapping of modalities to specs")
}

// strength checks a strength sweep and fills in the method's strength
// parameter and its preset values.
func (p gridParser) strength(s *Strength) error {
	info, err := methodInfo(s.Method)
	if err != nil {
		return p.errorf(nil, "strength.method", "%v", err)
	}
	preset, known := StrengthPreset(info)
	if s.Param == "" {
		if !known {
			return p.errorf(nil, "strength.param", "method %s has no preset strength parameter; name one of its hyperparameters", s.Method)
		}
		s.Param = preset.Param
	}
	if len(s.Values) == 0 {
		if !known || preset.Param != s.Param {
			return p.errorf(nil, "strength.values", "no preset values for %s's %s; list them", s.Method, s.Param)
		}
		s.Values = preset.Values
	}
	for _, v := range s.Values {
		if _, err := methods.Resolve(info, map[string]string{s.Param: v}); err != nil {
			return p.errorf(nil, "strength.values", "%v", err)
		}
	}
	return nil
}

// methodInfo is a registered method's taxonomy entry (available or not).
func methodInfo(name string) (methods.Info, error) {
	var names []string
	for _, info := range methods.All() {
		if info.Name == name {
			return info, nil
		}
		names = append(names, info.Name)
	}
	return methods.Info{}, fmt.Errorf("unknown method %q (methods: %s)", name, strings.Join(names, ", "))
}

// product is the cartesian product of settings: every combination of one
// value per key, the first key varying slowest.
func product(vs []Values) []map[string]string {
	out := []map[string]string{{}}
	for _, v := range vs {
		var next []map[string]string
		for _, base := range out {
			for _, x := range v.Values {
				m := make(map[string]string, len(base)+1)
				for k, y := range base {
					m[k] = y
				}
				m[v.Key] = x
				next = append(next, m)
			}
		}
		out = next
	}
	return out
}

// label writes settings as k=v,k=v in key order.
func label(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}
