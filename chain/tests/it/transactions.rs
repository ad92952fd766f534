//! Transfers of every supported type, a contract deployed from raw bytecode,
//! logs, a revert, `eth_call`/`eth_estimateGas`, and roots checked independently.

use alloy_consensus::{TxEip1559, TxEip2930, TxLegacy};
use alloy_eips::eip2930::{AccessList, AccessListItem};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, hex, keccak256};
use alloy_trie::{EMPTY_ROOT_HASH, TrieAccount};
use serde_json::json;

use crate::util::{CHAIN_ID, GWEI, TestNode, keys, quantity, sign};

/// Runtime: empty calldata → `revert(0x2a as 32 bytes)`; otherwise store word 0
/// of the calldata in slot 0, emit it as `LOG1(topic = word, data = word)` and
/// return it.
pub(crate) const RUNTIME: &str =
    "36600e57602a60005260206000fd5b600035806000558060005260206000a160206000f3";
/// Init code that returns [`RUNTIME`].
pub(crate) fn init_code() -> Bytes {
    let runtime = hex::decode(RUNTIME).unwrap();
    let mut code = hex::decode("6024600c60003960246000f3").unwrap();
    assert_eq!(runtime.len(), 0x24);
    code.extend_from_slice(&runtime);
    code.into()
}

/// The state root of `accounts` (address, nonce, balance, code, storage) computed
/// here, independently of the node's store.
/// (address, nonce, balance, code, storage slots) of one account.
type AccountDump = (Address, u64, U256, Bytes, Vec<(B256, U256)>);

