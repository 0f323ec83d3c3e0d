package methods

// relearningEntry is the registry row of Diagnosing & Re-learning (Wei et al. 2024b; spec §4.16); the method is not built yet.
func relearningEntry() entry {
	return entry{info: Info{Name: "relearning", Display: "Relearning", Category: CategoryOptimization, Indicator: "clustering", PaperModalities: 3, MaxModalities: 3,
		Domains: "CV, NLP, Audio", Citation: "Wei et al. 2024b", Cost: "1F + 1BW; at epoch 15: Fe over train+val and KMeans",
		Params: append([]Param{float("move_lambda", "3", "re-initialisation strength").atLeast(0), integer("reinit_epoch", "15", "epochs between re-initialisations").atLeast(1), integer("reinit_num", "2", "most re-initialisations").atLeast(0)}, window("0")...)}}
}
