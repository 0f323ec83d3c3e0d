package methods

// mlaEntry is the registry row of MLA (Zhang et al. 2024; spec §4.2); the method is not built yet.
func mlaEntry() entry {
	return entry{info: Info{Name: "mla", Display: "MLA", Category: CategoryFeedForward, Indicator: "N/A", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, NLP, Audio", Citation: "Zhang et al. 2024", Cost: "n × (U + BW_m), n optimizer steps per batch", Params: window("0")}}
}
