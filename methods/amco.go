package methods

// amcoEntry is the registry row of AMCo (Zhou et al. 2023; spec §4.5); the method is not built yet.
func amcoEntry() entry {
	return entry{info: Info{Name: "amco", Display: "AMCo", Category: CategoryFeedForward, Indicator: "performance score", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, NLP, Audio", Citation: "Zhou et al. 2023", Cost: "1F + (n+1)BW",
		Params: append([]Param{float("sigma", "0.5", "dependence threshold").probability(), float("eps", "0.3", "mask ramp length").positive(), integer("U", "512", "feature units (unused by the reference)").atLeast(1), float("alpha", "0.1", "unused by the reference")}, window("0")...)}}
}
