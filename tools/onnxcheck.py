"""Checks ONNX files with onnx.checker (full check: shape inference must agree
with every declared shape). Usage: python3 onnxcheck.py FILE...
Prints one line per file and exits non-zero if any file fails."""
import sys

import onnx

failed = 0
for path in sys.argv[1:]:
    try:
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        print("ok", path)
    except Exception as e:  # noqa: BLE001 - report every failure
        failed += 1
        print("FAIL", path, str(e).replace("\n", " "))
sys.exit(1 if failed else 0)
