package methods

// mbsdEntry is the registry row of MBSD (Liu et al. 2023; spec §4.8); the method is not built yet.
func mbsdEntry() entry {
	return entry{info: Info{Name: "mbsd", Display: "MBSD", Category: CategoryObjective, Indicator: "performance score", PaperModalities: 2, MaxModalities: 3,
		Domains: "CV, NLP", Citation: "Liu et al. 2023", Cost: "1F + 1BW", Params: window("0")}}
}
