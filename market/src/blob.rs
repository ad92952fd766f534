//! Content-addressed blobs (bundles, inputs, outputs), named by the SHA-256
//! of their bytes, behind the [`BlobStore`] trait; [`DiskStore`] keeps them
//! in sharded directories.
//!
//! An upload goes through [`Upload`], which hashes the bytes as they stream
//! in and stores them only when they hash to the name and fit the size
//! limit: a mismatching or oversize upload leaves nothing behind.
//!
//! # Example
//!
//! ```
//! use netmind_market::blob::{BlobId, BlobStore, DiskStore, Upload};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = DiskStore::open(dir.path()).unwrap();
//! let id = BlobId::of(b"hello");
//! let mut up = Upload::new(&store, id, 1024).unwrap();
//! up.write(b"hel").unwrap();
//! up.write(b"lo").unwrap();
//! up.finish().unwrap();
//! assert_eq!(store.size(&id).unwrap(), Some(5));
//! ```

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// A blob's name: the SHA-256 of its bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(pub [u8; 32]);

impl BlobId {
    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Parses 64 hex digits (an optional `0x` is accepted).
    ///
    /// # Errors
    ///
    /// [`BlobError::BadName`] saying what is wrong.
    pub fn parse(s: &str) -> Result<Self, BlobError> {
        let hex_part = s.strip_prefix("0x").unwrap_or(s);
        let mut out = [0u8; 32];
        if hex_part.len() != 64 {
            return Err(BlobError::BadName(format!(
                "`{}` is not a blob name: expected the 64 hex digits of a SHA-256, got {} characters",
                truncate(s),
                hex_part.len()
            )));
        }
        hex::decode_to_slice(hex_part, &mut out).map_err(|e| {
            BlobError::BadName(format!(
                "`{}` is not a blob name ({e}): expected the 64 hex digits of a SHA-256",
                truncate(s)
            ))
        })?;
        Ok(Self(out))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({self})")
    }
}

/// Why a blob could not be stored or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// More bytes than the limit.
    #[error("the blob is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, bytes.
        limit: u64,
    },
    /// The bytes hash to another name.
    #[error(
        "the uploaded bytes have SHA-256 {actual}, not {name}: a blob is stored under the hash of \
         its bytes; upload it to /v1/blobs/{actual} or send the bytes that hash to {name}"
    )]
    Mismatch {
        /// The name it was uploaded under.
        name: BlobId,
        /// The hash of what arrived.
        actual: BlobId,
    },
    /// Not a blob name.
    #[error("{0}")]
    BadName(String),
    /// The store failed.
    #[error("blob store: {0}")]
    Io(#[from] io::Error),
}

/// Where blobs live.
///
/// Implementations store what [`BlobWriter::commit`] is given atomically:
/// a reader sees a whole blob or none. Callers verify content through
/// [`Upload`]; a store may trust the id it is handed on commit.
pub trait BlobStore: Send + Sync + fmt::Debug + 'static {
    /// The blob's size, or `None` when it is not stored.
    ///
    /// # Errors
    ///
    /// The store cannot be read.
    fn size(&self, id: &BlobId) -> io::Result<Option<u64>>;

    /// A reader of the blob and its size, or `None` when it is not stored.
    ///
    /// # Errors
    ///
    /// The store cannot be read.
    fn open(&self, id: &BlobId) -> io::Result<Option<(u64, Box<dyn Read + Send>)>>;

    /// Starts writing a blob; nothing is visible until it is committed, and
    /// dropping the writer discards what was written.
    ///
    /// # Errors
    ///
    /// The store cannot be written.
    fn create(&self) -> io::Result<Box<dyn BlobWriter>>;
}

/// A blob being written.
pub trait BlobWriter: Write + Send + fmt::Debug {
    /// Makes what was written the blob `id`, durably.
    ///
    /// # Errors
    ///
    /// The store cannot be written.
    fn commit(self: Box<Self>, id: &BlobId) -> io::Result<()>;
}

/// An upload under a name: hashes and counts the bytes as they come, and
/// commits only bytes that hash to the name and fit the limit.
#[derive(Debug)]
pub struct Upload {
    id: BlobId,
    limit: u64,
    size: u64,
    hash: Sha256,
    writer: Box<dyn BlobWriter>,
}

impl Upload {
    /// Starts an upload of `id` to `store`, at most `limit` bytes.
    ///
    /// # Errors
    ///
    /// The store cannot be written.
    pub fn new(store: &dyn BlobStore, id: BlobId, limit: u64) -> Result<Self, BlobError> {
        Ok(Self {
            id,
            limit,
            size: 0,
            hash: Sha256::new(),
            writer: store.create()?,
        })
    }

