package methods

// sampleEntry is the registry row of Modality-valuation (Wei et al. 2024a; spec §4.1); the method is not built yet.
func sampleEntry() entry {
	return entry{info: Info{Name: "sample", Display: "Modality-valuation", Category: CategoryData, Indicator: "Shapley-based metric", PaperModalities: 2, MaxModalities: 3,
		Domains: "CV, Audio", Citation: "Wei et al. 2024a", Cost: "1F + 1BW on an enlarged set; every epoch ≥ 1: (2ⁿ−1)·Fe over the train set",
		Params: []Param{{Name: "method", Default: "Modality-level", Kind: "choice", Choices: []string{"Modality-level", "Sample-level"}},
			float("part_ratio", "0.2", "share of the training set sampled to estimate contributions").in(0, 1), integer("modulation_starts", "1", "first epoch of resampling").atLeast(0)}}}
}
