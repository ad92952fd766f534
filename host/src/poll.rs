//! `wasi:io/poll` with the job's wall-clock deadline.
//!
//! Limits are checked on epoch ticks, which only fire while wasm code runs.
//! A job blocked in `poll` or `pollable.block` (sleeping on a clock, say)
//! runs no wasm code, so the stock implementation would let it hold its slot
//! past its wall-time limit, forever with a long enough sleep. These
//! replacements wait at most until the deadline, then stop the job.

use std::time::Instant;

use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::sync::io::poll;
use wasmtime_wasi::runtime::in_tokio;
use wasmtime_wasi_io::bindings::wasi::io::poll as async_poll;

use crate::limits::LimitKind;
use crate::run::Guard;

pub(crate) struct DeadlinePoll<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) guard: &'a mut Guard,
}

pub(crate) struct DeadlinePollData;

impl HasData for DeadlinePollData {
    type Data<'a> = DeadlinePoll<'a>;
}

impl DeadlinePoll<'_> {
    fn within_deadline<R>(
        &mut self,
        wait: impl AsyncFnOnce(&mut ResourceTable) -> wasmtime::Result<R>,
    ) -> wasmtime::Result<R> {
        let deadline = self.guard.started + self.guard.limits.wall_time;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let table = &mut *self.table;
        let cancel = self.guard.cancel.clone();
        // A cancelled job stops waiting too (checked every 10 ms).
        let cancelled = async move {
            match cancel {
                Some(flag) => {
                    while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        let waited = in_tokio(async {
            tokio::select! {
                r = tokio::time::timeout(remaining, wait(table)) => Some(r),
                () = cancelled => None,
            }
        });
        let Some(waited) = waited else {
            self.guard.cancelled = true;
            return Err(wasmtime::Error::msg("the job was cancelled"));
        };
        match waited {
            Ok(result) => result,
            Err(_elapsed) => {
                let limit = LimitKind::WallTime(self.guard.limits.wall_time);
                let msg = limit.to_string();
                self.guard.killed = Some(limit);
                Err(wasmtime::Error::msg(msg))
            }
        }
    }
}

impl poll::Host for DeadlinePoll<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        self.within_deadline(async |t| async_poll::Host::poll(t, pollables).await)
    }
}

impl poll::HostPollable for DeadlinePoll<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        in_tokio(async { async_poll::HostPollable::ready(self.table, pollable).await })
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        self.within_deadline(async |t| async_poll::HostPollable::block(t, pollable).await)
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        async_poll::HostPollable::drop(self.table, pollable)
    }
}
