package methods

// greedyEntry is the registry row of Greedy (Wu et al. 2022; spec §4.4); the method is not built yet.
func greedyEntry() entry {
	return entry{info: Info{Name: "greedy", Display: "Greedy", Category: CategoryFeedForward, Indicator: "gradient change", PaperModalities: 2, MaxModalities: 2,
		Domains: "CV, Audio", Citation: "Wu et al. 2022", Cost: "1F(+MMTM) + 1BW",
		Params: append([]Param{float("alpha", "0.001", "curation threshold on the speed gap").atLeast(0), integer("window_size", "5", "curation steps").atLeast(1)}, window("0")...)}}
}
