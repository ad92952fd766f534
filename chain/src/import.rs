//! Block import: validating a full block (header + body) received from elsewhere
//! against its parent, re-executing it, and storing it as the new head.
//!
//! [`import_block`] checks, in order:
//! 1. the parent: it must be the current head (a fork goes through
//!    [`crate::Node::reorg`], which unwinds to the fork point first);
//! 2. the header against the parent: number, timestamp after the parent's, gas
//!    limit within 1/1024 of the parent's (doubled at the London transition),
//!    gas used within the limit, EIP-1559 base fee, EIP-4844 excess blob gas,
//!    the fields each hardfork adds (withdrawals root, blob gas, beacon root,
//!    requests hash), proof-of-stake rules (difficulty 0, nonce 0, no ommers);
//! 3. extra data: at most 32 bytes, or on a Clique chain the EIP-225 layout
//!    (vanity, signer list only at checkpoints, seal);
//! 4. the seal ([`SealMode::Verify`], Clique chains only): sealer recovered and
//!    authorized by the vote tally, not recently signed, difficulty 2 in turn and
//!    1 out of turn, mix hash zero, timestamp at least `period` after the parent.
//!    [`SealMode::Trusted`] skips this step: for replaying a recorded chain whose
//!    proof-of-work or beacon-chain seals this node cannot check;
//! 5. the body: transactions root, ommers hash, withdrawals root, senders;
//! 6. execution (the block's transactions, ommer and block rewards before the
//!    merge, withdrawals, system calls): gas used, receipts root, logs bloom,
//!    blob gas used, requests hash and state root must equal the header's.
//!
//! Any failure is an [`ImportError`] naming what is wrong, and nothing is
//! written: the state changes and the block go into one store transaction that
//! is only committed once every check has passed.

use std::fmt;
use std::sync::Arc;

use alloy_consensus::{
    Block, EMPTY_OMMER_ROOT_HASH, Header, TxEnvelope, TxReceipt as _, proofs,
    transaction::SignerRecoverable,
};
use alloy_eips::eip1559::{BaseFeeParams, INITIAL_BASE_FEE};
use alloy_hardforks::EthereumHardforks;
use alloy_primitives::{Address, B64, B256, Bloom, U256};
use alloy_rlp::Decodable;

use crate::clique::{self, CliqueError, DIFF_IN_TURN, DIFF_NO_TURN, EXTRA_SEAL, EXTRA_VANITY};
use crate::exec::execute_block;
use crate::spec::ChainSpec;
use crate::store::{Store, StoreReader, StoredBlock};
use crate::{Error, Result};

/// A full Ethereum block as it travels in RLP: header, transactions, ommers, withdrawals.
pub type RlpBlock = Block<TxEnvelope>;

/// Most extra-data bytes outside Clique (the yellow paper's limit).
pub const MAX_EXTRA_DATA: usize = 32;
/// Least block gas limit.
pub const MIN_GAS_LIMIT: u64 = 5000;

/// How much of a block's consensus proof to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealMode {
    /// Check the Clique seal, signer authorization and difficulty (Clique chains only).
    Verify,
    /// Trust the seal (a recorded chain): every other rule is still checked.
    Trusted,
}

/// A header field checked against the result of executing or hashing the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// `stateRoot`
    StateRoot,
    /// `receiptsRoot`
    ReceiptsRoot,
    /// `transactionsRoot`
    TransactionsRoot,
    /// `sha3Uncles`
    OmmersHash,
    /// `withdrawalsRoot`
    WithdrawalsRoot,
    /// `logsBloom`
    LogsBloom,
    /// `gasUsed`
    GasUsed,
    /// `blobGasUsed`
    BlobGasUsed,
    /// `excessBlobGas`
    ExcessBlobGas,
    /// `requestsHash`
    RequestsHash,
    /// `baseFeePerGas`
    BaseFee,
    /// `parentBeaconBlockRoot`
    ParentBeaconRoot,
    /// `difficulty`
    Difficulty,
    /// `nonce`
    Nonce,
    /// `mixHash`
    MixHash,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::StateRoot => "state root",
            Self::ReceiptsRoot => "receipts root",
            Self::TransactionsRoot => "transactions root",
            Self::OmmersHash => "ommers hash",
            Self::WithdrawalsRoot => "withdrawals root",
            Self::LogsBloom => "logs bloom",
            Self::GasUsed => "gas used",
            Self::BlobGasUsed => "blob gas used",
            Self::ExcessBlobGas => "excess blob gas",
            Self::RequestsHash => "requests hash",
            Self::BaseFee => "base fee",
            Self::ParentBeaconRoot => "parent beacon block root",
            Self::Difficulty => "difficulty",
            Self::Nonce => "nonce",
            Self::MixHash => "mix hash",
        })
    }
}

