//! The redb store.
//!
//! One file, `chain.redb`, in the datadir. Every block (genesis included) is
//! written in **one** write transaction committed with `Durability::Immediate`
//! (fsynced before `commit` returns): after a crash the store holds exactly the
//! blocks whose commit returned, and the head always names a fully stored block.
//! Readers get MVCC snapshots ([`StoreReader`]) that never block the writer; a
//! snapshot is also the revm [`DatabaseRef`] the executor and `eth_call` read.
//!
//! State is kept as plain tables (address → account, (address, slot) → value,
//! code hash → code), and beside them the Merkle-Patricia tries over them with
//! their branch nodes ([`trie`]): a block's state root rehashes only the paths
//! of the keys it changed, so block time does not grow with the state.

use std::path::Path;

use alloy_consensus::{Header, ReceiptEnvelope, TxEnvelope};
use alloy_eips::eip4895::Withdrawal;
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rlp::Decodable;
use alloy_trie::{EMPTY_ROOT_HASH, KECCAK_EMPTY, TrieAccount};
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use revm::database::states::StateChangeset;
use revm::database_interface::{DBErrorMarker, DatabaseRef};
use revm::state::{AccountInfo, Bytecode};

use crate::spec::ChainSpec;
use crate::{Error, Result};

mod history;
mod state;
mod trie;
use state::{apply_changes, rebuild_tries, state_root_of};

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const CANONICAL: TableDefinition<'_, u64, [u8; 32]> = TableDefinition::new("canonical");
const HEADERS: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("headers");
const NUMBERS: TableDefinition<'_, [u8; 32], u64> = TableDefinition::new("numbers");
const BODIES: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("bodies");
const SENDERS: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("senders");
const RECEIPTS: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("receipts");
const TX_LOOKUP: TableDefinition<'_, [u8; 32], (u64, u32)> = TableDefinition::new("tx_lookup");
const ACCOUNTS: TableDefinition<'_, [u8; 20], &[u8]> = TableDefinition::new("accounts");
/// The storage root of every account with storage, kept in step with
/// `storage` in the same write transactions, so that a block's state root
/// rehashes only the storage that block changed.
const STORAGE_ROOTS: TableDefinition<'_, [u8; 20], [u8; 32]> =
    TableDefinition::new("storage_roots");
/// Set in `meta` once `storage_roots` covers every account (a datadir from
/// before it gets the table built in its next write).
const STORAGE_ROOTS_KEY: &str = "storage_roots";
/// Set in `meta` once the incremental tries (`trie_leaves`,
/// `trie_branches`) cover the state (a datadir from before them gets them
/// built in its next write).
const TRIES_KEY: &str = "tries";
const STORAGE: TableDefinition<'_, ([u8; 20], [u8; 32]), [u8; 32]> =
    TableDefinition::new("storage");
const CODE: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("code");
/// Ommer headers of imported blocks that have any (RLP list of headers).
const OMMERS: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("ommers");
/// Withdrawals of imported blocks that carry them (RLP list).
const WITHDRAWALS: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("withdrawals");

const HEAD_KEY: &str = "head";
const GENESIS_KEY: &str = "genesis";
const SPEC_KEY: &str = "genesis_json";

/// A block as it is stored: header, transactions with their senders, receipts.
#[derive(Debug, Clone)]
pub struct StoredBlock {
    /// The sealed header.
    pub header: Header,
    /// The block's hash (`keccak256(rlp(header))`).
    pub hash: B256,
    /// Transactions in block order.
    pub transactions: Vec<TxEnvelope>,
    /// The recovered sender of each transaction.
    pub senders: Vec<Address>,
    /// Receipts (with blooms) in block order.
    pub receipts: Vec<ReceiptEnvelope>,
}

/// The node's persistent store.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

/// An error reading state for revm (wraps [`Error`]).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StateError(#[from] pub Error);
impl DBErrorMarker for StateError {}

impl Store {
    /// Opens (creating if needed) the store in `datadir`.
    pub fn open(datadir: &Path) -> Result<Self> {
        std::fs::create_dir_all(datadir)?;
        let db = Database::create(datadir.join("chain.redb"))?;
        Ok(Self { db })
    }

