//! The `/output` tree: quota checks while a job runs, and the tree hash after.
//!
//! The tree hash is what replicas compare: SHA-256 over, for each entry in
//! byte order of its `/`-separated relative path, `D <path>\n` for a
//! directory or `F <path> <size> <sha256 of content>\n` for a file. Symlinks
//! and special files are never followed; their presence makes the output
//! invalid.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::limits::LimitKind;

/// Totals for an output tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes in regular files.
    pub bytes: u64,
    /// Files plus directories.
    pub entries: u64,
}

/// Scans `dir`, stopping as soon as a limit is passed so that the scan's own
/// cost stays bounded by the limit however many files a job made.
pub(crate) fn check_quota(dir: &Path, max_bytes: u64, max_entries: u64) -> Option<LimitKind> {
    let mut usage = Usage::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for entry in rd.flatten() {
            usage.entries += 1;
            if usage.entries > max_entries {
                return Some(LimitKind::OutputFiles(max_entries));
            }
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                usage.bytes += meta.len();
                if usage.bytes > max_bytes {
                    return Some(LimitKind::OutputBytes(max_bytes));
                }
            }
        }
    }
    None
}

/// Why an output tree could not be hashed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// The job left something that is not a file or directory.
    #[error(
        "output `{0}` is a symlink or special file; jobs may only leave regular files and directories"
    )]
    NotRegular(String),
    /// The job left a name that is not UTF-8.
    #[error("output name {0:?} is not valid UTF-8")]
    BadName(PathBuf),
    /// Reading failed.
    #[error("reading output {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Hashes an output tree (see the module docs for the exact encoding).
pub fn tree_hash(dir: &Path) -> Result<([u8; 32], Usage), TreeError> {
    let mut entries = Vec::new();
    collect(dir, dir, &mut entries)?;
    entries.sort();
    let mut tree = Sha256::new();
    let mut usage = Usage::default();
    for (rel, is_dir) in entries {
        usage.entries += 1;
        if is_dir {
            tree.update(format!("D {rel}\n"));
            continue;
        }
        let path = dir.join(&rel);
        let io = |source| TreeError::Io {
            path: path.clone(),
            source,
        };
        let mut file = fs::File::open(&path).map_err(io)?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            h.update(&buf[..n]);
        }
        usage.bytes += size;
        tree.update(format!("F {rel} {size} {}\n", hex::encode(h.finalize())));
    }
    Ok((tree.finalize().into(), usage))
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, bool)>) -> Result<(), TreeError> {
    let io = |source| TreeError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let rel_path = path.strip_prefix(root).unwrap_or(&path);
        let rel = rel_path
            .to_str()
            .ok_or_else(|| TreeError::BadName(rel_path.to_path_buf()))?
            .replace('\\', "/");
        let ft = entry.file_type().map_err(io)?;
        if ft.is_dir() {
            out.push((rel, true));
            collect(root, &path, out)?;
        } else if ft.is_file() {
            out.push((rel, false));
        } else {
            return Err(TreeError::NotRegular(rel));
        }
    }
    Ok(())
}

/// Removes everything inside `dir`, keeping `dir` itself.
pub(crate) fn clear(dir: &Path) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            let is_dir = p.symlink_metadata().is_ok_and(|m| m.is_dir());
            let _ = if is_dir {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_hash_depends_on_names_and_contents_not_creation_order() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        fs::create_dir(a.path().join("d")).unwrap();
        fs::write(a.path().join("d/x"), b"1").unwrap();
        fs::write(a.path().join("y"), b"22").unwrap();
        fs::write(b.path().join("y"), b"22").unwrap();
        fs::create_dir(b.path().join("d")).unwrap();
        fs::write(b.path().join("d/x"), b"1").unwrap();
        let (ha, ua) = tree_hash(a.path()).unwrap();
        let (hb, _) = tree_hash(b.path()).unwrap();
        assert_eq!(ha, hb);
        assert_eq!(
            ua,
            Usage {
                bytes: 3,
                entries: 3
            }
        );
        fs::write(b.path().join("y"), b"23").unwrap();
        assert_ne!(tree_hash(b.path()).unwrap().0, ha);
    }

    #[test]
    fn symlinks_are_refused_not_followed() {
        let a = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", a.path().join("evil")).unwrap();
        assert!(matches!(tree_hash(a.path()), Err(TreeError::NotRegular(n)) if n == "evil"));
    }

    #[test]
    fn quota_scan_stops_at_the_limit() {
        let a = tempfile::tempdir().unwrap();
        for i in 0..5 {
            fs::write(a.path().join(i.to_string()), [0u8; 10]).unwrap();
        }
        assert_eq!(check_quota(a.path(), 100, 10), None);
        assert_eq!(
            check_quota(a.path(), 100, 4),
            Some(LimitKind::OutputFiles(4))
        );
        assert_eq!(
            check_quota(a.path(), 45, 10),
            Some(LimitKind::OutputBytes(45))
        );
    }
}
