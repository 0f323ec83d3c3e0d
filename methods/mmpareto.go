package methods

// mmparetoEntry is the registry row of MMPareto (Wei & Hu 2024; spec §4.10); the method is not built yet.
func mmparetoEntry() entry {
	return entry{info: Info{Name: "mmpareto", Display: "MMPareto", Category: CategoryObjective, Indicator: "performance score", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, NLP, Audio", Citation: "Wei & Hu 2024", Cost: "1F + (n+2)BW", Params: []Param{float("alpha", "1.5", "gradient scale").positive()}}}
}
