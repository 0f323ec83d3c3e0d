package methods

// mmcosineEntry is the registry row of MMCosine (Xu et al. 2023; spec §4.6); the method is not built yet.
func mmcosineEntry() entry {
	return entry{info: Info{Name: "mmcosine", Display: "MMCosine", Category: CategoryObjective, Indicator: "performance score", PaperModalities: 2, MaxModalities: 3,
		Domains: "CV, Audio", Citation: "Xu et al. 2023", Cost: "1F + 1BW", Params: []Param{float("scaling", "15", "cosine logit scale s").positive()}}}
}
