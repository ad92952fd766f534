//! What the sandbox and its GPU worker process say to each other over the worker's stdin and stdout.
//!
//! A frame is `[header length: u32 LE][payload length: u64 LE][header: JSON][payload: bytes]`. Headers
//! are small (ids, sizes, reports); buffer contents and WGSL travel as payload, never through JSON.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use super::GpuError;

/// Largest JSON header either side accepts.
const MAX_HEADER: u32 = 16 << 20;
/// Largest payload either side accepts (buffer contents are bounded far lower by the job's quota).
const MAX_PAYLOAD: u64 = 1 << 34;

/// The per-job quotas the worker enforces (the sandbox enforces GPU time itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// GPU memory the job's buffers may hold at once.
    pub max_total_bytes: u64,
    /// Largest single buffer (further capped by the device).
    pub max_buffer_size: u64,
    /// Buffers alive at once.
    pub max_buffers: u32,
    /// Pipelines alive at once.
    pub max_pipelines: u32,
    /// Dispatches over the whole job.
    pub max_dispatches: u64,
    /// Dispatches in one submit.
    pub max_dispatches_per_submit: u32,
    /// Largest WGSL source.
    pub max_shader_bytes: u32,
    /// Invocations (workgroups × workgroup size) in one dispatch.
    pub max_invocations_per_dispatch: u64,
    /// The GPU time budget, in milliseconds (reported in the caps; enforced by the sandbox).
    pub gpu_time_ms: u64,
}

/// The adapter a worker drives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdapterDesc {
    /// Device name.
    pub name: String,
    /// `vulkan`, `metal`, `dx12` or `gl`.
    pub backend: String,
    /// `discrete-gpu`, `integrated-gpu`, `virtual-gpu`, `cpu` or `other`.
    pub device_type: String,
    /// PCI vendor id.
    pub vendor: u32,
    /// PCI device id.
    pub device: u32,
    /// Driver name.
    pub driver: String,
    /// Driver version and details.
    pub driver_info: String,
    /// A software rasteriser (lavapipe, llvmpipe, WARP).
    pub is_software: bool,
}

/// What a job may do: the device's limits intersected with its quotas (`netmind:gpu/compute.limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "each field is documented in host/wit/gpu.wit")]
pub struct Caps {
    pub max_buffer_size: u64,
    pub max_total_bytes: u64,
    pub max_buffers: u32,
    pub max_pipelines: u32,
    pub max_dispatches: u64,
    pub max_dispatches_per_submit: u32,
    pub max_workgroup_size: [u32; 3],
    pub max_invocations_per_workgroup: u32,
    pub max_workgroups_per_dimension: u32,
    pub max_storage_binding_size: u64,
    pub max_uniform_binding_size: u64,
    pub min_binding_offset_alignment: u32,
    pub max_bind_groups: u32,
    pub max_workgroup_storage_size: u32,
    pub gpu_time_budget_ms: u64,
    pub max_shader_bytes: u32,
}

/// How an entry point uses a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BindingKind {
    /// `var<uniform>`.
    Uniform,
    /// `var<storage, read>`.
    StorageRead,
    /// `var<storage, read_write>`.
    StorageReadWrite,
}

/// One binding an entry point uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingInfo {
    /// `@group`.
    pub group: u32,
    /// `@binding`.
    pub binding: u32,
    /// How it is used.
    pub kind: BindingKind,
    /// Smallest range that fits the declared type.
    pub min_size: u64,
}

/// A buffer range bound for a dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    /// `@group`.
    pub group: u32,
    /// `@binding`.
    pub binding: u32,
    /// The buffer's id.
    pub buffer: u32,
    /// Start of the range.
    pub offset: u64,
    /// Length of the range; `None` is the rest of the buffer.
    pub size: Option<u64>,
}

/// One dispatch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatch {
    /// The pipeline's id.
    pub pipeline: u32,
    /// The bindings.
    pub bindings: Vec<Bind>,
    /// Workgroup counts.
    pub workgroups: [u32; 3],
}

/// A request from the sandbox. Payloads: `WriteBuffer` carries the bytes, `CreatePipeline` the WGSL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The first request: pick the adapter, create the job's device.
    Init {
        /// Adapter by index or name substring; `None` picks the best.
        adapter: Option<String>,
        /// The job's quotas.
        quota: Quota,
    },
    /// A zero-filled buffer.
    CreateBuffer {
        /// Id chosen by the sandbox.
        id: u32,
        /// Bytes.
        size: u64,
    },
    /// Writes the payload at `offset`.
    WriteBuffer {
        /// The buffer.
        id: u32,
        /// Where.
        offset: u64,
    },
    /// Reads `len` bytes at `offset`; the reply's payload holds them.
    ReadBuffer {
        /// The buffer.
        id: u32,
        /// Where.
        offset: u64,
        /// How much.
        len: u64,
    },
    /// Frees a buffer.
    DropBuffer {
        /// The buffer.
        id: u32,
    },
    /// Compiles the payload's WGSL.
    CreatePipeline {
        /// Id chosen by the sandbox.
        id: u32,
        /// The compute entry point.
        entry: String,
    },
    /// Frees a pipeline.
    DropPipeline {
        /// The pipeline.
        id: u32,
    },
    /// Runs dispatches in order and waits for them.
    Submit {
        /// The dispatches.
        dispatches: Vec<Dispatch>,
    },
}

