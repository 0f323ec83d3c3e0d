package methods

// lfmEntry is the registry row of LFM (Yang et al. 2024; spec §4.12); the method is not built yet.
func lfmEntry() entry {
	return entry{info: Info{Name: "lfm", Display: "LFM", Category: CategoryObjective, Indicator: "N/A", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, NLP, Audio", Citation: "Yang et al. 2024", Cost: "1F + 1BW; per epoch an HVP on B/4 samples", Params: []Param{float("lr_alpha", "0.0001", "mixing-weight learning rate").atLeast(0)}}}
}