    /// Adds bytes.
    ///
    /// # Errors
    ///
    /// [`BlobError::TooLarge`] past the limit (the upload is then dropped
    /// and nothing is stored), or the store failed.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        self.size += bytes.len() as u64;
        if self.size > self.limit {
            return Err(BlobError::TooLarge { limit: self.limit });
        }
        self.hash.update(bytes);
        self.writer.write_all(bytes)?;
        Ok(())
    }

    /// Checks the hash and stores the blob; returns its size.
    ///
    /// # Errors
    ///
    /// [`BlobError::Mismatch`] when the bytes hash to another name (nothing
    /// is stored), or the store failed.
    pub fn finish(self) -> Result<u64, BlobError> {
        let actual = BlobId(self.hash.finalize().into());
        if actual != self.id {
            return Err(BlobError::Mismatch {
                name: self.id,
                actual,
            });
        }
        self.writer.commit(&self.id)?;
        Ok(self.size)
    }
}

/// Blobs in a directory: `objects/<first 2 hex digits>/<64 hex digits>`,
/// written to `tmp/` first, synced, then renamed into place (and the
/// directory synced), so a crash leaves a whole blob or none.
#[derive(Debug)]
pub struct DiskStore {
    root: PathBuf,
    counter: AtomicU64,
}

impl DiskStore {
    /// Opens (creating) a store under `root`; leftovers of interrupted
    /// uploads are removed.
    ///
    /// # Errors
    ///
    /// The directories cannot be made.
    pub fn open(root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root.join("objects"))?;
        let tmp = root.join("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&tmp)?;
        Ok(Self {
            root: root.to_owned(),
            counter: AtomicU64::new(0),
        })
    }

    fn path(&self, id: &BlobId) -> PathBuf {
        let name = id.to_string();
        self.root.join("objects").join(&name[..2]).join(name)
    }
}

impl BlobStore for DiskStore {
    fn size(&self, id: &BlobId) -> io::Result<Option<u64>> {
        match fs::metadata(self.path(id)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn open(&self, id: &BlobId) -> io::Result<Option<(u64, Box<dyn Read + Send>)>> {
        match File::open(self.path(id)) {
            Ok(f) => Ok(Some((f.metadata()?.len(), Box::new(f)))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn create(&self) -> io::Result<Box<dyn BlobWriter>> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let path = self
            .root
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()));
        let file = File::create(&path)?;
        Ok(Box::new(DiskWriter {
            file: Some(file),
            tmp: path,
            store: self.root.join("objects"),
        }))
    }
}

#[derive(Debug)]
struct DiskWriter {
    file: Option<File>,
    tmp: PathBuf,
    store: PathBuf,
}

impl Write for DiskWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("committed"))?
            .write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for DiskWriter {
    fn commit(mut self: Box<Self>, id: &BlobId) -> io::Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("committed"))?;
        file.sync_all()?;
        drop(file);
        let name = id.to_string();
        let dir = self.store.join(&name[..2]);
        fs::create_dir_all(&dir)?;
        fs::rename(&self.tmp, dir.join(&name))?;
        File::open(&dir)?.sync_all()?;
        Ok(())
    }
}

impl Drop for DiskWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_is_stored_under_its_hash_and_nothing_else_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path()).unwrap();
        let id = BlobId::of(b"bytes");
        let mut up = Upload::new(&store, id, 100).unwrap();
        up.write(b"bytes").unwrap();
        assert_eq!(up.finish().unwrap(), 5);
        let (size, mut r) = store.open(&id).unwrap().unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert_eq!((size, back.as_slice()), (5, &b"bytes"[..]));
        assert!(
            dir.path()
                .join("objects")
                .join(&id.to_string()[..2])
                .join(id.to_string())
                .is_file()
        );

        // Wrong bytes under a name: refused, nothing stored, no temp file left.
        let other = BlobId::of(b"other");
        let mut up = Upload::new(&store, other, 100).unwrap();
        up.write(b"not other").unwrap();
        let e = up.finish().unwrap_err();
        assert!(matches!(e, BlobError::Mismatch { .. }), "{e}");
        assert!(
            e.to_string()
                .contains(&BlobId::of(b"not other").to_string())
        );
        assert_eq!(store.size(&other).unwrap(), None);
        // Over the limit: refused, nothing stored.
        let mut up = Upload::new(&store, other, 3).unwrap();
        assert!(matches!(
            up.write(b"other"),
            Err(BlobError::TooLarge { limit: 3 })
        ));
        drop(up);
        assert_eq!(store.size(&other).unwrap(), None);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn names_parse_only_as_64_hex_digits() {
        let id = BlobId::of(b"x");
        assert_eq!(BlobId::parse(&id.to_string()).unwrap(), id);
        assert_eq!(BlobId::parse(&format!("0x{id}")).unwrap(), id);
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(66)] {
            let e = BlobId::parse(bad).unwrap_err().to_string();
            assert!(e.contains("64 hex digits"), "{e}");
        }
    }
}