    /// Writes the genesis block and state if the store is empty; if it already
    /// holds a chain, checks that it is this one. Returns the genesis hash.
    pub fn init_genesis(&self, spec: &ChainSpec) -> Result<B256> {
        let header = spec.genesis_header();
        let hash = header.hash_slow();
        if let Some(stored) = self.genesis_hash()? {
            if stored != hash {
                return Err(Error::GenesisMismatch {
                    stored,
                    given: hash,
                });
            }
            let given =
                serde_json::to_value(&spec.genesis).map_err(|e| Error::Genesis(e.to_string()))?;
            let same = self
                .genesis_json()?
                .and_then(|j| serde_json::from_slice::<serde_json::Value>(&j).ok())
                .is_some_and(|v| v == given);
            if !same {
                return Err(Error::Genesis(
                    "the datadir holds this genesis block with a different config (chain id, clique, forks)"
                        .into(),
                ));
            }
            return Ok(hash);
        }
        let txn = self.db.begin_write()?;
        {
            let mut accounts = txn.open_table(ACCOUNTS)?;
            let mut storage = txn.open_table(STORAGE)?;
            let mut code = txn.open_table(CODE)?;
            for (address, acc) in &spec.genesis.alloc {
                let code_hash = match &acc.code {
                    Some(c) if !c.is_empty() => {
                        let h = keccak256(c);
                        code.insert(h.0, c.as_ref())?;
                        h
                    }
                    _ => KECCAK_EMPTY,
                };
                let info = AccountInfo {
                    balance: acc.balance,
                    nonce: acc.nonce.unwrap_or(0),
                    code_hash,
                    code: None,
                    ..Default::default()
                };
                accounts.insert(address.0.0, encode_account(&info).as_slice())?;
                for (slot, value) in acc.storage.iter().flatten() {
                    if !value.is_zero() {
                        storage.insert((address.0.0, slot.0), value.0)?;
                    }
                }
            }
        }
        let root = rebuild_tries(&txn)?;
        if root != header.state_root {
            return Err(Error::Corrupt(format!(
                "genesis state root {root} from the store differs from {} from the allocations",
                header.state_root
            )));
        }
        let genesis_json =
            serde_json::to_vec(&spec.genesis).map_err(|e| Error::Genesis(e.to_string()))?;
        txn.open_table(META)?
            .insert(SPEC_KEY, genesis_json.as_slice())?;
        txn.open_table(META)?.insert(GENESIS_KEY, hash.as_slice())?;
        // Block 1 is the first whose changes are recorded: the state of
        // every block can be read.
        txn.open_table(META)?
            .insert(history::HISTORY_KEY, 1u64.to_be_bytes().as_slice())?;
        let block = StoredBlock {
            header,
            hash,
            transactions: vec![],
            senders: vec![],
            receipts: vec![],
        };
        write_block(&txn, &block)?;
        txn.commit()?;
        Ok(hash)
    }

    /// The genesis JSON stored by `init`, if any.
    pub fn genesis_json(&self) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read()?;
        let meta = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(meta.get(SPEC_KEY)?.map(|v| v.value().to_vec()))
    }

    /// The genesis hash, or `None` for an empty store.
    pub fn genesis_hash(&self) -> Result<Option<B256>> {
        let txn = self.db.begin_read()?;
        let meta = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(meta.get(GENESIS_KEY)?.map(|v| B256::from_slice(v.value())))
    }

    /// A node's own small record under `key` (e.g. the finalized head), if set.
    /// Keys used by the store itself are refused.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read()?;
        let meta = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(meta.get(key)?.map(|v| v.value().to_vec()))
    }

    /// Durably sets the record `key` (not one of the store's own keys).
    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        if [HEAD_KEY, GENESIS_KEY, SPEC_KEY].contains(&key) {
            return Err(Error::Corrupt(format!("meta key {key} is reserved")));
        }
        let txn = self.db.begin_write()?;
        txn.open_table(META)?.insert(key, value)?;
        txn.commit()?;
        Ok(())
    }

    /// A consistent read snapshot of the whole store.
    pub fn reader(&self) -> Result<StoreReader> {
        StoreReader::new(self.db.begin_read()?)
    }

    /// Stores the next block in one transaction: applies `changes` to the state,
    /// computes the state root, lets `finish` complete (and seal) the header with
    /// it, writes header, body, receipts, indexes and the new head, and commits
    /// durably. Nothing is written if any step fails.
    pub fn commit_block(
        &self,
        changes: &StateChangeset,
        finish: impl FnOnce(B256) -> Result<StoredBlock>,
    ) -> Result<StoredBlock> {
        let txn = self.db.begin_write()?;
        let root = apply_changes(&txn, changes, Some(next_number(&txn)?))?;
        let block = finish(root)?;
        write_block(&txn, &block)?;
        txn.commit()?;
        Ok(block)
    }
}