/// Why a block was not imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The bytes are not an RLP block.
    #[error("malformed block RLP: {0}")]
    Decode(String),
    /// The parent is not in the store.
    #[error("unknown parent {0}")]
    UnknownParent(B256),
    /// The parent is stored but is not the head: a fork, which only
    /// [`crate::Node::reorg`] takes (with the blocks back to the fork point).
    #[error(
        "parent {parent} is not the head {head}: a fork, taken only as a whole branch by a reorg"
    )]
    NotOnHead {
        /// The block's parent.
        parent: B256,
        /// The current head.
        head: B256,
    },
    /// A branch offered to a reorg is not a chain: block `number` does not
    /// extend the one before it, or the branch does not start on the
    /// canonical chain.
    #[error("not a branch of the canonical chain at block {number}: {why}")]
    NotABranch {
        /// The first offending block.
        number: u64,
        /// What is wrong.
        why: String,
    },
    /// The block is at the finalized height but is not the finalized block.
    #[error("block {number} {got} conflicts with the finalized block {finalized}")]
    ConflictsWithFinalized {
        /// The height.
        number: u64,
        /// The finalized block there.
        finalized: B256,
        /// The block offered.
        got: B256,
    },
    /// The number is not the parent's plus one.
    #[error("block number {got} does not follow parent {parent}")]
    Number {
        /// Parent number.
        parent: u64,
        /// Block number.
        got: u64,
    },
    /// The timestamp is not after the parent's (or, on Clique, not `period` after it).
    #[error("timestamp {got} is not after the parent's {parent} (at least {min_gap} s later)")]
    Timestamp {
        /// Parent timestamp.
        parent: u64,
        /// Block timestamp.
        got: u64,
        /// Required gap.
        min_gap: u64,
    },
    /// The gas limit moved too far from the parent's.
    #[error("gas limit {got} is out of bounds (parent {parent}, change < parent/1024, >= 5000)")]
    GasLimit {
        /// Parent gas limit (doubled at the London transition).
        parent: u64,
        /// Block gas limit.
        got: u64,
    },
    /// More gas used than the limit.
    #[error("gas used {used} exceeds the gas limit {limit}")]
    GasUsedAboveLimit {
        /// Gas used.
        used: u64,
        /// Gas limit.
        limit: u64,
    },
    /// The extra data breaks the size or Clique layout rules.
    #[error("invalid extra data: {0}")]
    ExtraData(String),
    /// A header field present or missing against the active hardfork.
    #[error("header field {field} {what} at this fork")]
    ForkField {
        /// The field.
        field: Field,
        /// "missing" or "unexpected".
        what: &'static str,
    },
    /// A header field differs from the value computed from the parent or the body.
    #[error("{field} mismatch: header has {header}, computed {computed}")]
    Mismatch {
        /// The field.
        field: Field,
        /// Value in the header.
        header: String,
        /// Value computed.
        computed: String,
    },
    /// A Clique seal rule is broken.
    #[error("seal: {0}")]
    Seal(CliqueError),
    /// Seals can only be verified on Clique chains.
    #[error(
        "this chain is not a Clique chain: its seals cannot be verified, import it with trusted seals"
    )]
    SealUnsupported,
    /// A transaction's signature does not recover.
    #[error("transaction {index}: invalid signature: {why}")]
    Sender {
        /// Index in the block.
        index: usize,
        /// The recovery error.
        why: String,
    },
    /// Executing the block failed (an invalid transaction, ...).
    #[error("execution failed: {0}")]
    Execution(String),
}

fn mismatch(field: Field, header: impl fmt::Debug, computed: impl fmt::Debug) -> ImportError {
    ImportError::Mismatch {
        field,
        header: format!("{header:?}"),
        computed: format!("{computed:?}"),
    }
}

