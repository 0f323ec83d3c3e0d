package datasets

// The seven datasets of the benchmark (spec §3, §2.5). Their loaders come
// with the datasets issue; until then they are listed, not openable.
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
