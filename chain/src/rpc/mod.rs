//! Ethereum JSON-RPC over HTTP and WebSocket (jsonrpsee).
//!
//! One port serves both: a plain POST is HTTP, an `Upgrade: websocket` request
//! opens a WebSocket on which `eth_subscribe` works too ([`serve`]); a second,
//! WebSocket-only port can be added ([`serve_ws`]).
//!
//! - [`eth`]: the request/response methods (`eth_*`, `net_version`, ...);
//! - [`pubsub`]: `eth_subscribe`/`eth_unsubscribe` (`newHeads`, `logs`);
//! - [`transport`]: middleware that refuses subscriptions over plain HTTP;
//! - `convert`: stored blocks, transactions, receipts and logs as RPC objects.
//!
//! Error codes: -32700/-32600/-32601/-32602 come from jsonrpsee for malformed
//! requests; -32602 for undecodable parameters we parse ourselves (transaction
//! bytes, subscription kinds and filters); -32601 "notifications not supported"
//! for `eth_subscribe` over HTTP (as geth); -32000 for refused transactions and
//! unavailable state; 3 with the revert data for reverted calls; -32603 for
//! internal failures.
//!
//! State is kept for the head block only: state queries for an older block are
//! refused with -32000. `pending` reads the head state (and pooled nonces for
//! `eth_getTransactionCount`); `safe` and `finalized` are the finalized block of
//! [`crate::finality`] (the head, with one authority).

use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use alloy_primitives::{hex, keccak256};
use jsonrpsee::RpcModule;
use jsonrpsee::core::middleware::RpcServiceBuilder;
use jsonrpsee::server::{
    BatchRequestConfig, IdProvider, PingConfig, Server, ServerConfig, ServerHandle,
};
use jsonrpsee::types::{ErrorObjectOwned, SubscriptionId};

use crate::node::Node;
use crate::{Error, Result};

mod convert;
pub mod debug;
pub mod eth;
pub mod pubsub;
pub mod transport;
pub mod txpool;

pub use eth::{EthApiServer, EthRpc};
pub use pubsub::{EthPubSub, EthPubSubApiServer};

/// Most blocks one `eth_getLogs` may scan.
pub const MAX_LOG_RANGE: u64 = 10_000;
/// Most logs one `eth_getLogs` returns.
pub const MAX_LOGS: usize = 20_000;
/// Most blocks one `eth_feeHistory` covers.
pub const MAX_FEE_HISTORY: u64 = 1024;
/// Suggested priority fee (1 gwei).
pub const SUGGESTED_TIP: u64 = 1_000_000_000;
/// Most subscriptions one WebSocket connection may hold.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: u32 = 1024;

/// Starts JSON-RPC over HTTP and WebSocket for `node` on `addr`; returns its
/// handle and bound address.
pub async fn serve(node: Arc<Node>, addr: SocketAddr) -> Result<(ServerHandle, SocketAddr)> {
    serve_with(node, addr, ServerConfig::builder()).await
}

/// Starts JSON-RPC over WebSocket only for `node` on `addr`.
pub async fn serve_ws(node: Arc<Node>, addr: SocketAddr) -> Result<(ServerHandle, SocketAddr)> {
    serve_with(node, addr, ServerConfig::builder().ws_only()).await
}

async fn serve_with(
    node: Arc<Node>,
    addr: SocketAddr,
    cfg: jsonrpsee::server::ServerConfigBuilder,
) -> Result<(ServerHandle, SocketAddr)> {
    let cfg = cfg
        .max_request_body_size(5 << 20)
        .max_response_body_size(50 << 20)
        .max_connections(500)
        .max_subscriptions_per_connection(MAX_SUBSCRIPTIONS_PER_CONNECTION)
        .set_batch_request_config(BatchRequestConfig::Limit(100))
        .set_id_provider(HexIdProvider::new())
        .enable_ws_ping(PingConfig::new())
        .build();
    let server = Server::builder()
        .set_config(cfg)
        .set_http_middleware(tower::ServiceBuilder::new().layer(transport::MarkPlainHttpLayer))
        .set_rpc_middleware(RpcServiceBuilder::new().layer_fn(transport::NoHttpSubscriptions::new))
        .build(addr)
        .await?;
    let bound = server.local_addr()?;
    let handle = server.start(module(node));
    Ok((handle, bound))
}

/// Every method served, over `node`.
pub fn module(node: Arc<Node>) -> RpcModule<()> {
    let mut module = RpcModule::new(());
    module
        .merge(EthRpc::new(node.clone()).into_rpc())
        .expect("method names are unique");
    module
        .merge(txpool::TxpoolApiServer::into_rpc(txpool::TxpoolRpc::new(
            node.clone(),
        )))
        .expect("method names are unique");
    module
        .merge(debug::DebugApiServer::into_rpc(debug::DebugRpc::new(
            node.clone(),
        )))
        .expect("method names are unique");
    module
        .merge(EthPubSub::new(node.clone()).into_rpc())
        .expect("method names are unique");
    module
        .merge(crate::net::module(node))
        .expect("method names are unique");
    module
}

/// Subscription ids as geth makes them: 16 random-looking bytes in hex, `0x`
/// prefixed, leading zeros trimmed.
#[derive(Debug)]
struct HexIdProvider {
    seed: u64,
    next: AtomicU64,
}

impl HexIdProvider {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Self {
            seed: std::collections::hash_map::RandomState::new().hash_one(nanos),
            next: AtomicU64::new(0),
        }
    }
}

impl IdProvider for HexIdProvider {
    fn next_id(&self) -> SubscriptionId<'static> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 16];
        buf[..8].copy_from_slice(&self.seed.to_be_bytes());
        buf[8..].copy_from_slice(&n.to_be_bytes());
        let id = hex::encode(&keccak256(buf)[..16]);
        let id = id.trim_start_matches('0');
        let id = if id.is_empty() { "0" } else { id };
        SubscriptionId::Str(format!("0x{id}").into())
    }
}

pub(crate) fn err(code: i32, msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, msg.into(), None::<()>)
}

pub(crate) fn internal(e: Error) -> ErrorObjectOwned {
    tracing::error!(target: "chain::rpc", "internal error: {e}");
    err(-32603, format!("internal error: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_ids_are_distinct_geth_style_hex() {
        let p = HexIdProvider::new();
        let ids: std::collections::BTreeSet<String> = (0..1000)
            .map(|_| match p.next_id() {
                SubscriptionId::Str(s) => s.into_owned(),
                SubscriptionId::Num(n) => panic!("numeric id {n}"),
            })
            .collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            let digits = id.strip_prefix("0x").expect("0x prefix");
            assert!(digits.len() <= 32 && !digits.is_empty(), "{id}");
            assert!(digits == "0" || !digits.starts_with('0'), "{id}");
            assert!(digits.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        }
    }
}
