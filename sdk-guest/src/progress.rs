//! Progress reports: one JSON line on stderr per call, parsed by the host.

use std::io::Write;

use serde::{Deserialize, Serialize};

/// The prefix of a progress line on the guest's stderr.
///
/// The wire format is one line, `netmind:progress ` followed by a JSON object and `\n`:
///
/// ```text
/// netmind:progress {"done":3,"total":10,"message":"a.png"}
/// ```
///
/// `done` and `total` are unsigned integers (`total` may be 0 when unknown) and `message` is a JSON string,
/// so a message containing newlines still takes one line. Any other stderr line is ordinary log output.
pub const PROGRESS_PREFIX: &str = "netmind:progress ";

/// One progress report, as carried by a [`PROGRESS_PREFIX`] line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Units of work done so far.
    pub done: u64,
    /// Units of work in all, or 0 when unknown.
    pub total: u64,
    /// What the job is doing now.
    pub message: String,
}

impl Progress {
    /// The line for this report, including the prefix and the trailing newline.
    pub fn to_line(&self) -> String {
        let json = serde_json::to_string(self).expect("a Progress always serializes");
        format!("{PROGRESS_PREFIX}{json}\n")
    }

    /// Parses a stderr line (with or without its trailing newline); `None` when it is not a progress line.
    pub fn parse_line(line: &str) -> Option<Self> {
        let json = line.strip_prefix(PROGRESS_PREFIX)?;
        serde_json::from_str(json.trim_end_matches(['\r', '\n'])).ok()
    }
}

/// Reports progress to the host: writes exactly one [`PROGRESS_PREFIX`] line to stderr.
///
/// Errors writing to stderr are ignored: progress is advisory.
pub fn progress(done: u64, total: u64, message: &str) {
    let line = Progress {
        done,
        total,
        message: message.to_owned(),
    }
    .to_line();
    // One write of the whole line, so it is not interleaved with other stderr output.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format() {
        let line = Progress {
            done: 3,
            total: 10,
            message: "a.png".into(),
        }
        .to_line();
        assert_eq!(
            line,
            "netmind:progress {\"done\":3,\"total\":10,\"message\":\"a.png\"}\n"
        );
    }

    #[test]
    fn message_is_escaped_onto_one_line() {
        let progress = Progress {
            done: 0,
            total: 0,
            message: "two\nlines \"quoted\"".into(),
        };
        let line = progress.to_line();
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.ends_with('\n'));
        assert_eq!(Progress::parse_line(&line), Some(progress));
    }

    #[test]
    fn other_lines_are_not_progress() {
        assert_eq!(Progress::parse_line("warning: something"), None);
        assert_eq!(Progress::parse_line("netmind:progress not json"), None);
    }
}