impl Store {
    /// Like [`Store::commit_block`], for an imported block whose body may also
    /// carry ommers and withdrawals (stored beside the transactions).
    pub fn commit_imported(
        &self,
        changes: &StateChangeset,
        ommers: &[Header],
        withdrawals: Option<&[Withdrawal]>,
        finish: impl FnOnce(B256) -> Result<StoredBlock>,
    ) -> Result<StoredBlock> {
        let txn = self.db.begin_write()?;
        let root = apply_changes(&txn, changes, Some(next_number(&txn)?))?;
        let block = finish(root)?;
        write_block(&txn, &block)?;
        if !ommers.is_empty() {
            txn.open_table(OMMERS)?
                .insert(block.hash.0, alloy_rlp::encode(ommers.to_vec()).as_slice())?;
        }
        if let Some(w) = withdrawals {
            txn.open_table(WITHDRAWALS)?
                .insert(block.hash.0, alloy_rlp::encode(w.to_vec()).as_slice())?;
        }
        txn.commit()?;
        Ok(block)
    }
}

/// The number of the block after the stored head.
fn next_number(txn: &WriteTransaction) -> Result<u64> {
    let meta = txn.open_table(META)?;
    let head = meta
        .get(HEAD_KEY)?
        .ok_or_else(|| Error::Corrupt("no head".into()))?;
    Ok(u64::from_be_bytes(head.value()[..8].try_into().expect("8 bytes")) + 1)
}

fn write_block(txn: &WriteTransaction, block: &StoredBlock) -> Result<()> {
    let hash = block.hash.0;
    let number = block.header.number;
    txn.open_table(HEADERS)?
        .insert(hash, alloy_rlp::encode(&block.header).as_slice())?;
    txn.open_table(NUMBERS)?.insert(hash, number)?;
    txn.open_table(BODIES)?
        .insert(hash, alloy_rlp::encode(&block.transactions).as_slice())?;
    let senders: Vec<u8> = block.senders.iter().flat_map(|a| a.0.0).collect();
    txn.open_table(SENDERS)?.insert(hash, senders.as_slice())?;
    txn.open_table(RECEIPTS)?
        .insert(hash, alloy_rlp::encode(&block.receipts).as_slice())?;
    {
        let mut lookup = txn.open_table(TX_LOOKUP)?;
        for (i, tx) in block.transactions.iter().enumerate() {
            lookup.insert(tx.tx_hash().0, (number, i as u32))?;
        }
    }
    txn.open_table(CANONICAL)?.insert(number, hash)?;
    let mut head = number.to_be_bytes().to_vec();
    head.extend_from_slice(&hash);
    txn.open_table(META)?.insert(HEAD_KEY, head.as_slice())?;
    Ok(())
}

fn encode_account(info: &AccountInfo) -> [u8; 72] {
    let mut out = [0u8; 72];
    out[..8].copy_from_slice(&info.nonce.to_be_bytes());
    out[8..40].copy_from_slice(&info.balance.to_be_bytes::<32>());
    out[40..].copy_from_slice(info.code_hash.as_slice());
    out
}

fn decode_account(bytes: &[u8]) -> Result<AccountInfo> {
    if bytes.len() != 72 {
        return Err(Error::Corrupt(format!(
            "account record of {} bytes",
            bytes.len()
        )));
    }
    Ok(AccountInfo {
        nonce: u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes")),
        balance: U256::from_be_slice(&bytes[8..40]),
        code_hash: B256::from_slice(&bytes[40..]),
        // `None` makes revm load the code through `code_by_hash`.
        code: None,
        ..Default::default()
    })
}

fn decode<T: Decodable>(what: &str, mut bytes: &[u8]) -> Result<T> {
    T::decode(&mut bytes).map_err(|e| Error::Corrupt(format!("{what}: {e}")))
}

/// A read snapshot of the store: blocks, indexes and the state at the head,
/// or as of an earlier block ([`StoreReader::at`]).
#[derive(Debug)]
pub struct StoreReader {
    txn: ReadTransaction,
    /// The block whose state this reader reads, when not the head.
    at: Option<(u64, B256)>,
    accounts: redb::ReadOnlyTable<[u8; 20], &'static [u8]>,
    storage: redb::ReadOnlyTable<([u8; 20], [u8; 32]), [u8; 32]>,
    code: redb::ReadOnlyTable<[u8; 32], &'static [u8]>,
    canonical: redb::ReadOnlyTable<u64, [u8; 32]>,
}

