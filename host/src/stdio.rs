//! Captured, capped stdout and stderr for guests.
//!
//! Every byte a guest writes is counted against its cap. Past the cap the
//! write traps the guest (so a stdout flood ends the job with a clear
//! "stdout limit exceeded" instead of filling the host's memory or disk).
//! Captured bytes are kept in memory up to the cap and, if an
//! [`RunObserver`] is given, streamed to it as they arrive. On stderr,
//! lines starting with [`PROGRESS_PREFIX`] are progress reports: they are
//! parsed and handed to [`RunObserver::progress`] instead.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

use crate::limits::LimitKind;

/// The line prefix a guest uses on stderr to report progress (see `netmind-sdk`).
pub const PROGRESS_PREFIX: &str = "netmind:progress ";

/// A progress report from a guest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Progress {
    /// Units done.
    pub done: u64,
    /// Units in all.
    pub total: u64,
    /// What the job is doing.
    #[serde(default)]
    pub message: String,
}

/// Receives a job's output while it runs.
pub trait RunObserver: Send + Sync {
    /// Bytes the guest wrote to stdout.
    fn stdout(&self, bytes: &[u8]) {
        let _ = bytes;
    }
    /// Bytes the guest wrote to stderr (progress lines excluded).
    fn stderr(&self, bytes: &[u8]) {
        let _ = bytes;
    }
    /// A progress report.
    fn progress(&self, progress: &Progress) {
        let _ = progress;
    }
}

/// Which stream a [`Capture`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    written: u64,
    exceeded: bool,
    partial_line: Vec<u8>,
    last_progress: Option<Progress>,
}

/// A capped capture of one guest stream, shared between the store and the runner.
#[derive(Clone)]
pub(crate) struct Capture {
    stream: Stream,
    cap: u64,
    state: Arc<Mutex<State>>,
    observer: Option<Arc<dyn RunObserver>>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("stream", &self.stream)
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

impl Capture {
    pub(crate) fn new(stream: Stream, cap: u64, observer: Option<Arc<dyn RunObserver>>) -> Self {
        Self {
            stream,
            cap,
            state: Arc::default(),
            observer,
        }
    }

    fn limit(&self) -> LimitKind {
        match self.stream {
            Stream::Stdout => LimitKind::Stdout(self.cap),
            Stream::Stderr => LimitKind::Stderr(self.cap),
        }
    }

    /// Takes the bytes; returns whether the cap was exceeded.
    /// Adds a line of the host's (a message for the job's author) when it fits
    /// under the cap; never marks the stream as over its limit.
    pub(crate) fn note(&self, bytes: &[u8]) {
        let fits = {
            let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            !st.exceeded && st.written + bytes.len() as u64 <= self.cap
        };
        if fits {
            let _ = self.push(bytes);
        }
    }

    fn push(&self, bytes: &[u8]) -> Result<(), LimitKind> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.exceeded || st.written + bytes.len() as u64 > self.cap {
            st.exceeded = true;
            return Err(self.limit());
        }
        st.written += bytes.len() as u64;
        st.buf.extend_from_slice(bytes);
        match self.stream {
            Stream::Stdout => {
                if let Some(o) = &self.observer {
                    o.stdout(bytes);
                }
            }
            Stream::Stderr => self.stderr_lines(&mut st, bytes),
        }
        Ok(())
    }

    fn stderr_lines(&self, st: &mut State, bytes: &[u8]) {
        st.partial_line.extend_from_slice(bytes);
        while let Some(nl) = st.partial_line.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = st.partial_line.drain(..=nl).collect();
            let progress = std::str::from_utf8(&line)
                .ok()
                .and_then(|l| l.strip_prefix(PROGRESS_PREFIX))
                .and_then(|json| serde_json::from_str::<Progress>(json.trim_end()).ok());
            match (progress, &self.observer) {
                (Some(p), Some(o)) => {
                    o.progress(&p);
                    st.last_progress = Some(p);
                }
                (Some(p), None) => st.last_progress = Some(p),
                (None, Some(o)) => o.stderr(&line),
                (None, None) => {}
            }
        }
    }

    /// Flushes a trailing partial stderr line to the observer.
    pub(crate) fn finish(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !st.partial_line.is_empty() {
            let rest = std::mem::take(&mut st.partial_line);
            if let Some(o) = &self.observer {
                match self.stream {
                    Stream::Stdout => {}
                    Stream::Stderr => o.stderr(&rest),
                }
            }
        }
    }

    pub(crate) fn exceeded(&self) -> Option<LimitKind> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.exceeded.then(|| self.limit())
    }

    pub(crate) fn take(&self) -> (Vec<u8>, Option<Progress>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (std::mem::take(&mut st.buf), st.last_progress.take())
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes)
            .map_err(|limit| StreamError::Trap(wasmtime::format_err!("{limit}")))
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Always accept a write; `write` enforces the cap exactly and traps.
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(match self.push(buf) {
            Ok(()) => Ok(buf.len()),
            Err(limit) => Err(std::io::Error::other(limit.to_string())),
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Seen(Mutex<(Vec<u8>, Vec<Progress>)>);
    impl RunObserver for Seen {
        fn stderr(&self, bytes: &[u8]) {
            self.0.lock().unwrap().0.extend_from_slice(bytes);
        }
        fn progress(&self, p: &Progress) {
            self.0.lock().unwrap().1.push(p.clone());
        }
    }

    #[test]
    fn cap_is_exact_and_sticky() {
        let c = Capture::new(Stream::Stdout, 10, None);
        assert!(c.push(b"0123456789").is_ok());
        assert_eq!(c.push(b"x"), Err(LimitKind::Stdout(10)));
        assert_eq!(c.exceeded(), Some(LimitKind::Stdout(10)));
        assert_eq!(c.take().0, b"0123456789");
    }

    #[test]
    fn progress_lines_are_parsed_and_not_echoed() {
        let seen = Arc::new(Seen::default());
        let c = Capture::new(Stream::Stderr, 1 << 20, Some(seen.clone()));
        c.push(b"hello\nnetmind:progress {\"done\":1,").unwrap();
        c.push(b"\"total\":4,\"message\":\"a\"}\ntail").unwrap();
        c.finish();
        let (text, progress) = &*seen.0.lock().unwrap();
        assert_eq!(text, b"hello\ntail");
        assert_eq!(progress[0].done, 1);
        assert_eq!(progress[0].total, 4);
    }
}
