package methods

// gblendingEntry is the registry row of GBlending (Wang et al. 2020; spec §4.11); the method is not built yet.
func gblendingEntry() entry {
	return entry{info: Info{Name: "gblending", Display: "GBlending", Category: CategoryObjective, Indicator: "classification loss", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, Audio", Citation: "Wang et al. 2020", Cost: "1F + 1BW; at epochs 0, 10, 20: (n+1)·10 epochs of F+BW",
		Params: []Param{{Name: "method", Default: "online", Kind: "choice", Choices: []string{"online", "offline"}}, integer("super_epoch", "10", "epochs between weight estimates").atLeast(1)}}}
}