/// What a request did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// `Init` succeeded.
    Ready {
        /// The adapter.
        adapter: AdapterDesc,
        /// The job's caps.
        caps: Caps,
    },
    /// Done, nothing to say.
    Done,
    /// A pipeline was compiled.
    Pipeline {
        /// `@workgroup_size`.
        workgroup_size: [u32; 3],
        /// The bindings its entry point uses.
        bindings: Vec<BindingInfo>,
    },
    /// `ReadBuffer`: the bytes are the payload.
    Data,
    /// `Submit`: the hash chain after each dispatch.
    Submitted {
        /// One hash per dispatch.
        hashes: Vec<[u8; 32]>,
    },
    /// The request failed.
    Failed(GpuError),
}

/// The worker's running totals, sent with every reply so the sandbox has them even if it must kill
/// the worker later.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Dispatches run.
    pub dispatches: u64,
    /// Submits run.
    pub submits: u64,
    /// Buffer bytes held now.
    pub bytes_held: u64,
    /// Most buffer bytes held at once (staging included).
    pub peak_bytes: u64,
    /// The hash chain.
    pub hash_chain: [u8; 32],
}

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// What happened.
    pub outcome: Outcome,
    /// Totals after it.
    pub stats: Stats,
}

/// Writes one frame and flushes.
pub fn write_frame<T: Serialize>(w: &mut impl Write, header: &T, payload: &[u8]) -> io::Result<()> {
    let json = serde_json::to_vec(header).map_err(io::Error::other)?;
    let len = u32::try_from(json.len())
        .ok()
        .filter(|&l| l <= MAX_HEADER)
        .ok_or_else(|| io::Error::other("frame header too large"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(&(payload.len() as u64).to_le_bytes())?;
    w.write_all(&json)?;
    w.write_all(payload)?;
    w.flush()
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub fn read_frame<T: for<'de> Deserialize<'de>>(
    r: &mut impl Read,
) -> io::Result<Option<(T, Vec<u8>)>> {
    let mut lens = [0u8; 12];
    match r.read_exact(&mut lens[..1]) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    r.read_exact(&mut lens[1..])?;
    let header_len = u32::from_le_bytes(lens[..4].try_into().expect("4 bytes"));
    let payload_len = u64::from_le_bytes(lens[4..].try_into().expect("8 bytes"));
    if header_len > MAX_HEADER || payload_len > MAX_PAYLOAD {
        return Err(io::Error::other(format!(
            "frame too large: header {header_len} bytes, payload {payload_len} bytes"
        )));
    }
    let mut json = vec![0; header_len as usize];
    r.read_exact(&mut json)?;
    let header = serde_json::from_slice(&json).map_err(io::Error::other)?;
    let mut payload = Vec::new();
    r.take(payload_len).read_to_end(&mut payload)?;
    if payload.len() as u64 != payload_len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some((header, payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversize_headers_are_refused() {
        let mut buf = Vec::new();
        let req = Request::WriteBuffer { id: 7, offset: 16 };
        write_frame(&mut buf, &req, b"abcd").unwrap();
        write_frame(&mut buf, &Request::DropBuffer { id: 7 }, &[]).unwrap();
        let mut r = &buf[..];
        let (got, payload): (Request, _) = read_frame(&mut r).unwrap().unwrap();
        assert_eq!((got, payload.as_slice()), (req, &b"abcd"[..]));
        let (got, payload): (Request, _) = read_frame(&mut r).unwrap().unwrap();
        assert_eq!(got, Request::DropBuffer { id: 7 });
        assert!(payload.is_empty());
        assert!(read_frame::<Request>(&mut r).unwrap().is_none());

        let mut bad = (MAX_HEADER + 1).to_le_bytes().to_vec();
        bad.extend_from_slice(&0u64.to_le_bytes());
        let err = read_frame::<Request>(&mut &bad[..]).unwrap_err();
        assert!(err.to_string().contains("frame too large"), "{err}");
        // A frame cut short is an error, not a clean end.
        let cut = &buf[..buf.len() - 3];
        let mut r = cut;
        read_frame::<Request>(&mut r).unwrap();
        assert!(read_frame::<Request>(&mut r).is_err());
    }
}
