//! [`Bundle::from_dir`]: reading a bundle directory from disk.

use std::{
    collections::BTreeMap,
    fs::{self, File},
    io::{self, Read},
    path::Path,
};

use super::{ASSETS_DIR, Bundle, BundleLimits, check_magic};
use crate::{
    error::{Error, Result},
    manifest::{MANIFEST_FILE, MAX_MANIFEST_BYTES, Manifest, check_relative_path},
};

impl Bundle {
    /// Reads a bundle directory: `dir/netmind.toml`, `dir/<entry>` and every regular file under
    /// `dir/assets/` (recursively; empty directories are dropped). Other files in `dir` are ignored.
    ///
    /// The manifest and entry may be symlinks to regular files; anything under `assets/` must be a
    /// regular file or directory.
    ///
    /// The archive-size limit is not checked here, since that needs [`pack`](Self::pack).
    ///
    /// # Errors
    ///
    /// [`Error::ManifestNotFound`], [`Error::ManifestSyntax`], [`Error::InvalidManifest`],
    /// [`Error::EntryNotFound`], [`Error::NotWasm`], [`Error::UnsupportedFile`] for symlinks, special
    /// files and unusable names under `assets/`, [`Error::TooLarge`] or [`Error::TooManyEntries`]
    /// when `limits` are exceeded, and [`Error::Io`] naming the path that could not be read.
    pub fn from_dir(dir: &Path, limits: &BundleLimits) -> Result<Self> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = match read_capped(&manifest_path, MAX_MANIFEST_BYTES, "netmind.toml") {
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(Error::ManifestNotFound {
                    dir: dir.to_owned(),
                });
            }
            other => other?,
        };
        let text = String::from_utf8(text).map_err(|_| Error::ManifestSyntax {
            origin: manifest_path.display().to_string(),
            detail: "not UTF-8 text".to_owned(),
        })?;
        let manifest = Manifest::parse(&text, &manifest_path.display().to_string())?;

        let entry = &manifest.job.entry;
        let component_path = dir.join(entry);
        let component = match read_capped(
            &component_path,
            limits.max_component_bytes,
            &format!("entry component `{entry}` (max_component_bytes)"),
        ) {
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(Error::EntryNotFound {
                    entry: entry.clone(),
                    dir: dir.to_owned(),
                });
            }
            other => other?,
        };
        check_magic(entry, &component)?;

        let mut assets = BTreeMap::new();
        let assets_dir = dir.join(ASSETS_DIR);
        match fs::symlink_metadata(&assets_dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(assets_dir, e)),
            Ok(meta) if meta.is_dir() => {
                let mut walk = AssetWalk {
                    limits,
                    assets: &mut assets,
                    total: text.len() as u64 + component.len() as u64,
                };
                walk.dir(&assets_dir, "")?;
            }
            Ok(_) => {
                return Err(Error::UnsupportedFile {
                    path: assets_dir,
                    reason: "`assets` must be a directory of data files".to_owned(),
                });
            }
        }

        let bundle = Self {
            manifest,
            component,
            assets,
        };
        let size = bundle.unpacked_size();
        if size > limits.max_unpacked_bytes {
            return Err(Error::TooLarge {
                what: format!("bundle {} unpacked (max_unpacked_bytes)", dir.display()),
                size,
                limit: limits.max_unpacked_bytes,
            });
        }
        Ok(bundle)
    }
}

/// Reads a regular file (following symlinks), refusing files over `limit` before reading them.
fn read_capped(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::UnsupportedFile {
            path: path.to_owned(),
            reason: "is not a regular file".to_owned(),
        });
    }
    if meta.len() > limit {
        return Err(Error::TooLarge {
            what: what.to_owned(),
            size: meta.len(),
            limit,
        });
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    // `take` guards against a file that grows while we read it.
    file.take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::io(path, e))?;
    if data.len() as u64 > limit {
        return Err(Error::TooLarge {
            what: what.to_owned(),
            size: data.len() as u64,
            limit,
        });
    }
    Ok(data)
}

/// Recursive, sorted walk of `assets/` that enforces limits as it goes.
struct AssetWalk<'a> {
    limits: &'a BundleLimits,
    assets: &'a mut BTreeMap<String, Vec<u8>>,
    /// Content bytes read so far, manifest and component included.
    total: u64,
}

