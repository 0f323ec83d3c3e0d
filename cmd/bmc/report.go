package main

import (
	"fmt"
	"io"

	"bmc/report"
)

func runReport(args []string, stdout io.Writer) error {
	fs := flagSet("report", stdout)
	out := fs.StringP("out", "o", "", "also write report.md, a CSV per table, index.html and the plots (PNG, SVG) into this folder")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("report takes run directories or sweep directories")
	}
	runs, skipped, err := report.Load(fs.Args())
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		msg := "no finished runs among " + fmt.Sprint(len(fs.Args())) + " paths"
		for _, s := range skipped {
			msg += "\n  " + s.Path + ": " + s.Reason
		}
		return fmt.Errorf("%s", msg)
	}
	rep := report.New(runs, skipped)
	fmt.Fprint(stdout, rep.Markdown())
	if *out == "" {
		return nil
	}
	files, err := rep.Write(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwrote %d files into %s (open %s/index.html)\n", len(files), *out, *out)
	return nil
}
