//! Ships what a running job prints to the market, so its owner can follow it
//! (`netmind job logs ID --follow`).
//!
//! The sandbox hands stdout and stderr to a [`Collect`] as the job writes
//! them (progress reports become `progress: done/total message` lines). A
//! task sends the collected text in signed [`Log`] pieces of at most
//! [`PIECE`] bytes, each naming the byte offset it starts at, a few times a
//! second; a piece whose answer was lost is sent again unchanged (the market
//! skips what it has). When the run ends the rest is sent before the
//! receipt, so a job's log is complete once it is reported. Shipping never
//! holds up or fails the job: past [`MAX_LOG`] bytes text is dropped, and
//! when the market keeps refusing, the shipper gives up with a warning.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_primitives::B256;
use netmind_host::{Progress, RunObserver};
use netmind_protocol::orders::Signed;
use netmind_protocol::work::Log;

use super::Daemon;

/// Most bytes of text in one piece (well under the market's 64 KiB body
/// limit even when every character needs escaping in JSON).
const PIECE: usize = 8 * 1024;

/// Most bytes of a job's log the host collects (the market keeps 1 MiB).
const MAX_LOG: usize = 1024 * 1024 + PIECE;

/// How often collected text is sent while the job runs.
const EVERY: Duration = Duration::from_millis(200);

/// The text a job printed that has not been sent yet.
#[derive(Debug, Default)]
struct Pending {
    text: String,
    /// Bytes collected so far (sent or not).
    collected: usize,
    /// The end of each stream's last write when it split a character.
    partial: [Vec<u8>; 2],
}

/// Collects a job's output as the sandbox reports it.
#[derive(Debug, Default)]
pub(super) struct Collect(Mutex<Pending>);

impl Collect {
    fn push(&self, stream: usize, bytes: &[u8]) {
        let mut p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if p.collected >= MAX_LOG {
            return;
        }
        let mut all = std::mem::take(&mut p.partial[stream]);
        all.extend_from_slice(bytes);
        // Keep an incomplete character at the end for the next write.
        let keep = match std::str::from_utf8(&all) {
            Ok(_) => all.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => all.len(),
        };
        p.partial[stream] = all.split_off(keep);
        let text = String::from_utf8_lossy(&all);
        p.collected += text.len();
        p.text.push_str(&text);
    }

    /// Takes up to [`PIECE`] bytes (a whole number of characters).
    fn take(&self) -> String {
        let mut p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if p.text.len() <= PIECE {
            return std::mem::take(&mut p.text);
        }
        let mut end = PIECE;
        while !p.text.is_char_boundary(end) {
            end -= 1;
        }
        let rest = p.text.split_off(end);
        std::mem::replace(&mut p.text, rest)
    }

    /// Puts back a piece that could not be sent.
    fn put_back(&self, piece: String) {
        let mut p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let later = std::mem::take(&mut p.text);
        p.text = piece + &later;
    }
}

impl RunObserver for Collect {
    fn stdout(&self, bytes: &[u8]) {
        self.push(0, bytes);
    }

    fn stderr(&self, bytes: &[u8]) {
        self.push(1, bytes);
    }

    fn progress(&self, progress: &Progress) {
        let line = format!(
            "progress: {}/{} {}\n",
            progress.done, progress.total, progress.message
        );
        self.push(1, line.as_bytes());
    }
}

/// The task sending one deal's log; [`Shipper::finish`] sends the rest,
/// dropping it stops at once.
#[derive(Debug)]
pub(super) struct Shipper {
    collect: Arc<Collect>,
    done: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Shipper {
    /// Starts shipping `deal`'s log.
    pub(super) fn start(d: &Arc<Daemon>, deal: B256) -> Self {
        let collect = Arc::new(Collect::default());
        let (done, mut finished) = tokio::sync::watch::channel(false);
        let (d, c) = (d.clone(), collect.clone());
        let task = tokio::spawn(async move {
            let mut offset = 0u64;
            let mut failures = 0;
            loop {
                let last = *finished.borrow();
                loop {
                    let piece = c.take();
                    if piece.is_empty() {
                        break;
                    }
                    match send(&d, deal, offset, &piece).await {
                        Ok(()) => {
                            offset += piece.len() as u64;
                            failures = 0;
                        }
                        Err(e) => {
                            failures += 1;
                            c.put_back(piece);
                            if failures >= 5 {
                                tracing::warn!(target: "host::daemon", %deal, error = %e, "the market refuses the job's log; no more of it is sent");
                                return;
                            }
                            tokio::time::sleep(EVERY * failures).await;
                        }
                    }
                }
                if last {
                    return;
                }
                // The shipper was dropped (the job was cancelled): stop.
                if let Ok(Err(_)) = tokio::time::timeout(EVERY, finished.changed()).await {
                    return;
                }
            }
        });
        Self {
            collect,
            done,
            task,
        }
    }

    /// What the sandbox reports the job's output to.
    pub(super) fn observer(&self) -> Arc<dyn RunObserver> {
        self.collect.clone()
    }

    /// Sends what is left (waiting at most 10 s), then stops.
    pub(super) async fn finish(self) {
        let _ = self.done.send(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

async fn send(d: &Daemon, deal: B256, offset: u64, text: &str) -> anyhow::Result<()> {
    let log = Log {
        host: d.signer.address(),
        deal,
        offset,
        text: text.to_owned(),
    };
    let signed = Signed::sign(log, &d.signer, &d.domain)?;
    d.client
        .post(&format!("/v1/deals/{deal}/logs"), &signed)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_collected_whole_characters_at_a_time_and_taken_in_pieces() {
        let c = Collect::default();
        let snow = "☃".as_bytes();
        c.stdout(b"a");
        c.stdout(&snow[..1]);
        c.stderr(b"err\n");
        c.stdout(&snow[1..]);
        c.progress(&Progress {
            done: 1,
            total: 4,
            message: "step".into(),
        });
        c.stdout(b"\xff\n");
        assert_eq!(c.take(), "aerr\n☃progress: 1/4 step\n\u{fffd}\n");
        assert_eq!(c.take(), "");
        c.stdout("é".repeat(PIECE).as_bytes());
        let first = c.take();
        assert_eq!(first.len(), PIECE);
        c.put_back(first);
        let mut all = String::new();
        loop {
            let p = c.take();
            if p.is_empty() {
                break;
            }
            assert!(p.len() <= PIECE);
            all += &p;
        }
        assert_eq!(all, "é".repeat(PIECE));
    }

    #[test]
    fn a_flood_is_capped() {
        let c = Collect::default();
        for _ in 0..(MAX_LOG / 1000 + 10) {
            c.stdout(&[b'x'; 1000]);
        }
        let mut n = 0;
        loop {
            let p = c.take();
            if p.is_empty() {
                break;
            }
            n += p.len();
        }
        assert!(n <= MAX_LOG + 1000, "{n}");
    }
}