fn expected_state_root(accounts: &[AccountDump]) -> B256 {
    alloy_trie::root::state_root_unhashed(accounts.iter().map(
        |(a, nonce, balance, code, slots)| {
            let storage_root = if slots.is_empty() {
                EMPTY_ROOT_HASH
            } else {
                alloy_trie::root::storage_root_unhashed(slots.clone())
            };
            (
                *a,
                TrieAccount {
                    nonce: *nonce,
                    balance: *balance,
                    storage_root,
                    code_hash: keccak256(code),
                },
            )
        },
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_of_each_type_settle_with_correct_roots() {
    let node = TestNode::start(0).await;
    let k = keys();
    let to = Address::repeat_byte(0x42);
    let before: Vec<U256> = {
        let mut v = vec![];
        for key in &k {
            v.push(node.balance(key.address()).await);
        }
        v
    };
    let value = U256::from(1_000_000u64);
    let legacy = sign(
        &k[1],
        TxLegacy {
            chain_id: Some(CHAIN_ID),
            nonce: 0,
            gas_price: 2 * GWEI,
            gas_limit: 21_000,
            to: TxKind::Call(to),
            value,
            input: Bytes::new(),
        },
    );
    let access = sign(
        &k[2],
        TxEip2930 {
            chain_id: CHAIN_ID,
            nonce: 0,
            gas_price: 2 * GWEI,
            gas_limit: 30_000,
            to: TxKind::Call(to),
            value,
            access_list: AccessList(vec![AccessListItem {
                address: to,
                storage_keys: vec![],
            }]),
            input: Bytes::new(),
        },
    );
    let dynamic = sign(
        &k[3],
        TxEip1559 {
            chain_id: CHAIN_ID,
            nonce: 0,
            gas_limit: 21_000,
            max_fee_per_gas: 3 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to: TxKind::Call(to),
            value,
            access_list: AccessList::default(),
            input: Bytes::new(),
        },
    );
    let mut spent = vec![U256::ZERO; k.len()];
    let mut tips = U256::ZERO;
    for (i, tx) in [(1, &legacy), (2, &access), (3, &dynamic)] {
        let hash = node.send(tx).await;
        let r = node.receipt(hash).await;
        assert_eq!(r["status"], "0x1", "{r}");
        let gas = quantity(&r["gasUsed"]);
        assert_eq!(gas, if i == 2 { 21_000 + 2_400 } else { 21_000 });
        let price = U256::from(quantity(&r["effectiveGasPrice"]));
        let block = node
            .call("eth_getBlockByHash", json!([r["blockHash"], false]))
            .await;
        let base_fee = U256::from(quantity(&block["baseFeePerGas"]));
        spent[i] = value + price * U256::from(gas);
        tips += (price - base_fee) * U256::from(gas);
        assert_eq!(r["from"], json!(k[i].address()));
        assert_eq!(quantity(&r["type"]), [0, 1, 2][i - 1]);
    }
    assert_eq!(node.balance(to).await, value * U256::from(3));
    for i in 1..4 {
        assert_eq!(
            node.balance(k[i].address()).await,
            before[i] - spent[i],
            "account {i}"
        );
        assert_eq!(node.nonce(k[i].address()).await, 1);
    }
    // The authority (coinbase, EIP-225) receives the priority fees; base fees are burnt.
    assert_eq!(node.balance(k[0].address()).await, before[0] + tips);

    // The head's state root equals one computed here from the accounts over RPC.
    let mut accounts = vec![];
    for a in k.iter().map(|k| k.address()).chain([to]) {
        accounts.push((
            a,
            node.nonce(a).await,
            node.balance(a).await,
            Bytes::new(),
            vec![],
        ));
    }
    let head = node
        .call("eth_getBlockByNumber", json!(["latest", true]))
        .await;
    let root: B256 = serde_json::from_value(head["stateRoot"].clone()).unwrap();
    assert_eq!(root, expected_state_root(&accounts));
    // Transactions root of the last block, recomputed from its transactions.
    let txs: Vec<alloy_rpc_types_eth::Transaction> =
        serde_json::from_value(head["transactions"].clone()).unwrap();
    let envelopes: Vec<_> = txs.into_iter().map(|t| t.inner.into_inner()).collect();
    let tx_root: B256 = serde_json::from_value(head["transactionsRoot"].clone()).unwrap();
    assert_eq!(
        tx_root,
        alloy_consensus::proofs::calculate_transaction_root(&envelopes)
    );
    // eth_getBlockReceipts and eth_feeHistory over the three blocks.
    let receipts = node.call("eth_getBlockReceipts", json!(["latest"])).await;
    assert_eq!(receipts.as_array().unwrap().len(), 1);
    assert_eq!(receipts[0]["from"], json!(k[3].address()));
    let fh = node
        .call("eth_feeHistory", json!(["0x3", "latest", [25.0, 75.0]]))
        .await;
    assert_eq!(fh["oldestBlock"], "0x1");
    assert_eq!(fh["baseFeePerGas"].as_array().unwrap().len(), 4);
    assert_eq!(fh["reward"].as_array().unwrap().len(), 3);
    assert_eq!(
        fh["reward"][2][0],
        json!(format!("{GWEI:#x}")),
        "the 1559 tx tipped 1 gwei"
    );
    let e = node
        .call_err("eth_feeHistory", json!(["0x3", "latest", [75.0, 25.0]]))
        .await;
    assert_eq!(e["code"], -32602);
    node.running.unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_deploys_logs_and_reverts() {
    let node = TestNode::start(0).await;
    let key = &keys()[1];
    let me = key.address();
    let tx = |nonce: u64, to: TxKind, input: Bytes, gas_limit: u64| {
        sign(
            key,
            TxEip1559 {
                chain_id: CHAIN_ID,
                nonce,
                gas_limit,
                max_fee_per_gas: 3 * GWEI,
                max_priority_fee_per_gas: GWEI,
                to,
                value: U256::ZERO,
                access_list: AccessList::default(),
                input,
            },
        )
    };
    // Deploy.
    let estimate = node
        .call(
            "eth_estimateGas",
            json!([{"from": me, "input": init_code()}]),
        )
        .await;
    let estimate = quantity(&estimate);
    assert!(
        estimate > 53_000 && estimate < 200_000,
        "estimate {estimate}"
    );
    let r = node
        .receipt(
            node.send(&tx(0, TxKind::Create, init_code(), estimate))
                .await,
        )
        .await;
    assert_eq!(r["status"], "0x1", "{r}");
    let contract = me.create(0);
    assert_eq!(r["contractAddress"], json!(contract));
    let code = node.call("eth_getCode", json!([contract, "latest"])).await;
    assert_eq!(code, json!(format!("0x{RUNTIME}")));

    // A call that stores, logs and returns its argument.
    let word = B256::with_last_byte(5);
    let input = Bytes::from(word.to_vec());
    let ret = node
        .call(
            "eth_call",
            json!([{"from": me, "to": contract, "input": input}, "latest"]),
        )
        .await;
    assert_eq!(ret, json!(word));
    let gas = quantity(
        &node
            .call(
                "eth_estimateGas",
                json!([{"from": me, "to": contract, "input": input}]),
            )
            .await,
    );
    assert!(gas > 21_000 + 20_000, "estimate {gas} covers the SSTORE");
    let r = node
        .receipt(
            node.send(&tx(1, TxKind::Call(contract), input.clone(), gas))
                .await,
        )
        .await;
    assert_eq!(r["status"], "0x1", "{r}");
    let logs = r["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["address"], json!(contract));
    assert_eq!(logs[0]["topics"], json!([word]));
    assert_eq!(logs[0]["data"], json!(word));
    assert_eq!(logs[0]["logIndex"], "0x0");
    let slot = node
        .call("eth_getStorageAt", json!([contract, "0x0", "latest"]))
        .await;
    assert_eq!(slot, json!(word));
    let found = node
        .call(
            "eth_getLogs",
            json!([{"fromBlock": "earliest", "toBlock": "latest", "address": contract}]),
        )
        .await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["transactionHash"], r["transactionHash"]);
    let other = node
        .call(
            "eth_getLogs",
            json!([{"fromBlock": "0x0", "topics": [B256::with_last_byte(6)]}]),
        )
        .await;
    assert_eq!(other, json!([]));
    // The block's bloom contains the log.
    let block = node
        .call("eth_getBlockByHash", json!([r["blockHash"], false]))
        .await;
    let bloom: alloy_primitives::Bloom =
        serde_json::from_value(block["logsBloom"].clone()).unwrap();
    assert!(bloom.contains_input(alloy_primitives::BloomInput::Raw(contract.as_slice())));

    // Reverts: eth_call answers code 3 with the revert data; a mined tx has status 0.
    let e = node
        .call_err("eth_call", json!([{"from": me, "to": contract}, "latest"]))
        .await;
    assert_eq!(e["code"], 3);
    assert_eq!(e["data"], json!(B256::with_last_byte(0x2a)));
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("execution reverted")
    );
    let r = node
        .receipt(
            node.send(&tx(2, TxKind::Call(contract), Bytes::new(), 50_000))
                .await,
        )
        .await;
    assert_eq!(r["status"], "0x0", "{r}");
    assert_eq!(r["logs"], json!([]));
    assert_eq!(
        node.call("eth_getStorageAt", json!([contract, "0x0"]))
            .await,
        json!(word)
    );

    // State root with a contract account and a storage slot, computed here.
    let k = keys();
    let mut accounts = vec![];
    for a in k.iter().map(|k| k.address()) {
        accounts.push((
            a,
            node.nonce(a).await,
            node.balance(a).await,
            Bytes::new(),
            vec![],
        ));
    }
    accounts.push((
        contract,
        1,
        U256::ZERO,
        hex::decode(RUNTIME).unwrap().into(),
        vec![(B256::ZERO, U256::from(5))],
    ));
    let head = node
        .call("eth_getBlockByNumber", json!(["latest", false]))
        .await;
    let root: B256 = serde_json::from_value(head["stateRoot"].clone()).unwrap();
    assert_eq!(root, expected_state_root(&accounts));
    check_proofs(&node, root, contract).await;
    node.running.unwrap().stop().await;
}

/// `eth_getProof` (EIP-1186) of the contract, its slot 0 (5) and slot 1
/// (absent), and of an address that has no account, each checked against
/// the state root with `alloy-trie`'s verifier; a tampered proof fails.
async fn check_proofs(node: &TestNode, root: B256, contract: alloy_primitives::Address) {
    use alloy_primitives::keccak256;
    use alloy_trie::proof::verify_proof;
    use alloy_trie::{Nibbles, TrieAccount};
    let p = node
        .call("eth_getProof", json!([contract, ["0x0", "0x1"], "latest"]))
        .await;
    let p: alloy_rpc_types_eth::EIP1186AccountProofResponse = serde_json::from_value(p).unwrap();
    let account = TrieAccount {
        nonce: 1,
        balance: U256::ZERO,
        storage_root: p.storage_hash,
        code_hash: keccak256(hex::decode(RUNTIME).unwrap()),
    };
    let path = Nibbles::unpack(keccak256(contract));
    let leaf = alloy_rlp::encode(account);
    verify_proof(root, path, Some(leaf.clone()), &p.account_proof).unwrap();
    assert_eq!((p.nonce, p.code_hash), (1, account.code_hash));
    let slot = |n: u8| Nibbles::unpack(keccak256(B256::with_last_byte(n)));
    assert_eq!(p.storage_proof[0].value, U256::from(5));
    let five = alloy_rlp::encode(U256::from(5));
    verify_proof(
        p.storage_hash,
        slot(0),
        Some(five),
        &p.storage_proof[0].proof,
    )
    .unwrap();
    assert_eq!(p.storage_proof[1].value, U256::ZERO);
    verify_proof(p.storage_hash, slot(1), None, &p.storage_proof[1].proof).unwrap();
    // Tampered: another value, or another root, does not verify.
    let six = alloy_rlp::encode(U256::from(6));
    assert!(
        verify_proof(
            p.storage_hash,
            slot(0),
            Some(six),
            &p.storage_proof[0].proof
        )
        .is_err()
    );
    assert!(verify_proof(B256::ZERO, path, Some(leaf), &p.account_proof).is_err());
    // No such account: a proof of its absence, zero fields.
    let nobody = alloy_primitives::Address::repeat_byte(0x77);
    let q = node
        .call("eth_getProof", json!([nobody, [], "latest"]))
        .await;
    let q: alloy_rpc_types_eth::EIP1186AccountProofResponse = serde_json::from_value(q).unwrap();
    verify_proof(
        root,
        Nibbles::unpack(keccak256(nobody)),
        None,
        &q.account_proof,
    )
    .unwrap();
    assert_eq!((q.nonce, q.balance), (0, U256::ZERO));
    // Too many keys, and a block that is not the head, are refused.
    let many: Vec<String> = (0..1025).map(|i| format!("0x{i:x}")).collect();
    let e = node
        .call_err("eth_getProof", json!([contract, many, "latest"]))
        .await;
    assert_eq!(e["code"], -32602, "{e}");
    let e = node
        .call_err("eth_getProof", json!([contract, [], "0x0"]))
        .await;
    assert_eq!(e["code"], -32000, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_nonce_counts_pooled_transactions_and_replacement_works() {
    let node = TestNode::start(3600).await;
    // The dev genesis is dated 1970, so block 1 is due at once; after it no
    // block for an hour: the transactions below stay pooled.
    let t0 = std::time::Instant::now();
    while node.block_number().await < 1 {
        assert!(t0.elapsed().as_secs() < 10, "block 1 was not sealed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let key = &keys()[4];
    let me = key.address();
    let mk = |nonce: u64, fee: u128| {
        sign(
            key,
            TxEip1559 {
                chain_id: CHAIN_ID,
                nonce,
                gas_limit: 21_000,
                max_fee_per_gas: fee,
                max_priority_fee_per_gas: fee / 2,
                to: TxKind::Call(Address::repeat_byte(1)),
                value: U256::from(1),
                access_list: AccessList::default(),
                input: Bytes::new(),
            },
        )
    };
    node.send(&mk(0, 2 * GWEI)).await;
    node.send(&mk(1, 2 * GWEI)).await;
    let e = node
        .call_err("eth_sendRawTransaction", json!([raw(&mk(1, 2 * GWEI))]))
        .await;
    assert_eq!(e["message"], "already known");
    let pending = node
        .call("eth_getTransactionCount", json!([me, "pending"]))
        .await;
    assert_eq!(quantity(&pending), 2);
    assert_eq!(node.nonce(me).await, 0);
    // A pooled tx is visible without block fields.
    let t = node
        .call(
            "eth_getTransactionByHash",
            json!([mk(1, 2 * GWEI).tx_hash()]),
        )
        .await;
    assert!(t["blockHash"].is_null());
    // +5 % is not enough, +10 % replaces.
    let e = node
        .call_err(
            "eth_sendRawTransaction",
            json!([raw(&mk(1, 2 * GWEI * 105 / 100))]),
        )
        .await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("replacement transaction underpriced"),
        "{e}"
    );
    let replaced = mk(1, 2 * GWEI * 110 / 100);
    node.send(&replaced).await;
    let old = node
        .call(
            "eth_getTransactionByHash",
            json!([mk(1, 2 * GWEI).tx_hash()]),
        )
        .await;
    assert!(old.is_null());
    // The txpool namespace shows both, the replacement in place.
    let status = node.call("txpool_status", json!([])).await;
    assert_eq!(status, json!({"pending": "0x2", "queued": "0x0"}));
    let content = node.call("txpool_content", json!([])).await;
    let mine = &content["pending"][me.to_checksum(None)];
    assert_eq!(
        mine["0"]["hash"],
        json!(mk(0, 2 * GWEI).tx_hash()),
        "{content}"
    );
    assert_eq!(mine["1"]["hash"], json!(replaced.tx_hash()), "{content}");
    assert_eq!(content["queued"], json!({}));
    let from = node.call("txpool_contentFrom", json!([me])).await;
    assert_eq!(from["pending"], *mine);
    let nobody = node
        .call("txpool_contentFrom", json!([Address::repeat_byte(9)]))
        .await;
    assert_eq!(nobody, json!({"pending": {}, "queued": {}}));
    // A pooled transaction's raw encoding.
    let got = node
        .call("debug_getRawTransaction", json!([replaced.tx_hash()]))
        .await;
    assert_eq!(got, json!(raw(&replaced)));
    node.running.unwrap().stop().await;
}

pub(crate) fn raw(tx: &alloy_consensus::TxEnvelope) -> Bytes {
    use alloy_eips::eip2718::Encodable2718;
    tx.encoded_2718().into()
}
