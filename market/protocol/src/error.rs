//! The crate's error type.

use std::path::PathBuf;

use alloy_primitives::Address;

use crate::bundle::BundleId;

/// A `Result` whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading, checking, packing or signing a bundle.
///
/// Messages say what was wrong and, where there is one, how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `netmind.toml` is not valid TOML or does not match the manifest schema
    /// (unknown field, wrong type, missing field).
    #[error("{origin}: {detail}")]
    ManifestSyntax {
        /// Where: a path or `netmind.toml in bundle`, then `:line:column` when known.
        origin: String,
        /// What is wrong, and the table it is in.
        detail: String,
    },

    /// The manifest parsed but breaks a rule (bad name, unsafe entry path, limits out of range).
    #[error("invalid netmind.toml: {0}")]
    InvalidManifest(String),

    /// A directory given to [`Bundle::from_dir`](crate::Bundle::from_dir) has no `netmind.toml`.
    #[error("no netmind.toml in {}: point at the directory that holds the job's netmind.toml", dir.display())]
    ManifestNotFound {
        /// The directory that was searched.
        dir: PathBuf,
    },

    /// The entry component named by `[job] entry` is not in the bundle directory.
    #[error(
        "entry component `{entry}` not found in {} (build it first with `cargo build --release`, \
         or fix `entry` under [job] in netmind.toml)",
        dir.display()
    )]
    EntryNotFound {
        /// The `[job] entry` path.
        entry: String,
        /// The bundle directory.
        dir: PathBuf,
    },

    /// The entry component does not start with the WebAssembly magic bytes `\0asm`.
    #[error("entry `{entry}` is not WebAssembly (bad magic bytes)")]
    NotWasm {
        /// The `[job] entry` path.
        entry: String,
    },

    /// A file in a bundle directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A path in a bundle directory is a symlink or special file, or has a name a bundle can't hold.
    #[error("{}: {reason}", path.display())]
    UnsupportedFile {
        /// The offending path.
        path: PathBuf,
        /// Why it can't go in a bundle, and what to do instead.
        reason: String,
    },

    /// Something is bigger than its [`BundleLimits`](crate::BundleLimits) allow.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// What is too large, naming the limit.
        what: String,
        /// Its size (a lower bound when reading stops early).
        size: u64,
        /// The limit.
        limit: u64,
    },

    /// Decompressing a bundle produced more than `max_unpacked_bytes`.
    #[error(
        "bundle unpacks to more than {limit} bytes (max_unpacked_bytes): \
         it is a compression bomb or its assets are too large"
    )]
    UnpackedTooLarge {
        /// The `max_unpacked_bytes` limit.
        limit: u64,
    },

    /// A bundle has more entries than `max_entries`.
    #[error("bundle has more than {limit} entries (max_entries): move assets into fewer files")]
    TooManyEntries {
        /// The `max_entries` limit.
        limit: usize,
    },

    /// The gzip or tar stream is damaged.
    #[error("bundle is truncated or corrupt: {0}")]
    Corrupt(String),

    /// A bundle entry is not a regular file or has an unsafe path.
    #[error("bundle entry `{path}` is not allowed: {reason}")]
    BadEntry {
        /// The entry's path as written in the archive (lossy UTF-8).
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A bundle holds two entries with the same path.
    #[error("bundle has two entries named `{path}`")]
    DuplicateEntry {
        /// The repeated path.
        path: String,
    },

    /// A bundle holds an entry that is not the manifest, the entry component or an asset.
    #[error(
        "unexpected bundle entry `{path}`: a bundle holds only netmind.toml, \
         the entry component `{entry}` and files under assets/"
    )]
    UnexpectedEntry {
        /// The entry's path.
        path: String,
        /// The `[job] entry` path from the manifest.
        entry: String,
    },

    /// The bundle does not start with `netmind.toml`.
    #[error(
        "bundle has no netmind.toml as its first entry{}",
        first_entry_note(first)
    )]
    MissingManifest {
        /// The path of the first entry, if the archive has any.
        first: Option<String>,
    },

    /// The bundle lacks the component named by `[job] entry`.
    #[error(
        "bundle has no entry component `{entry}` (named by `entry` under [job] in its netmind.toml)"
    )]
    MissingComponent {
        /// The `[job] entry` path.
        entry: String,
    },

    /// A string is not a bundle id.
    #[error("invalid bundle id `{input}`: {reason}")]
    InvalidBundleId {
        /// The rejected input.
        input: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A signature was checked against a different bundle than the one it signs.
    #[error("signature is for bundle {signed}, not {expected}")]
    SignatureMismatch {
        /// The bundle the signature names.
        signed: BundleId,
        /// The bundle it was checked against.
        expected: BundleId,
    },

    /// The signature bytes are not a valid 65-byte secp256k1 signature.
    #[error("malformed signature: {0}")]
    MalformedSignature(String),

    /// The signature is valid but was made by a different key than the one it names.
    #[error("forged signature: recovers to {recovered}, claims {claimed}")]
    ForgedSignature {
        /// The address the signature actually recovers to.
        recovered: Address,
        /// The address in the `signer` field.
        claimed: Address,
    },

    /// The signer failed to sign.
    #[error("could not sign: {0}")]
    Signing(#[from] alloy_signer::Error),

    /// A market order's signature is not its maker's.
    #[error("invalid order signature: {0}")]
    OrderSignature(String),

    /// A detached signature file is not valid JSON of the expected shape.
    #[error("invalid bundle signature file: {0}")]
    SignatureJson(#[from] serde_json::Error),

    /// Any other error.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

fn first_entry_note(first: &Option<String>) -> String {
    match first {
        Some(path) => format!(" (it starts with `{path}`)"),
        None => " (the archive is empty)".to_owned(),
    }
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidManifest(reason.into())
    }
}
