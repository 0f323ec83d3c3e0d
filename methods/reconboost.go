package methods

// reconboostEntry is the registry row of ReconBoost (Hua et al. 2024; spec §4.17); the method is not built yet.
func reconboostEntry() entry {
	return entry{info: Info{Name: "reconboost", Display: "ReconBoost", Category: CategoryOptimization, Indicator: "classification loss", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, NLP, Audio", Citation: "Hua et al. 2024", Cost: "per epoch 2·n·T passes (boosting and rectification)",
		Params: append([]Param{float("alpha", "0.5", "GA weight").atLeast(0), integer("T_epochs", "1", "passes per phase").atLeast(1), float("weight1", "5", "boosting weight").atLeast(0), float("weight2", "1", "reconcilement weight").atLeast(0)}, window("0")...)}}
}
