package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"bmc/compile"
	"bmc/runtime"
)

// runFiles are the names a training run writes into its directory.
func runFiles() []string {
	return []string{ConfigFile, ProblemsFile, runtime.PlanDir, runtime.LogFile, runtime.TensorBoardDir, runtime.BestCheckpoint,
		runtime.LastCheckpoint, runtime.RunStateFile, runtime.ResultsFile, runtime.ModelFile, runtime.LockFile}
}

// exists reports whether path names something on disk.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// isRunDir reports whether dir holds a training run (finished or not).
func isRunDir(dir string) bool {
	return exists(filepath.Join(dir, runtime.PlanDir, compile.ManifestFile)) || exists(filepath.Join(dir, runtime.LastCheckpoint))
}

// isPlanDir reports whether dir holds a compiled plan.
func isPlanDir(dir string) bool { return exists(filepath.Join(dir, compile.ManifestFile)) }

// realDir resolves a path's folder (symbolic links included, when it
// exists) so that two spellings of one folder compare equal.
func realDir(path string) (dir, base string, err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", "", err
	}
	dir, base = filepath.Split(abs)
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r
	}
	return filepath.Clean(dir), base, nil
}

// refuseOwnFile refuses an output path (given with flag) that is one of a
// run's or a plan's own files, or one of sources, the files the command
// reads: writing there would silently corrupt what bmc report, bmc eval or
// a resume read later.
func refuseOwnFile(flag, path string, sources ...string) error {
	dir, base, err := realDir(path)
	if err != nil {
		return fmt.Errorf("%s %s: %w", flag, path, err)
	}
	for _, src := range sources {
		a, errA := os.Stat(path)
		b, errB := os.Stat(src)
		if errA == nil && errB == nil && os.SameFile(a, b) {
			return fmt.Errorf("%s %s is the file this command reads; write to another file", flag, path)
		}
	}
	if isRunDir(dir) && slices.Contains(runFiles(), base) {
		return fmt.Errorf("%s %s would overwrite the %s of run %s (bmc train wrote it; bmc report and --resume read it): write outside the run directory or under another name", flag, path, base, dir)
	}
	// Inside a run's plan folder, or a plan directory, every file is the plan's.
	if isPlanDir(dir) && (base == compile.ManifestFile || base == compile.ParamsFile || strings.HasSuffix(base, ".onnx") || filepath.Base(dir) == runtime.PlanDir) {
		return fmt.Errorf("%s %s would overwrite a file of plan %s: write outside the plan directory", flag, path, dir)
	}
	return nil
}

// checkCompileDir checks that a plan may be written into dir: never into a
// run directory (its plan is what the run trained), into an existing plan
// or a folder with files only with force.
func checkCompileDir(dir string, force bool) error {
	if isRunDir(dir) {
		return fmt.Errorf("-o %s is a run directory; its plan is the one the run trained (compile into another folder)", dir)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("-o %s: %w", dir, err)
	}
	what := fmt.Sprintf("holds %d files", len(entries))
	if isPlanDir(dir) {
		what = "holds a plan"
	}
	if !force {
		return fmt.Errorf("-o %s already %s; --force replaces it, or choose another folder", dir, what)
	}
	return nil
}

// removeOldPlan removes the plan in dir (if any) that --force replaces, so
// that none of its graph files lingers beside the new plan's.
func removeOldPlan(dir string) error {
	if !isPlanDir(dir) {
		return nil
	}
	var old struct {
		Graphs []struct {
			File string `json:"file"`
		} `json:"graphs"`
	}
	data, err := os.ReadFile(filepath.Join(dir, compile.ManifestFile))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &old); err != nil {
		return fmt.Errorf("-o %s: the plan to replace: %s: %w", dir, compile.ManifestFile, err)
	}
	// plan.json goes first: a folder without it is no plan, whatever else
	// a failure leaves.
	files := []string{compile.ManifestFile, compile.ParamsFile}
	for _, g := range old.Graphs {
		if g.File != "" && filepath.Base(g.File) == g.File {
			files = append(files, g.File)
		}
	}
	for _, f := range files {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("-o %s: remove the old plan: %w", dir, err)
		}
	}
	return nil
}

// loadRunPlan loads the plan of the run directory dir, or says what dir is
// instead and how to get a run directory from it.
func loadRunPlan(dir string) (*compile.Plan, error) {
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return nil, fmt.Errorf("no run directory %s (bmc train … --out %s makes one)", dir, dir)
	case !fi.IsDir():
		return nil, fmt.Errorf("%s is a file, neither a run directory nor a .onnx model", dir)
	case isPlanDir(dir) && !isRunDir(dir):
		return nil, fmt.Errorf("%s is a plan directory (compiled, not trained): train it with bmc train %s --out RUN_DIR, then use RUN_DIR", dir, dir)
	case !exists(filepath.Join(dir, runtime.PlanDir, compile.ManifestFile)):
		return nil, fmt.Errorf("%s is not a run directory: it has no %s (bmc train … --out DIR makes a run directory)", dir, filepath.Join(runtime.PlanDir, compile.ManifestFile))
	}
	plan, err := compile.Load(filepath.Join(dir, runtime.PlanDir))
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", dir, err)
	}
	return plan, nil
}

// checkExportPath allows bmc export to write the run's own model.onnx only
// from the best checkpoint (which is what that file is: exporting it again
// restores the file); any other file of a run or plan is refused.
func checkExportPath(run, path, checkpoint string) error {
	dir, base, err := realDir(path)
	if err != nil {
		return err
	}
	runDir, _, err := realDir(filepath.Join(run, runtime.ModelFile))
	if err != nil {
		return err
	}
	if dir == runDir && base == runtime.ModelFile {
		if checkpoint != "best" {
			return fmt.Errorf("%s is the run's best model (results.json describes it): write the %s checkpoint elsewhere with -o FILE", path, checkpoint)
		}
		return nil
	}
	return refuseOwnFile("-o", path)
}
