#!/usr/bin/env python3
"""Checks samples/wgsl-run against NumPy, an independent implementation of the same arithmetic.

    wgsl_run.py make DIR      writes a user's job into DIR: shader.wgsl, run.toml, x.npy, y.npy (random,
                              seeded) and expected/*.npy computed by NumPy
    wgsl_run.py compare EXPECTED OUT
                              compares every expected/*.npy with OUT/*.npy (dtype, shape, values)

The job has two dispatches: a uniform-scaled saxpy over f32 (z = alpha * x + y) and an integer
histogram with atomics over u32 (16 bins of x's bit patterns), so it covers uniforms, several entry
points in one shader, u32 outputs and dispatch order.
"""
import pathlib
import sys

import numpy as np

N = 1000
SHADER = """
struct Params { alpha: f32, n: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read_write> hist: array<atomic<u32>>;

@compute @workgroup_size(64)
fn saxpy(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x < p.n { z[id.x] = p.alpha * x[id.x] + y[id.x]; }
}

@compute @workgroup_size(64)
fn histogram(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x < arrayLength(&x) { atomicAdd(&hist[bitcast<u32>(x[id.x]) & 15u], 1u); }
}
"""
RUN = f"""
shader = "shader.wgsl"

[[dispatch]]
entry = "saxpy"
workgroups = [{(N + 63) // 64}, 1, 1]

[[dispatch]]
entry = "histogram"
workgroups = [{(N + 63) // 64}, 1, 1]

[[binding]]
binding = 0
input = "x.npy"

[[binding]]
binding = 1
input = "y.npy"

[[binding]]
binding = 2
zeros = {{ dtype = "f32", shape = [{N}] }}
output = "z.npy"

[[binding]]
binding = 3
input = "params.npy"
uniform = true

[[binding]]
binding = 4
zeros = {{ dtype = "u32", shape = [16] }}
output = "hist.npy"
"""


def make(d: pathlib.Path) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal(N).astype(np.float32)
    y = rng.standard_normal(N).astype(np.float32)
    alpha = np.float32(2.5)
    d.mkdir(parents=True, exist_ok=True)
    (d / "shader.wgsl").write_text(SHADER)
    (d / "run.toml").write_text(RUN)
    np.save(d / "x.npy", x)
    np.save(d / "y.npy", y)
    # The uniform: alpha as f32 bits, then n, padded to 16 bytes.
    params = np.array([alpha.view(np.uint32), N, 0, 0], dtype=np.uint32)
    np.save(d / "params.npy", params)
    exp = d / "expected"
    exp.mkdir(exist_ok=True)
    np.save(exp / "z.npy", (alpha * x + y).astype(np.float32))
    np.save(exp / "hist.npy", np.bincount(x.view(np.uint32) & 15, minlength=16).astype(np.uint32))


def compare(expected: pathlib.Path, out: pathlib.Path) -> int:
    bad = 0
    for e in sorted(expected.glob("*.npy")):
        want = np.load(e)
        got = np.load(out / e.name)
        if got.dtype != want.dtype or got.shape != want.shape:
            print(f"{e.name}: {got.dtype}{got.shape} != {want.dtype}{want.shape}")
            bad += 1
        elif want.dtype.kind == "f" and not np.allclose(got, want, rtol=1e-6, atol=1e-6):
            print(f"{e.name}: max abs diff {np.abs(got - want).max()}")
            bad += 1
        elif want.dtype.kind != "f" and not np.array_equal(got, want):
            print(f"{e.name}: {got} != {want}")
            bad += 1
        else:
            print(f"{e.name}: ok")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(pathlib.Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])))
    else:
        sys.exit(__doc__)
