//! The directories jobs run in: `DATA/work/N`, one per running deal, emptied
//! after each deal and used again.
//!
//! Creating and removing a directory per deal costs more than the trivial
//! job it serves (on a file system mounted with `discard`, each removal waits
//! for the disk). A directory goes back to the pool only once it is empty
//! but for an empty `output/`; one that cannot be emptied is removed and
//! never used again, so no job ever sees another's files.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Emptied work directories, ready for the next deal.
#[derive(Debug)]
pub(crate) struct WorkDirs {
    root: PathBuf,
    free: Mutex<Vec<PathBuf>>,
    made: std::sync::atomic::AtomicU64,
}

impl WorkDirs {
    /// The pool under `root`, removing whatever a previous daemon left there.
    pub(crate) fn new(root: PathBuf) -> io::Result<Arc<Self>> {
        match std::fs::remove_dir_all(&root) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::create_dir_all(&root)?;
        Ok(Arc::new(Self {
            root,
            free: Mutex::default(),
            made: Default::default(),
        }))
    }

    /// An empty directory with an empty `output/` in it, the caller's until
    /// the guard drops.
    pub(crate) fn take(self: &Arc<Self>) -> io::Result<WorkDir> {
        let reused = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let path = match reused {
            Some(path) => path,
            None => {
                let n = self.made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let path = self.root.join(n.to_string());
                std::fs::create_dir_all(path.join("output"))?;
                path
            }
        };
        Ok(WorkDir {
            path,
            pool: self.clone(),
        })
    }
}

/// A work directory in use (see [`WorkDirs::take`]).
#[derive(Debug)]
pub(crate) struct WorkDir {
    path: PathBuf,
    pool: Arc<WorkDirs>,
}

impl WorkDir {
    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        match empty(&self.path) {
            Ok(()) => self
                .pool
                .free
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(std::mem::take(&mut self.path)),
            Err(e) => {
                tracing::warn!(%e, dir = %self.path.display(), "cannot empty a work directory; removing it");
                let _ = std::fs::remove_dir_all(&self.path);
            }
        }
    }
}

/// Removes everything in `dir` but an emptied `output/`; fails unless
/// `output/` is a directory and nothing else is left.
fn empty(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_name() == "output" && entry.file_type()?.is_dir() {
            for inner in std::fs::read_dir(&path)? {
                let inner = inner?;
                if inner.file_type()?.is_dir() {
                    std::fs::remove_dir_all(inner.path())?;
                } else {
                    std::fs::remove_file(inner.path())?;
                }
            }
        } else if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    if !dir.join("output").is_dir() {
        return Err(io::Error::other("output/ is gone"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_come_back_empty_and_are_used_again() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("work");
        std::fs::create_dir_all(root.join("stale/output")).unwrap();
        let dirs = WorkDirs::new(root.clone()).unwrap();
        assert!(
            !root.join("stale").exists(),
            "a previous daemon's directories are removed"
        );
        let (a, b) = (dirs.take().unwrap(), dirs.take().unwrap());
        assert_ne!(a.path(), b.path());
        let first = a.path().to_path_buf();
        std::fs::create_dir_all(first.join("input/sub")).unwrap();
        std::fs::write(first.join("input/sub/x"), b"x").unwrap();
        std::fs::create_dir_all(first.join("output/deep")).unwrap();
        std::fs::write(first.join("output/deep/y"), b"y").unwrap();
        std::fs::write(first.join("output/z"), b"z").unwrap();
        drop(a);
        let again = dirs.take().unwrap();
        assert_eq!(again.path(), first);
        let left: Vec<_> = std::fs::read_dir(&first)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["output"]);
        assert_eq!(std::fs::read_dir(first.join("output")).unwrap().count(), 0);
        // A directory whose output/ went missing is not used again.
        std::fs::remove_dir_all(again.path().join("output")).unwrap();
        drop(again);
        assert!(!first.exists());
        let next = dirs.take().unwrap();
        assert_ne!(next.path(), first);
        assert!(next.path().join("output").is_dir());
        drop(b);
    }
}
