package main

import (
	"fmt"
	"io"
	goruntime "runtime"
	"runtime/debug"

	"bmc/runtime"
)

// runVersion prints bmc's build (module version, commit), the Go release
// and the ONNX Runtime library bmc loads, with its version as the library
// reports it.
func runVersion(args []string, stdout io.Writer) error {
	fs := flagSet("version", stdout)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("version takes no arguments (got %q)", fs.Args())
	}
	build := "bmc (no build information)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		build = "bmc " + bi.Main.Version
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if rev := settings["vcs.revision"]; rev != "" {
			build += " commit " + rev[:min(12, len(rev))]
			if settings["vcs.modified"] == "true" {
				build += " (modified)"
			}
			if at := settings["vcs.time"]; at != "" {
				build += " of " + at
			}
		}
	}
	fmt.Fprintln(stdout, build)
	fmt.Fprintf(stdout, "%s %s/%s\n", goruntime.Version(), goruntime.GOOS, goruntime.GOARCH)
	v, path, err := runtime.LibraryVersion()
	if err != nil {
		fmt.Fprintf(stdout, "ONNX Runtime: not loaded: %v\n", err)
		return nil
	}
	fmt.Fprintf(stdout, "ONNX Runtime %s (%s; bmc is tested with %s)\n", v, path, runtime.ORTVersion)
	return nil
}
