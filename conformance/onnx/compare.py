#!/usr/bin/env python3
"""Compare a backend's outputs with the expected ones.

    python3 conformance/onnx/compare.py EXPECTED_DIR ACTUAL_DIR [--rtol 1e-4] [--atol 1e-5]

Every `*.npy` directly in EXPECTED_DIR (e.g. OUTDIR/<case>/expected/) must have a file of
the same name in ACTUAL_DIR with the same dtype and shape, and
  - floating point: values np.allclose(actual, expected, rtol, atol) (NaN equals NaN);
  - integers and booleans: values exactly equal.
One line is printed per output. Exit status: 0 when all match, 1 on any mismatch
(the last line names the first one, with its max abs/rel error), 2 on usage errors
(e.g. EXPECTED_DIR holds no .npy file). Files only in ACTUAL_DIR are ignored.
"""
import argparse
import pathlib
import sys

import numpy as np


def compare(expected: np.ndarray, actual: np.ndarray, rtol: float, atol: float):
    """Returns (ok, detail)."""
    if actual.dtype != expected.dtype:
        return False, f"dtype {actual.dtype}, expected {expected.dtype}"
    if actual.shape != expected.shape:
        return False, f"shape {list(actual.shape)}, expected {list(expected.shape)}"
    if expected.size == 0:
        return True, "empty"
    if np.issubdtype(expected.dtype, np.floating):
        e, a = expected.astype(np.float64), actual.astype(np.float64)
        same = (a == e) | (np.isnan(a) & np.isnan(e))      # also covers equal infinities
        with np.errstate(invalid="ignore"):
            err = np.where(same, 0.0, np.abs(a - e))
        err = np.where(np.isnan(err), np.inf, err)          # NaN against a number
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(err == 0, 0.0, err / np.abs(e))
        i = np.unravel_index(int(np.argmax(err)), e.shape)
        detail = f"max abs err {err.max():.3g}, max rel err {np.nanmax(rel):.3g}"
        if err.max() > 0:
            detail += f" (worst at {list(map(int, i))}: {a[i].item()!r} vs {e[i].item()!r})"
        ok = bool(np.allclose(a, e, rtol=rtol, atol=atol, equal_nan=True))
        return ok, detail
    diff = actual != expected
    if not diff.any():
        return True, "exact"
    i = tuple(int(k) for k in np.argwhere(diff)[0])
    err = np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max()
    return False, (f"{int(diff.sum())} of {expected.size} elements differ, max abs err {err:.3g} "
                   f"(first at {list(i)}: {actual[i].item()!r} vs {expected[i].item()!r})")


def main() -> int:
    ap = argparse.ArgumentParser(description="Compare .npy outputs with expected ones.")
    ap.add_argument("expected_dir", type=pathlib.Path)
    ap.add_argument("actual_dir", type=pathlib.Path)
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--atol", type=float, default=1e-5)
    args = ap.parse_args()

    files = sorted(args.expected_dir.glob("*.npy"))
    if not files:
        print(f"compare: no .npy files in {args.expected_dir}", file=sys.stderr)
        return 2
    first_failure = None
    for path in files:
        name = path.name[:-len(".npy")]
        expected = np.load(path, allow_pickle=False)
        other = args.actual_dir / path.name
        if not other.is_file():
            ok, detail = False, f"missing {other}"
        else:
            try:
                actual = np.load(other, allow_pickle=False)
            except Exception as e:  # corrupt or non-array file
                ok, detail = False, f"unreadable {other}: {e}"
            else:
                ok, detail = compare(expected, actual, args.rtol, args.atol)
        print(f"{'ok  ' if ok else 'FAIL'} {name} {expected.dtype}{list(expected.shape)}: {detail}")
        if not ok and first_failure is None:
            first_failure = f"{name}: {detail}"
    if first_failure:
        print(f"mismatch (rtol {args.rtol:g}, atol {args.atol:g}): {first_failure}", file=sys.stderr)
        return 1
    print(f"all {len(files)} outputs match (rtol {args.rtol:g}, atol {args.atol:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
