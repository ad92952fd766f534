//! The wgsl-run sample: runs any WGSL compute shader on the host's GPU, on buffers filled from `.npy`
//! files, zeros or literal values, and writes chosen buffers back as `.npy` files.
//!
//! Reads `/input/run.toml` (or `/input/run.json`) and the shader it names (default
//! `/input/shader.wgsl`); see the crate docs (`src/lib.rs`) and README.md for the format. Writes each
//! binding's `output` to `/output/<name>.npy` and returns the outputs, the dispatches and the GPU's hash
//! chain in `/output/result.json`.
//!
//! Run with: `netmind run samples/wgsl-run --input samples/wgsl-run/example`

use std::{collections::BTreeMap, process::ExitCode};

use netmind_sample_wgsl_run::{ConfigError, Plan, PlannedBinding, RunConfig, ScalarType, Source};
use netmind_sdk::{
    Error, Result,
    gpu::{self, BindingKind, Buffer, Dispatch, Pipeline},
    npy::{Array, Dtype},
};
use serde::Serialize;

/// One output file, as the result records it.
#[derive(Debug, Serialize)]
struct OutputInfo {
    file: String,
    group: u32,
    binding: u32,
    dtype: Dtype,
    shape: Vec<usize>,
}

/// One dispatch, as the result records it.
#[derive(Debug, Serialize)]
struct DispatchInfo {
    entry: String,
    workgroups: [u32; 3],
    /// The job's hash chain after this dispatch, hex.
    hash: String,
}

/// The job's result, stored in `/output/result.json`.
#[derive(Debug, Serialize)]
struct Report {
    adapter: String,
    backend: String,
    shader: String,
    dispatches: Vec<DispatchInfo>,
    outputs: Vec<OutputInfo>,
    /// The job's hash chain after the last dispatch, hex.
    hash_chain: String,
    gpu_time_ms: f64,
}

/// A buffer and the dtype and shape it was made with (what its output is written as).
struct Slot {
    buffer: Buffer,
    dtype: Dtype,
    shape: Vec<usize>,
}

fn main() -> ExitCode {
    netmind_sdk::run(run)
}

fn run() -> Result<Report> {
    let (file, config) = read_config()?;
    let plan = config
        .plan()
        .map_err(|e| Error::invalid(format!("{file}: {e}")))?;
    let wgsl = netmind_sdk::read_input_to_string(&plan.shader)?;
    let adapter = gpu::adapter()?;
    println!("adapter: {} ({})", adapter.name, adapter.backend);

    let steps = plan.dispatches.len() as u64 + 2;
    netmind_sdk::progress(0, steps, "creating buffers");
    let mut slots = Vec::with_capacity(plan.bindings.len());
    for b in &plan.bindings {
        slots
            .push(make_buffer(b).map_err(|e| Error::invalid(format!("{file}: {}: {e}", b.label)))?);
    }

    // One pipeline per entry point, compiled once.
    let mut pipelines = BTreeMap::new();
    for d in &plan.dispatches {
        if !pipelines.contains_key(&d.entry) {
            let pipeline = Pipeline::new(&wgsl, &d.entry)?;
            pipelines.insert(d.entry.clone(), pipeline);
        }
    }

    let mut dispatches = Vec::with_capacity(plan.dispatches.len());
    let mut grids = Vec::with_capacity(plan.dispatches.len());
    for (i, d) in plan.dispatches.iter().enumerate() {
        let pipeline = &pipelines[&d.entry];
        let (x, y, z) = pipeline.workgroup_size();
        let [gx, gy, gz] = d.grid.resolve([x, y, z]);
        let mut dispatch = Dispatch::new(pipeline).workgroups(gx, gy, gz);
        for info in pipeline.bindings() {
            let (index, binding) = find_binding(&plan, info.group, info.binding)
                .ok_or_else(|| missing_binding(&file, i, &d.entry, &info))?;
            check_kind(&file, binding, info.kind)?;
            dispatch = dispatch.bind_at(info.group, info.binding, &slots[index].buffer);
        }
        dispatches.push(dispatch);
        grids.push([gx, gy, gz]);
    }
    warn_unused(&plan, &pipelines);

    netmind_sdk::progress(1, steps, "dispatching");
    let before = gpu::usage();
    let per_submit = gpu::limits()?.max_dispatches_per_submit.max(1) as usize;
    let mut hashes = Vec::with_capacity(dispatches.len());
    for chunk in dispatches.chunks(per_submit) {
        hashes.extend(gpu::submit(chunk)?);
        netmind_sdk::progress(1 + hashes.len() as u64, steps, "dispatching");
    }
    let usage = gpu::usage();

    let mut outputs = Vec::new();
    for (b, slot) in plan.bindings.iter().zip(&slots) {
        let Some(name) = &b.output else { continue };
        let len = slot.shape.iter().product::<usize>() * slot.dtype.size();
        let bytes = slot
            .buffer
            .read_bytes(0, (len as u64).next_multiple_of(4))?;
        let array = Array::new(slot.shape.clone(), slot.dtype, bytes[..len].to_vec())
            .map_err(|e| Error::invalid(format!("{}: {e}", b.label)))?;
        array.write_output(name)?;
        println!(
            "output {name}: {} {:?} (@group({}) @binding({}))",
            slot.dtype, slot.shape, b.group, b.binding
        );
        outputs.push(OutputInfo {
            file: name.clone(),
            group: b.group,
            binding: b.binding,
            dtype: slot.dtype,
            shape: slot.shape.clone(),
        });
    }
    netmind_sdk::progress(steps, steps, "done");

    let dispatches: Vec<DispatchInfo> = plan
        .dispatches
        .iter()
        .zip(grids)
        .zip(&hashes)
        .map(|((d, workgroups), hash)| DispatchInfo {
            entry: d.entry.clone(),
            workgroups,
            hash: gpu::to_hex(hash),
        })
        .collect();
    for d in &dispatches {
        println!("dispatch {} {:?}: {}", d.entry, d.workgroups, d.hash);
    }
    let gpu_time_ms = (usage.gpu_time_ns - before.gpu_time_ns) as f64 / 1e6;
    println!(
        "{} dispatches, {gpu_time_ms:.3} ms of GPU time, hash chain {}",
        dispatches.len(),
        usage.hash_chain_hex()
    );
    Ok(Report {
        adapter: adapter.name,
        backend: adapter.backend,
        shader: plan.shader,
        dispatches,
        outputs,
        hash_chain: usage.hash_chain_hex(),
        gpu_time_ms,
    })
}

