//! [`Bundle::unpack`]: reading packed bundles from untrusted sources.
//!
//! Steps:
//!
//! 1. Refuse archives over `max_archive_bytes` before touching them.
//! 2. Stream-decompress through [`Capped`], which fails the moment the output passes
//!    `max_unpacked_bytes`; entry data is also checked against the remaining budget from its
//!    header before it is read, so memory never exceeds the limit.
//! 3. Walk the tar entries: regular files with safe paths only, `netmind.toml` first, then the
//!    entry component and `assets/*`, each at most once.
//! 4. Read to the end: after the tar end marker only zeros may follow, the gzip CRC must match and
//!    nothing may follow the gzip stream.

use std::{
    collections::BTreeMap,
    io::{self, Read},
};

use flate2::bufread::GzDecoder;
use tar::EntryType;

use super::{ASSETS_DIR, Bundle, BundleLimits, check_magic};
use crate::{
    error::{Error, Result},
    manifest::{MANIFEST_FILE, MAX_MANIFEST_BYTES, Manifest, check_relative_path},
};

const MANIFEST_ORIGIN: &str = "netmind.toml in bundle";

pub(super) fn unpack(bytes: &[u8], limits: &BundleLimits) -> Result<Bundle> {
    let size = bytes.len() as u64;
    if size > limits.max_archive_bytes {
        return Err(Error::TooLarge {
            what: "bundle archive (max_archive_bytes)".to_owned(),
            size,
            limit: limits.max_archive_bytes,
        });
    }
    let mut gz = GzDecoder::new(bytes);
    let mut stream = Capped {
        inner: &mut gz,
        read: 0,
        limit: limits.max_unpacked_bytes,
        exceeded: false,
    };
    let result = read_entries(&mut stream, limits).and_then(|bundle| {
        read_to_end(&mut stream)?;
        Ok(bundle)
    });
    if stream.exceeded {
        return Err(Error::UnpackedTooLarge {
            limit: limits.max_unpacked_bytes,
        });
    }
    let bundle = result?;
    let rest = gz.into_inner();
    if !rest.is_empty() {
        return Err(Error::Corrupt(format!(
            "{} bytes of unexpected data after the gzip stream",
            rest.len()
        )));
    }
    Ok(bundle)
}

