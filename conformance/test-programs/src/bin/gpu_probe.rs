//! Uses the GPU interface (`netmind:gpu/compute`) the wrong way on purpose, through `netmind_sdk::gpu`
//! and, where the SDK would catch the mistake first, the raw WIT bindings. Prints one line per step:
//! `result: ok: <detail>` or `result: err <kind>: <message>` (the kind is the WIT error case, e.g.
//! `invalid-shader`; the lines of a multi-line message are joined with ` | `), and exits 0 whatever
//! the host answered (2 for an unknown case).
//!
//! Usage: `gpu_probe CASE`, CASE one of: info, invalid-wgsl, vertex-shader, fragment-shader,
//! no-such-entry, texture-binding, missing-binding, extra-binding, too-small-binding, bad-offset,
//! oversize-buffer, quota, too-many-workgroups, huge-workgroup-size, infinite-loop, alias, leak,
//! pipelines, dispatch-quota, hash, sum.
//!
//! Run with: `netmind run target/guests/wasm32-wasip2/release/gpu_probe.wasm -- CASE` (a job that uses
//! the GPU needs a host with one).

#[cfg(target_arch = "wasm32")]
mod probe {
    use std::fmt::Display;

    use netmind_sdk::gpu::{
        self, Buffer, Dispatch, Error, Pipeline, bindings::netmind::gpu::compute as raw,
    };

    /// The cases, for the usage message.
    pub(crate) const CASES: &str = "info, invalid-wgsl, vertex-shader, fragment-shader, no-such-entry, \
        texture-binding, missing-binding, extra-binding, too-small-binding, bad-offset, oversize-buffer, \
        quota, too-many-workgroups, huge-workgroup-size, infinite-loop, alias, leak, pipelines, \
        dispatch-quota, hash, sum";

    /// One read-write array at binding 0, each invocation writing its index.
    const FILL: &str = "
        @group(0) @binding(0) var<storage, read_write> data: array<u32>;
        @compute @workgroup_size(64)
        fn main(@builtin(global_invocation_id) id: vec3<u32>) {
            if id.x < arrayLength(&data) { data[id.x] = id.x; }
        }
    ";

    /// Reads binding 1 and writes binding 0.
    const COPY: &str = "
        @group(0) @binding(0) var<storage, read_write> dst: array<u32>;
        @group(0) @binding(1) var<storage, read> src: array<u32>;
        @compute @workgroup_size(64)
        fn main(@builtin(global_invocation_id) id: vec3<u32>) {
            if id.x < arrayLength(&dst) { dst[id.x] = src[id.x] + 1u; }
        }
    ";

    /// Prints a step's outcome on one line (a multi-line message, such as naga's with the shader's
    /// source, is joined with ` | `).
    fn step<T: Display>(r: Result<T, Error>) {
        match r {
            Ok(detail) => println!("result: ok: {detail}"),
            Err(e) => {
                let message: Vec<&str> = e
                    .message()
                    .lines()
                    .map(str::trim_end)
                    .filter(|l| !l.is_empty())
                    .collect();
                println!("result: err {}: {}", e.kind(), message.join(" | "));
            }
        }
    }

    /// Prints a step that only says ok or the error.
    fn done<T>(r: Result<T, Error>, detail: &str) {
        step(r.map(|_| detail.to_owned()));
    }

    /// A raw call's error as the SDK's.
    fn sdk<T>(r: Result<T, raw::Error>) -> Result<T, Error> {
        r.map_err(Error::from)
    }