/// `run.toml`, else `run.json`, parsed; returns the file's name too.
fn read_config() -> Result<(String, RunConfig)> {
    for (file, parse) in [
        ("run.toml", RunConfig::parse_toml as fn(&str) -> _),
        ("run.json", RunConfig::parse_json),
    ] {
        if netmind_sdk::input_path(file).is_file() {
            let text = netmind_sdk::read_input_to_string(file)?;
            let config =
                parse(&text).map_err(|e: ConfigError| Error::invalid(format!("{file}: {e}")))?;
            return Ok((file.to_owned(), config));
        }
    }
    Err(Error::invalid(
        "no run.toml (or run.json) in /input: pass a directory with the shader and a run.toml \
         (see samples/wgsl-run/example) with `netmind run samples/wgsl-run --input DIR`",
    ))
}

/// The buffer of a binding, filled from its source.
fn make_buffer(b: &PlannedBinding) -> Result<Slot> {
    let scalar = |dtype: ScalarType| match dtype {
        ScalarType::F32 => Dtype::F32,
        ScalarType::I32 => Dtype::I32,
        ScalarType::U32 => Dtype::U32,
    };
    match &b.source {
        Source::Npy(file) => {
            let array = Array::read_file(netmind_sdk::input_path(file))?;
            if array.is_empty() {
                return Err(Error::invalid(format!("{file} has no elements")));
            }
            Ok(Slot {
                buffer: Buffer::from_bytes(array.bytes())?,
                dtype: array.dtype(),
                shape: array.shape().to_vec(),
            })
        }
        Source::Zeros { dtype, shape } => {
            let len = shape.iter().product::<usize>();
            Ok(Slot {
                buffer: Buffer::zeroed::<u32>(len)?,
                dtype: scalar(*dtype),
                shape: shape.clone(),
            })
        }
        Source::Values { dtype, bytes } => Ok(Slot {
            buffer: Buffer::from_bytes(bytes)?,
            dtype: scalar(*dtype),
            shape: vec![bytes.len() / 4],
        }),
    }
}

fn find_binding(plan: &Plan, group: u32, binding: u32) -> Option<(usize, &PlannedBinding)> {
    plan.bindings
        .iter()
        .enumerate()
        .find(|(_, b)| (b.group, b.binding) == (group, binding))
}

fn missing_binding(file: &str, i: usize, entry: &str, info: &gpu::BindingInfo) -> Error {
    Error::invalid(format!(
        "{file}: dispatch[{i}]: entry point `{entry}` uses @group({}) @binding({}) ({}, at least {} \
         bytes) but there is no [[binding]] with group = {} and binding = {}",
        info.group, info.binding, info.kind, info.min_size, info.group, info.binding
    ))
}

/// Checks a binding's `uniform` flag, when given, against how the shader declares it.
fn check_kind(file: &str, b: &PlannedBinding, kind: BindingKind) -> Result<()> {
    let is_uniform = kind == BindingKind::Uniform;
    match b.uniform {
        Some(wanted) if wanted != is_uniform => Err(Error::invalid(format!(
            "{file}: {}.uniform: it says {wanted} but the shader declares the binding {}",
            b.label,
            if is_uniform {
                "var<uniform>"
            } else {
                "var<storage>"
            }
        ))),
        _ => Ok(()),
    }
}

/// Warns about `[[binding]]`s that no dispatch's entry point uses.
fn warn_unused(plan: &Plan, pipelines: &BTreeMap<String, Pipeline>) {
    for b in &plan.bindings {
        let used = pipelines.values().any(|p| {
            p.bindings()
                .iter()
                .any(|i| (i.group, i.binding) == (b.group, b.binding))
        });
        if !used {
            eprintln!(
                "warning: {}: no entry point that runs uses it; it is not bound",
                b.label
            );
        }
    }
}
