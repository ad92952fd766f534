//! Test helpers: start a dev node, talk JSON-RPC over HTTP, sign transactions.

use std::net::SocketAddr;
use std::time::Duration;

use alloy_consensus::{SignableTransaction, Signed, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, Signature, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes as HyperBytes;
use hyper_util::rt::TokioIo;
use netmind_chain::node::{Running, start};
use netmind_chain::spec::{ChainSpec, DEV_CHAIN_ID, dev_signers};
use netmind_chain::{NodeConfig, pool::PoolConfig};
use serde_json::{Value, json};

/// A dev node on a temporary datadir.
pub(crate) struct TestNode {
    pub(crate) running: Option<Running>,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) addr: SocketAddr,
}

impl TestNode {
    /// Initialises a dev chain with `period` and starts it.
    pub(crate) async fn start(period: u64) -> Self {
        Self::start_spec(&ChainSpec::dev(period)).await
    }

    /// Initialises the chain of `spec` (authority: the first dev key) and starts it.
    pub(crate) async fn start_spec(spec: &ChainSpec) -> Self {
        Self::start_with(spec, None).await
    }

    /// Like [`Self::start_spec`], also serving WebSocket-only JSON-RPC on `ws`.
    pub(crate) async fn start_with(spec: &ChainSpec, ws: Option<SocketAddr>) -> Self {
        Self::start_full(spec, ws, PoolConfig::default()).await
    }

    /// Like [`Self::start_spec`], with pool limits `pool`.
    pub(crate) async fn start_pool(spec: &ChainSpec, pool: PoolConfig) -> Self {
        Self::start_full(spec, None, pool).await
    }

    async fn start_full(spec: &ChainSpec, ws: Option<SocketAddr>, pool: PoolConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        netmind_chain::node::init(dir.path(), spec).unwrap();
        let running = start_in(dir.path(), ws, pool).await;
        let addr = running.http_addr;
        Self {
            running: Some(running),
            dir,
            addr,
        }
    }

    /// Stops the node (keeps the datadir).
    pub(crate) async fn stop(&mut self) {
        self.running.take().expect("running").stop().await;
    }

    /// Starts the node again on the same datadir.
    pub(crate) async fn restart(&mut self) {
        let running = start_in(self.dir.path(), None, PoolConfig::default()).await;
        self.addr = running.http_addr;
        self.running = Some(running);
    }

    /// The full JSON-RPC response of `method(params)`.
    pub(crate) async fn raw_call(&self, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        post(self.addr, body.to_string()).await
    }

    /// The `result` of `method(params)`; panics on an error response.
    pub(crate) async fn call(&self, method: &str, params: Value) -> Value {
        let resp = self.raw_call(method, params).await;
        match resp.get("result") {
            Some(r) => r.clone(),
            None => panic!("{method} failed: {resp}"),
        }
    }

    /// The `error` object of `method(params)`; panics on success.
    pub(crate) async fn call_err(&self, method: &str, params: Value) -> Value {
        let resp = self.raw_call(method, params).await;
        match resp.get("error") {
            Some(e) => e.clone(),
            None => panic!("{method} should fail: {resp}"),
        }
    }

    /// `eth_sendRawTransaction` of a signed transaction; returns its hash.
    pub(crate) async fn send(&self, tx: &TxEnvelope) -> B256 {
        let raw = Bytes::from(tx.encoded_2718());
        let hash = self.call("eth_sendRawTransaction", json!([raw])).await;
        let hash: B256 = serde_json::from_value(hash).unwrap();
        assert_eq!(hash, *tx.tx_hash());
        hash
    }

    /// Polls until the receipt of `hash` exists (10 s at most).
    pub(crate) async fn receipt(&self, hash: B256) -> Value {
        for _ in 0..200 {
            let r = self.call("eth_getTransactionReceipt", json!([hash])).await;
            if !r.is_null() {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no receipt for {hash} after 10 s");
    }

    pub(crate) async fn balance(&self, a: Address) -> U256 {
        serde_json::from_value(self.call("eth_getBalance", json!([a, "latest"])).await).unwrap()
    }

    pub(crate) async fn nonce(&self, a: Address) -> u64 {
        quantity(
            &self
                .call("eth_getTransactionCount", json!([a, "latest"]))
                .await,
        )
    }

    pub(crate) async fn block_number(&self) -> u64 {
        quantity(&self.call("eth_blockNumber", json!([])).await)
    }
}

async fn start_in(dir: &std::path::Path, ws: Option<SocketAddr>, pool: PoolConfig) -> Running {
    let cfg = NodeConfig {
        datadir: dir.to_path_buf(),
        http: "127.0.0.1:0".parse().unwrap(),
        ws,
        pool,
    };
    start(cfg, dev_signers()[0].clone()).await.unwrap()
}

/// POSTs `body` to the node and parses the JSON answer.
pub(crate) async fn post(addr: SocketAddr, body: String) -> Value {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::post("/")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(HyperBytes::from(body)))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

/// A hex quantity as u64.
pub(crate) fn quantity(v: &Value) -> u64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a quantity: {v}"));
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

/// Signs `tx` with `key`.
pub(crate) fn sign<T>(key: &PrivateKeySigner, tx: T) -> TxEnvelope
where
    T: SignableTransaction<Signature>,
    TxEnvelope: From<Signed<T>>,
{
    let sig = key.sign_hash_sync(&tx.signature_hash()).unwrap();
    tx.into_signed(sig).into()
}

/// The dev keys.
pub(crate) fn keys() -> Vec<PrivateKeySigner> {
    dev_signers()
}

/// The dev chain id.
pub(crate) const CHAIN_ID: u64 = DEV_CHAIN_ID;

/// 1 gwei.
pub(crate) const GWEI: u128 = 1_000_000_000;
