package sweep

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"bmc/internal/atomicfile"
)

// Files and folders of a sweep directory.
const (
	// ManifestFile lists the cells and their configurations.
	ManifestFile = "manifest.yaml"
	// RunsDir holds one bmc run directory per cell, named by its ID.
	RunsDir = "runs"
	// CellsDir holds per cell its training output (ID.log), its failure
	// record (ID.failed.json) and its lock (ID.lock).
	CellsDir = "cells"
	// SlurmDir holds the job scripts, the submitted jobs and the task logs.
	SlurmDir = "slurm"
)

// Manifest is a sweep directory's record of its cells.
type Manifest struct {
	Name string `yaml:"name"`
	// Grid is the grid file the cells came from (the last one merged).
	Grid     string       `yaml:"grid,omitempty"`
	Strength *Strength    `yaml:"strength,omitempty"`
	Slurm    SlurmOptions `yaml:"slurm,omitempty"`
	Cells    []Cell       `yaml:"cells"`
}

// Sweep is an open sweep directory.
type Sweep struct {
	// Dir is the sweep directory as an absolute path, so that the
	// commands it writes run from any working directory.
	Dir      string
	Manifest Manifest
}

// IsSweep reports whether dir holds a sweep manifest.
func IsSweep(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ManifestFile))
	return err == nil
}

// Open opens a sweep directory.
func Open(dir string) (*Sweep, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(abs, ManifestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s is not a sweep directory (no %s; bmc sweep GRID.yaml --out %s makes one)", dir, ManifestFile, dir)
		}
		return nil, err
	}
	s := &Sweep{Dir: abs}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s.Manifest); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := uniqueIDs(s.Manifest.Cells); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Create makes a sweep directory for a grid's cells, or adds them to the
// one already there: cells it holds are kept (with their runs), new ones
// are appended. A cell whose ID it holds with another configuration is an
// error, since its run would not be the one the grid asks for.
func Create(dir string, g *Grid, cells []Cell) (*Sweep, error) {
	s := &Sweep{Manifest: Manifest{Name: g.Name}}
	var err error
	if IsSweep(dir) {
		if s, err = Open(dir); err != nil {
			return nil, err
		}
	} else if s.Dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	have := map[string]Cell{}
	for _, c := range s.Manifest.Cells {
		have[c.ID] = c
	}
	var conflicts []string
	for _, c := range cells {
		old, ok := have[c.ID]
		if !ok {
			s.Manifest.Cells = append(s.Manifest.Cells, c)
			continue
		}
		a, err := yaml.Marshal(old.Config)
		if err != nil {
			return nil, err
		}
		b, err := yaml.Marshal(c.Config)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(a, b) {
			conflicts = append(conflicts, c.ID)
		}
	}
	if len(conflicts) > 0 {
		return nil, fmt.Errorf("%s: the sweep in %s already has cells %s with another configuration (the grid's settings changed); use another --out for the new grid, or remove those cells' runs/ directories and their entries in %s",
			g.Path, dir, strings.Join(conflicts, ", "), ManifestFile)
	}
	s.Manifest.Grid = g.Path
	s.Manifest.Slurm = g.Slurm
	if g.Strength != nil {
		s.Manifest.Strength = g.Strength
	}
	for _, d := range []string{s.Dir, filepath.Join(s.Dir, RunsDir), filepath.Join(s.Dir, CellsDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("sweep directory: %w", err)
		}
	}
	data, err := yaml.Marshal(&s.Manifest)
	if err != nil {
		return nil, err
	}
	head := []byte("# The cells of a bmc sweep; bmc sweep status " + dir + " shows their state.\n")
	if err := atomicfile.WriteBytes(filepath.Join(s.Dir, ManifestFile), append(head, data...)); err != nil {
		return nil, err
	}
	return s, nil
}

// RunDir is a cell's run directory.
func (s *Sweep) RunDir(c Cell) string { return filepath.Join(s.Dir, RunsDir, c.ID) }

// cellFile is one of a cell's files in the cells folder.
func (s *Sweep) cellFile(c Cell, suffix string) string {
	return filepath.Join(s.Dir, CellsDir, c.ID+suffix)
}

// LogFile is the file a cell's bmc train output goes to (every attempt
// appended).
func (s *Sweep) LogFile(c Cell) string { return s.cellFile(c, ".log") }

// Cell finds a cell by its index or ID.
func (s *Sweep) Cell(key string) (int, Cell, error) {
	for i, c := range s.Manifest.Cells {
		if c.ID == key || fmt.Sprint(i) == key {
			return i, c, nil
		}
	}
	return 0, Cell{}, fmt.Errorf("sweep %s has no cell %q (cells 0-%d, or their IDs in %s)", s.Dir, key, len(s.Manifest.Cells)-1, ManifestFile)
}