fn read_entries<R: Read>(stream: &mut Capped<R>, limits: &BundleLimits) -> Result<Bundle> {
    let mut archive = tar::Archive::new(stream);
    let mut manifest: Option<Manifest> = None;
    let mut component = None;
    let mut assets = BTreeMap::new();
    let mut count = 0usize;
    let mut budget = Budget {
        left: limits.max_unpacked_bytes,
        limit: limits.max_unpacked_bytes,
    };

    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        count += 1;
        if count > limits.max_entries {
            return Err(Error::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        let raw_path = entry.path_bytes().into_owned();
        let bad = |reason: String| Error::BadEntry {
            path: String::from_utf8_lossy(&raw_path).into_owned(),
            reason,
        };
        let kind = entry.header().entry_type();
        if !kind.is_file() {
            return Err(bad(format!(
                "it is {}, and bundles hold only regular files",
                describe(kind)
            )));
        }
        let Ok(path) = String::from_utf8(raw_path.clone()) else {
            return Err(bad("its path is not UTF-8".to_owned()));
        };
        check_relative_path(&path).map_err(|why| bad(format!("its path {why}")))?;

        let size = entry.size();

        let Some(manifest) = &manifest else {
            if path != MANIFEST_FILE {
                return Err(Error::MissingManifest { first: Some(path) });
            }
            if size > MAX_MANIFEST_BYTES {
                return Err(Error::TooLarge {
                    what: "netmind.toml in bundle".to_owned(),
                    size,
                    limit: MAX_MANIFEST_BYTES,
                });
            }
            budget.take(size)?;
            let data = read_data(&mut entry, size, &path)?;
            let text = String::from_utf8(data).map_err(|_| Error::ManifestSyntax {
                origin: MANIFEST_ORIGIN.to_owned(),
                detail: "not UTF-8 text".to_owned(),
            })?;
            manifest = Some(Manifest::parse(&text, MANIFEST_ORIGIN)?);
            continue;
        };

        let entry_path = &manifest.job.entry;
        if path == MANIFEST_FILE {
            return Err(Error::DuplicateEntry { path });
        } else if path == *entry_path {
            if component.is_some() {
                return Err(Error::DuplicateEntry { path });
            }
            if size > limits.max_component_bytes {
                return Err(Error::TooLarge {
                    what: format!("entry component `{path}` (max_component_bytes)"),
                    size,
                    limit: limits.max_component_bytes,
                });
            }
            budget.take(size)?;
            component = Some(read_data(&mut entry, size, &path)?);
        } else if let Some(asset) = path
            .strip_prefix(ASSETS_DIR)
            .and_then(|p| p.strip_prefix('/'))
        {
            if assets.contains_key(asset) {
                return Err(Error::DuplicateEntry { path });
            }
            budget.take(size)?;
            let data = read_data(&mut entry, size, &path)?;
            assets.insert(asset.to_owned(), data);
        } else {
            return Err(Error::UnexpectedEntry {
                path,
                entry: entry_path.clone(),
            });
        }
    }

    let Some(manifest) = manifest else {
        return Err(Error::MissingManifest { first: None });
    };
    let Some(component) = component else {
        return Err(Error::MissingComponent {
            entry: manifest.job.entry,
        });
    };
    check_magic(&manifest.job.entry, &component)?;
    Ok(Bundle {
        manifest,
        component,
        assets,
    })
}

/// Unpacked bytes still allowed, checked against each entry's declared size before reading it.
struct Budget {
    left: u64,
    limit: u64,
}

impl Budget {
    fn take(&mut self, size: u64) -> Result<()> {
        self.left = self
            .left
            .checked_sub(size)
            .ok_or(Error::UnpackedTooLarge { limit: self.limit })?;
        Ok(())
    }
}

/// Reads an entry's data, growing the buffer with what actually arrives (not the declared size).
fn read_data(entry: &mut impl Read, size: u64, path: &str) -> Result<Vec<u8>> {
    let mut data = Vec::with_capacity(size.min(64 * 1024) as usize);
    entry.read_to_end(&mut data).map_err(corrupt)?;
    if data.len() as u64 != size {
        return Err(Error::Corrupt(format!(
            "entry `{path}` ends after {} of its {size} bytes",
            data.len()
        )));
    }
    Ok(data)
}

/// Reads past the tar end marker to the end of the gzip stream, so the gzip CRC and length are
/// checked; only zero padding may follow the end marker.
fn read_to_end(stream: &mut impl Read) -> Result<()> {
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf).map_err(corrupt)?;
        if n == 0 {
            return Ok(());
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Err(Error::Corrupt(
                "unexpected data after the end of the tar archive".to_owned(),
            ));
        }
    }
}

fn corrupt(e: io::Error) -> Error {
    Error::Corrupt(e.to_string())
}

fn describe(kind: EntryType) -> String {
    match kind {
        EntryType::Symlink => "a symbolic link".to_owned(),
        EntryType::Link => "a hard link".to_owned(),
        EntryType::Directory => "a directory".to_owned(),
        EntryType::Char | EntryType::Block => "a device".to_owned(),
        EntryType::Fifo => "a fifo".to_owned(),
        other => format!("a tar entry of type {other:?}"),
    }
}

/// A reader that fails once more than `limit` bytes have passed through it.
struct Capped<R> {
    inner: R,
    read: u64,
    limit: u64,
    /// Set when the limit was hit, so the caller can tell that apart from other read errors.
    exceeded: bool,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.exceeded {
            // Room for one byte past the limit, to tell "exactly at" from "over".
            let room = (self.limit - self.read).saturating_add(1);
            let len = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            let n = self.inner.read(&mut buf[..len])?;
            self.read += n as u64;
            if self.read <= self.limit {
                return Ok(n);
            }
            self.exceeded = true;
        }
        Err(io::Error::other("unpacked size limit exceeded"))
    }
}

#[cfg(test)]
mod tests {
    use tar::Header;

    use super::*;
    use crate::bundle::{
        test_util::{gzip, gzip_bomb, raw_tar},
        tests::{COMPONENT, manifest, sample},
    };

    const MIB: u64 = bytesize::MIB;

    fn manifest_entry() -> String {
        manifest().to_toml()
    }

