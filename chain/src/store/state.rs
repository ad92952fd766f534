//! The state tables and the state root: plain accounts, storage and code as
//! blocks change them, the tries over them kept in step ([`super::trie`]),
//! and each account's storage root kept beside them.

use std::collections::BTreeSet;

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_trie::{EMPTY_ROOT_HASH, TrieAccount};
use redb::{ReadableTable, WriteTransaction};
use revm::database::states::StateChangeset;

use super::history::Recorder;
use super::trie::{ACCOUNT_TRIE, TRIE_BRANCHES, TRIE_LEAVES, Tries};
use super::{
    ACCOUNTS, CODE, META, STORAGE, STORAGE_ROOTS, STORAGE_ROOTS_KEY, TRIES_KEY, decode_account,
    encode_account,
};
use crate::Result;

/// Writes `changes` to the state tables and brings the tries up to date;
/// returns the new state root. Costs O(changed keys × depth): only the
/// storage tries and account leaves `changes` touched are rehashed. With
/// `block`, the values it overwrites are recorded as that block's history.
pub(super) fn apply_changes(
    txn: &WriteTransaction,
    changes: &StateChangeset,
    block: Option<u64>,
) -> Result<B256> {
    apply_plain(txn, changes, block)?;
    if txn.open_table(META)?.get(TRIES_KEY)?.is_none() {
        // A datadir from before the tries were kept: build them once.
        return rebuild_tries(txn);
    }
    let mut tries = Tries::open(txn)?;
    let mut roots = txn.open_table(STORAGE_ROOTS)?;
    let mut touched: BTreeSet<Address> = changes.accounts.iter().map(|(a, _)| *a).collect();
    for change in &changes.storage {
        let owner = keccak256(change.address);
        touched.insert(change.address);
        if change.wipe_storage {
            tries.clear(owner)?;
        }
        let mut keys = Vec::with_capacity(change.storage.len());
        for (slot, value) in &change.storage {
            let key = keccak256(slot.to_be_bytes::<32>());
            let leaf = (!value.is_zero()).then(|| alloy_rlp::encode(value));
            tries.set_leaf(owner, key, leaf.as_deref())?;
            keys.push(key);
        }
        let root = tries.root(owner, &keys)?;
        if root == EMPTY_ROOT_HASH {
            roots.remove(change.address.0.0)?;
        } else {
            roots.insert(change.address.0.0, root.0)?;
        }
    }
    let accounts = txn.open_table(ACCOUNTS)?;
    let mut keys = Vec::with_capacity(touched.len());
    for address in touched {
        let key = keccak256(address);
        let leaf = account_leaf(&accounts, &roots, address.0.0)?;
        tries.set_leaf(ACCOUNT_TRIE, key, leaf.as_deref())?;
        keys.push(key);
    }
    tries.root(ACCOUNT_TRIE, &keys)
}

/// The account trie's leaf of `a` (RLP of its [`TrieAccount`]), `None` when
/// it has no account.
fn account_leaf(
    accounts: &impl ReadableTable<[u8; 20], &'static [u8]>,
    roots: &impl ReadableTable<[u8; 20], [u8; 32]>,
    a: [u8; 20],
) -> Result<Option<Vec<u8>>> {
    let Some(v) = accounts.get(a)? else {
        return Ok(None);
    };
    let info = decode_account(v.value())?;
    let storage_root = roots
        .get(a)?
        .map_or(EMPTY_ROOT_HASH, |r| B256::from(r.value()));
    Ok(Some(alloy_rlp::encode(TrieAccount {
        nonce: info.nonce,
        balance: info.balance,
        storage_root,
        code_hash: info.code_hash,
    })))
}

