//! `eth_getProof` (EIP-1186): Merkle proofs of an account and some of its
//! storage slots against the head's state root, so a light client or the
//! BSC bridge can check a balance or a slot with the block header alone.
//! They are read from the kept tries (`StoreReader::trie_proof`, O(depth)
//! per key); a datadir whose tries are not built yet gets them from
//! `alloy-trie`'s hash builder and proof retainer over the plain state
//! (O(state)), which the tests also hold the fast path against.

use alloy_consensus::constants::KECCAK_EMPTY;
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rpc_types_eth::{EIP1186AccountProofResponse, EIP1186StorageProof};
use alloy_serde::storage::JsonStorageKey;
use alloy_trie::proof::ProofRetainer;
use alloy_trie::{HashBuilder, Nibbles, TrieAccount};

use crate::error::{Error, Result};
use crate::store::StoreReader;

/// The most storage slots one `eth_getProof` may ask for.
pub const MAX_SLOTS: usize = 1024;

/// The proof of `address` and its `slots` at `reader`'s head, whose state
/// root must be `root` (the head header's).
///
/// # Errors
///
/// The store could not be read, or the state does not hash to `root`.
pub fn account_proof(
    reader: &StoreReader,
    root: B256,
    address: Address,
    slots: &[JsonStorageKey],
) -> Result<EIP1186AccountProofResponse> {
    let Some(account_proof) = reader.trie_proof(None, keccak256(address))? else {
        return account_proof_rebuilt(reader, root, address, slots);
    };
    if account_proof.first().map(keccak256) != Some(root) {
        return Err(Error::Corrupt(format!(
            "the kept account trie does not hash to the head's state root {root}"
        )));
    }
    let storage_proof = slots
        .iter()
        .map(|slot| {
            Ok(EIP1186StorageProof {
                key: *slot,
                value: reader.storage(address, U256::from_be_bytes(slot.as_b256().0))?,
                proof: reader
                    .trie_proof(Some(address), keccak256(slot.as_b256()))?
                    .unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let storage_hash = reader.storage_root(address)?;
    response(reader, address, storage_hash, account_proof, storage_proof)
}

/// [`account_proof`] rebuilt from the plain state with `alloy-trie`'s hash
/// builder: O(state), for a datadir whose tries are not built yet.
fn account_proof_rebuilt(
    reader: &StoreReader,
    root: B256,
    address: Address,
    slots: &[JsonStorageKey],
) -> Result<EIP1186AccountProofResponse> {
    // The account's storage trie, retaining the slots' paths.
    let targets: Vec<Nibbles> = slots
        .iter()
        .map(|s| Nibbles::unpack(keccak256(s.as_b256())))
        .collect();
    let (storage_hash, nodes) = trie(
        reader
            .storage_all(address)?
            .into_iter()
            .filter(|(_, v)| !v.is_zero())
            .map(|(k, v)| (keccak256(k), alloy_rlp::encode(v))),
        targets.clone(),
    );
    let storage_proof = slots
        .iter()
        .zip(&targets)
        .map(|(slot, path)| {
            Ok(EIP1186StorageProof {
                // As asked: a 32-byte key stays one, a short one a quantity (as geth).
                key: *slot,
                value: reader.storage(address, U256::from_be_bytes(slot.as_b256().0))?,
                proof: path_nodes(&nodes, path),
            })
        })
        .collect::<Result<Vec<_>>>()?;

    // The account trie, retaining the account's path.
    let mut leaves = Vec::new();
    for (a, info) in reader.accounts_all()? {
        let storage_root = if a == address {
            storage_hash
        } else {
            reader.storage_root(a)?
        };
        let account = TrieAccount {
            nonce: info.nonce,
            balance: info.balance,
            storage_root,
            code_hash: info.code_hash,
        };
        leaves.push((keccak256(a), alloy_rlp::encode(account)));
    }
    let path = Nibbles::unpack(keccak256(address));
    let (state_root, nodes) = trie(leaves, vec![path]);
    if state_root != root {
        return Err(Error::Corrupt(format!(
            "the state hashes to {state_root}, not the head's state root {root}"
        )));
    }
    let account_proof = path_nodes(&nodes, &path);
    response(reader, address, storage_hash, account_proof, storage_proof)
}

/// The `eth_getProof` answer: `address`'s fields at `reader`'s head with
/// its proofs.
fn response(
    reader: &StoreReader,
    address: Address,
    storage_hash: B256,
    account_proof: Vec<Bytes>,
    storage_proof: Vec<EIP1186StorageProof>,
) -> Result<EIP1186AccountProofResponse> {
    let info = reader.account(address)?;
    Ok(EIP1186AccountProofResponse {
        address,
        balance: info.as_ref().map_or(U256::ZERO, |i| i.balance),
        code_hash: info.as_ref().map_or(KECCAK_EMPTY, |i| i.code_hash),
        nonce: info.as_ref().map_or(0, |i| i.nonce),
        storage_hash,
        account_proof,
        storage_proof,
    })
}

/// The root of the trie of `leaves` (hashed key, RLP value; any order) and the
/// nodes on the paths to `targets`.
fn trie(
    leaves: impl IntoIterator<Item = (B256, Vec<u8>)>,
    targets: Vec<Nibbles>,
) -> (B256, alloy_trie::proof::ProofNodes) {
    let mut leaves: Vec<(Nibbles, Vec<u8>)> = leaves
        .into_iter()
        .map(|(k, v)| (Nibbles::unpack(k), v))
        .collect();
    leaves.sort_unstable_by_key(|l| l.0);
    let mut hb = HashBuilder::default().with_proof_retainer(ProofRetainer::new(targets));
    for (k, v) in &leaves {
        hb.add_leaf(*k, v);
    }
    let root = hb.root();
    (root, hb.take_proof_nodes())
}

/// The nodes from the root towards `path`, root first.
fn path_nodes(nodes: &alloy_trie::proof::ProofNodes, path: &Nibbles) -> Vec<Bytes> {
    nodes
        .matching_nodes_sorted(path)
        .into_iter()
        .map(|(_, node)| node)
        .collect()
}

#[cfg(test)]
mod tests {
    use revm::database::states::{PlainStorageChangeset, StateChangeset};
    use revm::state::AccountInfo;

    use super::*;
    use crate::spec::ChainSpec;
    use crate::store::Store;

    /// The proofs read from the kept tries equal those the hash builder
    /// retains over the whole state, for present and absent accounts and
    /// slots, small values (inline leaves) and large ones.
    #[test]
    fn kept_trie_proofs_equal_the_rebuilt_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.init_genesis(&ChainSpec::dev(1)).unwrap();
        let accounts: Vec<Address> = (1..=300u64)
            .map(|i| Address::left_padding_from(&i.to_be_bytes()))
            .collect();
        let rich = accounts[7];
        let changes = StateChangeset {
            accounts: accounts
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let info = AccountInfo {
                        balance: U256::from(i + 1),
                        nonce: i as u64,
                        code_hash: KECCAK_EMPTY,
                        ..Default::default()
                    };
                    (*a, Some(info))
                })
                .collect(),
            storage: vec![PlainStorageChangeset {
                address: rich,
                wipe_storage: false,
                storage: (0..200u64)
                    .map(|i| {
                        let v = if i % 2 == 0 {
                            U256::from(i + 1)
                        } else {
                            U256::MAX - U256::from(i)
                        };
                        (U256::from(i), v)
                    })
                    .collect(),
            }],
            contracts: vec![],
        };
        let block = store.commit_test_block(&changes);
        let root = block.header.state_root;
        let reader = store.reader().unwrap();
        let slots: Vec<JsonStorageKey> = [0u64, 1, 2, 3, 150, 199, 200, 10_000]
            .iter()
            .map(|i| JsonStorageKey::from(U256::from(*i)))
            .collect();
        for address in [rich, accounts[0], accounts[299], Address::repeat_byte(0x77)] {
            let fast = account_proof(&reader, root, address, &slots).unwrap();
            let full = account_proof_rebuilt(&reader, root, address, &slots).unwrap();
            assert_eq!(fast, full, "{address}");
        }
        assert!(account_proof(&reader, B256::ZERO, rich, &[]).is_err());
    }
}
