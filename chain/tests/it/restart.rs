//! Restarting from the datadir keeps the head and the state.

use alloy_consensus::TxLegacy;
use alloy_primitives::{Address, Bytes, TxKind, U256};
use serde_json::json;

use crate::util::{CHAIN_ID, GWEI, TestNode, keys, sign};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_head_and_state() {
    let mut node = TestNode::start(0).await;
    let k = keys();
    let to = Address::repeat_byte(9);
    for nonce in 0..3 {
        let tx = sign(
            &k[2],
            TxLegacy {
                chain_id: Some(CHAIN_ID),
                nonce,
                gas_price: 2 * GWEI,
                gas_limit: 21_000,
                to: TxKind::Call(to),
                value: U256::from(10),
                input: Bytes::new(),
            },
        );
        node.receipt(node.send(&tx).await).await;
    }
    let head = node
        .call("eth_getBlockByNumber", json!(["latest", false]))
        .await;
    let hash = node
        .call(
            "eth_getTransactionReceipt",
            json!([head["transactions"][0]]),
        )
        .await;
    node.stop().await;
    node.restart().await;
    assert_eq!(
        node.call("eth_getBlockByNumber", json!(["latest", false]))
            .await,
        head
    );
    assert_eq!(node.balance(to).await, U256::from(30));
    assert_eq!(node.nonce(k[2].address()).await, 3);
    assert_eq!(
        node.call(
            "eth_getTransactionReceipt",
            json!([head["transactions"][0]])
        )
        .await,
        hash
    );
    // And it keeps sealing on top.
    let tx = sign(
        &k[2],
        TxLegacy {
            chain_id: Some(CHAIN_ID),
            nonce: 3,
            gas_price: 2 * GWEI,
            gas_limit: 21_000,
            to: TxKind::Call(to),
            value: U256::from(10),
            input: Bytes::new(),
        },
    );
    let r = node.receipt(node.send(&tx).await).await;
    assert_eq!(r["blockNumber"], "0x4");
    let b4 = node
        .call("eth_getBlockByNumber", json!(["0x4", false]))
        .await;
    assert_eq!(b4["parentHash"], head["hash"]);
    node.stop().await;
}
