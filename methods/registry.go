package methods

// window are the modulation-window hyperparameters many methods share; the
// window is checked against the 0-based epoch.
func window(starts string) []Param {
	return []Param{
		{Name: "modulation_starts", Default: starts, Kind: "int", Doc: "first epoch (0-based) with modulation"},
		{Name: "modulation_ends", Default: "80", Kind: "int", Doc: "last epoch with modulation"},
	}
}

func float(name, def, doc string) Param {
	return Param{Name: name, Default: def, Kind: "float", Doc: doc}
}

func integer(name, def, doc string) Param {
	return Param{Name: name, Default: def, Kind: "int", Doc: doc}
}

// registry is the paper's Table 1 (spec §4.18) with the defaults of spec §4;
// a nil method is listed but not built yet.
func registry() []entry {
	return []entry{
		{info: baselineInfo(), method: baseline{}},
		{info: unimodalInfo(), method: unimodal{}},
		{info: Info{Name: "sample", Display: "Modality-valuation", Category: CategoryData, Indicator: "Shapley-based metric", PaperModalities: 2, MaxModalities: 3,
			Domains: "CV, Audio", Citation: "Wei et al. 2024a", Cost: "1F + 1BW on an enlarged set; every epoch ≥ 1: (2ⁿ−1)·Fe over the train set",
			Params: []Param{{Name: "method", Default: "Modality-level", Kind: "choice", Choices: []string{"Modality-level", "Sample-level"}},
				float("part_ratio", "0.2", "share of the training set sampled to estimate contributions"), integer("modulation_starts", "1", "first epoch of resampling")}}},
		{info: Info{Name: "mla", Display: "MLA", Category: CategoryFeedForward, Indicator: "N/A", PaperModalities: 3, MaxModalities: 3,
			Domains: "CV, NLP, Audio", Citation: "Zhang et al. 2024", Cost: "n × (U + BW_m), n optimizer steps per batch", Params: window("0")}},
		{info: Info{Name: "opm", Display: "OPM", Category: CategoryFeedForward, Indicator: "performance score", PaperModalities: 3, MaxModalities: 3,
			Domains: "CV, NLP, Audio", Citation: "Wei et al. 2025", Cost: "1F + 1BW",
			Params: append([]Param{float("alpha", "0.5", "drop-rate scale"), float("p_exe", "0.7", "probability of dropping in a step"), float("q_base", "0.4", "base drop probability")}, window("0")...)}},
		{info: Info{Name: "greedy", Display: "Greedy", Category: CategoryFeedForward, Indicator: "gradient change", PaperModalities: 2, MaxModalities: 2,
			Domains: "CV, Audio", Citation: "Wu et al. 2022", Cost: "1F(+MMTM) + 1BW",
			Params: append([]Param{float("alpha", "0.001", "curation threshold on the speed gap"), integer("window_size", "5", "curation steps")}, window("0")...)}},
		{info: Info{Name: "amco", Display: "AMCo", Category: CategoryFeedForward, Indicator: "performance score", PaperModalities: 3, MaxModalities: 3,
			Domains: "CV, NLP, Audio", Citation: "Zhou et al. 2023", Cost: "1F + (n+1)BW",
			Params: append([]Param{float("sigma", "0.5", "dependence threshold"), float("eps", "0.3", "mask ramp length"), integer("U", "512", "feature units (unused by the reference)"), float("alpha", "0.1", "unused by the reference")}, window("0")...)}},
		{info: Info{Name: "mmcosine", Display: "MMCosine", Category: CategoryObjective, Indicator: "performance score", PaperModalities: 2, MaxModalities: 3,
			Domains: "CV, Audio", Citation: "Xu et al. 2023", Cost: "1F + 1BW", Params: []Param{float("scaling", "15", "cosine logit scale s")}}},
		{info: Info{Name: "umt", Display: "UMT", Category: CategoryObjective, Indicator: "N/A", PaperModalities: 3, MaxModalities: 3,
			Domains: "CV, Audio", Citation: "Du et al. 2023", Cost: "1F + 1BW + n·U (teacher); n unimodal trainings first",
			Params: []Param{float("scaling", "10", "distillation weight"), float("alpha", "1", "unused by the reference")}}},
		{info: Info{Name: "mbsd", Display: "MBSD", Category: CategoryObjective, Indicator: "performance score", PaperModalities: 2, MaxModalities: 3,
			Domains: "CV, NLP", Citation: "Liu et al. 2023", Cost: "1F + 1BW", Params: window("0")}},
		{info: Info{Name: "cml", Display: "CML", Category: CategoryObjective, Indicator: "classification loss", PaperModalities: 2, MaxModalities: 3,
			Domains: "CV, NLP", Citation: "Ma et al. 2023", Cost: "1F + 1BW", Params: []Param{float("lam", "0.1", "confidence-loss weight")}}},
		{info: Info{Name: "mmpareto", Display: "MMPareto", Category: CategoryObjective, Indicator: "performance score", PaperModalities: 3, MaxModalities: 3,
			Domains: "CV, NLP, Audio", Citation: "Wei & Hu 2024", Cost: "1F + (n+2)BW", Params: []Param{float("alpha", "1.5", "gradient scale")}}},
		{info: Info{Name: "gblending", Display: "GBlending", Category: CategoryObjective, Indicator: "classification loss", PaperModalities: 3, MaxModalities: 3,
			Domains: "CV, Audio", Citation: "Wang et al. 2020", Cost: "1F + 1BW; at epochs 0, 10, 20: (n+1)·10 epochs of F+BW",
			Params: []Param{{Name: "method", Default: "online", Kind: "choice", Choices: []string{"online", "offline"}}, integer("super_epoch", "10", "epochs between weight estimates")}}},
		{info: Info{Name: "lfm", Display: "LFM", Category: CategoryObjective, Indicator: "N/A", PaperModalities: 3, MaxModalities: 3,
			Domains: "CV, NLP, Audio", Citation: "Yang et al. 2024", Cost: "1F + 1BW; per epoch an HVP on B/4 samples", Params: []Param{float("lr_alpha", "0.0001", "mixing-weight learning rate")}}},
		{info: ogmInfo(), method: ogm{}},
		{info: agmInfo(), method: agm{}},
		{info: Info{Name: "pmr", Display: "PMR", Category: CategoryOptimization, Indicator: "prototype", PaperModalities: 2, MaxModalities: 3,
			Domains: "CV, Audio", Citation: "Fan et al. 2023", Cost: "1F + 1BW; per epoch Fe over 10% of train",
			Params: append([]Param{float("alpha", "0.6", "prototype-loss weight"), float("momentum_coef", "0.5", "prototype momentum"), float("eta", "0.01", "3-modality modulation scale")}, window("0")...)}},
		{info: Info{Name: "relearning", Display: "Relearning", Category: CategoryOptimization, Indicator: "clustering", PaperModalities: 3, MaxModalities: 3,
			Domains: "CV, NLP, Audio", Citation: "Wei et al. 2024b", Cost: "1F + 1BW; at epoch 15: Fe over train+val and KMeans",
			Params: append([]Param{float("move_lambda", "3", "re-initialisation strength"), integer("reinit_epoch", "15", "epochs between re-initialisations"), integer("reinit_num", "2", "most re-initialisations")}, window("0")...)}},
		{info: Info{Name: "reconboost", Display: "ReconBoost", Category: CategoryOptimization, Indicator: "classification loss", PaperModalities: 3, MaxModalities: 3,
			Domains: "CV, NLP, Audio", Citation: "Hua et al. 2024", Cost: "per epoch 2·n·T passes (boosting and rectification)",
			Params: append([]Param{float("alpha", "0.5", "GA weight"), integer("T_epochs", "1", "passes per phase"), float("weight1", "5", "boosting weight"), float("weight2", "1", "reconcilement weight")}, window("0")...)}},
	}
}
