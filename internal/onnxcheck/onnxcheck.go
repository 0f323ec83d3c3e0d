// Package onnxcheck runs Debian's python3-onnx checker (onnx.checker with
// full_check) on ONNX files, for tests: it checks bmc's files with an
// implementation that is not bmc's.
package onnxcheck

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Python is the interpreter that has Debian's python3-onnx; another python3
// may come first on PATH.
const Python = "/usr/bin/python3"

// script is tools/onnxcheck.py, found relative to this source file.
func script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "tools", "onnxcheck.py")
}

// Files checks ONNX files and returns an error with the checker's output if
// any fails or the checker cannot run.
func Files(paths ...string) error {
	if err := exec.Command(Python, "-c", "import onnx").Run(); err != nil {
		return fmt.Errorf("the ONNX checker needs %s with python3-onnx (run `make checker` or apt-get install python3-onnx): %v", Python, err)
	}
	out, err := exec.Command(Python, append([]string{script()}, paths...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("onnx.checker: %v\n%s", err, out)
	}
	return nil
}
