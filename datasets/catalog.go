package datasets

// The seven datasets of the benchmark (spec §3, §2.5). Their loaders come
// with the datasets issue; until then they are listed, not openable.
func benchmarkEntries() []Entry {
	return []Entry{
		{
			Name: "cremad", Description: "CREMA-D emotion recognition, audio + video", Classes: 6,
			Modalities: []Modality{{Name: "audio"}, {Name: "visual", Shape: []int64{3, 2, 224, 224}}},
			Layout:     "train/test CSV rows clip_id,EMO; audio_path/<clip>.pt (fbank); visual_path/<clip>/ frames (2 picked)",
		},
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