/// Decodes one RLP block; trailing bytes are an error.
pub fn decode_block(mut bytes: &[u8]) -> Result<RlpBlock, ImportError> {
    let block = RlpBlock::decode(&mut bytes).map_err(|e| ImportError::Decode(e.to_string()))?;
    if !bytes.is_empty() {
        return Err(ImportError::Decode(format!(
            "{} trailing bytes after the block",
            bytes.len()
        )));
    }
    Ok(block)
}

/// Decodes concatenated RLP blocks (the `chain.rlp` format of geth's `import`).
pub fn decode_blocks(mut bytes: &[u8]) -> Result<Vec<RlpBlock>, ImportError> {
    let mut blocks = Vec::new();
    while !bytes.is_empty() {
        let block = RlpBlock::decode(&mut bytes)
            .map_err(|e| ImportError::Decode(format!("block {}: {e}", blocks.len() + 1)))?;
        blocks.push(block);
    }
    Ok(blocks)
}

/// Validates, executes and stores `block` on top of the head of `store`; returns
/// the stored block (now the head). Nothing changes on error.
pub fn import_block(
    store: &Store,
    spec: &Arc<ChainSpec>,
    block: RlpBlock,
    mode: SealMode,
) -> Result<StoredBlock> {
    if mode == SealMode::Verify && !spec.clique {
        return Err(ImportError::SealUnsupported.into());
    }
    let reader = store.reader()?;
    let (_, head_hash) = reader.head()?;
    let header = &block.header;
    if header.parent_hash != head_hash {
        return Err(match reader.block_number(header.parent_hash)? {
            Some(_) => ImportError::NotOnHead {
                parent: header.parent_hash,
                head: head_hash,
            },
            None => ImportError::UnknownParent(header.parent_hash),
        }
        .into());
    }
    let parent = reader
        .header(head_hash)?
        .ok_or_else(|| Error::Corrupt(format!("head header {head_hash} missing")))?;
    validate_header(spec, &parent, header)?;
    let beneficiary = if spec.clique {
        validate_clique_extra(spec, header)?;
        if mode == SealMode::Verify {
            verify_seal(spec, &reader, &parent, &block)?
        } else {
            clique::recover_sealer(header).map_err(ImportError::Seal)?
        }
    } else {
        if header.extra_data.len() > MAX_EXTRA_DATA {
            return Err(ImportError::ExtraData(format!(
                "{} bytes, more than {MAX_EXTRA_DATA}",
                header.extra_data.len()
            ))
            .into());
        }
        header.beneficiary
    };
    validate_body(header, &block)?;
    let transactions = block
        .body
        .transactions
        .iter()
        .enumerate()
        .map(|(index, tx)| {
            tx.clone()
                .try_into_recovered()
                .map_err(|e| ImportError::Sender {
                    index,
                    why: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let withdrawals = block.body.withdrawals.as_ref().map(|w| w.as_slice());
    let executed = execute_block(
        spec,
        &reader,
        header,
        beneficiary,
        &transactions,
        &block.body.ommers,
        withdrawals,
    )
    .map_err(|e| match e {
        Error::Execution(e) => Error::Import(ImportError::Execution(e)),
        e => e,
    })?;
    drop(reader);
    if executed.gas_used != header.gas_used {
        return Err(mismatch(Field::GasUsed, header.gas_used, executed.gas_used).into());
    }
    let receipts_root = proofs::calculate_receipt_root(&executed.receipts);
    if receipts_root != header.receipts_root {
        return Err(mismatch(Field::ReceiptsRoot, header.receipts_root, receipts_root).into());
    }
    let bloom = executed
        .receipts
        .iter()
        .fold(Bloom::ZERO, |acc, r| acc | r.bloom());
    if bloom != header.logs_bloom {
        return Err(mismatch(Field::LogsBloom, header.logs_bloom, bloom).into());
    }
    if let Some(used) = header.blob_gas_used
        && used != executed.blob_gas_used
    {
        return Err(mismatch(Field::BlobGasUsed, used, executed.blob_gas_used).into());
    }
    if header.requests_hash != executed.requests_hash {
        return Err(mismatch(
            Field::RequestsHash,
            header.requests_hash,
            executed.requests_hash,
        )
        .into());
    }
    let ommers = &block.body.ommers;
    let stored = store.commit_imported(&executed.changes, ommers, withdrawals, |root| {
        if root != header.state_root {
            return Err(mismatch(Field::StateRoot, header.state_root, root).into());
        }
        let (transactions, senders) = transactions
            .iter()
            .map(|t| (t.inner().clone(), t.signer()))
            .unzip();
        Ok(StoredBlock {
            header: header.clone(),
            hash: header.hash_slow(),
            transactions,
            senders,
            receipts: executed.receipts.clone(),
        })
    })?;
    tracing::debug!(
        target: "chain::import",
        block = stored.header.number,
        hash = %stored.hash,
        txs = stored.transactions.len(),
        "imported"
    );
    Ok(stored)
}

/// The header rules that need only the parent.
fn validate_header(spec: &ChainSpec, parent: &Header, header: &Header) -> Result<(), ImportError> {
    let (number, ts) = (header.number, header.timestamp);
    if number != parent.number + 1 {
        return Err(ImportError::Number {
            parent: parent.number,
            got: number,
        });
    }
    if ts <= parent.timestamp {
        return Err(ImportError::Timestamp {
            parent: parent.timestamp,
            got: ts,
            min_gap: 1,
        });
    }
    let london = spec.is_london_active_at_block(number);
    let parent_limit = if london && !spec.is_london_active_at_block(parent.number) {
        parent.gas_limit * BaseFeeParams::ethereum().elasticity_multiplier as u64
    } else {
        parent.gas_limit
    };
    if header.gas_limit.abs_diff(parent_limit) >= parent_limit / 1024
        || header.gas_limit < MIN_GAS_LIMIT
    {
        return Err(ImportError::GasLimit {
            parent: parent_limit,
            got: header.gas_limit,
        });
    }
    if header.gas_used > header.gas_limit {
        return Err(ImportError::GasUsedAboveLimit {
            used: header.gas_used,
            limit: header.gas_limit,
        });
    }
    let base_fee = london.then(|| {
        if spec.is_london_active_at_block(parent.number) {
            parent
                .next_block_base_fee(BaseFeeParams::ethereum())
                .unwrap_or(INITIAL_BASE_FEE)
        } else {
            INITIAL_BASE_FEE
        }
    });
    if header.base_fee_per_gas != base_fee {
        return Err(mismatch(Field::BaseFee, header.base_fee_per_gas, base_fee));
    }
    present(
        Field::WithdrawalsRoot,
        header.withdrawals_root.is_some(),
        spec.is_shanghai_active_at_timestamp(ts),
    )?;
    let cancun = spec.is_cancun_active_at_timestamp(ts);
    present(Field::BlobGasUsed, header.blob_gas_used.is_some(), cancun)?;
    present(
        Field::ExcessBlobGas,
        header.excess_blob_gas.is_some(),
        cancun,
    )?;
    present(
        Field::ParentBeaconRoot,
        header.parent_beacon_block_root.is_some(),
        cancun,
    )?;
    present(
        Field::RequestsHash,
        header.requests_hash.is_some(),
        spec.is_prague_active_at_timestamp(ts),
    )?;
    if cancun {
        let params = spec
            .blob_params_at(ts)
            .unwrap_or_else(alloy_eips::eip7840::BlobParams::cancun);
        let expected = if spec.is_cancun_active_at_timestamp(parent.timestamp) {
            parent.next_block_excess_blob_gas(params).unwrap_or(0)
        } else {
            0
        };
        if header.excess_blob_gas != Some(expected) {
            return Err(mismatch(
                Field::ExcessBlobGas,
                header.excess_blob_gas,
                Some(expected),
            ));
        }
        let max = params.max_blob_gas_per_block();
        if header.blob_gas_used.unwrap_or(0) > max {
            return Err(mismatch(
                Field::BlobGasUsed,
                header.blob_gas_used,
                format!("at most {max}"),
            ));
        }
    }
    if !spec.clique && spec.is_paris_active_at_block(number) {
        if header.difficulty != U256::ZERO {
            return Err(mismatch(Field::Difficulty, header.difficulty, U256::ZERO));
        }
        if header.nonce != B64::ZERO {
            return Err(mismatch(Field::Nonce, header.nonce, B64::ZERO));
        }
        if header.ommers_hash != EMPTY_OMMER_ROOT_HASH {
            return Err(mismatch(
                Field::OmmersHash,
                header.ommers_hash,
                EMPTY_OMMER_ROOT_HASH,
            ));
        }
    }
    Ok(())
}

fn present(field: Field, is: bool, should: bool) -> Result<(), ImportError> {
    match (is, should) {
        (true, false) => Err(ImportError::ForkField {
            field,
            what: "unexpected",
        }),
        (false, true) => Err(ImportError::ForkField {
            field,
            what: "missing",
        }),
        _ => Ok(()),
    }
}

/// EIP-225 extra data: vanity, signers (checkpoints only), seal.
fn validate_clique_extra(spec: &ChainSpec, header: &Header) -> Result<(), ImportError> {
    let n = header.extra_data.len();
    if n < EXTRA_VANITY + EXTRA_SEAL {
        return Err(ImportError::ExtraData(format!(
            "{n} bytes, shorter than 32 vanity + 65 seal bytes"
        )));
    }
    let signers = n - EXTRA_VANITY - EXTRA_SEAL;
    if header.number.is_multiple_of(spec.epoch) {
        if signers == 0 || !signers.is_multiple_of(20) {
            return Err(ImportError::ExtraData(format!(
                "checkpoint signer list of {signers} bytes is not a non-empty multiple of 20"
            )));
        }
    } else if signers != 0 {
        return Err(ImportError::ExtraData(format!(
            "{signers} signer-list bytes outside a checkpoint"
        )));
    }
    Ok(())
}

/// The Clique seal rules; returns the sealer (who receives the fees).
fn verify_seal(
    spec: &ChainSpec,
    reader: &StoreReader,
    parent: &Header,
    block: &RlpBlock,
) -> Result<Address> {
    let header = &block.header;
    let seal = |e: CliqueError| Error::Import(ImportError::Seal(e));
    if header.timestamp < parent.timestamp + spec.period {
        return Err(ImportError::Timestamp {
            parent: parent.timestamp,
            got: header.timestamp,
            min_gap: spec.period,
        }
        .into());
    }
    if header.mix_hash != B256::ZERO {
        return Err(mismatch(Field::MixHash, header.mix_hash, B256::ZERO).into());
    }
    if !block.body.ommers.is_empty() || header.ommers_hash != EMPTY_OMMER_ROOT_HASH {
        return Err(mismatch(Field::OmmersHash, header.ommers_hash, EMPTY_OMMER_ROOT_HASH).into());
    }
    let snap = snapshot_at(spec, reader, parent)?;
    let sealer = clique::recover_sealer(header).map_err(seal)?;
    snap.apply(std::slice::from_ref(header)).map_err(seal)?;
    let expected = if clique::in_turn(header.number, sealer, &snap.sorted_signers()) {
        DIFF_IN_TURN
    } else {
        DIFF_NO_TURN
    };
    if header.difficulty != expected {
        return Err(mismatch(Field::Difficulty, header.difficulty, expected).into());
    }
    Ok(sealer)
}

/// Snapshots by (block hash, epoch), most recent last. A block's hash fixes
/// its whole history, so the snapshot after it is the same whichever node
/// computes it; several nodes in one process share the cache safely.
static SNAPSHOTS: std::sync::Mutex<Vec<((B256, u64), clique::tally::Snapshot)>> =
    std::sync::Mutex::new(Vec::new());

/// How many snapshots the cache keeps (forks and several nodes at once).
const SNAPSHOTS_KEPT: usize = 64;

/// The Clique signer snapshot after the canonical block `parent`: from the
/// cache, else its parent's cached snapshot advanced over it (so sealing and
/// importing a block cost O(1), not O(epoch)), else rebuilt from the last
/// checkpoint at or below it.
pub fn snapshot_at(
    spec: &ChainSpec,
    reader: &StoreReader,
    parent: &Header,
) -> Result<clique::tally::Snapshot> {
    let seal = |e: CliqueError| Error::Import(ImportError::Seal(e));
    let key = (parent.hash_slow(), spec.epoch);
    let cached = |k: &(B256, u64)| {
        let cache = SNAPSHOTS.lock().expect("snapshot cache lock");
        cache
            .iter()
            .rev()
            .find(|(c, _)| c == k)
            .map(|(_, s)| s.clone())
    };
    if let Some(snap) = cached(&key) {
        return Ok(snap);
    }
    // After a checkpoint the snapshot starts afresh from its signer list (as
    // a rebuild does), so the cache never changes an answer.
    let snap = match cached(&(parent.parent_hash, spec.epoch)) {
        Some(before) if !parent.number.is_multiple_of(spec.epoch) => {
            before.apply(std::slice::from_ref(parent)).map_err(seal)?
        }
        _ => rebuild_snapshot(spec, reader, parent)?,
    };
    let mut cache = SNAPSHOTS.lock().expect("snapshot cache lock");
    if cache.len() >= SNAPSHOTS_KEPT {
        cache.remove(0);
    }
    cache.push((key, snap.clone()));
    Ok(snap)
}

/// The snapshot after the canonical block `parent`, rebuilt from the last
/// checkpoint at or below it, without the cache ([`snapshot_at`] answers the
/// same, faster).
pub fn rebuild_snapshot(
    spec: &ChainSpec,
    reader: &StoreReader,
    parent: &Header,
) -> Result<clique::tally::Snapshot> {
    let seal = |e: CliqueError| Error::Import(ImportError::Seal(e));
    // Rebuild the signer snapshot from the last checkpoint up to the parent.
    let checkpoint = parent.number - parent.number % spec.epoch;
    let signers = if checkpoint == 0 {
        spec.genesis_signers()?
    } else {
        let hash = reader
            .canonical_hash(checkpoint)?
            .ok_or_else(|| Error::Corrupt(format!("no canonical block {checkpoint}")))?;
        let cp = reader
            .header(hash)?
            .ok_or_else(|| Error::Corrupt(format!("no header {hash}")))?;
        let extra = &cp.extra_data;
        extra[EXTRA_VANITY..extra.len() - EXTRA_SEAL]
            .chunks(20)
            .map(Address::from_slice)
            .collect()
    };
    let mut headers = Vec::new();
    for n in checkpoint + 1..=parent.number {
        let hash = reader
            .canonical_hash(n)?
            .ok_or_else(|| Error::Corrupt(format!("no canonical block {n}")))?;
        headers.push(
            reader
                .header(hash)?
                .ok_or_else(|| Error::Corrupt(format!("no header {hash}")))?,
        );
    }
    clique::tally::Snapshot::new(spec.epoch, checkpoint, signers)
        .apply(&headers)
        .map_err(seal)
}

/// The roots of the body against the header.
fn validate_body(header: &Header, block: &RlpBlock) -> Result<(), ImportError> {
    let body = &block.body;
    let tx_root = proofs::calculate_transaction_root(&body.transactions);
    if tx_root != header.transactions_root {
        return Err(mismatch(
            Field::TransactionsRoot,
            header.transactions_root,
            tx_root,
        ));
    }
    let ommers_hash = proofs::calculate_ommers_root(&body.ommers);
    if ommers_hash != header.ommers_hash {
        return Err(mismatch(Field::OmmersHash, header.ommers_hash, ommers_hash));
    }
    let withdrawals_root = body
        .withdrawals
        .as_ref()
        .map(|w| proofs::calculate_withdrawals_root(w));
    if withdrawals_root != header.withdrawals_root {
        return Err(mismatch(
            Field::WithdrawalsRoot,
            header.withdrawals_root,
            withdrawals_root,
        ));
    }
    Ok(())
}

/// Imports `blocks` in order, calling `progress` after each; stops at the first
/// failure, returning how many were imported with the error.
pub fn import_chain(
    store: &Store,
    spec: &Arc<ChainSpec>,
    blocks: impl IntoIterator<Item = RlpBlock>,
    mode: SealMode,
    mut progress: impl FnMut(&StoredBlock),
) -> Result<usize, (usize, Error)> {
    let mut n = 0;
    for block in blocks {
        let stored = import_block(store, spec, block, mode).map_err(|e| (n, e))?;
        progress(&stored);
        n += 1;
    }
    Ok(n)
}
