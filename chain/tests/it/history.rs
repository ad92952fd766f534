//! State as of past blocks: every state method answers for a block number,
//! a block hash, `earliest`, `safe` and `finalized`, read through the kept
//! history (`chain/src/store/history.rs`).

use alloy_consensus::TxEip1559;
use alloy_eips::eip2930::AccessList;
use alloy_primitives::{B256, Bytes, TxKind, U256};
use serde_json::json;

use crate::transactions::{RUNTIME, init_code};
use crate::util::{CHAIN_ID, GWEI, TestNode, keys, quantity, sign};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_methods_answer_for_past_blocks() {
    let node = TestNode::start(0).await;
    let key = &keys()[1];
    let me = key.address();
    let tx = |nonce: u64, to: TxKind, input: Bytes| {
        sign(
            key,
            TxEip1559 {
                chain_id: CHAIN_ID,
                nonce,
                gas_limit: 200_000,
                max_fee_per_gas: 3 * GWEI,
                max_priority_fee_per_gas: GWEI,
                to,
                value: U256::ZERO,
                access_list: AccessList::default(),
                input,
            },
        )
    };
    let contract = me.create(0);
    let word = |b: u8| Bytes::from(B256::with_last_byte(b).to_vec());
    // Block 1 deploys, block 2 stores 5, block 3 stores 7.
    let mut blocks = vec![];
    for (nonce, to, input) in [
        (0, TxKind::Create, init_code()),
        (1, TxKind::Call(contract), word(5)),
        (2, TxKind::Call(contract), word(7)),
    ] {
        let r = node.receipt(node.send(&tx(nonce, to, input)).await).await;
        assert_eq!(r["status"], "0x1", "{r}");
        blocks.push(r["blockHash"].clone());
    }
    assert_eq!(node.block_number().await, 3);

    let slot_at = |block: serde_json::Value| {
        let node = &node;
        async move {
            node.call("eth_getStorageAt", json!([contract, "0x0", block]))
                .await
        }
    };
    assert_eq!(slot_at(json!("0x1")).await, json!(B256::ZERO));
    assert_eq!(slot_at(json!("0x2")).await, json!(B256::with_last_byte(5)));
    assert_eq!(
        slot_at(json!("latest")).await,
        json!(B256::with_last_byte(7))
    );
    // By hash (EIP-1898), plain and as an object.
    assert_eq!(
        slot_at(blocks[1].clone()).await,
        json!(B256::with_last_byte(5))
    );
    assert_eq!(
        slot_at(json!({"blockHash": blocks[0]})).await,
        json!(B256::ZERO)
    );
    // Code, nonce and balance before and after.
    for (tag, code) in [
        ("earliest", "0x".to_string()),
        ("0x1", format!("0x{RUNTIME}")),
    ] {
        let got = node.call("eth_getCode", json!([contract, tag])).await;
        assert_eq!(got, json!(code), "{tag}");
    }
    let nonces: Vec<u64> = {
        let mut v = vec![];
        for n in 0..=3 {
            let q = node
                .call("eth_getTransactionCount", json!([me, format!("0x{n:x}")]))
                .await;
            v.push(quantity(&q));
        }
        v
    };
    assert_eq!(nonces, [0, 1, 2, 3]);
    let balance = |tag: &'static str| {
        let node = &node;
        async move {
            let b = node.call("eth_getBalance", json!([me, tag])).await;
            serde_json::from_value::<U256>(b).unwrap()
        }
    };
    let (b0, b1, b3) = (
        balance("0x0").await,
        balance("0x1").await,
        balance("latest").await,
    );
    assert!(b0 > b1 && b1 > b3, "{b0} {b1} {b3}");
    // One authority finalises every block it seals: safe = finalized = latest.
    assert_eq!(balance("finalized").await, b3);
    // eth_call runs on the past state: no code at genesis, the contract after.
    let call = |tag: &'static str| {
        let node = &node;
        async move {
            node.call(
                "eth_call",
                json!([{"from": me, "to": contract, "input": word(9)}, tag]),
            )
            .await
        }
    };
    assert_eq!(call("earliest").await, json!("0x"));
    assert_eq!(call("0x1").await, json!(B256::with_last_byte(9)));
    // eth_getStorageValues too.
    let v = node
        .call(
            "eth_getStorageValues",
            json!([{contract.to_string(): ["0x0"]}, "0x2"]),
        )
        .await;
    assert_eq!(
        v[contract.to_string().to_lowercase()],
        json!([B256::with_last_byte(5)])
    );

    // Bad asks: a block above the head, an unknown hash, a past proof.
    let e = node.call_err("eth_getBalance", json!([me, "0x9"])).await;
    assert_eq!(e["code"], -32000, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("header not found"),
        "{e}"
    );
    let e = node
        .call_err("eth_getBalance", json!([me, B256::repeat_byte(3)]))
        .await;
    assert_eq!(e["code"], -32000, "{e}");
    let e = node
        .call_err("eth_getProof", json!([contract, [], "0x1"]))
        .await;
    assert_eq!(e["code"], -32000, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("head block only"),
        "{e}"
    );
    // The oldest state kept is genesis.
    let caps = node.call("eth_capabilities", json!([])).await;
    assert_eq!(caps["state"]["oldestBlock"], "0x0", "{caps}");
}
