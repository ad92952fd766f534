//! The gpu-matmul sample: multiplies two f32 matrices on the host's GPU with a tiled shader.
//!
//! Multiplies `/input/a.npy` (M×K) by `/input/b.npy` (K×N), both f32 and 2-D, or, without inputs, two
//! deterministic pseudo-random N×N matrices (`--n N`, default 512). Writes `/output/c.npy` (f32, M×N)
//! and returns the dimensions, the GPU time and GFLOPS in `/output/result.json`. `--repeat R` runs the
//! multiply R times in one submission (for steadier timings); `--verify` checks up to 4096 elements
//! against the CPU reference inside the job.
//!
//! Run with: `netmind run samples/gpu-matmul -- --n 1024`

use std::process::ExitCode;

use netmind_sample_gpu_matmul::{
    ENTRY, Fma, MATMUL_WGSL, checksum, dims, matrix, reference_element, tolerance, workgroups,
};
use netmind_sdk::{
    Error, Result,
    gpu::{self, Buffer, Dispatch, Pipeline},
    npy::{Array, Dtype},
};
use serde::Serialize;

const USAGE: &str = "usage: gpu-matmul [--n N] [--repeat R] [--verify]";

/// The command line.
#[derive(Debug)]
struct Options {
    n: usize,
    repeat: u32,
    verify: bool,
}

/// What `--verify` found.
#[derive(Debug, Serialize)]
struct Verification {
    /// Elements compared with the CPU reference.
    checked: usize,
    /// How the GPU computes `fma`, as the CPU reference that matches it best: `fused` or `unfused`.
    fma: &'static str,
    max_abs_diff: f32,
    tolerance: f32,
}

/// The job's result, stored in `/output/result.json`.
#[derive(Debug, Serialize)]
struct Report {
    m: usize,
    k: usize,
    n: usize,
    /// `generated` (seeds 1 and 2) or `inputs` (a.npy, b.npy).
    source: &'static str,
    adapter: String,
    repeat: u32,
    /// GPU time of all the repeats (submit to completion).
    gpu_ms: f64,
    /// `gpu_ms / repeat`.
    ms_per_matmul: f64,
    /// `2·m·n·k` per multiply over `ms_per_matmul`.
    gflops: f64,
    checksum: f64,
    hash_chain: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<Verification>,
}

fn main() -> ExitCode {
    netmind_sdk::run(|| run(&parse_args(&netmind_sdk::args())?))
}

fn run(options: &Options) -> Result<Report> {
    let (a, b, m, k, n, source) =
        if netmind_sdk::input_path("a.npy").exists() || netmind_sdk::input_path("b.npy").exists() {
            let (a, m, k) = read_matrix("a.npy")?;
            let (b, k2, n) = read_matrix("b.npy")?;
            if k != k2 {
                return Err(Error::invalid(format!(
                    "a.npy is {m}×{k} and b.npy is {k2}×{n}: A's columns must equal B's rows"
                )));
            }
            (a, b, m, k, n, "inputs")
        } else {
            let n = options.n;
            (matrix(n, n, 1), matrix(n, n, 2), n, n, n, "generated")
        };
    let adapter = gpu::adapter()?;
    println!(
        "{m}×{k} × {k}×{n} on {} ({})",
        adapter.name, adapter.backend
    );

    netmind_sdk::progress(0, 3, "uploading");
    let (x, y, z) = workgroups(m, n);
    let limits = gpu::limits()?;
    if x.max(y) > limits.max_workgroups_per_dimension {
        return Err(Error::invalid(format!(
            "{m}×{n} needs {x}×{y} workgroups; this GPU allows {} per dimension",
            limits.max_workgroups_per_dimension
        )));
    }
    let dims_buffer = Buffer::from_slice(&dims(m, k, n))?;
    let a_buffer = Buffer::from_slice(&a)?;
    let b_buffer = Buffer::from_slice(&b)?;
    let c_buffer = Buffer::zeroed::<f32>(m * n)?;
    let pipeline = Pipeline::new(MATMUL_WGSL, ENTRY)?;
    let dispatch = Dispatch::new(&pipeline)
        .bind(0, &dims_buffer)
        .bind(1, &a_buffer)
        .bind(2, &b_buffer)
        .bind(3, &c_buffer)
        .workgroups(x, y, z);

    netmind_sdk::progress(1, 3, "multiplying");
    let repeats = vec![dispatch; options.repeat as usize];
    let before = gpu::usage();
    gpu::submit(&repeats)?;
    let after = gpu::usage();
    let gpu_ms = (after.gpu_time_ns - before.gpu_time_ns) as f64 / 1e6;

    netmind_sdk::progress(2, 3, "downloading");
    let c: Vec<f32> = c_buffer.read_range(0, m * n)?;
    Array::from_values([m, n], &c)
        .map_err(|e| Error::invalid(e.to_string()))?
        .write_output("c.npy")?;

    let verify = options.verify.then(|| verify(&a, &b, &c, m, k, n));
    if let Some(v) = &verify {
        println!(
            "verified {} elements: max |gpu - cpu| = {:e} ({} fma; tolerance {:e})",
            v.checked, v.max_abs_diff, v.fma, v.tolerance
        );
        if v.max_abs_diff > v.tolerance {
            return Err(Error::invalid(format!(
                "the GPU's result differs from the CPU reference by {:e}, more than {:e}",
                v.max_abs_diff, v.tolerance
            )));
        }
    }
    netmind_sdk::progress(3, 3, "done");

    let ms_per_matmul = gpu_ms / f64::from(options.repeat);
    let flops = 2.0 * m as f64 * n as f64 * k as f64;
    let gflops = if ms_per_matmul > 0.0 {
        flops / (ms_per_matmul * 1e6)
    } else {
        0.0
    };
    let report = Report {
        m,
        k,
        n,
        source,
        adapter: adapter.name,
        repeat: options.repeat,
        gpu_ms,
        ms_per_matmul,
        gflops,
        checksum: checksum(&c),
        hash_chain: after.hash_chain_hex(),
        verify,
    };
    println!(
        "{:.3} ms per multiply, {:.1} GFLOPS, checksum {}",
        report.ms_per_matmul, report.gflops, report.checksum
    );
    Ok(report)
}

