//! Integration tests of the market: a real server on 127.0.0.1:0 with a real
//! journal (SQLite, and PostgreSQL when `NETMIND_TEST_POSTGRES` names a
//! server; required when `NETMIND_REQUIRE_POSTGRES` is set), driven over
//! HTTP with orders signed by real keys.

mod blobs;
mod dashboard;
mod data;
mod events;
mod jobs;
mod logs;
mod orders;
mod refusals;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256, U256};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::Eip712Domain;
use bytes::Bytes;
use http::{Method, StatusCode};
use netmind_market::api::DEFAULT_CHAIN_ID;
use netmind_market::client::MarketClient;
use netmind_market::server::{Market, MarketConfig};
use netmind_protocol::orders::{Cancel, JobOrder, Offer, Signed, domain};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A market served on a loopback port.
pub(crate) struct TestMarket {
    pub(crate) client: MarketClient,
    pub(crate) config: MarketConfig,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl TestMarket {
    pub(crate) async fn start(config: MarketConfig) -> Self {
        let market = Market::open(config.clone()).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            market
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            client: MarketClient::new(&format!("http://{addr}")).unwrap(),
            config,
            stop: Some(stop),
            task,
        }
    }

    /// Stops the server and waits until it has released the journal.
    pub(crate) async fn stop(mut self) -> MarketConfig {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("the server stops")
            .unwrap();
        self.config
    }

    /// Sends raw bytes; returns status and JSON body (Null when not JSON).
    pub(crate) async fn raw(&self, method: Method, path: &str, body: &[u8]) -> (StatusCode, Value) {
        let (status, _, bytes) = self
            .client
            .request(
                method,
                path,
                Some(Bytes::copy_from_slice(body)),
                "application/json",
            )
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> (StatusCode, Value) {
        self.raw(Method::POST, path, &serde_json::to_vec(body).unwrap())
            .await
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (status, _, bytes) = self
            .client
            .request(Method::GET, path, None, "")
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// What a refused request must leave as it was: the journal's length,
    /// the books and the deals.
    pub(crate) async fn snapshot(&self) -> Value {
        let mut out = serde_json::json!({
            "entries": self.get("/v1/info").await.1["journal_entries"],
            "deals": self.get("/v1/deals?limit=1000").await.1,
        });
        for class in ["gpu-24g", "cpu"] {
            out[class] = self.get(&format!("/v1/book/{class}")).await.1;
        }
        out
    }
}

/// Asserts an error answer: status, code, and words of the message.
pub(crate) fn assert_error(
    got: &(StatusCode, Value),
    status: StatusCode,
    code: &str,
    words: &[&str],
) {
    let (s, body) = got;
    assert_eq!(*s, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    for w in words {
        assert!(message.contains(w), "message lacks `{w}`: {message}");
    }
}

/// Market configs to run a test on: SQLite in `dir`, and a fresh PostgreSQL
/// database when `NETMIND_TEST_POSTGRES` names a server.
pub(crate) async fn configs(dir: &Path) -> Vec<MarketConfig> {
    let mut out = vec![config(&dir.join("sqlite"), None)];
    match std::env::var("NETMIND_TEST_POSTGRES") {
        Ok(admin) => {
            use sqlx::Connection;
            sqlx::any::install_default_drivers();
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            let name = format!("netmind_it_{}_{nanos}", std::process::id());
            let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
            // The name is ours (pid and clock digits), not input.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .unwrap();
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            out.push(config(&dir.join("pg"), Some(format!("{base}/{name}"))));
        }
        Err(_) => assert!(
            std::env::var_os("NETMIND_REQUIRE_POSTGRES").is_none(),
            "NETMIND_REQUIRE_POSTGRES is set but NETMIND_TEST_POSTGRES is not"
        ),
    }
    out
}

pub(crate) fn config(data: &Path, db: Option<String>) -> MarketConfig {
    MarketConfig {
        db,
        ..MarketConfig::new(data)
    }
}

pub(crate) fn dom() -> Eip712Domain {
    domain(DEFAULT_CHAIN_ID)
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn nonce() -> u64 {
    NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

pub(crate) fn offer(host: &PrivateKeySigner, class: &str, price: u64, slots: u32) -> Offer {
    Offer {
        host: host.address(),
        class: class.into(),
        gpuModel: "RTX 4090".into(),
        vram: 24 << 30,
        wgpuFeatures: vec![],
        encodings: vec!["onnx".into()],
        cores: 8,
        memoryBytes: 32 << 30,
        score: 100,
        price: U256::from(price),
        slots,
        expiry: now_ms() + 3_600_000,
        nonce: nonce(),
    }
}

pub(crate) fn job(owner: &PrivateKeySigner, class: &str, max: u64, replicas: u32) -> JobOrder {
    JobOrder {
        owner: owner.address(),
        bundle: B256::repeat_byte(1),
        input: B256::ZERO,
        class: class.into(),
        gpu: true,
        minVram: 16 << 30,
        encodings: vec!["onnx".into()],
        wgpuFeatures: vec![],
        cores: 4,
        minMemory: 8 << 30,
        minScore: 50,
        allow: vec![],
        deny: vec![],
        maxPrice: U256::from(max),
        maxSeconds: 600,
        replicas,
        deadline: now_ms() + 3_600_000,
        nonce: nonce(),
    }
}

pub(crate) fn sign<T: netmind_protocol::orders::Order>(
    order: T,
    key: &PrivateKeySigner,
) -> Signed<T> {
    Signed::sign(order, key, &dom()).unwrap()
}

/// Signs with `key` whatever maker the order names (no check): a forgery
/// when the maker is someone else.
pub(crate) fn forge<T: alloy_sol_types::SolStruct>(order: T, key: &PrivateKeySigner) -> Signed<T> {
    use alloy_signer::SignerSync;
    let signature = key
        .sign_hash_sync(&order.eip712_signing_hash(&dom()))
        .unwrap();
    Signed { order, signature }
}

pub(crate) fn cancel(key: &PrivateKeySigner, order: B256) -> Signed<Cancel> {
    sign(
        Cancel {
            maker: key.address(),
            order,
            expiry: now_ms() + 60_000,
        },
        key,
    )
}

pub(crate) fn id_of(v: &Value) -> B256 {
    v["id"].as_str().unwrap().parse().unwrap()
}

pub(crate) fn addr(v: &Value) -> Address {
    v.as_str().unwrap().parse().unwrap()
}
