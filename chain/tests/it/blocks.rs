//! Blocks: genesis, tags, Clique seal and difficulty, the period, empty blocks.

use alloy_consensus::Header;
use alloy_primitives::{Address, B256};
use netmind_chain::clique::recover_sealer;
use netmind_chain::node::Node;
use netmind_chain::pool::PoolConfig;
use netmind_chain::spec::{ChainSpec, dev_signers};
use serde_json::json;

use crate::util::{CHAIN_ID, TestNode, keys, quantity};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_and_block_tags() {
    let node = TestNode::start(0).await;
    assert_eq!(
        quantity(&node.call("eth_chainId", json!([])).await),
        CHAIN_ID
    );
    assert_eq!(
        node.call("net_version", json!([])).await,
        json!(CHAIN_ID.to_string())
    );
    assert!(
        node.call("web3_clientVersion", json!([]))
            .await
            .as_str()
            .unwrap()
            .starts_with("netmind/")
    );
    assert_eq!(node.block_number().await, 0);
    let genesis = node
        .call("eth_getBlockByNumber", json!(["earliest", false]))
        .await;
    let genesis_hash: B256 = serde_json::from_value(genesis["hash"].clone()).unwrap();
    assert_eq!(genesis_hash, ChainSpec::dev(0).genesis_header().hash_slow());
    for tag in ["latest", "pending", "safe", "finalized", "0x0"] {
        let b = node.call("eth_getBlockByNumber", json!([tag, false])).await;
        assert_eq!(b["hash"], genesis["hash"], "{tag}");
    }
    assert!(
        node.call("eth_getBlockByNumber", json!(["0x5", false]))
            .await
            .is_null()
    );
    assert_eq!(
        node.call("eth_getBlockByHash", json!([genesis_hash, true]))
            .await["number"],
        "0x0"
    );
    assert_eq!(node.call("eth_syncing", json!([])).await, json!(false));
    let signers = node.call("clique_getSigners", json!([])).await;
    assert_eq!(signers, json!([keys()[0].address()]));
    let gp = quantity(&node.call("eth_gasPrice", json!([])).await);
    let tip = quantity(&node.call("eth_maxPriorityFeePerGas", json!([])).await);
    assert!(gp > tip && tip > 0);
    node.running.unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn period_one_seals_signed_in_turn_blocks_every_second() {
    let node = TestNode::start(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(2600)).await;
    let head = node.block_number().await;
    assert!((2..=4).contains(&head), "head {head} after 2.6 s");
    let mut parent_ts = None;
    for n in 1..=head {
        let b = node
            .call("eth_getBlockByNumber", json!([format!("{n:#x}"), false]))
            .await;
        let header: alloy_rpc_types_eth::Header = serde_json::from_value(b.clone()).unwrap();
        let header: Header = header.inner;
        assert_eq!(header.hash_slow(), header_hash(&b));
        assert_eq!(recover_sealer(&header).unwrap(), keys()[0].address());
        assert_eq!(
            header.difficulty,
            alloy_primitives::U256::from(2),
            "in turn"
        );
        assert_eq!(header.beneficiary, Address::ZERO);
        assert_eq!(&header.extra_data[..7], b"netmind");
        if let Some(p) = parent_ts {
            assert!(header.timestamp > p, "period respected");
        }
        parent_ts = Some(header.timestamp);
    }
    node.running.unwrap().stop().await;
}

fn header_hash(b: &serde_json::Value) -> B256 {
    serde_json::from_value(b["hash"].clone()).unwrap()
}

#[test]
fn empty_blocks_keep_the_state_root_and_lower_the_base_fee() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ChainSpec::dev(1);
    netmind_chain::node::init(dir.path(), &spec).unwrap();
    let node = Node::open(dir.path(), dev_signers()[0].clone(), PoolConfig::default()).unwrap();
    let genesis = spec.genesis_header();
    let b1 = node.seal_next(genesis.timestamp + 1).unwrap();
    let b2 = node.seal_next(genesis.timestamp + 2).unwrap();
    // Paris at 0 (no block reward), system-contract addresses empty: nothing changes.
    assert_eq!(b1.header.state_root, genesis.state_root);
    assert_eq!(b2.header.state_root, genesis.state_root);
    assert_eq!(b2.header.parent_hash, b1.hash);
    assert_eq!(b1.header.receipts_root, alloy_trie::EMPTY_ROOT_HASH);
    // EIP-1559: an empty block lowers the base fee by 1/8.
    let f0 = genesis.base_fee_per_gas.unwrap();
    assert_eq!(b1.header.base_fee_per_gas, Some(f0 - f0 / 8));
    assert_eq!(
        b1.header.requests_hash,
        Some(alloy_eips::eip7685::EMPTY_REQUESTS_HASH)
    );
}

#[test]
fn a_non_authority_key_cannot_run_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    netmind_chain::node::init(dir.path(), &ChainSpec::dev(1)).unwrap();
    let err = Node::open(dir.path(), dev_signers()[1].clone(), PoolConfig::default()).unwrap_err();
    assert!(err.to_string().contains("is not an authority"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let err = Node::open(
        empty.path(),
        dev_signers()[0].clone(),
        PoolConfig::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("node init"), "{err}");
}
