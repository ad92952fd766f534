//! JSON-RPC over WebSocket: on the HTTP port and on a separate WebSocket-only
//! port; `eth_subscribe` `newHeads` and `logs` checked field by field against
//! `eth_getBlockByNumber`, receipts and `eth_getLogs`; `eth_unsubscribe`;
//! refused subscriptions (unknown kind, malformed parameters, plain HTTP); the
//! `safe`/`finalized` tags; a subscriber that never reads does not stall sealing.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use alloy_consensus::{TxEip1559, TxEnvelope};
use alloy_eips::eip2930::AccessList;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use netmind_chain::spec::ChainSpec;
use serde_json::{Value, json};
use soketto::handshake::{Client, ServerResponse};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

use crate::transactions::init_code;
use crate::util::{CHAIN_ID, GWEI, TestNode, keys, post, sign};

/// The fields of a Prague header as geth sends them in `newHeads`.
const HEADER_KEYS: [&str; 22] = [
    "baseFeePerGas",
    "blobGasUsed",
    "difficulty",
    "excessBlobGas",
    "extraData",
    "gasLimit",
    "gasUsed",
    "hash",
    "logsBloom",
    "miner",
    "mixHash",
    "nonce",
    "number",
    "parentBeaconBlockRoot",
    "parentHash",
    "receiptsRoot",
    "requestsHash",
    "sha3Uncles",
    "stateRoot",
    "timestamp",
    "transactionsRoot",
    "withdrawalsRoot",
];

/// A WebSocket JSON-RPC client that keeps notifications apart from answers.
struct Ws {
    tx: soketto::Sender<Compat<TcpStream>>,
    /// Messages read by a background task (so waiting with a timeout never
    /// cuts a frame in half).
    rx: mpsc::UnboundedReceiver<Value>,
    next_id: u64,
    /// Notifications read while waiting for something else.
    queued: VecDeque<Value>,
}

impl Ws {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        let host = addr.to_string();
        let mut client = Client::new(stream.compat(), &host, "/");
        match client.handshake().await.unwrap() {
            ServerResponse::Accepted { .. } => {}
            other => panic!("WebSocket handshake refused: {other:?}"),
        }
        let (tx, mut receiver) = client.into_builder().finish();
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let mut buf = Vec::new();
                if receiver.receive_data(&mut buf).await.is_err() {
                    return;
                }
                let msg = serde_json::from_slice(&buf).unwrap_or_else(|e| {
                    panic!("not JSON ({e}): {}", String::from_utf8_lossy(&buf))
                });
                if queue.send(msg).is_err() {
                    return;
                }
            }
        });
        Self {
            tx,
            rx,
            next_id: 0,
            queued: VecDeque::new(),
        }
    }

    async fn send_text(&mut self, text: &str) {
        self.tx.send_text(text).await.unwrap();
        self.tx.flush().await.unwrap();
    }

    /// The next message (10 s at most).
    async fn read(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("no message within 10 s")
            .expect("connection closed")
    }

    /// Queues every notification that arrives within `d`.
    async fn settle(&mut self, d: Duration) {
        while let Ok(Some(msg)) = tokio::time::timeout(d, self.rx.recv()).await {
            self.queue(msg);
        }
    }

    fn queue(&mut self, msg: Value) {
        assert_eq!(
            msg["method"], "eth_subscription",
            "unexpected message {msg}"
        );
        self.queued.push_back(msg);
    }

    /// Sends `text` and returns the answer with `id`, queueing notifications.
    async fn answer_to(&mut self, text: &str, id: &Value) -> Value {
        self.send_text(text).await;
        loop {
            let msg = self.read().await;
            if msg.get("id") == Some(id) {
                return msg;
            }
            self.queue(msg);
        }
    }

    /// The whole response to `method(params)`.
    async fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = json!(self.next_id);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.answer_to(&body.to_string(), &id).await
    }

    /// The `error` of `method(params)`; panics on success.
    async fn request_err(&mut self, method: &str, params: Value) -> Value {
        let resp = self.request(method, params.clone()).await;
        match resp.get("error") {
            Some(e) => e.clone(),
            None => panic!("{method}({params}) should fail: {resp}"),
        }
    }

    /// `eth_subscribe(params)`: the subscription id.
    async fn subscribe(&mut self, params: Value) -> String {
        let resp = self.request("eth_subscribe", params).await;
        let id = resp["result"]
            .as_str()
            .unwrap_or_else(|| panic!("eth_subscribe failed: {resp}"))
            .to_string();
        assert!(
            id.starts_with("0x") && id.len() <= 34,
            "geth-style id: {id}"
        );
        id
    }

    /// The `result` of the next notification of subscription `id`, after
    /// checking the whole envelope.
    async fn notification(&mut self, id: &str) -> Value {
        let msg = match self
            .queued
            .iter()
            .position(|n| n["params"]["subscription"] == id)
        {
            Some(i) => self.queued.remove(i).unwrap(),
            None => loop {
                let msg = self.read().await;
                if msg["params"]["subscription"] == id {
                    break msg;
                }
                self.queue(msg);
            },
        };
        let result = msg["params"]["result"].clone();
        assert_eq!(
            msg,
            json!({
                "jsonrpc": "2.0",
                "method": "eth_subscription",
                "params": {"subscription": id, "result": result},
            })
        );
        result
    }
}

