//! Bundles: a manifest, one wasm component and `assets/`, packed into a deterministic `.tar.gz`.
//!
//! A packed bundle is a gzip stream holding a tar archive with, in this order:
//!
//! 1. `netmind.toml` ([`Manifest::to_toml`]),
//! 2. the component, at the path `[job] entry` names,
//! 3. `assets/<path>` for each asset, sorted by path.
//!
//! Entries are regular files only, with mode `0o644`, uid/gid 0, no user or group names and
//! mtime 0, and the gzip header has mtime 0 and no file name, so the same [`Bundle`] always packs to
//! the same bytes and so to the same [`BundleId`].
//!
//! The id is of the bytes, and another version of the compressor may pack the same contents
//! differently: whoever receives a bundle identifies it with [`BundleId::of`] the bytes received,
//! not by repacking what it unpacked.

use std::{
    collections::BTreeMap,
    fmt,
    io::{self, Write},
};

use flate2::{Compression, GzBuilder};
use tar::{EntryType, Header};

use crate::{
    error::{Error, Result},
    manifest::{MANIFEST_FILE, Manifest},
};

mod dir;
mod id;
#[cfg(test)]
mod test_util;
mod unpack;

pub use id::BundleId;

/// The directory, in a bundle and in a bundle directory, that holds data files.
pub const ASSETS_DIR: &str = "assets";

/// The magic bytes every WebAssembly binary starts with.
const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Size limits applied when reading a bundle from a directory or from packed bytes.
///
/// Hosts unpack bundles from untrusted job owners: these bound the memory and work that takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleLimits {
    /// Largest packed (`.tar.gz`) bundle accepted (default 256 MiB).
    pub max_archive_bytes: u64,
    /// Largest uncompressed tar stream, see [`Bundle::unpacked_size`] (default 1 GiB).
    pub max_unpacked_bytes: u64,
    /// Most tar entries, manifest and component included (default 10 000).
    pub max_entries: usize,
    /// Largest entry component (default 128 MiB).
    pub max_component_bytes: u64,
}

impl Default for BundleLimits {
    fn default() -> Self {
        Self {
            max_archive_bytes: 256 * bytesize::MIB,
            max_unpacked_bytes: bytesize::GIB,
            max_entries: 10_000,
            max_component_bytes: 128 * bytesize::MIB,
        }
    }
}

/// A job bundle in memory.
#[derive(Clone, PartialEq)]
pub struct Bundle {
    /// The parsed `netmind.toml`.
    pub manifest: Manifest,
    /// The entry component's bytes (a wasm binary).
    pub component: Vec<u8>,
    /// Data files, keyed by their `/`-separated path relative to `assets/`.
    pub assets: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let assets: BTreeMap<&str, usize> = self
            .assets
            .iter()
            .map(|(k, v)| (k.as_str(), v.len()))
            .collect();
        f.debug_struct("Bundle")
            .field("manifest", &self.manifest)
            .field("component_len", &self.component.len())
            .field("asset_lens", &assets)
            .finish()
    }
}

impl Bundle {
    /// Packs the bundle into a deterministic `.tar.gz`: the same bundle always gives the same bytes.
    ///
    /// Packing does not validate; [`unpack`](Self::unpack) rejects a bundle built in memory with
    /// unsafe asset paths.
    pub fn pack(&self) -> Vec<u8> {
        let gz = GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), Compression::default());
        let gz = self
            .write_tar(gz)
            .expect("writing a bundle to memory cannot fail");
        gz.finish().expect("writing a bundle to memory cannot fail")
    }

    /// The bundle's id: the SHA-256 of [`pack`](Self::pack).
    pub fn id(&self) -> BundleId {
        BundleId::of(&self.pack())
    }

    /// Size of the uncompressed tar stream (file contents plus tar headers and padding): what
    /// [`BundleLimits::max_unpacked_bytes`] bounds.
    pub fn unpacked_size(&self) -> u64 {
        let counter = self
            .write_tar(ByteCounter(0))
            .expect("counting bytes cannot fail");
        counter.0
    }

    /// Unpacks and checks a packed bundle from an untrusted source.
    ///
    /// Checks the archive size before anything else, and stops decompressing as soon as the output
    /// passes `max_unpacked_bytes`, so a compression bomb costs no more memory than the limit.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`], [`Error::UnpackedTooLarge`] and [`Error::TooManyEntries`] for limits;
    /// [`Error::Corrupt`] for a damaged or truncated gzip or tar stream or trailing data;
    /// [`Error::BadEntry`] for non-regular files and unsafe paths; [`Error::DuplicateEntry`];
    /// [`Error::UnexpectedEntry`]; [`Error::MissingManifest`] unless `netmind.toml` comes first;
    /// [`Error::ManifestSyntax`] / [`Error::InvalidManifest`]; [`Error::MissingComponent`];
    /// [`Error::NotWasm`].
    pub fn unpack(bytes: &[u8], limits: &BundleLimits) -> Result<Self> {
        unpack::unpack(bytes, limits)
    }

    fn write_tar<W: Write>(&self, out: W) -> io::Result<W> {
        let mut tar = tar::Builder::new(out);
        let manifest = self.manifest.to_toml();
        append_entry(
            &mut tar,
            MANIFEST_FILE.as_bytes(),
            EntryType::Regular,
            manifest.as_bytes(),
        )?;
        append_entry(
            &mut tar,
            self.manifest.job.entry.as_bytes(),
            EntryType::Regular,
            &self.component,
        )?;
        for (path, data) in &self.assets {
            let name = format!("{ASSETS_DIR}/{path}");
            append_entry(&mut tar, name.as_bytes(), EntryType::Regular, data)?;
        }
        tar.into_inner()
    }
}

