//! Incremental Merkle-Patricia tries kept in redb, so that a block's state
//! root costs O(changed keys × depth) instead of O(state).
//!
//! Two tables hold every trie of the state (the account trie and one storage
//! trie per account, told apart by a 32-byte *owner*: zero for the account
//! trie, the account's hashed address for its storage):
//!
//! - `trie_leaves`: owner ++ hashed key → the leaf's RLP value, so the keys
//!   under any path are one sorted range;
//! - `trie_branches`: owner ++ path (one byte per nibble) → the RLP of the
//!   branch node at that path (children as `alloy-trie` [`RlpNode`]s).
//!
//! Invariant: `trie_branches` holds exactly the branch nodes of the current
//! tries. After leaves change, [`Tries::root`] walks down only the paths of
//! the changed keys: a child with no changed key below it is taken from the
//! stored branch, any other is rebuilt from the leaves (a leaf, or an
//! extension to the branch at the keys' common prefix); the branches that
//! stopped existing (only ever on a changed path) are removed. Extension and
//! leaf nodes are not stored: the leaves table gives them in two lookups.
//! Node encodings are `alloy-trie`'s, and the tests hold the result against
//! its hash builder.

use std::collections::BTreeSet;

use alloy_primitives::{B256, Bytes, keccak256};
use alloy_rlp::{Decodable, Encodable};
use alloy_trie::nodes::{BranchNode, ExtensionNode, LeafNode, RlpNode};
use alloy_trie::{EMPTY_ROOT_HASH, Nibbles, TrieMask};
use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::{Error, Result};

/// owner ++ hashed key → RLP value of the leaf.
pub(super) const TRIE_LEAVES: TableDefinition<'_, &[u8], &[u8]> =
    TableDefinition::new("trie_leaves");
/// owner ++ nibble path → RLP of the branch node there.
pub(super) const TRIE_BRANCHES: TableDefinition<'_, &[u8], &[u8]> =
    TableDefinition::new("trie_branches");

/// The owner of the account trie; a storage trie's owner is its account's
/// hashed address.
pub(super) const ACCOUNT_TRIE: B256 = B256::ZERO;

/// A key's 64 nibbles.
type Path = [u8; 64];

/// The tries of one write transaction.
pub(super) struct Tries<'txn> {
    leaves: Table<'txn, &'static [u8], &'static [u8]>,
    branches: Table<'txn, &'static [u8], &'static [u8]>,
}

impl<'txn> Tries<'txn> {
    /// Opens the trie tables in `txn`.
    pub(super) fn open(txn: &'txn WriteTransaction) -> Result<Self> {
        Ok(Self {
            leaves: txn.open_table(TRIE_LEAVES)?,
            branches: txn.open_table(TRIE_BRANCHES)?,
        })
    }

    /// Sets leaf `key` of trie `owner` to `value`, or removes it (`None`).
    /// The root is stale until [`Tries::root`] is given the key.
    pub(super) fn set_leaf(&mut self, owner: B256, key: B256, value: Option<&[u8]>) -> Result<()> {
        let k = leaf_key(owner, &key.0);
        match value {
            Some(v) => self.leaves.insert(k.as_slice(), v)?,
            None => self.leaves.remove(k.as_slice())?,
        };
        Ok(())
    }

    /// Removes every leaf and branch of trie `owner` (a wiped storage).
    pub(super) fn clear(&mut self, owner: B256) -> Result<()> {
        let (lo, hi) = (leaf_key(owner, &[0; 32]), leaf_key(owner, &[0xff; 32]));
        self.leaves
            .retain_in::<&[u8], _>(lo.as_slice()..=hi.as_slice(), |_, _| false)?;
        let mut end = owner.to_vec();
        end.push(0xff);
        self.branches
            .retain_in::<&[u8], _>(owner.as_slice()..end.as_slice(), |_, _| false)?;
        Ok(())
    }

    /// The root of trie `owner` once the leaves at `changed` (hashed keys)
    /// were set, bringing its stored branches up to date.
    pub(super) fn root(&mut self, owner: B256, changed: &[B256]) -> Result<B256> {
        let mut keys: Vec<Path> = changed.iter().map(|k| unpack(&k.0)).collect();
        keys.sort_unstable();
        keys.dedup();
        // The branches on the changed paths before the change: those not
        // rebuilt below no longer exist.
        let mut old = BTreeSet::new();
        for key in &keys {
            self.branches_on(owner, key, &mut old)?;
        }
        let mut new = BTreeSet::new();
        let root = self.slot(owner, &[], &keys, &mut new)?;
        for path in old.difference(&new) {
            self.branches.remove(branch_key(owner, path).as_slice())?;
        }
        Ok(root.map_or(EMPTY_ROOT_HASH, keccak256))
    }

