//! `eth_subscribe` / `eth_unsubscribe` over WebSocket, with geth's notifications:
//!
//! - `["newHeads"]`: one `eth_subscription` notification per new head, whose
//!   `result` is the header (as in `eth_getBlockByNumber`, without `size`,
//!   transactions and uncles);
//! - `["logs", {"address": A | [A..], "topics": [T | [T..] | null, ..]}]`: one
//!   notification per matching log of each new block, in block order, with
//!   `removed: false`; when a reorg takes blocks off the chain, their logs
//!   come again with `removed: true` (newest block first) before the new
//!   branch's. Addresses and topics match as in `eth_getLogs`; block ranges
//!   and `blockHash` are refused.
//!
//! The node sends each new head on a broadcast channel and never waits for
//! subscribers. Each subscription task forwards from it; a subscription whose
//! client reads too slowly (it falls [`crate::node::EVENT_CAPACITY`] blocks
//! behind, or one notification waits more than [`SEND_TIMEOUT`] for room in the
//! connection's buffer) is closed with a last notification whose `error` is
//! `{"code": -32000, "message": "subscription dropped: ..."}`.
//!
//! `eth_unsubscribe` answers `true`, or `false` for an id that this connection
//! does not hold. Unknown kinds and malformed parameters are refused with -32602.

use std::sync::Arc;
use std::time::Duration;

use alloy_eips::BlockNumberOrTag;
use alloy_rpc_types_eth::{Filter, FilterBlockOption};
use jsonrpsee::core::{SubscriptionError, SubscriptionResult, async_trait};
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::server::{PendingSubscriptionSink, SendTimeoutError, SubscriptionSink};
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::Value;
use serde_json::value::{RawValue, to_raw_value};
use tokio::sync::broadcast::{self, error::RecvError};

use super::convert::{matching_logs, rpc_header};
use super::err;
use crate::node::{ChainEvent, Node};

/// How long one notification may wait for room in the connection's buffer.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The subscription methods (WebSocket only).
#[rpc(server)]
pub trait EthPubSubApi {
    /// `eth_subscribe`: `newHeads`, or `logs` with an optional filter.
    #[subscription(
        name = "eth_subscribe" => "eth_subscription",
        unsubscribe = "eth_unsubscribe",
        item = Value
    )]
    async fn subscribe(&self, kind: String, params: Option<Value>) -> SubscriptionResult;
}

/// The implementation of [`EthPubSubApiServer`].
#[derive(Debug)]
pub struct EthPubSub {
    node: Arc<Node>,
}

impl EthPubSub {
    /// Subscriptions to `node`'s new heads.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

/// What a subscription sends.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Kind {
    /// Each new head's header.
    NewHeads,
    /// Each log of a new block that matches the filter's address and topics.
    Logs(Box<Filter>),
}

impl Kind {
    /// Parses `eth_subscribe`'s parameters; errors are -32602.
    pub fn parse(kind: &str, params: Option<Value>) -> Result<Self, ErrorObjectOwned> {
        match kind {
            "newHeads" => match params {
                None => Ok(Self::NewHeads),
                Some(_) => Err(err(-32602, "newHeads takes no parameters")),
            },
            "logs" => {
                let filter: Filter = match params {
                    None => Filter::default(),
                    Some(v) => serde_json::from_value(v)
                        .map_err(|e| err(-32602, format!("invalid logs filter: {e}")))?,
                };
                let latest = |t: Option<&BlockNumberOrTag>| {
                    matches!(t, None | Some(BlockNumberOrTag::Latest))
                };
                match &filter.block_option {
                    FilterBlockOption::Range {
                        from_block,
                        to_block,
                    } if latest(from_block.as_ref()) && latest(to_block.as_ref()) => {}
                    _ => {
                        return Err(err(
                            -32602,
                            "invalid logs filter: a subscription follows new blocks; fromBlock, toBlock and blockHash are not allowed",
                        ));
                    }
                }
                Ok(Self::Logs(Box::new(filter)))
            }
            other => Err(err(
                -32602,
                format!(
                    "unsupported subscription kind {other:?}: this node serves \"newHeads\" and \"logs\""
                ),
            )),
        }
    }

