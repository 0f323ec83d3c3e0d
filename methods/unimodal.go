package methods

import (
	"fmt"
	"strings"

	"bmc/compile"
	"bmc/graph/nn"
)

// unimodal trains one modality alone: its encoder and a Linear(d_m → C)
// head, with CE (spec §4.0). Its accuracy is the "trained alone" reference
// of the paper's Figure 2.
type unimodal struct{}

// unimodalEntry is the registry row of the method.
func unimodalEntry() entry { return entry{info: unimodalInfo(), method: unimodal{}} }

func unimodalInfo() Info {
	return Info{Name: "unimodal", Display: "Unimodal", Category: CategoryReference, Indicator: "N/A", MaxModalities: 1,
		Domains: "CV, NLP, Audio", Citation: "one modality trained alone", Cost: "1U + 1BW_m",
		Params: []Param{{Name: "modality", Kind: "string", Doc: "the modality to train (required)"}}}
}

func (unimodal) Info() Info { return unimodalInfo() }

func (unimodal) Model(spec nn.ModelSpec, hp Hyper) (nn.ModelSpec, error) {
	want := hp.String("modality")
	var names []string
	for _, m := range spec.Modalities {
		names = append(names, m.Name)
		if m.Name == want {
			spec.Modalities = []nn.ModalitySpec{m}
			return spec, nil
		}
	}
	return spec, fmt.Errorf("method unimodal: hyperparameter modality=%q: want one of %s (e.g. --hp modality=%s)", want, strings.Join(names, ", "), names[0])
}

func (unimodal) Build(b *compile.Builder, _ Hyper) error { return buildCE(b) }

func (unimodal) Schedule(*compile.Manifest, Hyper) (Schedule, error) { return noSchedule{}, nil }