    /// Packs `netmind.toml`, `hello.wasm` and then `rest`.
    fn bundle_with(rest: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
        let toml = manifest_entry();
        let mut entries = vec![
            (MANIFEST_FILE, EntryType::Regular, toml.as_bytes()),
            ("hello.wasm", EntryType::Regular, COMPONENT),
        ];
        entries.extend_from_slice(rest);
        gzip(&raw_tar(&entries))
    }

    fn unpack_err(bytes: &[u8]) -> Error {
        Bundle::unpack(bytes, &BundleLimits::default()).unwrap_err()
    }

    #[test]
    fn raw_helpers_make_valid_bundles() {
        let bundle = Bundle::unpack(&bundle_with(&[]), &BundleLimits::default()).unwrap();
        assert_eq!(bundle.component, COMPONENT);
    }

    #[test]
    fn truncated_archive_is_corrupt() {
        let packed = sample().pack();
        let err = unpack_err(&packed[..packed.len() / 2]);
        assert!(matches!(err, Error::Corrupt(_)), "{err}");
        assert!(
            err.to_string()
                .starts_with("bundle is truncated or corrupt: "),
            "{err}"
        );
        // Every cut fails, including those at a tar block boundary and in the gzip trailer.
        for len in 0..packed.len() {
            assert!(
                Bundle::unpack(&packed[..len], &BundleLimits::default()).is_err(),
                "cut at {len}"
            );
        }
    }

    #[test]
    fn flipped_bytes_are_detected() {
        let packed = sample().pack();
        // The gzip CRC (the 8 trailing bytes are CRC32 and length) catches silent changes.
        let mut bad_crc = packed.clone();
        let crc = bad_crc.len() - 8;
        bad_crc[crc] ^= 0x01;
        let err = unpack_err(&bad_crc);
        assert!(matches!(err, Error::Corrupt(_)), "{err}");

        // Every other flip fails too, except in the deflate stream's last byte (before the 8-byte
        // trailer), whose high bits are padding after the end-of-block code that no reader looks at.
        let padding = packed.len() - 9;
        for pos in (10..packed.len()).filter(|&pos| pos != padding) {
            let mut flipped = packed.clone();
            flipped[pos] ^= 0x40;
            assert!(
                Bundle::unpack(&flipped, &BundleLimits::default()).is_err(),
                "flip at {pos}"
            );
        }
    }

    #[test]
    fn not_gzip_is_corrupt() {
        let tar = raw_tar(&[(MANIFEST_FILE, EntryType::Regular, b"")]);
        assert!(matches!(unpack_err(&tar), Error::Corrupt(_)));
        assert!(matches!(unpack_err(b""), Error::Corrupt(_)));
    }

    #[test]
    fn trailing_data_is_rejected() {
        let mut packed = sample().pack();
        packed.extend_from_slice(b"junk");
        let err = unpack_err(&packed);
        assert!(
            err.to_string()
                .contains("4 bytes of unexpected data after the gzip stream"),
            "{err}"
        );

        let mut tar = raw_tar(&[
            (
                MANIFEST_FILE,
                EntryType::Regular,
                manifest_entry().as_bytes(),
            ),
            ("hello.wasm", EntryType::Regular, COMPONENT),
        ]);
        tar.extend_from_slice(&[0; 512]);
        tar.extend_from_slice(b"hidden after the end marker");
        let err = unpack_err(&gzip(&tar));
        assert!(
            err.to_string().contains("after the end of the tar archive"),
            "{err}"
        );
    }

