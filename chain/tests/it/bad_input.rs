//! Bad input is refused with a clear error and changes nothing.

use alloy_consensus::{TxEip1559, TxEnvelope, TxLegacy};
use alloy_eips::eip2930::AccessList;
use alloy_primitives::{Address, Bytes, Signature, TxKind, U256};
use alloy_signer_local::PrivateKeySigner;
use serde_json::{Value, json};

use crate::transactions::raw;
use crate::util::{CHAIN_ID, GWEI, TestNode, keys, post, sign};

fn transfer(key: &PrivateKeySigner, chain_id: u64, nonce: u64, max_fee: u128) -> TxEnvelope {
    sign(
        key,
        TxEip1559 {
            chain_id,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: max_fee.min(GWEI),
            to: TxKind::Call(Address::repeat_byte(7)),
            value: U256::from(1),
            access_list: AccessList::default(),
            input: Bytes::new(),
        },
    )
}

/// Sends `raw`, expects an error with `code` whose message contains `needle`.
async fn refused(node: &TestNode, raw: Value, code: i64, needle: &str) {
    let e = node.call_err("eth_sendRawTransaction", json!([raw])).await;
    assert_eq!(e["code"], code, "{e}");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transactions_are_refused_and_change_nothing() {
    let node = TestNode::start(0).await;
    let k = keys();
    // One good transaction so that nonce 0 is used.
    let first = transfer(&k[1], CHAIN_ID, 0, 2 * GWEI);
    node.receipt(node.send(&first).await).await;
    let head = node.block_number().await;
    let balance = node.balance(k[1].address()).await;

    refused(
        &node,
        json!("0xdeadbeef"),
        -32602,
        "failed to decode signed transaction",
    )
    .await;
    refused(&node, json!("0x"), -32602, "failed to decode").await;
    refused(&node, json!("not hex"), -32602, "").await;
    let mut trailing = raw(&transfer(&k[1], CHAIN_ID, 1, 2 * GWEI)).to_vec();
    trailing.push(0);
    refused(
        &node,
        json!(Bytes::from(trailing)),
        -32602,
        "trailing bytes",
    )
    .await;

    // A signature that recovers to nothing (r = s = 0).
    let TxEnvelope::Eip1559(signed) = transfer(&k[1], CHAIN_ID, 1, 2 * GWEI) else {
        unreachable!()
    };
    let bad = TxEnvelope::Eip1559(alloy_consensus::Signed::new_unhashed(
        signed.tx().clone(),
        Signature::new(U256::ZERO, U256::ZERO, false),
    ));
    refused(
        &node,
        json!(raw(&bad)),
        -32602,
        "invalid transaction signature",
    )
    .await;

    refused(
        &node,
        json!(raw(&transfer(&k[1], 1, 1, 2 * GWEI))),
        -32000,
        "invalid chain id",
    )
    .await;
    refused(&node, json!(raw(&first)), -32000, "nonce too low").await;
    refused(
        &node,
        json!(raw(&transfer(&k[1], CHAIN_ID, 0, 3 * GWEI))),
        -32000,
        "nonce too low",
    )
    .await;
    refused(
        &node,
        json!(raw(&transfer(&k[1], CHAIN_ID, 5, 2 * GWEI))),
        -32000,
        "nonce too high",
    )
    .await;
    refused(
        &node,
        json!(raw(&transfer(&k[1], CHAIN_ID, 1, 1))),
        -32000,
        "underpriced",
    )
    .await;
    let pauper = PrivateKeySigner::random();
    refused(
        &node,
        json!(raw(&transfer(&pauper, CHAIN_ID, 0, 2 * GWEI))),
        -32000,
        "insufficient funds",
    )
    .await;
    let unprotected = sign(
        &k[1],
        TxLegacy {
            chain_id: None,
            nonce: 1,
            gas_price: 2 * GWEI,
            gas_limit: 21_000,
            to: TxKind::Call(Address::repeat_byte(7)),
            value: U256::from(1),
            input: Bytes::new(),
        },
    );
    refused(&node, json!(raw(&unprotected)), -32000, "replay-protected").await;
    let low_gas = sign(
        &k[1],
        TxLegacy {
            chain_id: Some(CHAIN_ID),
            nonce: 1,
            gas_price: 2 * GWEI,
            gas_limit: 20_000,
            to: TxKind::Call(Address::repeat_byte(7)),
            value: U256::from(1),
            input: Bytes::new(),
        },
    );
    refused(&node, json!(raw(&low_gas)), -32000, "intrinsic gas too low").await;
    let huge = sign(
        &k[1],
        TxLegacy {
            chain_id: Some(CHAIN_ID),
            nonce: 1,
            gas_price: 2 * GWEI,
            gas_limit: 10_000_000,
            to: TxKind::Call(Address::repeat_byte(7)),
            value: U256::ZERO,
            input: vec![1u8; 200 * 1024].into(),
        },
    );
    refused(&node, json!(raw(&huge)), -32000, "oversized data").await;

    // Nothing changed: no block, same balance, nothing pooled for the sender.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(node.block_number().await, head);
    assert_eq!(node.balance(k[1].address()).await, balance);
    let pending = node
        .call(
            "eth_getTransactionCount",
            json!([k[1].address(), "pending"]),
        )
        .await;
    assert_eq!(pending, "0x1");
    node.running.unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_rpc_gets_standard_errors() {
    let node = TestNode::start(0).await;
    let a = node.addr;
    let e = post(a, "{not json".into()).await;
    assert_eq!(e["error"]["code"], -32700, "{e}");
    let e = post(a, r#"{"jsonrpc":"2.0","id":1}"#.into()).await;
    assert_eq!(e["error"]["code"], -32600, "{e}");
    let e = node.call_err("eth_noSuchMethod", json!([])).await;
    assert_eq!(e["code"], -32601);
    let e = node.call_err("eth_getBalance", json!(["0x1234"])).await;
    assert_eq!(e["code"], -32602);
    let e = node.call_err("eth_getBlockByNumber", json!(["0x0"])).await;
    assert_eq!(e["code"], -32602);
    let e = node
        .call_err("eth_getBalance", json!([Address::ZERO, "0x99"]))
        .await;
    assert_eq!(e["code"], -32000);
    // A batch of 100 is served, 101 is refused as a whole.
    let batch = |n: usize| {
        let v: Vec<Value> = (0..n)
            .map(|i| json!({"jsonrpc":"2.0","id":i,"method":"eth_chainId","params":[]}))
            .collect();
        Value::Array(v).to_string()
    };
    let ok = post(a, batch(100)).await;
    assert_eq!(ok.as_array().unwrap().len(), 100);
    let e = post(a, batch(101)).await;
    assert_eq!(e["error"]["code"], -32010, "{e}");
    assert_eq!(node.block_number().await, 0, "no block was sealed");
    node.running.unwrap().stop().await;
}
