//! Block time against state size: committing blocks that change the same
//! number of accounts and storage slots while the state grows from 10k to
//! 1M accounts (and a contract from 10k to 1M slots), with the incremental
//! tries, next to rehashing the whole state in the same process (how the
//! state root was computed before the tries, kept as
//! `StoreReader::state_root` to check a stored head). Ignored by default;
//! run in release:
//! `cargo test --release -p netmind-chain --test it -- --ignored --nocapture bench_state_root`
//! (`NETMIND_BENCH_STATE_SIZES=10000,100000` for other sizes).

use std::time::{Duration, Instant};

use alloy_consensus::Header;
use alloy_primitives::{Address, B256, U256};
use netmind_chain::spec::ChainSpec;
use netmind_chain::store::{Store, StoredBlock};
use revm::database::states::{PlainStorageChangeset, StateChangeset};
use revm::state::AccountInfo;

/// Accounts and slots each measured block changes.
const CHANGED: usize = 2_000;
/// Measured blocks per state size.
const BLOCKS: usize = 5;

fn account(i: usize) -> Address {
    Address::left_padding_from(&(i as u64 + 1).to_be_bytes())
}

fn info(balance: u64) -> AccountInfo {
    AccountInfo {
        balance: U256::from(balance),
        code_hash: alloy_trie::KECCAK_EMPTY,
        ..Default::default()
    }
}

/// Commits one block with `changes`; returns its state root.
fn commit(store: &Store, changes: &StateChangeset) -> B256 {
    let (number, parent) = store.reader().unwrap().head().unwrap();
    let block = store
        .commit_block(changes, |root| {
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
        .unwrap();
    block.header.state_root
}

#[test]
#[ignore = "benchmark; run in release with --ignored"]
fn bench_state_root_against_state_size() {
    let sizes: Vec<usize> = std::env::var("NETMIND_BENCH_STATE_SIZES")
        .ok()
        .map(|s| s.split(',').map(|n| n.trim().parse().unwrap()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000]);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.init_genesis(&ChainSpec::dev(1)).unwrap();
    // A contract whose storage grows with the accounts.
    let contract = Address::repeat_byte(0xc0);
    let slots = |range: &mut dyn Iterator<Item = usize>, value: u64| PlainStorageChangeset {
        address: contract,
        wipe_storage: false,
        storage: range
            .map(|i| (U256::from(i), U256::from(value + i as u64)))
            .collect(),
    };
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let mut grown = 0;
    println!(
        "| accounts | slots | block commit, {CHANGED} accounts + {CHANGED} slots changed (median of {BLOCKS}) | full rehash | full / block |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for size in sizes {
        while grown < size {
            let n = (size - grown).min(50_000);
            let mut accounts: Vec<_> = (grown..grown + n)
                .map(|i| (account(i), Some(info(1))))
                .collect();
            accounts.push((contract, Some(info(1))));
            commit(
                &store,
                &StateChangeset {
                    accounts,
                    storage: vec![slots(&mut (grown..grown + n), 1)],
                    contracts: vec![],
                },
            );
            grown += n;
        }
        let mut times = Vec::new();
        let mut root = B256::ZERO;
        for b in 0..BLOCKS {
            let accounts = (0..CHANGED)
                .map(|_| (account(next(size)), Some(info(1_000 + b as u64))))
                .collect();
            let changed: Vec<usize> = (0..CHANGED).map(|_| next(size)).collect();
            let changes = StateChangeset {
                accounts,
                storage: vec![slots(&mut changed.into_iter(), 1_000 * (b as u64 + 1))],
                contracts: vec![],
            };
            let t = Instant::now();
            root = commit(&store, &changes);
            times.push(t.elapsed());
        }
        times.sort();
        let block = times[BLOCKS / 2];
        let t = Instant::now();
        let full = store.reader().unwrap().state_root().unwrap();
        let rehash = t.elapsed();
        assert_eq!(
            full, root,
            "the incremental state root differs from a full rehash"
        );
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "| {grown} | {grown} | {:.1} ms | {:.1} ms | {:.1} |",
            ms(block),
            ms(rehash),
            rehash.as_secs_f64() / block.as_secs_f64()
        );
    }
}