    /// Adds to `out` the paths of the stored branches from the root towards `key`.
    fn branches_on(&self, owner: B256, key: &Path, out: &mut BTreeSet<Vec<u8>>) -> Result<()> {
        let mut prefix = Vec::new();
        while let Some(top) = self.top_branch(owner, &prefix)? {
            if !key.starts_with(&top) {
                break;
            }
            prefix = top.clone();
            out.insert(top);
            prefix.push(key[prefix.len()]);
        }
        Ok(())
    }

    /// The path of the highest stored branch under `prefix`: in path order a
    /// branch comes before every branch below it.
    fn top_branch(&self, owner: B256, prefix: &[u8]) -> Result<Option<Vec<u8>>> {
        let start = branch_key(owner, prefix);
        let Some(entry) = self.branches.range::<&[u8]>(start.as_slice()..)?.next() else {
            return Ok(None);
        };
        let key = entry?.0;
        let key = key.value();
        Ok(key.starts_with(&start).then(|| key[32..].to_vec()))
    }

    /// The first and last leaf under `prefix`, with the first one's value.
    fn bounds(&self, owner: B256, prefix: &[u8]) -> Result<Option<(Path, Path, Vec<u8>)>> {
        bounds(&self.leaves, owner, prefix)
    }

    /// The RLP of the node a branch at `prefix[..len-1]` points to for the
    /// keys under `prefix` (`None`: none), given `keys`, the changed keys
    /// under `prefix`, sorted.
    fn slot(
        &mut self,
        owner: B256,
        prefix: &[u8],
        keys: &[Path],
        new: &mut BTreeSet<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>> {
        let Some((first, last, value)) = self.bounds(owner, prefix)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        if first == last {
            LeafNode::new(Nibbles::from_nibbles(&first[prefix.len()..]), value).encode(&mut out);
            return Ok(Some(out));
        }
        let common = first.iter().zip(&last).take_while(|(a, b)| a == b).count();
        let path = &first[..common];
        let lo = keys.partition_point(|k| k[..common] < *path);
        let hi = keys.partition_point(|k| k[..common] <= *path);
        let branch = self.branch(owner, path, &keys[lo..hi], new)?;
        if common == prefix.len() {
            return Ok(Some(branch));
        }
        let ext = Nibbles::from_nibbles(&first[prefix.len()..common]);
        ExtensionNode::new(ext, RlpNode::from_rlp(&branch)).encode(&mut out);
        Ok(Some(out))
    }

    /// The RLP of the branch node at `path` (the keys under it differ at
    /// nibble `path.len()`), given `keys`, the changed keys under it, sorted.
    fn branch(
        &mut self,
        owner: B256,
        path: &[u8],
        keys: &[Path],
        new: &mut BTreeSet<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let key = branch_key(owner, path);
        let stored = self
            .branches
            .get(key.as_slice())?
            .map(|v| v.value().to_vec());
        let known = stored.is_some();
        if keys.is_empty()
            && let Some(stored) = stored
        {
            return Ok(stored);
        }
        // The children before the change: those with no changed key stay.
        let mut before: [Option<RlpNode>; 16] = Default::default();
        if let Some(stored) = &stored {
            let node = BranchNode::decode(&mut stored.as_slice())
                .map_err(|e| Error::Corrupt(format!("trie branch: {e}")))?;
            for (n, child) in node.as_ref().children() {
                before[usize::from(n)] = child.cloned();
            }
        }
        let depth = path.len();
        let mut child = path.to_vec();
        child.push(0);
        let mut stack = Vec::new();
        let mut mask = TrieMask::default();
        for n in 0..16u8 {
            let lo = keys.partition_point(|k| k[depth] < n);
            let hi = keys.partition_point(|k| k[depth] <= n);
            let node = if lo == hi && known {
                before[usize::from(n)].take()
            } else {
                child[depth] = n;
                self.slot(owner, &child, &keys[lo..hi], new)?
                    .map(|rlp| RlpNode::from_rlp(&rlp))
            };
            if let Some(node) = node {
                stack.push(node);
                mask.set_bit(n);
            }
        }
        let mut out = Vec::new();
        BranchNode::new(stack, mask).encode(&mut out);
        self.branches.insert(key.as_slice(), out.as_slice())?;
        new.insert(path.to_vec());
        Ok(out)
    }
}

/// The first and last leaf of trie `owner` under `prefix`, with the first
/// one's value.
fn bounds(
    leaves: &impl ReadableTable<&'static [u8], &'static [u8]>,
    owner: B256,
    prefix: &[u8],
) -> Result<Option<(Path, Path, Vec<u8>)>> {
    let lo = leaf_key(owner, &pack(prefix, 0));
    let hi = leaf_key(owner, &pack(prefix, 0xf));
    let mut range = leaves.range::<&[u8]>(lo.as_slice()..=hi.as_slice())?;
    let Some(first) = range.next() else {
        return Ok(None);
    };
    let (k, v) = first?;
    let first = unpack(k.value()[32..].try_into().expect("64-byte key"));
    let value = v.value().to_vec();
    let last = match range.next_back() {
        Some(e) => unpack(e?.0.value()[32..].try_into().expect("64-byte key")),
        None => first,
    };
    Ok(Some((first, last, value)))
}

/// The Merkle proof of `key` in trie `owner` (EIP-1186): the RLP of every
/// node from the root towards `key`, root first, as far as the trie goes
/// (a proof of absence ends at the node where `key` would diverge);
/// `[0x80]` for an empty trie. O(depth) lookups.
pub(super) fn proof(
    leaves: &impl ReadableTable<&'static [u8], &'static [u8]>,
    branches: &impl ReadableTable<&'static [u8], &'static [u8]>,
    owner: B256,
    key: B256,
) -> Result<Vec<Bytes>> {
    let key = unpack(&key.0);
    let mut nodes = Vec::new();
    let mut prefix: Vec<u8> = Vec::new();
    while let Some((first, last, value)) = bounds(leaves, owner, &prefix)? {
        let mut out = Vec::new();
        if first == last {
            LeafNode::new(Nibbles::from_nibbles(&first[prefix.len()..]), value).encode(&mut out);
            nodes.push(out.into());
            break;
        }
        let common = first.iter().zip(&last).take_while(|(a, b)| a == b).count();
        let path = &first[..common];
        let branch = branches
            .get(branch_key(owner, path).as_slice())?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| Error::Corrupt(format!("trie {owner}: no branch at {path:x?}")))?;
        if common > prefix.len() {
            let ext = Nibbles::from_nibbles(&first[prefix.len()..common]);
            ExtensionNode::new(ext, RlpNode::from_rlp(&branch)).encode(&mut out);
            nodes.push(out.into());
            if !key.starts_with(path) {
                break;
            }
        }
        nodes.push(branch.into());
        prefix = key[..=common].to_vec();
    }
    if nodes.is_empty() {
        nodes.push(Bytes::from_static(&[alloy_rlp::EMPTY_STRING_CODE]));
    }
    Ok(nodes)
}