impl AssetWalk<'_> {
    fn dir(&mut self, dir: &Path, prefix: &str) -> Result<()> {
        let mut children = fs::read_dir(dir)
            .and_then(|entries| entries.collect::<io::Result<Vec<_>>>())
            .map_err(|e| Error::io(dir, e))?;
        children.sort_by_key(fs::DirEntry::file_name);
        for child in children {
            let path = child.path();
            let Some(name) = child.file_name().to_str().map(str::to_owned) else {
                return Err(unsupported(
                    &path,
                    "has a name that is not UTF-8: rename it",
                ));
            };
            let key = format!("{prefix}{name}");
            if let Err(why) = check_relative_path(&key) {
                return Err(Error::UnsupportedFile {
                    path,
                    reason: format!("can't go in a bundle: its asset path {why}"),
                });
            }
            let kind = child.file_type().map_err(|e| Error::io(&path, e))?;
            if kind.is_dir() {
                self.dir(&path, &format!("{key}/"))?;
            } else if kind.is_file() {
                self.file(&path, key)?;
            } else if kind.is_symlink() {
                return Err(unsupported(
                    &path,
                    "is a symlink: bundles hold only regular files, copy the target into assets/ instead",
                ));
            } else {
                return Err(unsupported(
                    &path,
                    "is a special file (device, socket or fifo): bundles hold only regular files",
                ));
            }
        }
        Ok(())
    }

    fn file(&mut self, path: &Path, key: String) -> Result<()> {
        // Manifest and component count as two entries.
        if self.assets.len() + 2 >= self.limits.max_entries {
            return Err(Error::TooManyEntries {
                limit: self.limits.max_entries,
            });
        }
        let limit = self.limits.max_unpacked_bytes;
        let what = format!(
            "bundle contents up to and including asset {} (max_unpacked_bytes)",
            path.display()
        );
        let len = fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
        if self.total.saturating_add(len) > limit {
            return Err(Error::TooLarge {
                what,
                size: self.total.saturating_add(len),
                limit,
            });
        }
        let data = read_capped(path, limit - self.total, &what)?;
        self.total += data.len() as u64;
        self.assets.insert(key, data);
        Ok(())
    }
}

fn unsupported(path: &Path, reason: &str) -> Error {
    Error::UnsupportedFile {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::tests::{manifest, sample};

    fn write_dir(bundle: &Bundle) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(MANIFEST_FILE), bundle.manifest.to_toml()).unwrap();
        fs::write(
            dir.path().join(&bundle.manifest.job.entry),
            &bundle.component,
        )
        .unwrap();
        for (path, data) in &bundle.assets {
            let file = dir.path().join(ASSETS_DIR).join(path);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(file, data).unwrap();
        }
        dir
    }

    #[test]
    fn from_dir_reads_manifest_entry_and_assets() {
        let dir = write_dir(&sample());
        // Ignored: files outside assets/, and empty directories.
        fs::write(dir.path().join("Cargo.toml"), "[package]").unwrap();
        fs::create_dir_all(dir.path().join("assets/nothing/here")).unwrap();
        let bundle = Bundle::from_dir(dir.path(), &BundleLimits::default()).unwrap();
        assert_eq!(bundle, sample());
        assert_eq!(bundle.id(), sample().id());
    }

    #[test]
    fn from_dir_without_manifest_or_entry() {
        let dir = tempfile::tempdir().unwrap();
        let err = Bundle::from_dir(dir.path(), &BundleLimits::default()).unwrap_err();
        assert!(matches!(err, Error::ManifestNotFound { .. }), "{err}");

        fs::write(dir.path().join(MANIFEST_FILE), manifest().to_toml()).unwrap();
        let err = Bundle::from_dir(dir.path(), &BundleLimits::default()).unwrap_err();
        assert!(matches!(err, Error::EntryNotFound { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with("entry component `hello.wasm` not found in "),
            "{text}"
        );
        assert!(text.contains("build it first"), "{text}");

        fs::write(dir.path().join("hello.wasm"), b"not wasm").unwrap();
        let err = Bundle::from_dir(dir.path(), &BundleLimits::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "entry `hello.wasm` is not WebAssembly (bad magic bytes)"
        );
    }

    #[test]
    fn from_dir_names_the_manifest_path_in_syntax_errors() {
        let dir = write_dir(&sample());
        let path = dir.path().join(MANIFEST_FILE);
        let text = "[job]\nname = \"hello\"\nversion = \"1\"\nentry = \"hello.wasm\"\n\
                    [resources]\nmemroy = 1\n";
        fs::write(&path, text).unwrap();
        let err = Bundle::from_dir(dir.path(), &BundleLimits::default()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("{}:6:1: ", path.display())),
            "{msg}"
        );
        assert!(msg.ends_with("(in [resources])"), "{msg}");
        assert!(msg.contains("unknown field `memroy`"), "{msg}");
    }

    #[cfg(unix)]
    #[test]
    fn from_dir_rejects_symlinks_in_assets() {
        let dir = write_dir(&sample());
        let link = dir.path().join("assets/data/link");
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        let err = Bundle::from_dir(dir.path(), &BundleLimits::default()).unwrap_err();
        assert!(
            matches!(&err, Error::UnsupportedFile { path, .. } if *path == link),
            "{err}"
        );
        assert!(err.to_string().contains("is a symlink"), "{err}");
    }

    #[test]
    fn from_dir_enforces_limits() {
        let dir = write_dir(&sample());
        let few = BundleLimits {
            max_entries: 4,
            ..BundleLimits::default()
        };
        let err = Bundle::from_dir(dir.path(), &few).unwrap_err();
        assert!(matches!(err, Error::TooManyEntries { limit: 4 }), "{err}");
        let five = BundleLimits {
            max_entries: 5,
            ..few
        };
        Bundle::from_dir(dir.path(), &five).unwrap();

        let small_component = BundleLimits {
            max_component_bytes: 4,
            ..BundleLimits::default()
        };
        let err = Bundle::from_dir(dir.path(), &small_component).unwrap_err();
        assert!(err.to_string().contains("max_component_bytes"), "{err}");

        let small = BundleLimits {
            max_unpacked_bytes: 2000,
            ..BundleLimits::default()
        };
        let err = Bundle::from_dir(dir.path(), &small).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("a.bin"), "{err}");
    }
}