impl StoreReader {
    fn new(txn: ReadTransaction) -> Result<Self> {
        let open = |e: redb::TableError| match e {
            redb::TableError::TableDoesNotExist(_) => {
                Error::NotInitialized("(store has no genesis)".into())
            }
            e => e.into(),
        };
        Ok(Self {
            accounts: txn.open_table(ACCOUNTS).map_err(open)?,
            storage: txn.open_table(STORAGE).map_err(open)?,
            code: txn.open_table(CODE).map_err(open)?,
            canonical: txn.open_table(CANONICAL).map_err(open)?,
            txn,
            at: None,
        })
    }

    /// This snapshot reading the state as of the end of canonical block
    /// `number` (its [`StoreReader::head`] is then that block).
    ///
    /// # Errors
    ///
    /// [`Error::StateUnavailable`] when `number` is above the head or before
    /// the datadir kept history.
    pub fn at(mut self, number: u64) -> Result<Self> {
        let (head, _) = self.stored_head()?;
        if number >= head {
            if number > head {
                return Err(Error::StateUnavailable(format!(
                    "block {number} is above the head {head}"
                )));
            }
            return Ok(self);
        }
        let oldest = self.oldest_state()?;
        if number < oldest {
            return Err(Error::StateUnavailable(format!(
                "the state of block {number} is not kept: this datadir keeps history from block {oldest}"
            )));
        }
        let hash = self
            .canonical_hash(number)?
            .ok_or_else(|| Error::Corrupt(format!("no canonical block {number}")))?;
        self.at = Some((number, hash));
        Ok(self)
    }

    /// The oldest block whose state [`StoreReader::at`] can read.
    pub fn oldest_state(&self) -> Result<u64> {
        let meta = self.txn.open_table(META)?;
        Ok(match meta.get(history::HISTORY_KEY)? {
            Some(v) => u64::from_be_bytes(
                v.value()
                    .try_into()
                    .map_err(|_| Error::Corrupt("history start is not 8 bytes".into()))?,
            )
            .saturating_sub(1),
            None => self.stored_head()?.0,
        })
    }

    /// Whether this reader reads an earlier block's state than the head's.
    pub fn is_historical(&self) -> bool {
        self.at.is_some()
    }

    /// Number and hash of the head block (of the block [`StoreReader::at`]
    /// positioned this reader at).
    pub fn head(&self) -> Result<(u64, B256)> {
        if let Some(at) = self.at {
            return Ok(at);
        }
        self.stored_head()
    }

    /// Number and hash of the stored head block.
    fn stored_head(&self) -> Result<(u64, B256)> {
        let meta = self.txn.open_table(META)?;
        let v = meta
            .get(HEAD_KEY)?
            .ok_or_else(|| Error::Corrupt("no head".into()))?;
        let v = v.value();
        Ok((
            u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
            B256::from_slice(&v[8..40]),
        ))
    }

    /// The canonical hash at `number`.
    pub fn canonical_hash(&self, number: u64) -> Result<Option<B256>> {
        Ok(self.canonical.get(number)?.map(|v| B256::from(v.value())))
    }

    /// The number of the block with `hash`.
    pub fn block_number(&self, hash: B256) -> Result<Option<u64>> {
        Ok(self
            .txn
            .open_table(NUMBERS)?
            .get(hash.0)?
            .map(|v| v.value()))
    }

    /// The header with `hash`.
    pub fn header(&self, hash: B256) -> Result<Option<Header>> {
        let t = self.txn.open_table(HEADERS)?;
        t.get(hash.0)?
            .map(|v| decode("header", v.value()))
            .transpose()
    }

