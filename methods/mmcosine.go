package methods

import (
	"bmc/compile"
	"bmc/graph/nn"
)

// mmcosine is MMCosine (Xu et al. 2023; spec §4.6): the model's head is the
// cosine fusion (graph/nn FusionCosine), z_m = s·cos(φ_m, W_m[c]) with the
// scale s, z = Σ_m z_m and no bias, trained with CE(z, y). The head is part
// of the model, so validation, the test evaluation and model.onnx use the
// same cosine logits for the output and every modality.
type mmcosine struct{}

// mmcosineEntry is the registry row of the method.
func mmcosineEntry() entry { return entry{info: mmcosineInfo(), method: mmcosine{}} }

func mmcosineInfo() Info {
	return Info{Name: "mmcosine", Display: "MMCosine", Category: CategoryObjective, Indicator: "performance score", PaperModalities: 2, MaxModalities: 3,
		Domains: "CV, Audio", Citation: "Xu et al. 2023", Cost: "1F + 1BW", Params: []Param{float("scaling", "15", "cosine logit scale s").positive()}}
}

func (mmcosine) Info() Info { return mmcosineInfo() }

func (mmcosine) Model(spec nn.ModelSpec, hp Hyper) (nn.ModelSpec, error) {
	if err := requireModalities("mmcosine", spec, 2, 3); err != nil {
		return spec, err
	}
	spec.Fusion = nn.FusionCosine
	spec.FusionOptions = nn.Options{"scale": hp.Float("scaling")}
	return spec, nil
}

func (mmcosine) Build(b *compile.Builder, _ Hyper) error { return buildCE(b) }

func (mmcosine) Schedule(*compile.Manifest, Hyper) (Schedule, error) { return noSchedule{}, nil }