    pub(crate) fn run(case: &str) -> bool {
        match case {
            "info" => info(),
            "invalid-wgsl" => done(
                Pipeline::new("@compute @workgroup_size(1) fn main( { }", "main"),
                "compiled",
            ),
            "vertex-shader" => done(
                Pipeline::new(
                    "@vertex fn vs() -> @builtin(position) vec4<f32> { return vec4<f32>(0.0); }",
                    "vs",
                ),
                "compiled",
            ),
            "fragment-shader" => done(
                Pipeline::new(
                    "@fragment fn fs() -> @location(0) vec4<f32> { return vec4<f32>(1.0); }",
                    "fs",
                ),
                "compiled",
            ),
            "no-such-entry" => done(Pipeline::new(FILL, "nope"), "compiled"),
            "texture-binding" => done(
                Pipeline::new(
                    "@group(0) @binding(0) var t: texture_2d<f32>;
                     @group(0) @binding(1) var<storage, read_write> out: array<u32>;
                     @compute @workgroup_size(1)
                     fn main() { out[0] = textureDimensions(t).x; }",
                    "main",
                ),
                "compiled",
            ),
            "missing-binding" => bindings(&[0]),
            "extra-binding" => bindings(&[0, 1, 2]),
            "too-small-binding" => too_small(),
            "bad-offset" => bad_offset(),
            "oversize-buffer" => oversize(),
            "quota" => quota(),
            "too-many-workgroups" => too_many_workgroups(),
            "huge-workgroup-size" => done(
                Pipeline::new(
                    "@compute @workgroup_size(1024, 1024, 1) fn main() {}",
                    "main",
                ),
                "compiled",
            ),
            "infinite-loop" => infinite_loop(),
            "alias" => alias(),
            "leak" => leak(),
            "pipelines" => pipelines(),
            "dispatch-quota" => dispatch_quota(),
            "hash" => hash(),
            "sum" => sum(),
            _ => return false,
        }
        true
    }

    fn info() {
        step(gpu::adapter().map(|a| {
            format!(
                "adapter name={} backend={} device-type={} vendor={:#x} device={:#x} driver={:?} \
                 is-software={}",
                a.name, a.backend, a.device_type, a.vendor, a.device, a.driver, a.is_software
            )
        }));
        step(gpu::limits().map(|l| {
            format!(
                "limits max-buffer-size={} max-total-bytes={} max-buffers={} max-pipelines={} \
                 max-dispatches={} max-dispatches-per-submit={} max-workgroup-size={:?} \
                 max-invocations-per-workgroup={} max-workgroups-per-dimension={} \
                 max-storage-binding-size={} max-uniform-binding-size={} \
                 min-binding-offset-alignment={} max-bind-groups={} gpu-time-budget-ms={} \
                 max-shader-bytes={}",
                l.max_buffer_size,
                l.max_total_bytes,
                l.max_buffers,
                l.max_pipelines,
                l.max_dispatches,
                l.max_dispatches_per_submit,
                l.max_workgroup_size,
                l.max_invocations_per_workgroup,
                l.max_workgroups_per_dimension,
                l.max_storage_binding_size,
                l.max_uniform_binding_size,
                l.min_binding_offset_alignment,
                l.max_bind_groups,
                l.gpu_time_budget_ms,
                l.max_shader_bytes
            )
        }));
        let u = gpu::usage();
        println!(
            "result: ok: usage dispatches={} submits={} gpu-time-ns={} bytes-held={} peak-bytes={} \
             hash-chain={}",
            u.dispatches,
            u.submits,
            u.gpu_time_ns,
            u.bytes_held,
            u.peak_bytes,
            u.hash_chain_hex()
        );
    }

    /// COPY (bindings 0 and 1) dispatched with buffers at `slots` of group 0.
    fn bindings(slots: &[u32]) {
        let run = || -> Result<String, Error> {
            let pipeline = Pipeline::new(COPY, "main")?;
            let buffers = slots
                .iter()
                .map(|_| Buffer::zeroed::<u32>(64))
                .collect::<Result<Vec<_>, _>>()?;
            let mut dispatch = Dispatch::new(&pipeline);
            for (&slot, buffer) in slots.iter().zip(&buffers) {
                dispatch = dispatch.bind(slot, buffer);
            }
            dispatch.submit()?;
            Ok(format!("dispatched with bindings {slots:?}"))
        };
        step(run());
    }