impl super::StoreReader {
    /// The EIP-1186 proof of `key` (a hashed address, or with `storage_of` a
    /// hashed slot of that account) at the head state, read from the kept
    /// tries in O(depth); `None` in a datadir whose tries are not built yet.
    ///
    /// # Errors
    ///
    /// The reader is positioned at a past block (only the head's tries are
    /// kept), or the store fails.
    pub fn trie_proof(
        &self,
        storage_of: Option<alloy_primitives::Address>,
        key: B256,
    ) -> Result<Option<Vec<Bytes>>> {
        if self.is_historical() {
            return Err(Error::StateUnavailable(
                "proofs are served for the head block only".into(),
            ));
        }
        if self
            .txn
            .open_table(super::META)?
            .get(super::TRIES_KEY)?
            .is_none()
        {
            return Ok(None);
        }
        let leaves = self.txn.open_table(TRIE_LEAVES)?;
        let branches = self.txn.open_table(TRIE_BRANCHES)?;
        let owner = storage_of.map_or(ACCOUNT_TRIE, keccak256);
        proof(&leaves, &branches, owner, key).map(Some)
    }
}

fn leaf_key(owner: B256, key: &[u8; 32]) -> [u8; 64] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(owner.as_slice());
    k[32..].copy_from_slice(key);
    k
}

fn branch_key(owner: B256, path: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(32 + path.len());
    k.extend_from_slice(owner.as_slice());
    k.extend_from_slice(path);
    k
}

fn unpack(bytes: &[u8; 32]) -> Path {
    let mut out = [0u8; 64];
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = b >> 4;
        out[2 * i + 1] = b & 0xf;
    }
    out
}

