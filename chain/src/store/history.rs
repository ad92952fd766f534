//! State history: what each block changed, so that the state can be read as
//! of any block since history began (`eth_getBalance`, `eth_call`, … at a
//! block number, `earliest`, `safe`, `finalized`), and the newest blocks can
//! be unwound (reorgs of blocks that are not final).
//!
//! - `account_history`: (address, block) → the account before `block`
//!   changed it (empty: there was none);
//! - `storage_history`: (address, slot, block) → the slot before `block`
//!   changed it (zero: unset);
//! - `block_changes`: block → the accounts and slots it changed, to unwind it.
//!
//! The state after block N holds, for each key, the value recorded by the
//! first change after N, or the current value when none came after: one
//! B-tree lookup per read. All of it is written in the block's own write
//! transaction.

use std::collections::BTreeMap;

use alloy_primitives::{Address, U256};
use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};
use revm::database::states::{PlainStorageChangeset, StateChangeset};
use revm::state::AccountInfo;

use super::state::apply_changes;
use super::{
    CANONICAL, HEAD_KEY, META, Store, StoredBlock, TX_LOOKUP, decode_account, next_number,
};
use crate::{Error, Result};

/// (address, block) → the account before `block` changed it (empty: none).
pub(super) const ACCOUNT_HISTORY: TableDefinition<'_, ([u8; 20], u64), &[u8]> =
    TableDefinition::new("account_history");
/// (address, slot, block) → the slot before `block` changed it.
pub(super) const STORAGE_HISTORY: TableDefinition<'_, ([u8; 20], [u8; 32], u64), [u8; 32]> =
    TableDefinition::new("storage_history");
/// block → the accounts (20 bytes each) and slots (52 bytes each) it changed,
/// after a 4-byte count of the accounts.
pub(super) const BLOCK_CHANGES: TableDefinition<'_, u64, &[u8]> =
    TableDefinition::new("block_changes");
/// In `meta`: the first block whose changes are recorded (big-endian u64).
pub(super) const HISTORY_KEY: &str = "history_from";

/// Records the values a block overwrites, as it writes them.
pub(super) struct Recorder<'txn> {
    number: u64,
    accounts: Table<'txn, ([u8; 20], u64), &'static [u8]>,
    storage: Table<'txn, ([u8; 20], [u8; 32], u64), [u8; 32]>,
    changed_accounts: Vec<[u8; 20]>,
    changed_slots: Vec<([u8; 20], [u8; 32])>,
}

impl<'txn> Recorder<'txn> {
    /// A recorder for block `number` (the first one of a datadir from before
    /// history also marks where history starts).
    pub(super) fn open(txn: &'txn WriteTransaction, number: u64) -> Result<Self> {
        let mut meta = txn.open_table(META)?;
        if meta.get(HISTORY_KEY)?.is_none() {
            meta.insert(HISTORY_KEY, number.to_be_bytes().as_slice())?;
        }
        Ok(Self {
            number,
            accounts: txn.open_table(ACCOUNT_HISTORY)?,
            storage: txn.open_table(STORAGE_HISTORY)?,
            changed_accounts: Vec::new(),
            changed_slots: Vec::new(),
        })
    }

    /// Account `a` held `old` (encoded; `None`: none) before this block; kept
    /// only the first time the block changes it.
    pub(super) fn account(&mut self, a: [u8; 20], old: Option<&[u8]>) -> Result<()> {
        let key = (a, self.number);
        if self.accounts.get(key)?.is_none() {
            self.accounts.insert(key, old.unwrap_or_default())?;
            self.changed_accounts.push(a);
        }
        Ok(())
    }

    /// Slot `slot` of `a` held `old` before this block; kept only the first
    /// time the block changes it.
    pub(super) fn slot(&mut self, a: [u8; 20], slot: [u8; 32], old: [u8; 32]) -> Result<()> {
        let key = (a, slot, self.number);
        if self.storage.get(key)?.is_none() {
            self.storage.insert(key, old)?;
            self.changed_slots.push((a, slot));
        }
        Ok(())
    }

    /// Writes the list of what the block changed.
    pub(super) fn finish(self, txn: &WriteTransaction) -> Result<()> {
        let mut list = Vec::with_capacity(
            4 + 20 * self.changed_accounts.len() + 52 * self.changed_slots.len(),
        );
        let n = u32::try_from(self.changed_accounts.len()).expect("fewer than 2^32 accounts");
        list.extend_from_slice(&n.to_be_bytes());
        for a in &self.changed_accounts {
            list.extend_from_slice(a);
        }
        for (a, s) in &self.changed_slots {
            list.extend_from_slice(a);
            list.extend_from_slice(s);
        }
        txn.open_table(BLOCK_CHANGES)?
            .insert(self.number, list.as_slice())?;
        Ok(())
    }
}

