//! How long ago the machine's owner last typed or moved the mouse, for the
//! idle policy's `input-idle`. Nothing typed is read; only times are:
//!
//! - Terminals: the kernel stamps a tty's access time when a program reads
//!   input from it, to 8 s (what `w` shows as IDLE): the consoles
//!   `/dev/tty<N>` and the pseudo-terminals `/dev/pts/<N>` of terminal
//!   windows and SSH logins.
//! - Desktop sessions: systemd-logind's `IdleHint` and `IdleSinceHint`,
//!   which desktops (GNOME, KDE and others) set from their own input idle
//!   timers, read with `loginctl`. A session that is not idle counts as
//!   input now.
//!
//! `None` when the machine shows neither (a server without terminals or
//! logind): input idle time then never makes the machine busy.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since the owner's last input, where the machine shows it.
pub(crate) fn since_last_input() -> Option<Duration> {
    let now = SystemTime::now();
    let ttys = newest_access(&terminals(Path::new("/dev")))
        .map(|t| now.duration_since(t).unwrap_or_default());
    [ttys, desktop_idle(now)].into_iter().flatten().min()
}

/// The consoles and pseudo-terminals under `dev`.
fn terminals(dev: &Path) -> Vec<PathBuf> {
    let consoles = std::fs::read_dir(dev).into_iter().flatten().flatten();
    let ptys = std::fs::read_dir(dev.join("pts"))
        .into_iter()
        .flatten()
        .flatten();
    consoles
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            // tty1, tty2, …: not tty (the caller's own) or tty0 (the current console's alias).
            name.strip_prefix("tty")
                .is_some_and(|n| !n.is_empty() && n != "0" && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .chain(ptys.filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        }))
        .map(|e| e.path())
        .collect()
}

/// The latest access time of `paths` (those that can be read).
pub(crate) fn newest_access(paths: &[PathBuf]) -> Option<SystemTime> {
    paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).and_then(|m| m.accessed()).ok())
        .max()
}

/// The shortest idle time of logind's sessions, when logind answers.
fn desktop_idle(now: SystemTime) -> Option<Duration> {
    let list = Command::new("loginctl")
        .args(["list-sessions", "--no-legend", "--no-pager"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|id| {
            let o = Command::new("loginctl")
                .args(["show-session", id, "-p", "IdleHint", "-p", "IdleSinceHint"])
                .output()
                .ok()
                .filter(|o| o.status.success())?;
            session_idle(&String::from_utf8_lossy(&o.stdout), now)
        })
        .min()
}

/// A session's idle time from `loginctl show-session -p IdleHint -p
/// IdleSinceHint` (µs since the epoch): zero when it is not idle.
fn session_idle(props: &str, now: SystemTime) -> Option<Duration> {
    let prop = |k: &str| {
        props
            .lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
    };
    match prop("IdleHint")? {
        "no" => Some(Duration::ZERO),
        "yes" => {
            let since = UNIX_EPOCH + Duration::from_micros(prop("IdleSinceHint")?.parse().ok()?);
            Some(now.duration_since(since).unwrap_or_default())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, FileTimes};

    #[test]
    fn the_newest_terminal_access_is_the_last_input() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        std::fs::create_dir(dir.path().join("pts")).unwrap();
        for (name, ago) in [
            ("tty1", 3600),
            ("tty7", 600),
            ("pts/3", 42),
            ("tty", 1),
            ("pts/ptmx", 1),
        ] {
            let f = File::create(dir.path().join(name)).unwrap();
            let t = now - Duration::from_secs(ago);
            f.set_times(FileTimes::new().set_accessed(t).set_modified(t))
                .unwrap();
        }
        let mut found = terminals(dir.path());
        found.sort();
        let names: Vec<_> = found
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap())
            .collect();
        assert_eq!(
            names,
            [Path::new("pts/3"), Path::new("tty1"), Path::new("tty7")]
        );
        let newest = newest_access(&found).unwrap();
        let ago = now.duration_since(newest).unwrap();
        assert!(
            ago >= Duration::from_secs(41) && ago <= Duration::from_secs(43),
            "{ago:?}"
        );
        assert_eq!(newest_access(&[dir.path().join("absent")]), None);
    }

    #[test]
    fn logind_sessions_idle_since_their_hint_or_active_now() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let idle = "IdleHint=yes\nIdleSinceHint=999700000000\n";
        assert_eq!(session_idle(idle, now), Some(Duration::from_secs(300)));
        let active = "IdleHint=no\nIdleSinceHint=0\n";
        assert_eq!(session_idle(active, now), Some(Duration::ZERO));
        assert_eq!(session_idle("", now), None);
        assert_eq!(
            session_idle("IdleHint=yes\nIdleSinceHint=soon\n", now),
            None
        );
    }

    /// A real pseudo-terminal that a program reads typed input from
    /// (`script` running `cat`): the machine shows input within seconds.
    #[test]
    fn typing_into_a_real_terminal_counts_as_input() {
        use std::io::Write;
        if !Path::new("/dev/pts/ptmx").exists() {
            eprintln!("skipped: no /dev/pts on this machine");
            return;
        }
        let Ok(mut typist) = Command::new("script")
            .args(["-qfc", "cat > /dev/null", "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
        else {
            eprintln!("skipped: no `script` (util-linux) to open a terminal");
            return;
        };
        let mut keys = typist.stdin.take().unwrap();
        for _ in 0..5 {
            let _ = keys.write_all(b"hello\n");
            std::thread::sleep(Duration::from_millis(100));
        }
        let seen = since_last_input();
        drop(keys);
        let _ = typist.wait();
        // Access times are kept to 8 s by the kernel.
        assert!(
            seen.is_some_and(|s| s <= Duration::from_secs(10)),
            "{seen:?}"
        );
    }
}
