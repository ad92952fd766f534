//! What jobs print, per deal: hosts append signed pieces while a job runs
//! (`POST /v1/deals/{id}/logs`), owners read and follow them
//! (`GET /v1/deals/{id}/logs`, `netmind job logs ID --follow`).
//!
//! Each deal's log is a file `<dir>/<deal>.log` that only grows. A piece
//! names the offset it starts at, so a host that resends after a lost answer
//! changes nothing, and a piece that would leave a gap is refused. Logs are
//! capped per deal ([`LogStore::cap`]): past the cap pieces are acknowledged
//! and dropped, and the log says it was cut. The files outlive the market's
//! restarts.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use alloy_primitives::B256;

/// The line a log ends with once its cap was reached.
pub const CUT: &str = "\n[netmind: log cut here: the market keeps at most this much per deal]\n";

/// Why a piece was not appended.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The piece starts past the end of the log.
    #[error("the piece starts at byte {offset} but the log has {len} bytes: send from byte {len}")]
    Gap {
        /// Where the piece starts.
        offset: u64,
        /// The log's length.
        len: u64,
    },
    /// The piece overlaps the log but not at a character boundary.
    #[error("the piece at byte {offset} overlaps the log ({len} bytes) inside a character")]
    Misaligned {
        /// Where the piece starts.
        offset: u64,
        /// The log's length.
        len: u64,
    },
    /// The file could not be read or written.
    #[error("cannot store the log: {0}")]
    Io(#[from] io::Error),
}

/// Deals' logs on disk, with a wake-up for readers that wait.
#[derive(Debug)]
pub struct LogStore {
    dir: PathBuf,
    cap: u64,
    /// Known lengths (read from the file the first time a deal is seen).
    lens: Mutex<HashMap<B256, u64>>,
    changed: tokio::sync::Notify,
}

/// A part of a deal's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// The text from the requested offset.
    pub text: String,
    /// The offset after `text`: where the next read starts.
    pub next: u64,
    /// The log's length.
    pub len: u64,
}