/// Appends one entry with a fixed, deterministic header.
///
/// Names are written into the header bytes directly (no normalization, never fails); names over
/// 100 bytes get a GNU long-name entry first.
pub(crate) fn append_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &[u8],
    kind: EntryType,
    data: &[u8],
) -> io::Result<()> {
    const NAME_LEN: usize = 100;
    if name.len() > NAME_LEN {
        let mut long = name.to_vec();
        long.push(0);
        let header = fixed_header(b"././@LongLink", EntryType::GNULongName, long.len() as u64);
        tar.append(&header, long.as_slice())?;
    }
    let header = fixed_header(&name[..name.len().min(NAME_LEN)], kind, data.len() as u64);
    tar.append(&header, data)
}

fn fixed_header(name: &[u8], kind: EntryType, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header
        .as_gnu_mut()
        .expect("a new GNU header is a GNU header")
        .name[..name.len()]
        .copy_from_slice(name);
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    header
}

pub(crate) fn check_magic(entry: &str, component: &[u8]) -> Result<()> {
    if component.starts_with(WASM_MAGIC) {
        Ok(())
    } else {
        Err(Error::NotWasm {
            entry: entry.to_owned(),
        })
    }
}

/// A writer that only counts.
struct ByteCounter(u64);

impl Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// The smallest valid component: magic plus the component-model version.
    pub(super) const COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    pub(super) fn manifest() -> Manifest {
        Manifest::from_toml(
            "[job]\nname = \"hello\"\nversion = \"0.1.0\"\nentry = \"hello.wasm\"\n\
             [resources]\nmemory = \"64 MiB\"\n",
        )
        .unwrap()
    }

    pub(super) fn sample() -> Bundle {
        Bundle {
            manifest: manifest(),
            component: COMPONENT.to_vec(),
            assets: BTreeMap::from([
                ("data/b.txt".to_owned(), b"second".to_vec()),
                ("a.bin".to_owned(), vec![7; 3000]),
                ("empty".to_owned(), Vec::new()),
            ]),
        }
    }

    fn tar_paths(packed: &[u8]) -> Vec<(String, Header)> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(packed));
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
                (path, e.header().clone())
            })
            .collect()
    }

    #[test]
    fn pack_is_deterministic() {
        let a = sample().pack();
        let b = sample().pack();
        assert_eq!(a, b);
        assert_eq!(sample().id(), BundleId::of(&a));
        assert_eq!(sample().id(), sample().id());

        let mut changed = sample();
        changed
            .assets
            .insert("data/b.txt".to_owned(), b"Second".to_vec());
        assert_ne!(changed.id(), sample().id());

        // gzip header: mtime 0, no file name, OS "unknown".
        assert_eq!(&a[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&a[4..8], &[0, 0, 0, 0]);
        assert_eq!(a[9], 255);
    }

    #[test]
    fn pack_layout_and_headers() {
        let entries = tar_paths(&sample().pack());
        let paths: Vec<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "netmind.toml",
                "hello.wasm",
                "assets/a.bin",
                "assets/data/b.txt",
                "assets/empty"
            ]
        );
        for (path, header) in &entries {
            assert_eq!(header.mode().unwrap(), 0o644, "{path}");
            assert_eq!(header.uid().unwrap(), 0, "{path}");
            assert_eq!(header.gid().unwrap(), 0, "{path}");
            assert_eq!(header.mtime().unwrap(), 0, "{path}");
            assert_eq!(header.entry_type(), EntryType::Regular, "{path}");
            assert_eq!(header.username_bytes(), Some(&[][..]), "{path}");
            assert_eq!(header.groupname_bytes(), Some(&[][..]), "{path}");
        }
    }

    #[test]
    fn pack_unpack_round_trip() {
        let bundle = sample();
        let packed = bundle.pack();
        let back = Bundle::unpack(&packed, &BundleLimits::default()).unwrap();
        assert_eq!(back, bundle);
        assert_eq!(back.pack(), packed);
    }

    #[test]
    fn long_asset_paths_round_trip() {
        let mut bundle = sample();
        let long = format!("{}/{}.txt", "d".repeat(120), "f".repeat(150));
        bundle.assets.insert(long.clone(), b"deep".to_vec());
        let back = Bundle::unpack(&bundle.pack(), &BundleLimits::default()).unwrap();
        assert_eq!(back.assets[&long], b"deep");
        assert_eq!(back, bundle);
    }

    #[test]
    fn unpacked_size_is_the_tar_stream_length() {
        let bundle = sample();
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(bundle.pack().as_slice())
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(bundle.unpacked_size(), tar.len() as u64);

        // A limit of exactly that size passes; one byte less fails.
        let exact = BundleLimits {
            max_unpacked_bytes: tar.len() as u64,
            ..BundleLimits::default()
        };
        Bundle::unpack(&bundle.pack(), &exact).unwrap();
        let under = BundleLimits {
            max_unpacked_bytes: tar.len() as u64 - 1,
            ..exact
        };
        assert!(matches!(
            Bundle::unpack(&bundle.pack(), &under),
            Err(Error::UnpackedTooLarge { .. })
        ));
    }
}