    fn too_small() {
        let wgsl = "
            @group(0) @binding(0) var<storage, read_write> data: array<vec4<f32>, 64>;
            @compute @workgroup_size(1) fn main() { data[63] = vec4<f32>(1.0); }
        ";
        let pipeline = match Pipeline::new(wgsl, "main") {
            Ok(p) => p,
            Err(e) => return step::<String>(Err(e)),
        };
        let info = pipeline.bindings();
        println!(
            "result: ok: min-size {}",
            info.first().map_or(0, |b| b.min_size)
        );
        let small = Buffer::new(16);
        step(small.and_then(|b| Dispatch::new(&pipeline).bind(0, &b).submit().map(|_| "ran")));
        // A range of a large enough buffer that is itself too small.
        step(Buffer::new(4096).and_then(|b| {
            Dispatch::new(&pipeline)
                .bind_range(0, 0, &b, 0, 512)
                .submit()
                .map(|_| "ran")
        }));
    }

    fn bad_offset() {
        step::<String>(Buffer::new(0).map(|_| "created a 0-byte buffer".into()));
        step::<String>(Buffer::new(6).map(|_| "created a 6-byte buffer".into()));
        let buffer = match Buffer::new(256) {
            Ok(b) => b,
            Err(e) => return step::<String>(Err(e)),
        };
        let b = buffer.as_raw();
        // Writes: an unaligned offset, an unaligned length, past the end, an offset beyond the end.
        done(sdk(b.write(2, &[0; 4])), "wrote at offset 2");
        done(sdk(b.write(0, &[0; 3])), "wrote 3 bytes");
        done(sdk(b.write(252, &[0; 8])), "wrote 8 bytes at 252 of 256");
        done(sdk(b.write(u64::MAX - 3, &[0; 4])), "wrote at u64::MAX - 3");
        // Reads: the same.
        done(sdk(b.read(6, 4)), "read at offset 6");
        done(sdk(b.read(0, 7)), "read 7 bytes");
        done(sdk(b.read(256, 4)), "read 4 bytes at 256 of 256");
        done(sdk(b.read(4, u64::MAX - 3)), "read u64::MAX - 3 bytes");
        // Bindings: an offset not a multiple of the alignment, a range past the end, an offset at the end.
        let pipeline = match Pipeline::new(FILL, "main") {
            Ok(p) => p,
            Err(e) => return step::<String>(Err(e)),
        };
        let big = match Buffer::new(1024) {
            Ok(b) => b,
            Err(e) => return step::<String>(Err(e)),
        };
        for (offset, size, what) in [
            (4, Some(64), "bound at offset 4"),
            (0, Some(2048), "bound 2048 bytes of 1024"),
            (1024, None, "bound at offset 1024 of 1024"),
            (768, Some(512), "bound 512 bytes at 768 of 1024"),
        ] {
            let bindings = [raw::Binding {
                group: 0,
                binding: 0,
                buffer: big.as_raw(),
                offset,
                size,
            }];
            let dispatch = raw::Dispatch {
                pipeline: pipeline.as_raw(),
                bindings: &bindings,
                workgroups: (1, 1, 1),
            };
            done(sdk(raw::submit(&[dispatch])), what);
        }
    }

    fn oversize() {
        let max = match gpu::limits() {
            Ok(l) => l.max_buffer_size,
            Err(e) => return step::<String>(Err(e)),
        };
        let over = (max + 4) & !3;
        step(Buffer::new(over).map(|_| format!("created a {over}-byte buffer")));
        let huge = u64::MAX - 3;
        step(Buffer::new(huge).map(|_| format!("created a {huge}-byte buffer")));
    }

    fn quota() {
        const SIZE: u64 = 16 << 20;
        let mut held = Vec::new();
        let error = loop {
            match Buffer::new(SIZE) {
                Ok(b) => held.push(b),
                Err(e) => break Some(e),
            }
            if held.len() >= 100_000 {
                break None;
            }
        };
        println!("result: ok: created {} buffers of 16 MiB", held.len());
        if let Some(e) = error {
            step::<String>(Err(e));
        }
        // Freeing one makes room again.
        held.pop();
        done(Buffer::new(SIZE), "created one more after dropping one");
    }