    /// The whole block with `hash`.
    pub fn block(&self, hash: B256) -> Result<Option<StoredBlock>> {
        let Some(header) = self.header(hash)? else {
            return Ok(None);
        };
        let missing = |what: &str| Error::Corrupt(format!("block {hash} has no {what}"));
        let bodies = self.txn.open_table(BODIES)?;
        let body = bodies.get(hash.0)?.ok_or_else(|| missing("body"))?;
        let transactions: Vec<TxEnvelope> = decode("body", body.value())?;
        let senders_t = self.txn.open_table(SENDERS)?;
        let senders = senders_t.get(hash.0)?.ok_or_else(|| missing("senders"))?;
        let senders = senders
            .value()
            .chunks(20)
            .map(Address::from_slice)
            .collect();
        let receipts_t = self.txn.open_table(RECEIPTS)?;
        let receipts = receipts_t.get(hash.0)?.ok_or_else(|| missing("receipts"))?;
        let receipts = decode("receipts", receipts.value())?;
        Ok(Some(StoredBlock {
            header,
            hash,
            transactions,
            senders,
            receipts,
        }))
    }

    /// The canonical block at `number`.
    pub fn block_by_number(&self, number: u64) -> Result<Option<StoredBlock>> {
        match self.canonical_hash(number)? {
            Some(h) => self.block(h),
            None => Ok(None),
        }
    }

    /// Where a transaction was included: (block number, index).
    pub fn tx_location(&self, tx_hash: B256) -> Result<Option<(u64, u32)>> {
        Ok(self
            .txn
            .open_table(TX_LOOKUP)?
            .get(tx_hash.0)?
            .map(|v| v.value()))
    }

    /// The account at the reader's state.
    pub fn account(&self, address: Address) -> Result<Option<AccountInfo>> {
        if let Some((n, _)) = self.at {
            let history = self.txn.open_table(history::ACCOUNT_HISTORY)?;
            if let Some(old) = history::account_at(&history, address.0.0, n)? {
                return Ok(old);
            }
        }
        self.accounts
            .get(address.0.0)?
            .map(|v| decode_account(v.value()))
            .transpose()
    }

    /// A storage slot at the reader's state.
    pub fn storage(&self, address: Address, slot: U256) -> Result<U256> {
        if let Some((n, _)) = self.at {
            let history = self.txn.open_table(history::STORAGE_HISTORY)?;
            if let Some(old) = history::slot_at(&history, address.0.0, slot.to_be_bytes(), n)? {
                return Ok(old);
            }
        }
        Ok(self
            .storage
            .get((address.0.0, slot.to_be_bytes::<32>()))?
            .map(|v| U256::from_be_bytes(v.value()))
            .unwrap_or_default())
    }

    /// Every account of the head state, by address.
    pub fn accounts_all(&self) -> Result<Vec<(Address, AccountInfo)>> {
        self.accounts
            .range::<[u8; 20]>(..)?
            .map(|e| {
                let (k, v) = e?;
                Ok((Address::from(k.value()), decode_account(v.value())?))
            })
            .collect()
    }

    /// Every non-zero storage slot of `address` at the head state.
    pub fn storage_all(&self, address: Address) -> Result<Vec<(B256, U256)>> {
        state::slots_in(&self.storage, address.0.0)
    }

    /// The storage root of `address` at the head state: kept beside the
    /// storage (read in O(1)), or rehashed from it in a datadir written
    /// before that was kept.
    pub fn storage_root(&self, address: Address) -> Result<B256> {
        let kept = self.txn.open_table(META)?.get(STORAGE_ROOTS_KEY)?.is_some();
        if kept {
            let roots = self.txn.open_table(STORAGE_ROOTS)?;
            return Ok(roots
                .get(address.0.0)?
                .map_or(EMPTY_ROOT_HASH, |r| B256::from(r.value())));
        }
        state::storage_root_in(&self.storage, address.0.0)
    }

    /// Recomputes the state root of this snapshot from its accounts and storage
    /// (to check a stored head against its header).
    pub fn state_root(&self) -> Result<B256> {
        state_root_of(&self.accounts, &self.storage)
    }

