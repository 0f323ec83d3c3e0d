package runtime

import ort "github.com/yalue/onnxruntime_go"

// LibraryVersion loads ONNX Runtime (if it is not loaded yet) and returns
// the version the library reports and the file it was loaded from.
func LibraryVersion() (version, path string, err error) {
	if path, err = LibraryPath(); err != nil {
		return "", "", err
	}
	if err := Init(); err != nil {
		return "", path, err
	}
	return ort.GetVersion(), path, nil
}