    /// The notifications' results for `event`.
    pub fn results(&self, event: &ChainEvent) -> Vec<Box<RawValue>> {
        match (self, event) {
            (Self::NewHeads, ChainEvent::Head(block)) => {
                vec![to_raw_value(&rpc_header(block, None)).expect("headers serialize")]
            }
            (Self::NewHeads, ChainEvent::Removed(_)) => Vec::new(),
            (Self::Logs(filter), ChainEvent::Head(block) | ChainEvent::Removed(block)) => {
                let removed = matches!(event, ChainEvent::Removed(_));
                matching_logs(block, filter)
                    .into_iter()
                    .map(|mut l| {
                        l.removed = removed;
                        to_raw_value(&l).expect("logs serialize")
                    })
                    .collect()
            }
        }
    }
}

/// The error of a subscription closed by the node.
fn dropped(why: impl std::fmt::Display) -> SubscriptionError {
    let obj = serde_json::json!({
        "code": -32000,
        "message": format!("subscription dropped: {why}"),
    });
    SubscriptionError::from_json(to_raw_value(&obj).expect("JSON serializes"))
}

/// Waits for the next chain event; `Err` when the subscriber fell too far
/// behind.
pub async fn next_block(
    rx: &mut broadcast::Receiver<ChainEvent>,
) -> Result<Option<ChainEvent>, SubscriptionError> {
    match rx.recv().await {
        Ok(block) => Ok(Some(block)),
        Err(RecvError::Closed) => Ok(None),
        Err(RecvError::Lagged(n)) => Err(dropped(format!(
            "the client reads too slowly and missed {n} blocks"
        ))),
    }
}

/// Forwards new heads to `sink` until the client unsubscribes or disconnects,
/// the node stops, or the client is too slow.
async fn forward(
    sink: SubscriptionSink,
    mut rx: broadcast::Receiver<ChainEvent>,
    kind: Kind,
) -> SubscriptionResult {
    loop {
        let event = tokio::select! {
            () = sink.closed() => return Ok(()),
            next = next_block(&mut rx) => match next? {
                Some(event) => event,
                None => return Ok(()),
            },
        };
        for result in kind.results(&event) {
            match sink.send_timeout(result, SEND_TIMEOUT).await {
                Ok(()) => {}
                Err(SendTimeoutError::Closed(_)) => return Ok(()),
                Err(SendTimeoutError::Timeout(_)) => {
                    return Err(dropped(format!(
                        "the client read no notification for {} s",
                        SEND_TIMEOUT.as_secs()
                    )));
                }
            }
        }
    }
}