    fn too_many_workgroups() {
        let run = |counts: (u32, u32, u32)| -> Result<String, Error> {
            let pipeline = Pipeline::new(FILL, "main")?;
            let buffer = Buffer::zeroed::<u32>(64)?;
            Dispatch::new(&pipeline)
                .bind(0, &buffer)
                .workgroups(counts.0, counts.1, counts.2)
                .submit()?;
            Ok(format!("dispatched {counts:?} workgroups"))
        };
        let max = match gpu::limits() {
            Ok(l) => l.max_workgroups_per_dimension,
            Err(e) => return step::<String>(Err(e)),
        };
        step(run((max + 1, 1, 1)));
        step(run((1, 1, max.saturating_add(1))));
        step(run((u32::MAX, u32::MAX, u32::MAX)));
    }

    fn infinite_loop() {
        // The loop's exit depends on a value only the GPU sees (always 0), read atomically on every
        // iteration, and every iteration does an atomic add: a compiler may neither hoist the read nor
        // assume the loop ends (a plain loop of plain stores is removed by llvmpipe's LLVM, which may
        // assume forward progress). llvmpipe also stops any loop after 65535 iterations, so the
        // dispatch is as large as allowed too: 65535² workgroups of one 65535-iteration loop each is
        // endless enough there.
        let wgsl = "
            @group(0) @binding(0) var<storage, read_write> data: array<atomic<u32>>;
            @compute @workgroup_size(1)
            fn main() {
                loop {
                    atomicAdd(&data[0], 1u);
                    if atomicLoad(&data[1]) == 0xdeadbeefu { break; }
                }
            }
        ";
        let run = || -> Result<String, Error> {
            let max = gpu::limits()?.max_workgroups_per_dimension;
            let pipeline = Pipeline::new(wgsl, "main")?;
            let buffer = Buffer::zeroed::<u32>(2)?;
            Dispatch::new(&pipeline)
                .bind(0, &buffer)
                .workgroups(max, max, 1)
                .submit()?;
            Ok("the loop ended".into())
        };
        step(run());
        // The GPU context is gone: every later call fails the same way.
        done(Buffer::new(4), "created a buffer afterwards");
        done(gpu::limits(), "got the limits afterwards");
        let u = gpu::usage();
        println!(
            "result: ok: usage dispatches={} gpu-time-ns={}",
            u.dispatches, u.gpu_time_ns
        );
    }

    fn alias() {
        let run = || -> Result<String, Error> {
            let pipeline = Pipeline::new(COPY, "main")?;
            let buffer = Buffer::zeroed::<u32>(64)?;
            Dispatch::new(&pipeline)
                .bind(0, &buffer)
                .bind(1, &buffer)
                .submit()?;
            Ok("dispatched with one buffer at both bindings".into())
        };
        step(run());
    }