/// Account `a` as of the end of block `n`, if a later block changed it
/// (`Some(None)`: it did not exist then); `None`: read the current state.
pub(super) fn account_at(
    history: &impl ReadableTable<([u8; 20], u64), &'static [u8]>,
    a: [u8; 20],
    n: u64,
) -> Result<Option<Option<AccountInfo>>> {
    let Some(entry) = history.range((a, n + 1)..=(a, u64::MAX))?.next() else {
        return Ok(None);
    };
    let old = entry?.1;
    let old = old.value();
    Ok(Some(if old.is_empty() {
        None
    } else {
        Some(decode_account(old)?)
    }))
}

/// Slot `slot` of `a` as of the end of block `n`, if a later block changed
/// it; `None`: read the current state.
pub(super) fn slot_at(
    history: &impl ReadableTable<([u8; 20], [u8; 32], u64), [u8; 32]>,
    a: [u8; 20],
    slot: [u8; 32],
    n: u64,
) -> Result<Option<U256>> {
    let Some(entry) = history
        .range((a, slot, n + 1)..=(a, slot, u64::MAX))?
        .next()
    else {
        return Ok(None);
    };
    Ok(Some(U256::from_be_bytes(entry?.1.value())))
}

/// Removes block `number`'s history and returns the changes that put the
/// state back as it was before the block.
pub(super) fn take_block(txn: &WriteTransaction, number: u64) -> Result<StateChangeset> {
    let list = txn
        .open_table(BLOCK_CHANGES)?
        .remove(number)?
        .map(|v| v.value().to_vec())
        .ok_or_else(|| Error::Corrupt(format!("block {number} has no recorded changes")))?;
    let corrupt = || Error::Corrupt(format!("block {number}: bad list of changes"));
    let (count, rest) = list.split_first_chunk::<4>().ok_or_else(corrupt)?;
    let n = u32::from_be_bytes(*count) as usize;
    if rest.len() < 20 * n || !(rest.len() - 20 * n).is_multiple_of(52) {
        return Err(corrupt());
    }
    let (accounts_list, slots_list) = rest.split_at(20 * n);
    let mut history = txn.open_table(ACCOUNT_HISTORY)?;
    let mut accounts = Vec::with_capacity(n);
    for a in accounts_list.chunks_exact(20) {
        let a: [u8; 20] = a.try_into().expect("20 bytes");
        let old = history
            .remove((a, number))?
            .map(|v| v.value().to_vec())
            .ok_or_else(corrupt)?;
        let info = if old.is_empty() {
            None
        } else {
            Some(decode_account(&old)?)
        };
        accounts.push((Address::from(a), info));
    }
    let mut history = txn.open_table(STORAGE_HISTORY)?;
    let mut storage: BTreeMap<[u8; 20], Vec<(U256, U256)>> = BTreeMap::new();
    for entry in slots_list.chunks_exact(52) {
        let a: [u8; 20] = entry[..20].try_into().expect("20 bytes");
        let slot: [u8; 32] = entry[20..].try_into().expect("32 bytes");
        let old = history
            .remove((a, slot, number))?
            .map(|v| v.value())
            .ok_or_else(corrupt)?;
        storage
            .entry(a)
            .or_default()
            .push((U256::from_be_bytes(slot), U256::from_be_bytes(old)));
    }
    Ok(StateChangeset {
        accounts,
        storage: storage
            .into_iter()
            .map(|(a, storage)| PlainStorageChangeset {
                address: Address::from(a),
                wipe_storage: false,
                storage,
            })
            .collect(),
        contracts: Vec::new(),
    })
}