#[async_trait]
impl EthPubSubApiServer for EthPubSub {
    async fn subscribe(
        &self,
        pending: PendingSubscriptionSink,
        kind: String,
        params: Option<Value>,
    ) -> SubscriptionResult {
        let kind = match Kind::parse(&kind, params) {
            Ok(kind) => kind,
            Err(e) => {
                pending.reject(e).await;
                return Ok(());
            }
        };
        // Subscribe before answering, so no head after the answer is missed.
        let rx = self.node.subscribe_blocks();
        let sink = pending.accept().await?;
        tracing::debug!(target: "chain::rpc", kind = ?kind, id = ?sink.subscription_id(), "subscribed");
        forward(sink, rx, kind).await
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{Address, B256};

    use super::*;

    fn code_and_message(e: ErrorObjectOwned) -> (i32, String) {
        (e.code(), e.message().to_string())
    }

    #[test]
    fn parses_kinds_and_filters() {
        assert_eq!(Kind::parse("newHeads", None), Ok(Kind::NewHeads));
        let a = Address::with_last_byte(1);
        let t = B256::with_last_byte(2);
        let Ok(Kind::Logs(f)) = Kind::parse(
            "logs",
            Some(serde_json::json!({"address": a, "topics": [null, [t]]})),
        ) else {
            panic!("logs filter refused");
        };
        assert!(f.matches_address(a) && !f.matches_address(Address::ZERO));
        assert!(f.matches_topics(&[B256::ZERO, t]));
        assert!(!f.matches_topics(&[t, B256::ZERO]));
        assert_eq!(
            Kind::parse("logs", None),
            Ok(Kind::Logs(Box::default())),
            "no filter: every log"
        );
        assert!(matches!(
            Kind::parse("logs", Some(serde_json::json!({"fromBlock": "latest"}))),
            Ok(Kind::Logs(_))
        ));
    }

    #[test]
    fn refuses_unknown_kinds_and_bad_params() {
        let (code, msg) = code_and_message(Kind::parse("newBlocks", None).unwrap_err());
        assert_eq!(code, -32602);
        assert!(
            msg.contains("\"newBlocks\"") && msg.contains("newHeads"),
            "{msg}"
        );
        for (kind, params) in [
            ("newHeads", serde_json::json!({})),
            ("logs", serde_json::json!({"address": "0x12"})),
            ("logs", serde_json::json!({"topics": [1]})),
            ("logs", serde_json::json!({"fromBlock": "0x1"})),
            ("logs", serde_json::json!({"blockHash": B256::ZERO})),
            ("logs", serde_json::json!(["0x1"])),
        ] {
            let (code, msg) =
                code_and_message(Kind::parse(kind, Some(params.clone())).unwrap_err());
            assert_eq!(code, -32602, "{kind} {params}: {msg}");
        }
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_dropped_with_an_error() {
        let (tx, mut rx) = broadcast::channel(2);
        let block = ChainEvent::Head(Arc::new(crate::store::StoredBlock {
            header: Default::default(),
            hash: B256::ZERO,
            transactions: vec![],
            senders: vec![],
            receipts: vec![],
        }));
        for _ in 0..5 {
            tx.send(block.clone()).unwrap();
        }
        let e = next_block(&mut rx).await.unwrap_err();
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["code"], -32000);
        assert_eq!(
            json["message"],
            "subscription dropped: the client reads too slowly and missed 3 blocks"
        );
        // A subscriber that keeps up gets every block, then None when the node stops.
        let mut rx = tx.subscribe();
        tx.send(block.clone()).unwrap();
        assert!(next_block(&mut rx).await.unwrap().is_some());
        drop(tx);
        assert!(next_block(&mut rx).await.unwrap().is_none());
    }

    /// A block's logs go to `logs` subscribers with `removed: false` as a
    /// head and with `removed: true` when a reorg takes it off the chain;
    /// `newHeads` subscribers hear only heads.
    #[test]
    fn removed_blocks_resend_their_logs_as_removed() {
        use alloy_consensus::{
            Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom, Signed, TxEnvelope, TxLegacy,
        };
        use alloy_primitives::{Bytes, Log, LogData, Signature};
        let log = Log {
            address: Address::repeat_byte(9),
            data: LogData::new_unchecked(vec![B256::repeat_byte(1)], Bytes::from_static(b"x")),
        };
        let receipt = Receipt {
            status: Eip658Value::Eip658(true),
            cumulative_gas_used: 21_000,
            logs: vec![log.clone()],
        };
        let bloom = alloy_primitives::logs_bloom(std::slice::from_ref(&log));
        let tx = TxEnvelope::Legacy(Signed::new_unhashed(
            TxLegacy::default(),
            Signature::test_signature(),
        ));
        let block = Arc::new(crate::store::StoredBlock {
            header: alloy_consensus::Header {
                logs_bloom: bloom,
                number: 7,
                ..Default::default()
            },
            hash: B256::repeat_byte(7),
            transactions: vec![tx],
            senders: vec![Address::ZERO],
            receipts: vec![ReceiptEnvelope::Legacy(ReceiptWithBloom::new(
                receipt, bloom,
            ))],
        });
        let logs = Kind::parse("logs", None).unwrap();
        let as_json = |v: Vec<Box<RawValue>>| -> Vec<Value> {
            v.iter()
                .map(|r| serde_json::from_str(r.get()).unwrap())
                .collect()
        };
        let head = as_json(logs.results(&ChainEvent::Head(block.clone())));
        let gone = as_json(logs.results(&ChainEvent::Removed(block.clone())));
        assert_eq!((head.len(), gone.len()), (1, 1));
        assert_eq!(head[0]["removed"], false);
        assert_eq!(gone[0]["removed"], true);
        assert_eq!(gone[0]["blockNumber"], "0x7");
        assert_eq!(head[0]["address"], gone[0]["address"]);
        assert!(
            Kind::NewHeads
                .results(&ChainEvent::Removed(block))
                .is_empty()
        );
    }
}