impl LogStore {
    /// Logs under `dir` (created), at most `cap` bytes per deal.
    pub fn open(dir: &Path, cap: u64) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            cap,
            lens: Mutex::default(),
            changed: tokio::sync::Notify::new(),
        })
    }

    /// The most a deal's log keeps, bytes (plus the [`CUT`] line).
    pub fn cap(&self) -> u64 {
        self.cap
    }

    fn path(&self, deal: &B256) -> PathBuf {
        self.dir.join(format!("{deal}.log"))
    }

    fn len_of(&self, lens: &mut HashMap<B256, u64>, deal: &B256) -> io::Result<u64> {
        if let Some(n) = lens.get(deal) {
            return Ok(*n);
        }
        let n = match std::fs::metadata(self.path(deal)) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        lens.insert(*deal, n);
        Ok(n)
    }

    /// The length of `deal`'s log, bytes.
    pub fn len(&self, deal: &B256) -> io::Result<u64> {
        let mut lens = self.lens.lock().unwrap_or_else(|e| e.into_inner());
        self.len_of(&mut lens, deal)
    }

    /// Appends `text`, which starts at byte `offset` of the host's log; the
    /// part already stored is skipped. Answers the log's length after it.
    pub fn append(&self, deal: &B256, offset: u64, text: &str) -> Result<u64, LogError> {
        let mut lens = self.lens.lock().unwrap_or_else(|e| e.into_inner());
        let len = self.len_of(&mut lens, deal)?;
        if len >= self.cap {
            // Cut already (or exactly full): acknowledged, dropped.
            return Ok(len);
        }
        if offset > len {
            return Err(LogError::Gap { offset, len });
        }
        let skip = (len - offset) as usize;
        if skip >= text.len() {
            return Ok(len);
        }
        if !text.is_char_boundary(skip) {
            return Err(LogError::Misaligned { offset, len });
        }
        let mut new = &text[skip..];
        let room = (self.cap - len) as usize;
        let mut cut = false;
        if new.len() > room {
            let mut end = room;
            while !new.is_char_boundary(end) {
                end -= 1;
            }
            new = &new[..end];
            cut = true;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(deal))?;
        file.write_all(new.as_bytes())?;
        let mut n = len + new.len() as u64;
        if cut {
            // The log is past its cap from now on: later pieces are dropped.
            file.write_all(CUT.as_bytes())?;
            n += CUT.len() as u64;
        }
        lens.insert(*deal, n);
        drop(lens);
        self.changed.notify_waiters();
        Ok(n)
    }

    /// `deal`'s log from byte `from`, at most `max` bytes (cut back to a
    /// character boundary).
    pub fn read(&self, deal: &B256, from: u64, max: usize) -> io::Result<Slice> {
        let len = self.len(deal)?;
        if from >= len {
            return Ok(Slice {
                text: String::new(),
                next: from.min(len),
                len,
            });
        }
        let mut file = std::fs::File::open(self.path(deal))?;
        file.seek(SeekFrom::Start(from))?;
        let want = ((len - from) as usize).min(max);
        let mut buf = vec![0; want];
        file.read_exact(&mut buf)?;
        // `from` comes from the caller: start at the next character, end at
        // the last whole one (the file holds only whole UTF-8 text).
        let start = buf
            .iter()
            .position(|b| (*b as i8) >= -0x40)
            .unwrap_or(buf.len());
        let text = match std::str::from_utf8(&buf[start..]) {
            Ok(s) => s.to_owned(),
            Err(e) => std::str::from_utf8(&buf[start..start + e.valid_up_to()])
                .expect("valid up to")
                .to_owned(),
        };
        let next = from + (start + text.len()) as u64;
        Ok(Slice { text, next, len })
    }

    /// Waits until `done` holds (checked now and after every change to any
    /// log or [`LogStore::wake`]), or `wait` passes.
    pub async fn wait_until(&self, wait: Duration, mut done: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done() {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return;
            }
        }
    }

    /// Wakes every waiting reader (a deal changed state: its log may be complete).
    pub fn wake(&self) {
        self.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(cap: u64) -> (tempfile::TempDir, LogStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = LogStore::open(&dir.path().join("logs"), cap).unwrap();
        (dir, s)
    }

    #[test]
    fn pieces_append_resends_are_ignored_and_gaps_refused() {
        let (_d, s) = store(1 << 20);
        let deal = B256::repeat_byte(1);
        assert_eq!(s.append(&deal, 0, "hello ").unwrap(), 6);
        assert_eq!(s.append(&deal, 6, "wörld\n").unwrap(), 13);
        // A resend of the first piece, and one that overlaps the end.
        assert_eq!(s.append(&deal, 0, "hello ").unwrap(), 13);
        assert_eq!(s.append(&deal, 6, "wörld\nagain").unwrap(), 18);
        let e = s.append(&deal, 40, "late").unwrap_err();
        assert!(
            matches!(
                e,
                LogError::Gap {
                    offset: 40,
                    len: 18
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("send from byte 18"), "{e}");
        let all = s.read(&deal, 0, 1 << 20).unwrap();
        assert_eq!(all.text, "hello wörld\nagain");
        assert_eq!((all.next, all.len), (18, 18));
        // Reads in small pieces never split a character.
        let part = s.read(&deal, 6, 2).unwrap();
        assert_eq!((part.text.as_str(), part.next), ("w", 7));
        let part = s.read(&deal, 7, 1).unwrap();
        assert_eq!((part.text.as_str(), part.next), ("", 7));
        let part = s.read(&deal, 7, 2).unwrap();
        assert_eq!((part.text.as_str(), part.next), ("ö", 9));
        // A read from inside a character starts at the next one.
        assert_eq!(s.read(&deal, 8, 10).unwrap().text, "rld\nagain");
        // Another deal's log is its own; an unknown one is empty.
        assert_eq!(s.read(&B256::ZERO, 0, 10).unwrap().len, 0);
    }

    #[test]
    fn a_log_past_its_cap_is_cut_once_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let deal = B256::repeat_byte(2);
        let s = LogStore::open(dir.path(), 10).unwrap();
        s.append(&deal, 0, "12345678").unwrap();
        let n = s.append(&deal, 8, "9abcdef").unwrap();
        assert_eq!(n, 10 + CUT.len() as u64);
        // Later pieces are acknowledged and dropped, wherever the host thinks they go.
        assert_eq!(s.append(&deal, 15, "more").unwrap(), n);
        assert_eq!(s.append(&deal, 1000, "more").unwrap(), n);
        let again = LogStore::open(dir.path(), 10).unwrap();
        let text = again.read(&deal, 0, 1 << 20).unwrap().text;
        assert_eq!(text, format!("123456789a{CUT}"));
    }

    #[tokio::test]
    async fn a_waiting_reader_wakes_when_text_arrives() {
        let (_d, s) = store(1 << 20);
        let s = std::sync::Arc::new(s);
        let deal = B256::repeat_byte(3);
        let s2 = s.clone();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            s2.append(&deal, 0, "line\n").unwrap();
        });
        let t = std::time::Instant::now();
        s.wait_until(Duration::from_secs(20), || s.len(&deal).unwrap() > 0)
            .await;
        assert!(t.elapsed() < Duration::from_secs(10));
        assert_eq!(s.read(&deal, 0, 100).unwrap().text, "line\n");
        writer.await.unwrap();
        // Nothing new: the wait ends at its limit.
        let t = std::time::Instant::now();
        s.wait_until(Duration::from_millis(100), || s.len(&deal).unwrap() > 5)
            .await;
        assert!(t.elapsed() >= Duration::from_millis(100));
    }
}