    #[test]
    fn archive_over_limit_is_refused_up_front() {
        let packed = sample().pack();
        let limits = BundleLimits {
            max_archive_bytes: packed.len() as u64 - 1,
            ..BundleLimits::default()
        };
        let err = Bundle::unpack(&packed, &limits).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("max_archive_bytes"), "{err}");
        let exact = BundleLimits {
            max_archive_bytes: packed.len() as u64,
            ..limits
        };
        Bundle::unpack(&packed, &exact).unwrap();
    }

    #[test]
    fn gzip_bomb_stops_at_the_unpacked_limit() {
        let mut tar = Vec::new();
        sample().write_tar(&mut tar).unwrap();
        let bomb = gzip_bomb(&tar, 2 * bytesize::GIB);
        assert!(bomb.len() < 16 * MIB as usize, "{} bytes", bomb.len());

        // The bomb really is the bundle followed by zeros.
        let mut head = Vec::new();
        GzDecoder::new(bomb.as_slice())
            .take(tar.len() as u64 + 4096)
            .read_to_end(&mut head)
            .unwrap();
        assert_eq!(&head[..tar.len()], tar.as_slice());
        assert!(head[tar.len()..].iter().all(|&b| b == 0));

        let limits = BundleLimits {
            max_unpacked_bytes: MIB,
            ..BundleLimits::default()
        };
        // Without the zeros it unpacks fine under this limit...
        Bundle::unpack(&sample().pack(), &limits).unwrap();
        // ...with them, decompression stops just past 1 MiB instead of inflating 2 GiB.
        let err = Bundle::unpack(&bomb, &limits).unwrap_err();
        assert!(
            matches!(err, Error::UnpackedTooLarge { limit } if limit == MIB),
            "{err}"
        );
    }

    #[test]
    fn declared_sizes_are_checked_before_reading() {
        // A header claiming 2 GiB with no data behind it: refused from the header alone.
        let toml = manifest_entry();
        let mut tar = raw_tar(&[(MANIFEST_FILE, EntryType::Regular, toml.as_bytes())]);
        tar.truncate(tar.len() - 1024); // drop the end marker
        let mut header = Header::new_gnu();
        header.set_path("hello.wasm").unwrap();
        header.set_size(2 * bytesize::GIB);
        header.set_cksum();
        tar.extend_from_slice(header.as_bytes());
        let packed = gzip(&tar);

        let limits = BundleLimits {
            max_unpacked_bytes: MIB,
            max_component_bytes: u64::MAX,
            ..BundleLimits::default()
        };
        let err = Bundle::unpack(&packed, &limits).unwrap_err();
        assert!(matches!(err, Error::UnpackedTooLarge { .. }), "{err}");

        let err = unpack_err(&packed);
        assert!(err.to_string().contains("max_component_bytes"), "{err}");
    }

    #[test]
    fn entry_shorter_than_its_header_is_corrupt() {
        // A well-formed gzip of a tar that stops inside the component's data.
        let toml = manifest_entry();
        let mut tar = raw_tar(&[(MANIFEST_FILE, EntryType::Regular, toml.as_bytes())]);
        tar.truncate(tar.len() - 1024);
        let mut header = Header::new_gnu();
        header.set_path("hello.wasm").unwrap();
        header.set_size(100);
        header.set_cksum();
        tar.extend_from_slice(header.as_bytes());
        tar.extend_from_slice(COMPONENT);
        let err = unpack_err(&gzip(&tar));
        assert!(
            err.to_string().contains("ends after 8 of its 100 bytes"),
            "{err}"
        );
    }

    #[test]
    fn escaping_paths_are_rejected() {
        for (path, why) in [
            ("../evil", "`..`"),
            ("assets/../../evil", "`..`"),
            ("assets/../netmind.toml", "`..`"),
            ("/etc/passwd", "absolute"),
            ("/assets/x", "absolute"),
            ("assets\\..\\evil", "backslash"),
            ("assets/./x", "`.`"),
        ] {
            let err = unpack_err(&bundle_with(&[(path, EntryType::Regular, b"x")]));
            assert!(
                matches!(&err, Error::BadEntry { path: p, .. } if p == path),
                "{path}: {err}"
            );
            assert!(err.to_string().contains(why), "{path}: {err}");
        }
    }

    #[test]
    fn links_directories_and_devices_are_rejected() {
        for (kind, what) in [
            (EntryType::Symlink, "symbolic link"),
            (EntryType::Link, "hard link"),
            (EntryType::Directory, "directory"),
            (EntryType::Char, "device"),
            (EntryType::Fifo, "fifo"),
        ] {
            let err = unpack_err(&bundle_with(&[("assets/x", kind, b"")]));
            assert!(matches!(err, Error::BadEntry { .. }), "{kind:?}: {err}");
            assert!(err.to_string().contains(what), "{kind:?}: {err}");
        }
    }

    #[test]
    fn manifest_must_come_first() {
        let toml = manifest_entry();
        let only_component = gzip(&raw_tar(&[("hello.wasm", EntryType::Regular, COMPONENT)]));
        let err = unpack_err(&only_component);
        assert!(
            matches!(&err, Error::MissingManifest { first: Some(p) } if p == "hello.wasm"),
            "{err}"
        );

        let late = gzip(&raw_tar(&[
            ("hello.wasm", EntryType::Regular, COMPONENT),
            (MANIFEST_FILE, EntryType::Regular, toml.as_bytes()),
        ]));
        assert!(matches!(unpack_err(&late), Error::MissingManifest { .. }));

        let empty = gzip(&raw_tar(&[]));
        let err = unpack_err(&empty);
        assert!(
            matches!(err, Error::MissingManifest { first: None }),
            "{err}"
        );
    }

    #[test]
    fn missing_component_is_distinct() {
        let toml = manifest_entry();
        let tar = raw_tar(&[
            (MANIFEST_FILE, EntryType::Regular, toml.as_bytes()),
            ("assets/a", EntryType::Regular, b"a"),
        ]);
        let err = unpack_err(&gzip(&tar));
        assert!(
            matches!(&err, Error::MissingComponent { entry } if entry == "hello.wasm"),
            "{err}"
        );
    }

    #[test]
    fn component_must_be_wasm() {
        let toml = manifest_entry();
        let tar = raw_tar(&[
            (MANIFEST_FILE, EntryType::Regular, toml.as_bytes()),
            ("hello.wasm", EntryType::Regular, b"#!/bin/sh\n"),
        ]);
        let err = unpack_err(&gzip(&tar));
        assert_eq!(
            err.to_string(),
            "entry `hello.wasm` is not WebAssembly (bad magic bytes)"
        );
    }

    #[test]
    fn too_many_entries() {
        let packed = bundle_with(&[
            ("assets/a", EntryType::Regular, b""),
            ("assets/b", EntryType::Regular, b""),
        ]);
        let three = BundleLimits {
            max_entries: 3,
            ..BundleLimits::default()
        };
        let err = Bundle::unpack(&packed, &three).unwrap_err();
        assert!(matches!(err, Error::TooManyEntries { limit: 3 }), "{err}");
        let four = BundleLimits {
            max_entries: 4,
            ..three
        };
        assert_eq!(Bundle::unpack(&packed, &four).unwrap().assets.len(), 2);
    }

    #[test]
    fn duplicate_and_unexpected_entries() {
        let toml = manifest_entry();
        for (path, data) in [
            ("assets/a", &b"again"[..]),
            ("hello.wasm", COMPONENT),
            (MANIFEST_FILE, toml.as_bytes()),
        ] {
            let packed = bundle_with(&[
                ("assets/a", EntryType::Regular, b"a"),
                (path, EntryType::Regular, data),
            ]);
            let err = unpack_err(&packed);
            assert!(
                matches!(&err, Error::DuplicateEntry { path: p } if p == path),
                "{path}: {err}"
            );
        }

        for path in ["README.md", "assets", "other.wasm", "assetsx/a"] {
            let err = unpack_err(&bundle_with(&[(path, EntryType::Regular, b"x")]));
            assert!(
                matches!(&err, Error::UnexpectedEntry { path: p, .. } if p == path),
                "{path}: {err}"
            );
        }
    }

    #[test]
    fn manifest_in_bundle_is_validated() {
        let bad = "[job]\nname = \"hello\"\nversion = \"1\"\nentry = \"hello.wasm\"\nsecret = 1\n";
        let tar = raw_tar(&[
            (MANIFEST_FILE, EntryType::Regular, bad.as_bytes()),
            ("hello.wasm", EntryType::Regular, COMPONENT),
        ]);
        let err = unpack_err(&gzip(&tar));
        assert!(matches!(err, Error::ManifestSyntax { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("netmind.toml in bundle:5:1: unknown field `secret`"),
            "{err}"
        );

        let unsafe_entry = "[job]\nname = \"hello\"\nversion = \"1\"\nentry = \"../hello.wasm\"\n";
        let tar = raw_tar(&[(MANIFEST_FILE, EntryType::Regular, unsafe_entry.as_bytes())]);
        assert!(matches!(unpack_err(&gzip(&tar)), Error::InvalidManifest(_)));
    }
}
