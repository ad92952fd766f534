//! The crate's error type.

use alloy_primitives::{Address, B256};

/// Everything that can go wrong in the node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The genesis file is unusable.
    #[error("invalid genesis: {0}")]
    Genesis(String),
    /// The datadir holds no chain yet.
    #[error(
        "datadir {0} holds no chain: run `netmind node init --genesis FILE --datadir {0}` first"
    )]
    NotInitialized(String),
    /// The datadir already holds a different chain.
    #[error("datadir already holds a chain with genesis {stored}, not {given}")]
    GenesisMismatch {
        /// Genesis hash found in the store.
        stored: B256,
        /// Genesis hash of the given file.
        given: B256,
    },
    /// A stored record could not be decoded (the datadir is corrupt or from another version).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The state of a block that is not kept (before history, above the head).
    #[error("state unavailable: {0}")]
    StateUnavailable(String),
    /// redb failed.
    #[error("store: {0}")]
    Store(#[from] redb::Error),
    /// Executing a block failed.
    #[error("block execution failed: {0}")]
    Execution(String),
    /// A Clique rule was broken (see [`crate::clique::CliqueError`]).
    #[error(transparent)]
    Clique(#[from] crate::clique::CliqueError),
    /// A finality vote (or a seal counted as one) was refused.
    #[error(transparent)]
    Finality(#[from] crate::finality::FinalityError),
    /// The key given to seal blocks is not an authority of this chain.
    #[error("{0} is not an authority of this chain")]
    NotAuthority(Address),
    /// A block was refused by import (see [`crate::import::ImportError`]).
    #[error("block import: {0}")]
    Import(#[from] crate::import::ImportError),
    /// I/O (datadir, sockets).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

macro_rules! redb_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Self::Store(e.into())
            }
        }
    )*};
}
redb_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
