//! Deterministic tar archives of job inputs and outputs: the same files always
//! give the same bytes, so an archive's SHA-256 names its content.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// A deterministic tar of a directory's regular files (sorted paths, mode
/// 0644, mtime 0, no owners), so the same files always have the same id.
pub(crate) fn pack(dir: &Path) -> Result<Vec<u8>> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        if entry.file_type().is_file() {
            files.push(entry.into_path());
        } else if !entry.file_type().is_dir() {
            bail!(
                "{} is not a regular file or directory",
                entry.path().display()
            );
        }
    }
    let mut tar = tar::Builder::new(Vec::new());
    for path in files {
        let rel = path.strip_prefix(dir).expect("under the walked directory");
        let data =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, rel, data.as_slice())
            .with_context(|| format!("cannot pack {}", path.display()))?;
    }
    Ok(tar.into_inner()?)
}

/// Unpacks an archive made by [`pack`] into `dir` (created). Only regular
/// files and directories are taken, and none outside `dir` (an entry with
/// `..` or an absolute path is refused), at most `max_bytes` in all.
pub(crate) fn unpack(bytes: &[u8], dir: &Path, max_bytes: u64) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut archive = tar::Archive::new(bytes);
    let mut total = 0u64;
    for entry in archive.entries().context("not a tar archive")? {
        let mut entry = entry.context("a damaged tar entry")?;
        let kind = entry.header().entry_type();
        if !matches!(kind, tar::EntryType::Regular | tar::EntryType::Directory) {
            bail!(
                "the archive holds {:?}, which is not a regular file or directory",
                entry.path().unwrap_or_default()
            );
        }
        total = total.saturating_add(entry.size());
        if total > max_bytes {
            bail!("the archive unpacks to more than {max_bytes} bytes");
        }
        // `unpack_in` refuses paths that leave `dir`.
        if !entry
            .unpack_in(dir)
            .with_context(|| format!("cannot unpack into {}", dir.display()))?
        {
            bail!(
                "the archive entry {:?} would land outside {}",
                entry.path().unwrap_or_default(),
                dir.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_is_deterministic_and_round_trips() {
        let a = tempfile::tempdir().unwrap();
        std::fs::create_dir(a.path().join("sub")).unwrap();
        std::fs::write(a.path().join("sub/x.txt"), b"x").unwrap();
        std::fs::write(a.path().join("y.bin"), [1u8, 2, 3]).unwrap();
        let one = pack(a.path()).unwrap();
        assert_eq!(one, pack(a.path()).unwrap());
        let b = tempfile::tempdir().unwrap();
        unpack(&one, b.path(), 1 << 20).unwrap();
        assert_eq!(std::fs::read(b.path().join("sub/x.txt")).unwrap(), b"x");
        assert_eq!(pack(b.path()).unwrap(), one);
        assert!(
            unpack(&one, b.path(), 2)
                .unwrap_err()
                .to_string()
                .contains("more than 2 bytes")
        );
        assert!(unpack(b"not a tar", b.path(), 1 << 20).is_err());
    }
}
