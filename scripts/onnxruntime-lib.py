#!/usr/bin/env python3
"""Print the absolute path of the ONNX Runtime shared library shipped in the
`onnxruntime` Python wheel (site-packages/onnxruntime/capi/libonnxruntime.so.<version>).

The Rust ORT backend (ort 2.0.0-rc.10, feature load-dynamic) loads it at run time:

    export ORT_DYLIB_PATH="$(python3 scripts/onnxruntime-lib.py)"

Exits 1 with a message on stderr when onnxruntime is not installed or the library is
missing. Install it with `pip install -r scripts/requirements-ml.txt`.
"""
import importlib.util
import pathlib
import re
import sys


def main() -> int:
    # Locate the package without importing it: the import loads the library itself
    # and pulls in numpy, neither of which is needed to find a path.
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        print("onnxruntime-lib: the onnxruntime Python package is not installed "
              "(pip install -r scripts/requirements-ml.txt)", file=sys.stderr)
        return 1
    capi = pathlib.Path(next(iter(spec.submodule_search_locations))) / "capi"
    # Linux wheels ship libonnxruntime.so.<x.y.z>; macOS ones libonnxruntime.<x.y.z>.dylib.
    found = sorted(p for p in capi.glob("libonnxruntime*")
                   if re.fullmatch(r"libonnxruntime(\.so[.\d]*|[.\d]*\.dylib)", p.name)
                   and p.is_file())
    if not found:
        print(f"onnxruntime-lib: no libonnxruntime shared library in {capi}", file=sys.stderr)
        return 1
    print(found[-1].resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
