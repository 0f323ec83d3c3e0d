package methods

// window are the modulation-window hyperparameters many methods share; the
// window is checked against the 0-based epoch.
func window(starts string) []Param {
	return []Param{
		integer("modulation_starts", starts, "first epoch (0-based) with modulation").atLeast(0),
		integer("modulation_ends", "80", "last epoch with modulation").atLeast(0),
	}
}

func float(name, def, doc string) Param {
	return Param{Name: name, Default: def, Kind: "float", Doc: doc}
}

func integer(name, def, doc string) Param {
	return Param{Name: name, Default: def, Kind: "int", Doc: doc}
}

// registry is the paper's Table 1 (spec §4.18) with the defaults of spec §4,
// one row per method file.
func registry() []entry {
	return []entry{
		baselineEntry(),
		unimodalEntry(),
		sampleEntry(),
		mlaEntry(),
		opmEntry(),
		greedyEntry(),
		amcoEntry(),
		mmcosineEntry(),
		umtEntry(),
		mbsdEntry(),
		cmlEntry(),
		mmparetoEntry(),
		gblendingEntry(),
		lfmEntry(),
		ogmEntry(),
		agmEntry(),
		pmrEntry(),
		relearningEntry(),
		reconboostEntry(),
	}
}
