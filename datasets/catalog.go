package datasets

// The seven datasets of the benchmark (spec §3, §2.5), each read from its
// layout on disk by the loader in its own file.
func benchmarkEntries() []Entry {
	return []Entry{
		cremadEntry(),
		kineticsEntry(),
		balancedAVEntry(),
		vggsoundEntry(),
		ucf101Entry(),
		food101Entry(),
		moseiEntry(),
	}
}