    /// The ommer headers of block `hash` (empty if it has none).
    pub fn ommers(&self, hash: B256) -> Result<Vec<Header>> {
        match self.txn.open_table(OMMERS) {
            Ok(t) => t
                .get(hash.0)?
                .map_or(Ok(Vec::new()), |v| decode("ommers", v.value())),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// The withdrawals of block `hash`: the stored list, or an empty one when the
    /// header has a withdrawals root but none were stored (our own blocks), or
    /// `None` before Shanghai.
    pub fn withdrawals(&self, header: &Header, hash: B256) -> Result<Option<Vec<Withdrawal>>> {
        if header.withdrawals_root.is_none() {
            return Ok(None);
        }
        match self.txn.open_table(WITHDRAWALS) {
            Ok(t) => t.get(hash.0)?.map_or(Ok(Some(Vec::new())), |v| {
                decode("withdrawals", v.value()).map(Some)
            }),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(Some(Vec::new())),
            Err(e) => Err(e.into()),
        }
    }

    /// The state root this snapshot would have after applying `changes`
    /// (O(state); used for the per-transaction roots of pre-Byzantium receipts).
    pub fn state_root_after(&self, changes: &StateChangeset) -> Result<B256> {
        let mut accounts = std::collections::BTreeMap::new();
        for entry in self.accounts.range::<[u8; 20]>(..)? {
            let (k, v) = entry?;
            accounts.insert(Address::from(k.value()), decode_account(v.value())?);
        }
        let mut storage: std::collections::BTreeMap<
            Address,
            std::collections::BTreeMap<B256, U256>,
        > = Default::default();
        for entry in self.storage.range::<([u8; 20], [u8; 32])>(..)? {
            let (k, v) = entry?;
            let (a, slot) = k.value();
            storage
                .entry(Address::from(a))
                .or_default()
                .insert(B256::from(slot), U256::from_be_bytes(v.value()));
        }
        for (address, info) in &changes.accounts {
            match info {
                Some(info) => accounts.insert(*address, info.clone()),
                None => accounts.remove(address),
            };
        }
        for change in &changes.storage {
            let slots = storage.entry(change.address).or_default();
            if change.wipe_storage {
                slots.clear();
            }
            for (slot, value) in &change.storage {
                let key = B256::from(slot.to_be_bytes::<32>());
                if value.is_zero() {
                    slots.remove(&key);
                } else {
                    slots.insert(key, *value);
                }
            }
        }
        let leaves = accounts.into_iter().map(|(address, info)| {
            let storage_root = match storage.remove(&address) {
                Some(slots) if !slots.is_empty() => alloy_trie::root::storage_root_unhashed(slots),
                _ => EMPTY_ROOT_HASH,
            };
            (
                address,
                TrieAccount {
                    nonce: info.nonce,
                    balance: info.balance,
                    storage_root,
                    code_hash: info.code_hash,
                },
            )
        });
        Ok(alloy_trie::root::state_root_unhashed(leaves))
    }

    /// Code by its hash.
    pub fn code(&self, hash: B256) -> Result<Option<Bytes>> {
        Ok(self
            .code
            .get(hash.0)?
            .map(|v| Bytes::copy_from_slice(v.value())))
    }
}

impl DatabaseRef for StoreReader {
    type Error = StateError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        Ok(self.account(address)?)
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, StateError> {
        Ok(self
            .code(code_hash)?
            .map(Bytecode::new_raw)
            .unwrap_or_default())
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, StateError> {
        Ok(self.storage(address, index)?)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, StateError> {
        Ok(self.canonical_hash(number)?.unwrap_or_default())
    }
}

#[cfg(test)]
impl Store {
    /// Commits `changes` as the next block, its header otherwise empty (for
    /// the state tests).
    pub(crate) fn commit_test_block(&self, changes: &StateChangeset) -> StoredBlock {
        let (number, parent) = self.reader().unwrap().head().unwrap();
        self.commit_block(changes, |root| {
            let header = Header {
                number: number + 1,
                parent_hash: parent,
                state_root: root,
                ..Default::default()
            };
            Ok(StoredBlock {
                hash: header.hash_slow(),
                header,
                transactions: vec![],
                senders: vec![],
                receipts: vec![],
            })
        })
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_is_stored_once_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let spec = ChainSpec::dev(1);
        let hash = store.init_genesis(&spec).unwrap();
        assert_eq!(store.init_genesis(&spec).unwrap(), hash);
        let r = store.reader().unwrap();
        assert_eq!(r.head().unwrap(), (0, hash));
        let dev = crate::spec::dev_signers()[1].address();
        assert!(r.account(dev).unwrap().unwrap().balance > U256::ZERO);
        let mut other = ChainSpec::dev(1).genesis;
        other.gas_limit = 30_000_000;
        let other = ChainSpec::from_genesis(other).unwrap();
        assert!(matches!(
            store.init_genesis(&other),
            Err(Error::GenesisMismatch { .. })
        ));
        let err = store
            .init_genesis(&ChainSpec::dev(2))
            .unwrap_err()
            .to_string();
        assert!(err.contains("different config"), "{err}");
    }
}