impl Store {
    /// Unwinds the head block: puts the state back as it was before it (from
    /// its recorded history, checked against the parent's state root), and
    /// makes its parent the head, in one durable transaction. The block stays
    /// stored (by hash) off the canonical chain; its transactions are no
    /// longer indexed. Returns it. Used to reorganise blocks that are not
    /// final; the caller checks finality.
    ///
    /// # Errors
    ///
    /// The head is the genesis block or predates the history, or the store
    /// fails.
    pub fn unwind_head(&self) -> Result<StoredBlock> {
        let reader = self.reader()?;
        let (number, hash) = reader.head()?;
        if number == 0 {
            return Err(Error::StateUnavailable(
                "the genesis block cannot be unwound".into(),
            ));
        }
        let block = reader
            .block(hash)?
            .ok_or_else(|| Error::Corrupt(format!("head block {hash} missing")))?;
        let parent = reader
            .header(block.header.parent_hash)?
            .ok_or_else(|| Error::Corrupt(format!("parent of head {hash} missing")))?;
        drop(reader);
        let txn = self.db.begin_write()?;
        debug_assert_eq!(next_number(&txn)?, number + 1);
        let changes = take_block(&txn, number)?;
        let root = apply_changes(&txn, &changes, None)?;
        if root != parent.state_root {
            return Err(Error::Corrupt(format!(
                "unwinding block {number} gives state root {root}, not its parent's {}",
                parent.state_root
            )));
        }
        {
            let mut lookup = txn.open_table(TX_LOOKUP)?;
            for tx in &block.transactions {
                lookup.remove(tx.tx_hash().0)?;
            }
        }
        txn.open_table(CANONICAL)?.remove(number)?;
        let mut head = (number - 1).to_be_bytes().to_vec();
        head.extend_from_slice(block.header.parent_hash.as_slice());
        txn.open_table(META)?.insert(HEAD_KEY, head.as_slice())?;
        txn.commit()?;
        Ok(block)
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::B256;
    use alloy_trie::KECCAK_EMPTY;

    use super::*;
    use crate::spec::ChainSpec;

    fn info(balance: u64) -> AccountInfo {
        AccountInfo {
            balance: U256::from(balance),
            code_hash: KECCAK_EMPTY,
            ..Default::default()
        }
    }

    /// Each block's state reads back through the history (accounts created,
    /// changed and destroyed, slots set, cleared and wiped), and unwinding
    /// the blocks one by one returns exactly to each parent's state root.
    #[test]
    fn past_states_read_back_and_blocks_unwind_to_their_parents() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.init_genesis(&ChainSpec::dev(1)).unwrap();
        let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        let slots = |addr: Address, wipe: bool, kv: &[(u64, u64)]| PlainStorageChangeset {
            address: addr,
            wipe_storage: wipe,
            storage: kv
                .iter()
                .map(|(k, v)| (U256::from(*k), U256::from(*v)))
                .collect(),
        };
        let blocks = [
            StateChangeset {
                accounts: vec![(a, Some(info(1))), (b, Some(info(2)))],
                storage: vec![slots(a, false, &[(1, 10), (2, 20)])],
                contracts: vec![],
            },
            StateChangeset {
                accounts: vec![(a, Some(info(3)))],
                storage: vec![slots(a, false, &[(1, 0), (3, 30)])],
                contracts: vec![],
            },
            StateChangeset {
                accounts: vec![(b, None)],
                storage: vec![slots(a, true, &[(2, 21)])],
                contracts: vec![],
            },
        ];
        let mut headers = vec![
            store
                .reader()
                .unwrap()
                .header(store.reader().unwrap().head().unwrap().1)
                .unwrap()
                .unwrap(),
        ];
        for changes in &blocks {
            headers.push(store.commit_test_block(changes).header);
        }
        // (block, account a's balance, b's balance, a's slots 1..=3)
        type Expected = (u64, Option<u64>, Option<u64>, [u64; 3]);
        let expect: [Expected; 4] = [
            (0, None, None, [0, 0, 0]),
            (1, Some(1), Some(2), [10, 20, 0]),
            (2, Some(3), Some(2), [0, 20, 30]),
            (3, Some(3), None, [0, 21, 0]),
        ];
        for (n, ba, bb, s) in expect {
            let r = store.reader().unwrap().at(n).unwrap();
            assert_eq!(r.head().unwrap().0, n);
            assert_eq!(
                r.account(a).unwrap().map(|i| i.balance),
                ba.map(U256::from),
                "a at {n}"
            );
            assert_eq!(
                r.account(b).unwrap().map(|i| i.balance),
                bb.map(U256::from),
                "b at {n}"
            );
            for (i, v) in s.iter().enumerate() {
                assert_eq!(
                    r.storage(a, U256::from(i + 1)).unwrap(),
                    U256::from(*v),
                    "slot {} at {n}",
                    i + 1
                );
            }
        }
        let err = store.reader().unwrap().at(4).unwrap_err().to_string();
        assert!(err.contains("above the head"), "{err}");
        for n in (1..=3u64).rev() {
            let unwound = store.unwind_head().unwrap();
            assert_eq!(unwound.header.number, n);
            let r = store.reader().unwrap();
            let parent = &headers[n as usize - 1];
            assert_eq!(r.head().unwrap(), (n - 1, parent.hash_slow()));
            assert_eq!(r.state_root().unwrap(), parent.state_root);
            assert_eq!(r.canonical_hash(n).unwrap(), None);
        }
        assert!(store.unwind_head().is_err());
        // The chain grows again from genesis, with history for the new block.
        let again = store.commit_test_block(&blocks[1]);
        assert_eq!(again.header.number, 1);
        let r = store.reader().unwrap().at(0).unwrap();
        assert_eq!(r.account(a).unwrap(), None);
        assert_ne!(B256::ZERO, again.header.state_root);
    }
}
