//! Core `wasm32-wasip1` modules that call wasi-nn through its witx ABI
//! (`wasi_ephemeral_nn`, the `wasi-nn` 0.6 crate). The preview-1 adapter cannot
//! wrap them into components (it knows only `wasi_snapshot_preview1`), so they
//! run as core modules on wasmtime's preview-1 implementation, held to the same
//! limits: the same [`Guard`] and memory limiter, the handle cap on the
//! preview-1 table, and `poll_oneoff` replaced by a version that never sleeps
//! past the wall-time limit.
//!
//! Every other core module is adapted to a component (see `runtime.rs`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::limits::LimitKind;
use crate::nn::job::{JobNn, NnCall};
use crate::nn::witx::{WitxHost, WitxState};
use crate::run::Guard;
use crate::stdio::Capture;

/// The import module of the witx wasi-nn ABI.
pub(crate) const WITX_NN_MODULE: &str = "wasi_ephemeral_nn";

/// Store data for core modules.
pub(crate) struct CoreState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) guard: Guard,
    pub(crate) nn: JobNn,
    pub(crate) witx: WitxState,
    pub(crate) stderr: Capture,
}

impl WitxHost for CoreState {
    fn call(&mut self) -> NnCall<'_> {
        NnCall {
            nn: &mut self.nn,
            guard: &mut self.guard,
        }
    }

    fn witx(&mut self) -> &mut WitxState {
        &mut self.witx
    }

    fn explain(&mut self, message: &str) {
        // At most 1 KiB, and only while it fits under the job's stderr cap; the
        // code still reaches the job either way.
        let mut end = message.len().min(1024);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        self.stderr.note(&message.as_bytes()[..end]);
    }
}

/// The linker for core modules: WASI preview 1, a deadline-aware
/// `poll_oneoff`, and wasi-nn's witx ABI.
pub(crate) fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<CoreState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut CoreState| &mut s.wasi)?;
    linker.allow_shadowing(true);
    linker.func_wrap("wasi_snapshot_preview1", "poll_oneoff", poll_oneoff)?;
    linker.allow_shadowing(false);
    crate::nn::witx::add_to_linker(&mut linker, |s: &mut CoreState| s)?;
    Ok(linker)
}

const ERRNO_SUCCESS: i32 = 0;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;
const SUBSCRIPTION_SIZE: usize = 48;
const EVENT_SIZE: usize = 32;
const MAX_SUBSCRIPTIONS: usize = 4096;

/// `poll_oneoff` for the sandbox: descriptors (stdin is a memory pipe, stdout
/// and stderr are captured, files are local) are always ready, so a poll on
/// any returns at once; a poll on clocks only sleeps until the earliest one,
/// and never past the job's wall-time limit, which ends the job instead.
fn poll_oneoff(
    mut caller: Caller<'_, CoreState>,
    subs: i32,
    events: i32,
    count: i32,
    nevents: i32,
) -> wasmtime::Result<i32> {
    let Some(memory) = caller
        .get_export("memory")
        .and_then(wasmtime::Extern::into_memory)
    else {
        return Ok(ERRNO_FAULT);
    };
    let count = count as u32 as usize;
    if count == 0 || count > MAX_SUBSCRIPTIONS {
        return Ok(ERRNO_INVAL);
    }
    let mut raw = vec![0u8; count * SUBSCRIPTION_SIZE];
    if memory
        .read(&caller, subs as u32 as usize, &mut raw)
        .is_err()
    {
        return Ok(ERRNO_FAULT);
    }
    let u64_at =
        |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]));
    let started = caller.data().guard.started;
    // (userdata, event type, wait)
    let mut parsed = Vec::with_capacity(count);
    for sub in raw.chunks_exact(SUBSCRIPTION_SIZE) {
        let userdata = u64_at(sub, 0);
        match sub[8] {
            0 => {
                let clock = u32::from_le_bytes([sub[16], sub[17], sub[18], sub[19]]);
                let timeout = u64_at(sub, 24);
                let absolute = sub[40] & 1 == 1;
                let wait = if !absolute {
                    Duration::from_nanos(timeout)
                } else if clock == 0 {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default();
                    Duration::from_nanos(timeout).saturating_sub(now)
                } else {
                    // The monotonic clock counts from about when the job started.
                    Duration::from_nanos(timeout).saturating_sub(started.elapsed())
                };
                parsed.push((userdata, 0u8, Some(wait)));
            }
            tag @ (1 | 2) => parsed.push((userdata, tag, None)),
            _ => return Ok(ERRNO_INVAL),
        }
    }
    let fds_ready = parsed.iter().any(|(_, _, wait)| wait.is_none());
    let slept = if fds_ready {
        Duration::ZERO
    } else {
        let wait = parsed
            .iter()
            .filter_map(|(_, _, w)| *w)
            .min()
            .unwrap_or_default();
        let guard = &mut caller.data_mut().guard;
        let left = guard
            .limits
            .wall_time
            .saturating_sub(guard.started.elapsed());
        // Sleeps in 10 ms steps, so that a cancelled job stops waiting too.
        let until = wait.min(left);
        let start = std::time::Instant::now();
        while start.elapsed() < until {
            if guard
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
            {
                guard.cancelled = true;
                return Err(wasmtime::Error::msg("the job was cancelled"));
            }
            std::thread::sleep((until - start.elapsed().min(until)).min(Duration::from_millis(10)));
        }
        if wait >= left {
            let limit = LimitKind::WallTime(guard.limits.wall_time);
            let msg = limit.to_string();
            guard.killed = Some(limit);
            return Err(wasmtime::Error::msg(msg));
        }
        wait
    };
    let mut out = Vec::new();
    for (userdata, tag, wait) in &parsed {
        if wait.is_some_and(|w| w > slept) {
            continue;
        }
        let mut event = [0u8; EVENT_SIZE];
        event[0..8].copy_from_slice(&userdata.to_le_bytes());
        event[10] = *tag;
        if *tag != 0 {
            event[16..24].copy_from_slice(&1u64.to_le_bytes());
        }
        out.extend_from_slice(&event);
    }
    let n = (out.len() / EVENT_SIZE) as u32;
    if memory
        .write(&mut caller, events as u32 as usize, &out)
        .is_err()
        || memory
            .write(&mut caller, nevents as u32 as usize, &n.to_le_bytes())
            .is_err()
    {
        return Ok(ERRNO_FAULT);
    }
    Ok(ERRNO_SUCCESS)
}