/// Builds every trie (and `storage_roots`) afresh from the plain tables and
/// returns the state root: genesis, and a datadir from before the tries.
pub(super) fn rebuild_tries(txn: &WriteTransaction) -> Result<B256> {
    txn.delete_table(TRIE_LEAVES)?;
    txn.delete_table(TRIE_BRANCHES)?;
    txn.delete_table(STORAGE_ROOTS)?;
    let mut tries = Tries::open(txn)?;
    let mut roots = txn.open_table(STORAGE_ROOTS)?;
    let storage = txn.open_table(STORAGE)?;
    let mut slots: Vec<([u8; 20], [u8; 32], [u8; 32])> = Vec::new();
    for entry in storage.range::<([u8; 20], [u8; 32])>(..)? {
        let (k, v) = entry?;
        let (a, slot) = k.value();
        slots.push((a, slot, v.value()));
    }
    for chunk in slots.chunk_by(|x, y| x.0 == y.0) {
        let owner = keccak256(chunk[0].0);
        let mut keys = Vec::with_capacity(chunk.len());
        for (_, slot, value) in chunk {
            let key = keccak256(slot);
            let leaf = alloy_rlp::encode(U256::from_be_bytes(*value));
            tries.set_leaf(owner, key, Some(&leaf))?;
            keys.push(key);
        }
        let root = tries.root(owner, &keys)?;
        if root != EMPTY_ROOT_HASH {
            roots.insert(chunk[0].0, root.0)?;
        }
    }
    let accounts = txn.open_table(ACCOUNTS)?;
    let mut keys = Vec::new();
    for entry in accounts.range::<[u8; 20]>(..)? {
        let a = entry?.0.value();
        let key = keccak256(a);
        let leaf = account_leaf(&accounts, &roots, a)?;
        tries.set_leaf(ACCOUNT_TRIE, key, leaf.as_deref())?;
        keys.push(key);
    }
    let root = tries.root(ACCOUNT_TRIE, &keys)?;
    let mut meta = txn.open_table(META)?;
    meta.insert(STORAGE_ROOTS_KEY, &b"1"[..])?;
    meta.insert(TRIES_KEY, &b"1"[..])?;
    Ok(root)
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

/// Writes `changes` to the plain account, storage and code tables; with
/// `block`, records what they overwrite as that block's history.
fn apply_plain(txn: &WriteTransaction, changes: &StateChangeset, block: Option<u64>) -> Result<()> {
    let mut history = block.map(|n| Recorder::open(txn, n)).transpose()?;
    let mut accounts = txn.open_table(ACCOUNTS)?;
    let mut storage = txn.open_table(STORAGE)?;
    let mut code = txn.open_table(CODE)?;
    for (hash, bytecode) in &changes.contracts {
        code.insert(hash.0, bytecode.original_byte_slice())?;
    }
    for (address, info) in &changes.accounts {
        let old = match info {
            Some(info) => accounts.insert(address.0.0, encode_account(info).as_slice())?,
            None => accounts.remove(address.0.0)?,
        };
        if let Some(h) = &mut history {
            h.account(address.0.0, old.as_ref().map(|v| v.value()))?;
        }
    }
    for change in &changes.storage {
        let a = change.address.0.0;
        if change.wipe_storage {
            let slots: Vec<([u8; 32], [u8; 32])> = storage
                .range((a, [0u8; 32])..=(a, [0xffu8; 32]))?
                .map(|e| e.map(|(k, v)| (k.value().1, v.value())))
                .collect::<Result<_, _>>()?;
            for (s, old) in slots {
                storage.remove((a, s))?;
                if let Some(h) = &mut history {
                    h.slot(a, s, old)?;
                }
            }
        }
        for (slot, value) in &change.storage {
            let key = (a, slot.to_be_bytes::<32>());
            let old = if value.is_zero() {
                storage.remove(key)?
            } else {
                storage.insert(key, value.to_be_bytes::<32>())?
            };
            if let Some(h) = &mut history {
                h.slot(a, key.1, old.map_or([0; 32], |v| v.value()))?;
            }
        }
    }
    drop((accounts, storage, code));
    if let Some(h) = history {
        h.finish(txn)?;
    }
    Ok(())
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

    /// The block path's state root (incremental tries) equals a full
    /// recompute as storage is set, cleared, wiped and accounts destroyed,
    /// and a datadir from before the tries gets them built in its next write.
    #[test]
    fn incremental_state_roots_give_the_full_state_root() {
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
            let cached = apply_changes(&txn, changes, None).unwrap();
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
        // An older datadir: no tries nor storage roots yet. The next write
        // builds them.
        let txn = store.db.begin_write().unwrap();
        let mut meta = txn.open_table(META).unwrap();
        meta.remove(STORAGE_ROOTS_KEY).unwrap();
        meta.remove(TRIES_KEY).unwrap();
        drop(meta);
        txn.delete_table(STORAGE_ROOTS).unwrap();
        txn.delete_table(TRIE_LEAVES).unwrap();
        txn.delete_table(TRIE_BRANCHES).unwrap();
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
