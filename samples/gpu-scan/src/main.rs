//! The gpu-scan sample: inclusive prefix sum (wrapping u32 addition) on the host's GPU.
//!
//! Scans `/input/x.npy` (uint32 or int32, any shape, scanned in C order) or, without it, `--n N`
//! pseudo-random u32 (default 1,000,000). Writes `/output/scan.npy` (same dtype and shape) and returns
//! the length, the total, the passes and the GPU time in `/output/result.json`. The result is checked
//! against the CPU reference inside the job.
//!
//! Run with: `netmind run samples/gpu-scan -- --n 16777216`

use std::process::ExitCode;

use netmind_sample_gpu_scan::{
    ADD_OFFSETS, MAX_LEN, SCAN_BLOCKS, SCAN_WGSL, levels, passes, scan_reference, sequence,
};
use netmind_sdk::{
    Error, Result,
    gpu::{self, Buffer, Dispatch, Pipeline},
    npy::{Array, Dtype},
};
use serde::Serialize;

const USAGE: &str = "usage: gpu-scan [--n N]";

/// The job's result, stored in `/output/result.json`.
#[derive(Debug, Serialize)]
struct Report {
    n: usize,
    dtype: Dtype,
    /// `generated` or `x.npy`.
    source: &'static str,
    /// The last element of the scan, as the dtype reads it.
    total: i64,
    /// Buffer lengths per level: the data, then the block sums.
    levels: Vec<usize>,
    dispatches: usize,
    adapter: String,
    gpu_ms: f64,
    /// Elements per second of GPU time, in millions.
    melements_per_s: f64,
    hash_chain: String,
    /// Always true: a result that differs from the CPU reference fails the job.
    verified: bool,
}

fn main() -> ExitCode {
    netmind_sdk::run(|| run(parse_n(&netmind_sdk::args())?))
}

fn run(n_arg: usize) -> Result<Report> {
    let (x, dtype, shape, source) = if netmind_sdk::input_path("x.npy").exists() {
        let array = Array::read_file(netmind_sdk::input_path("x.npy"))?;
        if !matches!(array.dtype(), Dtype::U32 | Dtype::I32) {
            return Err(Error::invalid(format!(
                "x.npy is {}; save it as uint32 or int32",
                array.dtype().numpy_name()
            )));
        }
        if array.is_empty() {
            return Err(Error::invalid("x.npy has no elements"));
        }
        let x: Vec<u32> = bytes_to_u32(array.bytes());
        (x, array.dtype(), array.shape().to_vec(), "x.npy")
    } else {
        (sequence(n_arg, 1), Dtype::U32, vec![n_arg], "generated")
    };
    let n = x.len();
    let limits = gpu::limits()?;
    let largest = MAX_LEN
        .min((limits.max_storage_binding_size / 4) as usize)
        .min((limits.max_buffer_size / 4) as usize)
        .min(limits.max_workgroups_per_dimension as usize * netmind_sample_gpu_scan::BLOCK);
    if n > largest {
        return Err(Error::invalid(format!(
            "{n} elements: this GPU scans at most {largest} in one buffer"
        )));
    }
    let adapter = gpu::adapter()?;
    println!(
        "scanning {n} {dtype} on {} ({})",
        adapter.name, adapter.backend
    );

    netmind_sdk::progress(0, 3, "uploading");
    let lens = levels(n);
    let mut buffers = vec![Buffer::from_slice(&x)?];
    for &len in &lens[1..] {
        buffers.push(Buffer::zeroed::<u32>(len)?);
    }
    let scan = Pipeline::new(SCAN_WGSL, SCAN_BLOCKS)?;
    let add = Pipeline::new(SCAN_WGSL, ADD_OFFSETS)?;
    let plan = passes(n);
    let dispatches: Vec<Dispatch<'_>> = plan
        .iter()
        .map(|pass| {
            let (pipeline, sums_binding) = if pass.entry == SCAN_BLOCKS {
                (&scan, 1)
            } else {
                (&add, 2)
            };
            Dispatch::new(pipeline)
                .bind(0, &buffers[pass.data])
                .bind(sums_binding, &buffers[pass.sums])
                .workgroups(pass.workgroups, 1, 1)
        })
        .collect();

    netmind_sdk::progress(1, 3, "scanning");
    let before = gpu::usage();
    gpu::submit(&dispatches)?;
    let after = gpu::usage();
    let gpu_ms = (after.gpu_time_ns - before.gpu_time_ns) as f64 / 1e6;

    netmind_sdk::progress(2, 3, "downloading");
    let out: Vec<u32> = buffers[0].read_range(0, n)?;
    let total_buffer: Vec<u32> = buffers[lens.len() - 1].read()?;
    let expected = scan_reference(&x);
    if let Some(i) = (0..n).find(|&i| out[i] != expected[i]) {
        return Err(Error::invalid(format!(
            "the GPU's scan differs from the CPU's at element {i}: {} instead of {}",
            out[i], expected[i]
        )));
    }
    if total_buffer[0] != expected[n - 1] {
        return Err(Error::invalid(format!(
            "the GPU's total {} differs from the CPU's {}",
            total_buffer[0],
            expected[n - 1]
        )));
    }
    let bytes: Vec<u8> = out.iter().flat_map(|v| v.to_le_bytes()).collect();
    Array::new(shape, dtype, bytes)
        .map_err(|e| Error::invalid(e.to_string()))?
        .write_output("scan.npy")?;
    netmind_sdk::progress(3, 3, "done");

    let last = out[n - 1];
    let total = if dtype == Dtype::I32 {
        i64::from(last as i32)
    } else {
        i64::from(last)
    };
    let melements_per_s = if gpu_ms > 0.0 {
        n as f64 / (gpu_ms * 1e3)
    } else {
        0.0
    };
    println!(
        "total {total}; {} dispatches over {} levels, {gpu_ms:.3} ms of GPU time",
        plan.len(),
        lens.len() - 1
    );
    Ok(Report {
        n,
        dtype,
        source,
        total,
        levels: lens,
        dispatches: plan.len(),
        adapter: adapter.name,
        gpu_ms,
        melements_per_s,
        hash_chain: after.hash_chain_hex(),
        verified: true,
    })
}

/// Little-endian 4-byte words (u32, or i32 bit for bit).
fn bytes_to_u32(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// `--n N` (default 1,000,000).
fn parse_n(args: &[String]) -> Result<usize> {
    let mut n = 1_000_000;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--n" => {
                let v = args
                    .next()
                    .ok_or_else(|| Error::invalid(format!("--n needs a value; {USAGE}")))?;
                n = v
                    .replace('_', "")
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LEN).contains(n))
                    .ok_or_else(|| {
                        Error::invalid(format!("--n `{v}` is not a length from 1 to {MAX_LEN}"))
                    })?;
            }
            other => {
                return Err(Error::invalid(format!(
                    "unknown argument `{other}`; {USAGE}"
                )));
            }
        }
    }
    Ok(n)
}