/// The 32-byte key made of `prefix` and then `fill` nibbles.
fn pack(prefix: &[u8], fill: u8) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        let nibble = |j: usize| prefix.get(j).copied().unwrap_or(fill);
        *byte = (nibble(2 * i) << 4) | nibble(2 * i + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use alloy_trie::HashBuilder;
    use proptest::prelude::*;
    use redb::{Database, ReadableDatabase};

    use super::*;

    /// The root `alloy-trie`'s hash builder gives for `leaves`.
    fn reference(leaves: &BTreeMap<B256, Vec<u8>>) -> B256 {
        let mut hb = HashBuilder::default();
        for (k, v) in leaves {
            hb.add_leaf(Nibbles::unpack(k), v);
        }
        hb.root()
    }

    /// Every stored branch of the database, by key.
    fn branches(db: &Database) -> Vec<(Vec<u8>, Vec<u8>)> {
        let txn = db.begin_read().unwrap();
        let Ok(t) = txn.open_table(TRIE_BRANCHES) else {
            return vec![];
        };
        t.range::<&[u8]>(..)
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value().to_vec(), v.value().to_vec())
            })
            .collect()
    }

    /// Keys from a small space (256 keys) that share long prefixes and
    /// diverge at either nibble of a byte: extensions, deep branches, inline
    /// leaves, and batches that often remove or overwrite existing keys.
    fn key() -> impl Strategy<Value = B256> {
        (prop::collection::vec(0usize..4, 3), 0u8..4).prop_map(|(head, tail)| {
            let mut k = [tail * 0x11; 32];
            for (i, h) in head.iter().enumerate() {
                k[i] = [0x00, 0x01, 0x10, 0x11][*h];
            }
            B256::from(k)
        })
    }

    fn batch() -> impl Strategy<Value = Vec<(u8, B256, Option<Vec<u8>>)>> {
        prop::collection::vec(
            (
                0u8..2,
                key(),
                prop::option::weighted(0.6, prop::collection::vec(any::<u8>(), 1..40)),
            ),
            0..24,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Batch after batch of sets, removals and wipes on two tries, the
        /// incremental root equals the hash builder's over all leaves, and
        /// the stored branches equal those of the same tries built afresh
        /// (no stale branch is left behind).
        #[test]
        fn incremental_roots_match_the_hash_builder(
            batches in prop::collection::vec((batch(), any::<bool>()), 1..8)
        ) {
            let dir = tempfile::tempdir().unwrap();
            let db = Database::create(dir.path().join("t.redb")).unwrap();
            let owners = [ACCOUNT_TRIE, B256::repeat_byte(7)];
            let mut model: [BTreeMap<B256, Vec<u8>>; 2] = Default::default();
            for (batch, wipe) in batches {
                let txn = db.begin_write().unwrap();
                {
                    let mut tries = Tries::open(&txn).unwrap();
                    if wipe {
                        tries.clear(owners[1]).unwrap();
                        model[1].clear();
                    }
                    let mut changed: [Vec<B256>; 2] = Default::default();
                    for (t, k, v) in &batch {
                        let t = usize::from(*t);
                        tries.set_leaf(owners[t], *k, v.as_deref()).unwrap();
                        match v {
                            Some(v) => model[t].insert(*k, v.clone()),
                            None => model[t].remove(k),
                        };
                        changed[t].push(*k);
                    }
                    for t in 0..2 {
                        let root = tries.root(owners[t], &changed[t]).unwrap();
                        prop_assert_eq!(root, reference(&model[t]));
                    }
                }
                txn.commit().unwrap();
            }
            // Afresh: every leaf at once into an empty database.
            let fresh = Database::create(dir.path().join("f.redb")).unwrap();
            let txn = fresh.begin_write().unwrap();
            {
                let mut tries = Tries::open(&txn).unwrap();
                for t in 0..2 {
                    for (k, v) in &model[t] {
                        tries.set_leaf(owners[t], *k, Some(v)).unwrap();
                    }
                    let keys: Vec<B256> = model[t].keys().copied().collect();
                    prop_assert_eq!(tries.root(owners[t], &keys).unwrap(), reference(&model[t]));
                }
            }
            txn.commit().unwrap();
            prop_assert_eq!(branches(&db), branches(&fresh));
        }
    }

    #[test]
    fn pack_and_unpack_are_inverse() {
        let k = [0xab; 32];
        assert_eq!(pack(&unpack(&k), 0), k);
        assert_eq!(pack(&[1, 2, 3], 0xf)[..2], [0x12, 0x3f]);
        assert_eq!(pack(&[], 0), [0; 32]);
    }
}
