// Package distill trains a method that distils from unimodal teachers
// (UMT) when no teacher runs are given: in one run directory it trains a
// Unimodal teacher per modality first (RUN/teachers/<modality>/, each a
// normal run with the request's dataset, encoders, preset and seed), then
// the method itself in RUN, reading those teachers. Every stage is a normal
// resumable run, and a resumed staged run continues whichever stage was
// interrupted.
package distill

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"bmc/compile"
	"bmc/datasets"
	"bmc/experiment"
	"bmc/internal/atomicfile"
	"bmc/runtime"
)

// Stage is one training of a staged run.
type Stage struct {
	// Name says what the stage trains: "teacher audio", or the method.
	Name string
	// Dir is the stage's run directory.
	Dir  string
	Plan *compile.Plan
	Data datasets.Dataset
	// Resume continues the stage's run from its last checkpoint.
	Resume bool
}

// Trainer trains one stage (the CLI writes its files and progress around
// runtime.Train).
type Trainer func(Stage) (*runtime.Result, error)

// Names inside a staged run directory.
const (
	// TeachersDir holds one run directory per teacher.
	TeachersDir = "teachers"
	// RequestFile (in TeachersDir) records the staged run's request and
	// the teachers it trains, written before the first stage starts.
	RequestFile = "request.json"
)

// record is RequestFile's content.
type record struct {
	Request experiment.Request `json:"request"`
	// Teachers are the modalities whose teachers the run trains, in order.
	Teachers []string `json:"teachers"`
}

// TeacherDir is the run directory of a modality's teacher in a staged run.
func TeacherDir(dir, modality string) string { return filepath.Join(dir, TeachersDir, modality) }

// IsStaged reports whether dir holds a staged run.
func IsStaged(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, TeachersDir, RequestFile))
	return err == nil
}

// Train trains the teachers of the given modalities and then req's method
// in dir, which must hold no run.
func Train(req experiment.Request, dir string, teachers []string, train Trainer) (*runtime.Result, error) {
	if len(req.Teachers) > 0 {
		return nil, fmt.Errorf("distill: the request names teachers already (%v); train it as a normal run", req.Teachers)
	}
	if len(teachers) == 0 {
		return nil, errors.New("distill: no teachers to train")
	}
	if IsStaged(dir) {
		return nil, fmt.Errorf("run directory %s already holds a run with teachers (%s); choose another --out, or continue it with --resume", dir, filepath.Join(TeachersDir, RequestFile))
	}
	if err := runtime.CheckNewRunDir(dir); err != nil {
		return nil, err
	}
	rec := record{Request: req, Teachers: teachers}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, TeachersDir), 0o755); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, TeachersDir, RequestFile), append(data, '\n')); err != nil {
		return nil, err
	}
	return run(rec, dir, train)
}

// Resume continues the staged run in dir: an interrupted teacher, the
// teachers not started yet, then the method. dataRoot, when set, replaces
// the recorded dataset folder.
func Resume(dir, dataRoot string, train Trainer) (*runtime.Result, error) {
	path := filepath.Join(dir, TeachersDir, RequestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rec.Teachers) == 0 || rec.Request.Method == "" {
		return nil, fmt.Errorf("%s: fields request.Method and teachers must be set", path)
	}
	if runtime.StageOf(dir) == runtime.RunFinished {
		return nil, fmt.Errorf("run %s is finished (%s exists); nothing to resume", dir, runtime.ResultsFile)
	}
	if dataRoot != "" {
		rec.Request.DataRoot = dataRoot
	}
	return run(rec, dir, train)
}

// run trains every stage that has not finished.
func run(rec record, dir string, train Trainer) (*runtime.Result, error) {
	req := rec.Request
	runs := map[string]string{}
	for _, m := range rec.Teachers {
		tdir := TeacherDir(dir, m)
		runs[m] = tdir
		if runtime.StageOf(tdir) == runtime.RunFinished {
			continue
		}
		if _, err := stage(tdir, "teacher "+m, teacherRequest(req, m), train); err != nil {
			return nil, fmt.Errorf("teacher of %s (%s): %w", m, tdir, err)
		}
	}
	req.Teachers = runs
	return stage(dir, req.Method, req, train)
}

// stage trains one stage's run in dir: resumed when it committed an epoch,
// else started afresh from req.
func stage(dir, name string, req experiment.Request, train Trainer) (*runtime.Result, error) {
	s := Stage{Name: name, Dir: dir}
	var err error
	if runtime.StageOf(dir) == runtime.RunResumable {
		s.Resume = true
		if s.Plan, err = compile.Load(filepath.Join(dir, runtime.PlanDir)); err != nil {
			return nil, err
		}
		if s.Data, err = experiment.OpenPlanData(s.Plan, req.DataRoot, req.SkipBad); err != nil {
			return nil, err
		}
		return train(s)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := runtime.ClearUncommitted(dir); err != nil {
		return nil, err
	}
	if s.Plan, s.Data, err = experiment.CompileWith(req, runtime.ReadFinishedRun); err != nil {
		return nil, err
	}
	return train(s)
}

// teacherRequest is the Unimodal run that trains modality m's teacher: the
// request's dataset, encoders, preset and training settings, with m's
// pretrained weights if it has any.
func teacherRequest(r experiment.Request, m string) experiment.Request {
	t := r
	t.Method = "unimodal"
	t.Hyper = map[string]string{"modality": m}
	t.Teachers = nil
	t.Pretrained = nil
	if path, ok := r.Pretrained[m]; ok {
		t.Pretrained = map[string]string{m: path}
	}
	return t
}
