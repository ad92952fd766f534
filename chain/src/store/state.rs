//! The state tables and the state root: plain accounts, storage and code as
//! blocks change them, and each account's storage root kept beside them, so
//! that a block's state root rehashes only the storage it changed.

use alloy_primitives::{Address, B256, U256};
use alloy_trie::{EMPTY_ROOT_HASH, TrieAccount};
use redb::{ReadableTable, WriteTransaction};
use revm::database::states::StateChangeset;

use super::{
    ACCOUNTS, CODE, META, STORAGE, STORAGE_ROOTS, STORAGE_ROOTS_KEY, decode_account, encode_account,
};
use crate::Result;

pub(super) fn apply_changes(txn: &WriteTransaction, changes: &StateChangeset) -> Result<()> {
    apply_plain(txn, changes)?;
    update_storage_roots(txn, Some(changes))
}

/// Brings `storage_roots` up to date: for the accounts `changes` touched,
/// or for every account when the table is not complete yet (or `changes`
/// is `None`).
pub(super) fn update_storage_roots(
    txn: &WriteTransaction,
    changes: Option<&StateChangeset>,
) -> Result<()> {
    let complete = txn.open_table(META)?.get(STORAGE_ROOTS_KEY)?.is_some();
    let changes = changes.filter(|_| complete);
    let storage = txn.open_table(STORAGE)?;
    let mut roots = txn.open_table(STORAGE_ROOTS)?;
    let touched: Vec<[u8; 20]> = if let Some(changes) = changes {
        // Only the accounts whose storage this block changed (or wiped).
        let mut t: Vec<[u8; 20]> = changes.storage.iter().map(|c| c.address.0.0).collect();
        t.extend(
            changes
                .accounts
                .iter()
                .filter(|(_, info)| info.is_none())
                .map(|(a, _)| a.0.0),
        );
        t.sort_unstable();
        t.dedup();
        t
    } else {
        let accounts = txn.open_table(ACCOUNTS)?;
        accounts
            .range::<[u8; 20]>(..)?
            .map(|e| e.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()?
    };
    for a in touched {
        let root = storage_root_in(&storage, a)?;
        if root == EMPTY_ROOT_HASH {
            roots.remove(a)?;
        } else {
            roots.insert(a, root.0)?;
        }
    }
    drop(roots);
    if !complete {
        txn.open_table(META)?.insert(STORAGE_ROOTS_KEY, &b"1"[..])?;
    }
    Ok(())
}

/// The storage root of `a` from the plain storage table.
pub(super) fn storage_root_in(
    storage: &impl ReadableTable<([u8; 20], [u8; 32]), [u8; 32]>,
    a: [u8; 20],
) -> Result<B256> {
    let slots = slots_in(storage, a)?;
    Ok(if slots.is_empty() {
        EMPTY_ROOT_HASH
    } else {
        alloy_trie::root::storage_root_unhashed(slots)
    })
}

/// Every stored (non-zero) slot of `a`, by slot.
pub(super) fn slots_in(
    storage: &impl ReadableTable<([u8; 20], [u8; 32]), [u8; 32]>,
    a: [u8; 20],
) -> Result<Vec<(B256, U256)>> {
    Ok(storage
        .range((a, [0u8; 32])..=(a, [0xffu8; 32]))?
        .map(|e| e.map(|(k, v)| (B256::from(k.value().1), U256::from_be_bytes(v.value()))))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Writes `changes` to the plain account, storage and code tables.
fn apply_plain(txn: &WriteTransaction, changes: &StateChangeset) -> Result<()> {
    let mut accounts = txn.open_table(ACCOUNTS)?;
    let mut storage = txn.open_table(STORAGE)?;
    let mut code = txn.open_table(CODE)?;
    for (hash, bytecode) in &changes.contracts {
        code.insert(hash.0, bytecode.original_byte_slice())?;
    }
    for (address, info) in &changes.accounts {
        match info {
            Some(info) => accounts.insert(address.0.0, encode_account(info).as_slice())?,
            None => accounts.remove(address.0.0)?,
        };
    }
    for change in &changes.storage {
        let a = change.address.0.0;
        if change.wipe_storage {
            let slots: Vec<[u8; 32]> = storage
                .range((a, [0u8; 32])..=(a, [0xffu8; 32]))?
                .map(|e| e.map(|(k, _)| k.value().1))
                .collect::<Result<_, _>>()?;
            for s in slots {
                storage.remove((a, s))?;
            }
        }
        for (slot, value) in &change.storage {
            let key = (a, slot.to_be_bytes::<32>());
            if value.is_zero() {
                storage.remove(key)?;
            } else {
                storage.insert(key, value.to_be_bytes::<32>())?;
            }
        }
    }
    Ok(())
}

/// The state root after [`apply_changes`]: every account's leaf, with the
/// storage roots kept in `storage_roots` (O(accounts), storage untouched).
pub(super) fn state_root(txn: &WriteTransaction) -> Result<B256> {
    let roots = txn.open_table(STORAGE_ROOTS)?;
    state_root_with(&txn.open_table(ACCOUNTS)?, |a| {
        Ok(roots
            .get(a)?
            .map_or(EMPTY_ROOT_HASH, |r| B256::from(r.value())))
    })
}

/// The state root of the plain account and storage tables, every storage
/// root recomputed (O(state)): the check of a stored head.
pub(super) fn state_root_of(
    accounts: &impl ReadableTable<[u8; 20], &'static [u8]>,
    storage: &impl ReadableTable<([u8; 20], [u8; 32]), [u8; 32]>,
) -> Result<B256> {
    state_root_with(accounts, |a| storage_root_in(storage, a))
}

/// The state root of `accounts`, each with the storage root `storage_root` gives.
fn state_root_with(
    accounts: &impl ReadableTable<[u8; 20], &'static [u8]>,
    mut storage_root: impl FnMut([u8; 20]) -> Result<B256>,
) -> Result<B256> {
    let mut leaves = Vec::new();
    for entry in accounts.range::<[u8; 20]>(..)? {
        let (k, v) = entry?;
        let info = decode_account(v.value())?;
        leaves.push((
            Address::from(k.value()),
            TrieAccount {
                nonce: info.nonce,
                balance: info.balance,
                storage_root: storage_root(k.value())?,
                code_hash: info.code_hash,
            },
        ));
    }
    Ok(alloy_trie::root::state_root_unhashed(leaves))
}

#[cfg(test)]
mod tests {
    use alloy_trie::KECCAK_EMPTY;
    use redb::ReadableDatabase;
    use revm::state::AccountInfo;

    use super::super::Store;
    use super::*;
    use crate::spec::ChainSpec;

    /// The block path's state root (cached storage roots) equals a full
    /// recompute as storage is set, cleared, wiped and accounts destroyed,
    /// and a datadir from before the cache gets it built in its next write.
    #[test]
    fn cached_storage_roots_give_the_full_state_root() {
        use revm::database::states::{PlainStorageChangeset, StateChangeset};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.init_genesis(&ChainSpec::dev(1)).unwrap();
        let info = |nonce| AccountInfo {
            nonce,
            code_hash: KECCAK_EMPTY,
            ..Default::default()
        };
        let slots = |a: Address, wipe: bool, kv: &[(u64, u64)]| PlainStorageChangeset {
            address: a,
            wipe_storage: wipe,
            storage: kv
                .iter()
                .map(|(k, v)| (U256::from(*k), U256::from(*v)))
                .collect(),
        };
        let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        let steps = [
            StateChangeset {
                accounts: vec![(a, Some(info(1))), (b, Some(info(1)))],
                storage: vec![
                    slots(a, false, &[(1, 5), (2, 6)]),
                    slots(b, false, &[(9, 9)]),
                ],
                contracts: vec![],
            },
            StateChangeset {
                accounts: vec![(a, Some(info(2)))],
                storage: vec![slots(a, false, &[(1, 0), (3, 7)])],
                contracts: vec![],
            },
            StateChangeset {
                accounts: vec![(b, None)],
                storage: vec![slots(b, true, &[])],
                contracts: vec![],
            },
        ];
        let cached_and_full = |changes: &StateChangeset| {
            let txn = store.db.begin_write().unwrap();
            apply_changes(&txn, changes).unwrap();
            let cached = state_root(&txn).unwrap();
            let full = state_root_of(
                &txn.open_table(ACCOUNTS).unwrap(),
                &txn.open_table(STORAGE).unwrap(),
            )
            .unwrap();
            txn.commit().unwrap();
            (cached, full)
        };
        for changes in &steps {
            let (cached, full) = cached_and_full(changes);
            assert_eq!(cached, full);
        }
        // An older datadir: no cache yet. The next write builds it.
        let txn = store.db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .remove(STORAGE_ROOTS_KEY)
            .unwrap();
        txn.delete_table(STORAGE_ROOTS).unwrap();
        txn.commit().unwrap();
        let (cached, full) = cached_and_full(&StateChangeset {
            accounts: vec![(b, Some(info(1)))],
            storage: vec![],
            contracts: vec![],
        });
        assert_eq!(cached, full);
        let roots = store.db.begin_read().unwrap();
        assert!(
            roots
                .open_table(STORAGE_ROOTS)
                .unwrap()
                .get(a.0.0)
                .unwrap()
                .is_some()
        );
    }
}
