package datasets

// The seven datasets of the benchmark (spec §3, §2.5). Their loaders come
// with the datasets issue; until then they are listed, not openable.
func benchmarkEntries() []Entry {
	return []Entry{
		cremadEntry(),
		kineticsEntry(),
		{
			Name: "balancedav", Description: "BalancedAV, audio + video", Classes: 30,
			Modalities: []Modality{{Name: "audio"}, {Name: "visual", Shape: []int64{3, 3, 224, 224}}},
			Layout:     "JSON annotations {labels, database{key:{subset,label}}}; audio_path/<key>.pkl; visual_path/<key>.hdf5 (JPEG per frame)",
		},
		vggsoundEntry(),
		ucf101Entry(),
		food101Entry(),
		moseiEntry(),
	}
}
