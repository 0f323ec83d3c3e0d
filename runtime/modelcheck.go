package runtime

import (
	"fmt"
	"slices"
	"strings"

	"bmc/datasets"
)

// CheckData checks that a dataset can be fed to the model: the same
// modalities, each with the model's sample shape and element type, and the
// same number of classes. A mismatch would otherwise be evaluated anyway
// (a missing modality as zeros) and give normal-looking, meaningless
// metrics. Errors name both sides.
func (m *ExportedModel) CheckData(spec datasets.Spec) error {
	if spec.Classes != m.classes {
		return fmt.Errorf("%s has %d classes; dataset %s has %d", m.Path, m.classes, spec.Name, spec.Classes)
	}
	var dataMods []string
	for _, d := range spec.Modalities {
		dataMods = append(dataMods, d.Name)
	}
	for _, name := range m.modalities {
		want := m.inputs[name]
		got, ok := spec.Modality(name)
		if !ok {
			return fmt.Errorf("%s takes modality %s, which dataset %s lacks (its modalities: %s)", m.Path, name, spec.Name, strings.Join(dataMods, ", "))
		}
		if !slices.Equal(got.Shape, want.Shape) || got.Int != want.Int {
			return fmt.Errorf("%s takes modality %s as %s; dataset %s gives %s", m.Path, name, describeModality(want), spec.Name, describeModality(got))
		}
	}
	for _, d := range dataMods {
		if !slices.Contains(m.modalities, d) {
			return fmt.Errorf("dataset %s has modality %s, which %s does not take (it takes %s)", spec.Name, d, m.Path, strings.Join(m.modalities, ", "))
		}
	}
	return nil
}

// describeModality is a sample's shape and element type: "[1 32] float32".
func describeModality(m datasets.Modality) string {
	if m.Int {
		return fmt.Sprint(m.Shape) + " int64 token ids"
	}
	return fmt.Sprint(m.Shape) + " float32"
}