/// Compares every element with the CPU reference when there are at most 4096, else 4096 spread
/// pseudo-randomly over the whole result; both ways WGSL allows `fma`, keeping the closer.
fn verify(a: &[f32], b: &[f32], c: &[f32], m: usize, k: usize, n: usize) -> Verification {
    let total = m * n;
    let checked = total.min(4096);
    let diff = |fma: Fma| {
        let mut max_abs_diff = 0.0f32;
        for s in 0..checked {
            let index = if total <= 4096 {
                s
            } else {
                // A multiplicative hash walks across rows and columns alike.
                ((s as u64).wrapping_mul(0x9E37_79B1) % total as u64) as usize
            };
            let (i, j) = (index / n, index % n);
            let diff = (c[index] - reference_element(a, b, k, n, i, j, fma)).abs();
            // A NaN counts as the largest difference of all.
            max_abs_diff = max_abs_diff.max(if diff.is_nan() { f32::INFINITY } else { diff });
        }
        max_abs_diff
    };
    let (fma, max_abs_diff) = Fma::BOTH
        .into_iter()
        .map(|fma| (fma, diff(fma)))
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .expect("two ways");
    Verification {
        checked,
        fma: if fma == Fma::Fused {
            "fused"
        } else {
            "unfused"
        },
        max_abs_diff,
        tolerance: tolerance(k),
    }
}

/// A 2-D f32 `.npy` input: its values, rows and columns.
fn read_matrix(name: &str) -> Result<(Vec<f32>, usize, usize)> {
    if !netmind_sdk::input_path(name).exists() {
        return Err(Error::invalid(format!(
            "{name} is missing: give both a.npy (M×K) and b.npy (K×N), or neither to multiply \
             generated N×N matrices (--n N)"
        )));
    }
    let array = Array::read_file(netmind_sdk::input_path(name))?;
    let &[rows, cols] = array.shape() else {
        return Err(Error::invalid(format!(
            "{name} has shape {:?}; a matrix has 2 dimensions",
            array.shape()
        )));
    };
    if array.dtype() != Dtype::F32 {
        return Err(Error::invalid(format!(
            "{name} is {}; save it as float32, e.g. numpy.save(path, a.astype(numpy.float32))",
            array.dtype().numpy_name()
        )));
    }
    if rows == 0 || cols == 0 {
        return Err(Error::invalid(format!("{name} is empty ({rows}×{cols})")));
    }
    let values = array
        .to_vec::<f32>()
        .map_err(|e| Error::invalid(e.to_string()))?;
    Ok((values, rows, cols))
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut options = Options {
        n: 512,
        repeat: 1,
        verify: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| Error::invalid(format!("{name} needs a value; {USAGE}")))
        };
        match arg.as_str() {
            "--n" => {
                let v = value("--n")?;
                options.n = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=4096).contains(n))
                    .ok_or_else(|| {
                        Error::invalid(format!("--n `{v}` is not a size from 1 to 4096"))
                    })?;
            }
            "--repeat" => {
                let v = value("--repeat")?;
                options.repeat = v
                    .parse()
                    .ok()
                    .filter(|r| (1..=1000).contains(r))
                    .ok_or_else(|| {
                        Error::invalid(format!("--repeat `{v}` is not a count from 1 to 1000"))
                    })?;
            }
            "--verify" => options.verify = true,
            other => {
                return Err(Error::invalid(format!(
                    "unknown argument `{other}`; {USAGE}"
                )));
            }
        }
    }
    Ok(options)
}
