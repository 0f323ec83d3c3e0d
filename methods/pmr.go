package methods

// pmrEntry is the registry row of PMR (Fan et al. 2023; spec §4.15); the method is not built yet.
func pmrEntry() entry {
	return entry{info: Info{Name: "pmr", Display: "PMR", Category: CategoryOptimization, Indicator: "prototype", PaperModalities: 2, MaxModalities: 3,
		Domains: "CV, Audio", Citation: "Fan et al. 2023", Cost: "1F + 1BW; per epoch Fe over 10% of train",
		Params: append([]Param{float("alpha", "0.6", "prototype-loss weight").atLeast(0), float("momentum_coef", "0.5", "prototype momentum").probability(), float("eta", "0.01", "3-modality modulation scale").atLeast(0)}, window("0")...)}}
}
