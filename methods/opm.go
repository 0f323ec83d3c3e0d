package methods

// opmEntry is the registry row of OPM (Wei et al. 2025; spec §4.3); the method is not built yet.
func opmEntry() entry {
	return entry{info: Info{Name: "opm", Display: "OPM", Category: CategoryFeedForward, Indicator: "performance score", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, NLP, Audio", Citation: "Wei et al. 2025", Cost: "1F + 1BW",
		Params: append([]Param{float("alpha", "0.5", "drop-rate scale").atLeast(0), float("p_exe", "0.7", "probability of dropping in a step").probability(), float("q_base", "0.4", "base drop probability").probability()}, window("0")...)}}
}
