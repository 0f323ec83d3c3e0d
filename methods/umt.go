package methods

// umtEntry is the registry row of UMT (Du et al. 2023; spec §4.7); the method is not built yet.
func umtEntry() entry {
	return entry{info: Info{Name: "umt", Display: "UMT", Category: CategoryObjective, Indicator: "N/A", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, Audio", Citation: "Du et al. 2023", Cost: "1F + 1BW + n·U (teacher); n unimodal trainings first",
		Params: []Param{float("scaling", "10", "distillation weight").atLeast(0), float("alpha", "1", "unused by the reference")}}}
}