/// A call or creation signed by the second dev key.
fn tx(nonce: u64, to: TxKind, input: Bytes) -> TxEnvelope {
    sign(
        &keys()[1],
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
}

/// A transaction that makes the logging contract (deployed by the second dev
/// key's first transaction) emit `LOG1(topic = word, data = word)`.
fn log_tx(nonce: u64, word: B256) -> TxEnvelope {
    let contract = keys()[1].address().create(0);
    tx(nonce, TxKind::Call(contract), Bytes::from(word.to_vec()))
}

/// Block `n` as `eth_getBlockByNumber` gives it, less the block-only fields:
/// what `newHeads` must send.
async fn header_of(node: &TestNode, n: u64) -> Value {
    let mut block = node
        .call("eth_getBlockByNumber", json!([format!("0x{n:x}"), false]))
        .await;
    let fields = block.as_object_mut().unwrap();
    for key in ["transactions", "uncles", "withdrawals", "size"] {
        assert!(fields.remove(key).is_some(), "block {n} has {key}");
    }
    let mut keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, HEADER_KEYS);
    block
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_heads_and_logs_on_the_http_port() {
    let node = TestNode::start(0).await;
    let contract = keys()[1].address().create(0);
    let mut ws = Ws::connect(node.addr).await;
    // Plain methods work over the WebSocket too.
    assert_eq!(
        ws.request("eth_chainId", json!([])).await["result"],
        json!(format!("0x{CHAIN_ID:x}"))
    );

    let word = B256::with_last_byte(5);
    let other = B256::with_last_byte(6);
    let heads = ws.subscribe(json!(["newHeads"])).await;
    let logs = ws
        .subscribe(json!(["logs", {"address": contract, "topics": [word]}]))
        .await;
    let either = ws
        .subscribe(json!(["logs", {
            "address": [Address::with_last_byte(1), contract],
            "topics": [[other, word]],
        }]))
        .await;
    let all = ws.subscribe(json!(["logs"])).await;
    let ids: std::collections::BTreeSet<_> = [&heads, &logs, &either, &all].into();
    assert_eq!(ids.len(), 4, "distinct ids");

    // Block 1: the deployment, no logs.
    let r = node
        .receipt(node.send(&tx(0, TxKind::Create, init_code())).await)
        .await;
    assert_eq!(r["status"], "0x1", "{r}");
    assert_eq!(r["contractAddress"], json!(contract));
    assert_eq!(ws.notification(&heads).await, header_of(&node, 1).await);

    // Block 2: a log of `word`, for all three log subscriptions.
    let hash = node.send(&log_tx(1, word)).await;
    let r = node.receipt(hash).await;
    let head = ws.notification(&heads).await;
    assert_eq!(head, header_of(&node, 2).await);
    let log = json!({
        "address": contract,
        "topics": [word],
        "data": word,
        "blockHash": head["hash"],
        "blockNumber": "0x2",
        "blockTimestamp": head["timestamp"],
        "transactionHash": hash,
        "transactionIndex": "0x0",
        "logIndex": "0x0",
        "removed": false,
    });
    assert_eq!(r["logs"], json!([log]));
    for sub in [&logs, &either, &all] {
        assert_eq!(ws.notification(sub).await, log, "subscription {sub}");
    }
    assert_eq!(
        node.call(
            "eth_getLogs",
            json!([{"fromBlock": "0x2", "toBlock": "0x2"}])
        )
        .await,
        json!([log])
    );

    // Block 3: a log of `other`: not for `logs`.
    let hash = node.send(&log_tx(2, other)).await;
    node.receipt(hash).await;
    let head = ws.notification(&heads).await;
    assert_eq!(head, header_of(&node, 3).await);
    let log = ws.notification(&either).await;
    assert_eq!(log["topics"], json!([other]));
    assert_eq!(log["blockNumber"], "0x3");
    assert_eq!(log["transactionHash"], json!(hash));
    assert_eq!(log["removed"], false);
    assert_eq!(ws.notification(&all).await, log);

    // Unsubscribed: true once, then false; block 4 reaches the others only.
    for expected in [true, false] {
        let resp = ws.request("eth_unsubscribe", json!([heads])).await;
        assert_eq!(resp["result"], expected, "{resp}");
    }
    let hash = node.send(&log_tx(3, word)).await;
    node.receipt(hash).await;
    for sub in [&logs, &either, &all] {
        let log = ws.notification(sub).await;
        assert_eq!(log["blockNumber"], "0x4", "subscription {sub}");
        assert_eq!(log["transactionHash"], json!(hash));
    }
    // Nothing else came: no head after unsubscribing, no `other` log on `logs`.
    ws.settle(Duration::from_millis(300)).await;
    assert!(ws.queued.is_empty(), "unexpected: {:?}", ws.queued);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_subscriptions() {
    let node = TestNode::start(0).await;
    let mut ws = Ws::connect(node.addr).await;
    assert_eq!(
        ws.request_err("eth_subscribe", json!(["fooBar"])).await,
        json!({
            "code": -32602,
            "message": "unsupported subscription kind \"fooBar\": this node serves \"newHeads\" and \"logs\"",
        })
    );
    assert_eq!(
        ws.request_err("eth_subscribe", json!(["newHeads", {"x": 1}]))
            .await,
        json!({"code": -32602, "message": "newHeads takes no parameters"})
    );
    for params in [
        json!([]),
        json!([42]),
        json!(["logs", {"address": "0x12"}]),
        json!(["logs", {"topics": ["not a topic"]}]),
        json!(["logs", {"fromBlock": "0x1"}]),
        json!(["logs", 7]),
    ] {
        let e = ws.request_err("eth_subscribe", params.clone()).await;
        assert_eq!(e["code"], -32602, "{params}: {e}");
        assert!(!e["message"].as_str().unwrap().is_empty(), "{e}");
    }
    let e = ws
        .request_err("eth_subscribe", json!(["logs", {"address": "0x12"}]))
        .await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid logs filter: "),
        "{e}"
    );
    // Not JSON at all: a parse error without id.
    let resp = ws
        .answer_to(
            r#"{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads""#,
            &Value::Null,
        )
        .await;
    assert_eq!(resp["error"]["code"], -32700, "{resp}");
    // The connection still serves, and no subscription was left behind.
    assert_eq!(
        ws.request("eth_unsubscribe", json!(["0x1"])).await["result"],
        false
    );
    ws.subscribe(json!(["newHeads"])).await;

    // Over plain HTTP: geth's "notifications not supported", alone or in a batch.
    let unsupported = json!({"code": -32601, "message": "notifications not supported"});
    assert_eq!(
        node.call_err("eth_subscribe", json!(["newHeads"])).await,
        unsupported
    );
    assert_eq!(
        node.call_err("eth_unsubscribe", json!(["0x1"])).await,
        unsupported
    );
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_subscribe", "params": ["logs"]},
    ]);
    let resp = post(node.addr, batch.to_string()).await;
    let resp = resp.as_array().unwrap();
    assert_eq!(resp.len(), 2);
    let by_id = |id: u64| resp.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(by_id(1)["result"], json!(format!("0x{CHAIN_ID:x}")));
    assert_eq!(by_id(2)["error"], unsupported);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_only_port_and_finality_tags() {
    let node = TestNode::start_with(&ChainSpec::dev(0), Some("127.0.0.1:0".parse().unwrap())).await;
    let running = node.running.as_ref().unwrap();
    let ws_addr = running.ws_addr.expect("ws address");
    assert_ne!(ws_addr, node.addr);
    let mut ws = Ws::connect(ws_addr).await;
    let heads = ws.subscribe(json!(["newHeads"])).await;
    let to = Address::with_last_byte(0x77);
    let transfer = sign(
        &keys()[2],
        TxEip1559 {
            chain_id: CHAIN_ID,
            nonce: 0,
            gas_limit: 21_000,
            max_fee_per_gas: 3 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to: TxKind::Call(to),
            value: U256::from(1234),
            access_list: AccessList::default(),
            input: Bytes::new(),
        },
    );
    node.receipt(node.send(&transfer).await).await;
    let head = ws.notification(&heads).await;
    assert_eq!(head, header_of(&node, 1).await);

    // One authority: the sealed head is final at once.
    let hash: B256 = serde_json::from_value(head["hash"].clone()).unwrap();
    assert_eq!(running.node.finalized(), (1, hash));
    for tag in ["safe", "finalized"] {
        let block = node.call("eth_getBlockByNumber", json!([tag, false])).await;
        assert_eq!(block["hash"], head["hash"], "{tag}");
        let balance = node.call("eth_getBalance", json!([to, tag])).await;
        assert_eq!(balance, json!("0x4d2"), "{tag}");
        let receipts = node.call("eth_getBlockReceipts", json!([tag])).await;
        assert_eq!(receipts.as_array().unwrap().len(), 1, "{tag}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_does_not_stall_sealing() {
    let node = TestNode::start(0).await;
    let mut ws = Ws::connect(node.addr).await;
    ws.subscribe(json!(["newHeads"])).await;
    ws.subscribe(json!(["logs"])).await;
    node.receipt(node.send(&tx(0, TxKind::Create, init_code())).await)
        .await;
    // Never read `ws` again while 20 more blocks, each with a log, are sealed.
    for nonce in 1..=20 {
        node.receipt(
            node.send(&log_tx(nonce, B256::with_last_byte(nonce as u8)))
                .await,
        )
        .await;
    }
    assert_eq!(node.block_number().await, 21);
    drop(ws);
}
