//! Block import: the execution-apis recorded chain replayed with trusted seals,
//! blocks of one dev node imported into another with verified Clique seals, and
//! bad blocks (bad state root, bad receipts root, wrong parent, timestamp not
//! after the parent, malformed RLP, a seal by a non-authority), each refused with
//! its typed error while the head stays where it was.

use std::path::Path;
use std::sync::Arc;

use alloy_consensus::{Block, BlockBody, Header, TxEip1559};
use alloy_primitives::{B256, TxKind, U256};
use alloy_signer_local::PrivateKeySigner;
use netmind_chain::Error;
use netmind_chain::clique::seal;
use netmind_chain::import::{
    Field, ImportError, RlpBlock, SealMode, decode_block, decode_blocks, import_block, import_chain,
};
use netmind_chain::node::Node;
use netmind_chain::pool::PoolConfig;
use netmind_chain::spec::{ChainSpec, DEV_CHAIN_ID, dev_signers};
use netmind_chain::store::{Store, StoredBlock};

use crate::util::sign;

/// The execution-apis test chain: its genesis and `chain.rlp`.
pub(crate) fn recorded_chain() -> (ChainSpec, Vec<RlpBlock>) {
    let dir = crate::eip225::conformance_dir().join("execution-apis/tests");
    let spec = ChainSpec::from_genesis_file(&dir.join("genesis.json")).unwrap_or_else(|e| {
        panic!(
            "{e} (set NETMIND_CONFORMANCE_DIR to the conformance data; see ../shared/conformance/README.md)"
        )
    });
    let bytes = std::fs::read(dir.join("chain.rlp")).unwrap();
    (spec, decode_blocks(&bytes).unwrap())
}

/// Initialises `dir` with the recorded chain's genesis and imports every block.
pub(crate) fn import_recorded(dir: &Path) -> (Arc<ChainSpec>, u64) {
    let (spec, blocks) = recorded_chain();
    let spec = Arc::new(spec);
    let store = Store::open(dir).unwrap();
    let genesis = store.init_genesis(&spec).unwrap();
    assert_eq!(
        genesis,
        "0x44fd89d504659cd58f48f4796b77a7e7012cf296a2409afa2f6c3cb99b5b3d99"
            .parse::<B256>()
            .unwrap(),
        "genesis hash of the recorded chain"
    );
    let want = blocks.len();
    let n = import_chain(&store, &spec, blocks, SealMode::Trusted, |_| {})
        .unwrap_or_else(|(n, e)| panic!("block {} refused: {e}", n + 1));
    assert_eq!(n, want);
    let head = store.reader().unwrap().head().unwrap();
    (spec, head.0)
}

#[test]
fn recorded_chain_imports_with_trusted_seals() {
    let dir = tempfile::tempdir().unwrap();
    let (_, head) = import_recorded(dir.path());
    let store = Store::open(dir.path()).unwrap();
    let reader = store.reader().unwrap();
    let (number, hash) = reader.head().unwrap();
    assert_eq!(number, head);
    let header = reader.header(hash).unwrap().unwrap();
    assert_eq!(reader.state_root().unwrap(), header.state_root);
}

#[test]
fn recorded_chain_needs_trusted_seals() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, blocks) = recorded_chain();
    let spec = Arc::new(spec);
    let store = Store::open(dir.path()).unwrap();
    store.init_genesis(&spec).unwrap();
    let block = blocks.into_iter().next().unwrap();
    let err = import_block(&store, &spec, block, SealMode::Verify).unwrap_err();
    assert!(
        matches!(err, Error::Import(ImportError::SealUnsupported)),
        "{err}"
    );
}

/// A dev chain with one sealed block holding a transfer, and a second datadir
/// with the same genesis only.
struct Pair {
    _a: tempfile::TempDir,
    b: tempfile::TempDir,
    spec: Arc<ChainSpec>,
    blocks: Vec<StoredBlock>,
}

fn pair(n: usize) -> Pair {
    let spec = ChainSpec::dev(1);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    netmind_chain::node::init(a.path(), &spec).unwrap();
    netmind_chain::node::init(b.path(), &spec).unwrap();
    let node = Node::open(a.path(), dev_signers()[0].clone(), PoolConfig::default()).unwrap();
    let key = &dev_signers()[1];
    let mut blocks = Vec::new();
    for i in 0..n {
        let tx = sign(
            key,
            TxEip1559 {
                chain_id: DEV_CHAIN_ID,
                nonce: i as u64,
                gas_limit: 21_000,
                max_fee_per_gas: 10_000_000_000,
                max_priority_fee_per_gas: 1_000_000_000,
                to: TxKind::Call(dev_signers()[2].address()),
                value: U256::from(1000 + i),
                ..Default::default()
            },
        );
        use alloy_eips::eip2718::Encodable2718;
        node.submit_raw(&tx.encoded_2718()).unwrap();
        let ts = node.head().0.timestamp + 1;
        blocks.push(node.seal_next(ts).unwrap());
    }
    Pair {
        _a: a,
        b,
        spec: Arc::new(spec),
        blocks,
    }
}

