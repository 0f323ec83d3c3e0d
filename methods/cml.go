package methods

// cmlEntry is the registry row of CML (Ma et al. 2023; spec §4.9); the method is not built yet.
func cmlEntry() entry {
	return entry{info: Info{Name: "cml", Display: "CML", Category: CategoryObjective, Indicator: "classification loss", PaperModalities: 2, MaxModalities: 3,
		Domains: "CV, NLP", Citation: "Ma et al. 2023", Cost: "1F + 1BW", Params: []Param{float("lam", "0.1", "confidence-loss weight").atLeast(0)}}}
}