    fn leak() {
        let mut buffers = 0;
        let mut error = None;
        for _ in 0..1000 {
            match Buffer::new(4096) {
                Ok(b) => {
                    std::mem::forget(b);
                    buffers += 1;
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        println!("result: ok: leaked {buffers} buffers");
        if let Some(e) = error {
            step::<String>(Err(e));
        }
        let mut pipelines = 0;
        let mut error = None;
        for _ in 0..1000 {
            match Pipeline::new(FILL, "main") {
                Ok(p) => {
                    std::mem::forget(p);
                    pipelines += 1;
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        println!("result: ok: leaked {pipelines} pipelines");
        if let Some(e) = error {
            step::<String>(Err(e));
        }
    }

    fn pipelines() {
        let mut held = Vec::new();
        let error = loop {
            match Pipeline::new(FILL, "main") {
                Ok(p) => held.push(p),
                Err(e) => break Some(e),
            }
            if held.len() >= 100_000 {
                break None;
            }
        };
        println!("result: ok: created {} pipelines", held.len());
        if let Some(e) = error {
            step::<String>(Err(e));
        }
        held.pop();
        done(
            Pipeline::new(FILL, "main"),
            "created one more after dropping one",
        );
    }

    fn dispatch_quota() {
        let run = || -> Result<(), Error> {
            let limits = gpu::limits()?;
            let pipeline = Pipeline::new(FILL, "main")?;
            let buffer = Buffer::zeroed::<u32>(1)?;
            let one = Dispatch::new(&pipeline).bind(0, &buffer);
            let per_submit = limits.max_dispatches_per_submit as usize;
            // One more than a submit may hold.
            done(
                gpu::submit(&vec![one.clone(); per_submit + 1]),
                &format!("submitted {} dispatches at once", per_submit + 1),
            );
            // Several submits before the quota is reached, each as large as allowed.
            let size = (limits.max_dispatches / 10).clamp(1, per_submit.max(1) as u64) as usize;
            let batch = vec![one; size];
            let rounds = limits.max_dispatches / batch.len() as u64 + 2;
            let mut total = 0u64;
            for _ in 0..rounds {
                match gpu::submit(&batch) {
                    Ok(_) => total += batch.len() as u64,
                    Err(e) => {
                        println!("result: ok: ran {total} dispatches");
                        return Err(e);
                    }
                }
            }
            println!("result: ok: ran {total} dispatches");
            Ok(())
        };
        if let Err(e) = run() {
            step::<String>(Err(e));
        }
    }

    fn hash() {
        let wgsl = "
            @group(0) @binding(0) var<storage, read_write> data: array<u32>;
            @compute @workgroup_size(64)
            fn main(@builtin(global_invocation_id) id: vec3<u32>) {
                let i = id.x;
                if i < arrayLength(&data) { data[i] = (i * 2654435761u) ^ (data[i] >> 3u); }
            }
        ";
        let run = || -> Result<(), Error> {
            let pipeline = Pipeline::new(wgsl, "main")?;
            let buffer = Buffer::zeroed::<u32>(256)?;
            for round in 1..=2 {
                let hash = Dispatch::new(&pipeline)
                    .bind(0, &buffer)
                    .workgroups(4, 1, 1)
                    .submit()?;
                println!("result: ok: dispatch {round} hash {}", gpu::to_hex(&hash));
            }
            let data: Vec<u32> = buffer.read()?;
            let checksum = data.iter().fold(0u32, |s, &v| s.rotate_left(5) ^ v);
            println!("result: ok: data checksum {checksum:08x}");
            println!("result: ok: hash-chain {}", gpu::usage().hash_chain_hex());
            Ok(())
        };
        if let Err(e) = run() {
            step::<String>(Err(e));
        }
    }

    fn sum() {
        const ADD: &str = "
            @group(0) @binding(0) var<storage, read> a: array<f32>;
            @group(0) @binding(1) var<storage, read> b: array<f32>;
            @group(0) @binding(2) var<storage, read_write> sum: array<f32>;
            @compute @workgroup_size(256)
            fn main(@builtin(global_invocation_id) id: vec3<u32>) {
                if id.x < arrayLength(&sum) { sum[id.x] = a[id.x] + b[id.x]; }
            }
        ";
        let run = || -> Result<String, Error> {
            let n = 1 << 20;
            let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let b: Vec<f32> = (0..n).map(|i| (2 * i) as f32).collect();
            let (a, b) = (Buffer::from_slice(&a)?, Buffer::from_slice(&b)?);
            let sum = Buffer::zeroed::<f32>(n)?;
            gpu::run(
                ADD,
                "main",
                &[&a, &b, &sum],
                (gpu::workgroups_for(n, 256), 1, 1),
            )?;
            let sum: Vec<f32> = sum.read()?;
            // Every value is a whole number below 2^24, so the sums are exact.
            match (0..n).find(|&i| sum[i] != (3 * i) as f32) {
                None => Ok(format!("{n} sums correct")),
                Some(i) => Err(Error::Internal(format!(
                    "wrong result: sum[{i}] = {} instead of {}",
                    sum[i],
                    3 * i
                ))),
            }
        };
        step(run());
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    {
        let case = netmind_test_programs::first_arg().unwrap_or_else(|| "info".to_owned());
        if !probe::run(&case) {
            println!(
                "result: err usage: unknown case `{case}`; cases: {}",
                probe::CASES
            );
            std::process::exit(2);
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    println!("wasm only");
}
