package experiment

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"bmc/compile"
	"bmc/flops"
)

// MissingTeachersError says that a method distils from unimodal teachers the
// request does not name. A caller may train them first (package distill).
type MissingTeachersError struct {
	Method string
	// Modalities lack a teacher, in the model's fusion order.
	Modalities []string
	// Given is how many teachers the request named.
	Given int
}

func (e *MissingTeachersError) Error() string {
	var flags []string
	for _, m := range e.Modalities {
		flags = append(flags, "--teacher "+m+"=RUN_DIR")
	}
	msg := fmt.Sprintf("method %s distils from a unimodal teacher of each modality; none is given for %s: give %s (finished runs of `bmc train --method unimodal --hp modality=M`)",
		e.Method, strings.Join(e.Modalities, ", "), strings.Join(flags, " "))
	if e.Given == 0 {
		msg += ", or run `bmc train` without --teacher, which trains the teachers first in the run directory"
	}
	return msg
}

// teacherTensors lists, per modality, the teacher tensors the plan's frozen
// state reads (frozen-state key → the tensor's name in the teacher's
// checkpoint).
func teacherTensors(m *compile.Manifest) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, s := range m.State {
		if s.Kind != compile.StateFrozen {
			continue
		}
		if mod, name, ok := compile.TeacherTensor(s.Key); ok {
			if out[mod] == nil {
				out[mod] = map[string]string{}
			}
			out[mod][s.Key] = name
		}
	}
	return out
}

// TeacherModalities lists the modalities whose unimodal teachers a plan
// reads, in the model's fusion order.
func TeacherModalities(m *compile.Manifest) []string {
	need := teacherTensors(m)
	var out []string
	for _, mod := range m.ModalityNames() {
		if need[mod] != nil {
			out = append(out, mod)
		}
	}
	return out
}

// loadTeachers fills the plan's teacher state from the request's teacher
// runs (their best checkpoints) and records each teacher with its training
// cost.
func (r Request) loadTeachers(plan *compile.Plan, read RunReader) error {
	m := &plan.Manifest
	need := teacherTensors(m)
	mods := TeacherModalities(m)
	for _, mod := range slices.Sorted(maps.Keys(r.Teachers)) {
		if need[mod] == nil {
			if len(mods) == 0 {
				return fmt.Errorf("--teacher %s=%s: method %s reads no teachers", mod, r.Teachers[mod], m.Method)
			}
			return fmt.Errorf("--teacher %s=%s: method %s reads teachers of %s, not %s", mod, r.Teachers[mod], m.Method, strings.Join(mods, ", "), mod)
		}
	}
	var missing []string
	for _, mod := range mods {
		if r.Teachers[mod] == "" {
			missing = append(missing, mod)
		}
	}
	if len(missing) > 0 {
		return &MissingTeachersError{Method: m.Method, Modalities: missing, Given: len(r.Teachers)}
	}
	if len(mods) > 0 && read == nil {
		return fmt.Errorf("method %s reads teacher runs; compile it with experiment.CompileWith and a run reader", m.Method)
	}
	for _, mod := range mods {
		t, err := loadTeacher(plan, mod, r.Teachers[mod], need[mod], read)
		if err != nil {
			return fmt.Errorf("teacher of %s: %w", mod, err)
		}
		m.Teachers = append(m.Teachers, t)
	}
	return nil
}

// loadTeacher checks that dir holds a finished unimodal run that fits the
// plan's model for modality mod, and copies its tensors into the plan.
func loadTeacher(plan *compile.Plan, mod, dir string, tensors map[string]string, read RunReader) (compile.Teacher, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return compile.Teacher{}, err
	}
	tp, best, err := read(dir)
	if err != nil {
		return compile.Teacher{}, err
	}
	m, tm := &plan.Manifest, &tp.Manifest
	bad := func(format string, a ...any) error {
		return fmt.Errorf("run %s: %s", dir, fmt.Sprintf(format, a...))
	}
	if tm.Method != "unimodal" {
		return compile.Teacher{}, bad("it trained method %s; a teacher is a unimodal run (bmc train --method unimodal --hp modality=%s)", tm.Method, mod)
	}
	if names := tm.ModalityNames(); len(names) != 1 || names[0] != mod {
		return compile.Teacher{}, bad("it trained modality %s, want %s", strings.Join(names, ", "), mod)
	}
	if tm.Dataset.Name != m.Dataset.Name || !maps.Equal(tm.Dataset.Params, m.Dataset.Params) || tm.Model.Classes != m.Model.Classes {
		return compile.Teacher{}, bad("it trained on dataset %s %v (%d classes), this run uses %s %v (%d classes)",
			tm.Dataset.Name, tm.Dataset.Params, tm.Model.Classes, m.Dataset.Name, m.Dataset.Params, m.Model.Classes)
	}
	for _, ms := range m.Model.Modalities {
		if ms.Name != mod {
			continue
		}
		got := tm.Model.Modalities[0]
		if !got.Shape.Equal(ms.Shape) || EncoderString(got.Encoder) != EncoderString(ms.Encoder) {
			return compile.Teacher{}, bad("its %s encoder is %s on inputs %v, this run's is %s on %v",
				mod, EncoderString(got.Encoder), got.Shape, EncoderString(ms.Encoder), ms.Shape)
		}
	}
	shapes := map[string]int64{}
	for _, s := range m.State {
		shapes[s.Key] = s.Shape.Size()
	}
	for _, key := range slices.Sorted(maps.Keys(tensors)) {
		v, ok := best[tensors[key]]
		if !ok {
			return compile.Teacher{}, bad("its best checkpoint has no tensor %s", tensors[key])
		}
		if int64(len(v)) != shapes[key] {
			return compile.Teacher{}, bad("tensor %s of its best checkpoint has %d values, want %d", tensors[key], len(v), shapes[key])
		}
		plan.Init[key] = v
	}
	rep, err := flops.PlanReport(tp)
	if err != nil {
		return compile.Teacher{}, fmt.Errorf("run %s: %w", dir, err)
	}
	return compile.Teacher{Modality: mod, Run: abs, FLOPs: rep.Training.Total, FLOPsByPhase: rep.Training.Phase, MACs: rep.Training.MACs}, nil
}