fn rlp_block(b: &StoredBlock) -> RlpBlock {
    Block {
        header: b.header.clone(),
        body: BlockBody {
            transactions: b.transactions.clone(),
            ommers: vec![],
            withdrawals: Some(Default::default()),
        },
    }
}

/// `block` with its header changed by `f` and sealed again by `key`.
fn tampered(block: &StoredBlock, key: &PrivateKeySigner, f: impl FnOnce(&mut Header)) -> RlpBlock {
    let mut b = rlp_block(block);
    f(&mut b.header);
    seal(&mut b.header, key).unwrap();
    b
}

fn head(store: &Store) -> (u64, B256) {
    store.reader().unwrap().head().unwrap()
}

/// Imports `block` into `store`, expecting a refusal that leaves the head alone.
fn refused(store: &Store, spec: &Arc<ChainSpec>, block: RlpBlock) -> ImportError {
    let before = head(store);
    let root_before = store.reader().unwrap().state_root().unwrap();
    let err = import_block(store, spec, block, SealMode::Verify).unwrap_err();
    assert_eq!(head(store), before, "head moved after: {err}");
    assert_eq!(store.reader().unwrap().state_root().unwrap(), root_before);
    match err {
        Error::Import(e) => e,
        other => panic!("not an import error: {other}"),
    }
}

#[test]
fn sealed_blocks_import_with_verified_seals() {
    let p = pair(2);
    let store = Store::open(p.b.path()).unwrap();
    for b in &p.blocks {
        let stored = import_block(&store, &p.spec, rlp_block(b), SealMode::Verify).unwrap();
        assert_eq!(stored.hash, b.hash);
        assert_eq!(stored.receipts, b.receipts);
    }
    assert_eq!(head(&store), (2, p.blocks[1].hash));
    // The same block again no longer extends the head.
    let err = refused(&store, &p.spec, rlp_block(&p.blocks[1]));
    assert!(matches!(err, ImportError::NotOnHead { .. }), "{err}");
}

#[test]
fn bad_blocks_are_refused_and_change_nothing() {
    let p = pair(1);
    let store = Store::open(p.b.path()).unwrap();
    let (spec, b1) = (&p.spec, &p.blocks[0]);
    let key = &dev_signers()[0];

    let err = refused(
        &store,
        spec,
        tampered(b1, key, |h| h.state_root = B256::repeat_byte(1)),
    );
    assert!(
        matches!(
            err,
            ImportError::Mismatch {
                field: Field::StateRoot,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().starts_with("state root mismatch"), "{err}");

    let err = refused(
        &store,
        spec,
        tampered(b1, key, |h| h.receipts_root = B256::repeat_byte(2)),
    );
    assert!(
        matches!(
            err,
            ImportError::Mismatch {
                field: Field::ReceiptsRoot,
                ..
            }
        ),
        "{err}"
    );

    let err = refused(
        &store,
        spec,
        tampered(b1, key, |h| h.parent_hash = B256::repeat_byte(3)),
    );
    assert!(matches!(err, ImportError::UnknownParent(_)), "{err}");

    let parent_ts = spec.genesis_header().timestamp;
    let err = refused(&store, spec, tampered(b1, key, |h| h.timestamp = parent_ts));
    assert!(matches!(err, ImportError::Timestamp { .. }), "{err}");

    let err = refused(&store, spec, tampered(b1, key, |h| h.gas_used += 1));
    assert!(
        matches!(
            err,
            ImportError::Mismatch {
                field: Field::GasUsed,
                ..
            }
        ),
        "{err}"
    );

    let err = refused(
        &store,
        spec,
        tampered(b1, key, |h| h.base_fee_per_gas = Some(7)),
    );
    assert!(
        matches!(
            err,
            ImportError::Mismatch {
                field: Field::BaseFee,
                ..
            }
        ),
        "{err}"
    );

    let stranger = PrivateKeySigner::random();
    let err = refused(&store, spec, tampered(b1, &stranger, |_| {}));
    assert!(matches!(err, ImportError::Seal(_)), "{err}");
    assert!(err.to_string().contains("unauthorized signer"), "{err}");

    // A body that does not match the header's transactions root.
    let mut b = rlp_block(b1);
    b.body.transactions.clear();
    let err = refused(&store, spec, b);
    assert!(
        matches!(
            err,
            ImportError::Mismatch {
                field: Field::TransactionsRoot,
                ..
            }
        ),
        "{err}"
    );

    // Malformed RLP: truncated, trailing bytes, garbage.
    let bytes = alloy_rlp::encode(rlp_block(b1));
    for bad in [&bytes[..bytes.len() - 1], &[0xc0, 0x01][..], &[0xff; 8][..]] {
        let err = decode_block(bad).unwrap_err();
        assert!(matches!(err, ImportError::Decode(_)), "{err}");
    }
    let mut trailing = bytes.clone();
    trailing.push(0x80);
    assert!(matches!(
        decode_block(&trailing),
        Err(ImportError::Decode(_))
    ));
    assert_eq!(head(&store), (0, spec.genesis_header().hash_slow()));

    // And the untouched block still imports.
    let block = decode_block(&bytes).unwrap();
    let stored = import_block(&store, spec, block, SealMode::Verify).unwrap();
    assert_eq!(stored.hash, b1.hash);
}
