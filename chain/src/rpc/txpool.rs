//! geth's `txpool` namespace: what the pool holds. The pool refuses nonce
//! gaps, so every pooled transaction is executable in order: all are
//! `pending` and `queued` is always empty.

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy_consensus::TxEnvelope;
use alloy_consensus::transaction::Recovered;
use alloy_primitives::{Address, U64};
use alloy_rpc_types_eth::{Transaction, TransactionInfo};
use jsonrpsee::core::RpcResult;
use jsonrpsee::proc_macros::rpc;
use serde_json::{Value, json};

use crate::node::Node;

/// The `txpool_*` methods.
#[rpc(server, namespace = "txpool")]
pub trait TxpoolApi {
    /// `txpool_status`: how many transactions are pending and queued.
    #[method(name = "status")]
    fn status(&self) -> RpcResult<Value>;
    /// `txpool_content`: every pooled transaction, by sender and nonce.
    #[method(name = "content")]
    fn content(&self) -> RpcResult<Value>;
    /// `txpool_contentFrom`: one sender's pooled transactions, by nonce.
    #[method(name = "contentFrom")]
    fn content_from(&self, from: Address) -> RpcResult<Value>;
}

/// The implementation of [`TxpoolApiServer`].
#[derive(Debug)]
pub struct TxpoolRpc {
    node: Arc<Node>,
}

impl TxpoolRpc {
    /// The methods over `node`'s pool.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    /// The pooled transactions of `only` (or all), by sender then nonce.
    fn by_sender(&self, only: Option<Address>) -> BTreeMap<Address, BTreeMap<u64, Value>> {
        let txs: Vec<Recovered<TxEnvelope>> = self.node.with_pool(|p| p.all(only));
        let mut out: BTreeMap<Address, BTreeMap<u64, Value>> = BTreeMap::new();
        for tx in txs {
            let (sender, nonce) = (tx.signer(), alloy_consensus::Transaction::nonce(tx.inner()));
            let rpc = Transaction::from_transaction(tx, TransactionInfo::default());
            out.entry(sender)
                .or_default()
                .insert(nonce, serde_json::to_value(rpc).unwrap_or_default());
        }
        out
    }
}

/// Nonce → transaction, with the nonces as decimal strings (as geth).
fn by_nonce(txs: BTreeMap<u64, Value>) -> Value {
    Value::Object(txs.into_iter().map(|(n, t)| (n.to_string(), t)).collect())
}

impl TxpoolApiServer for TxpoolRpc {
    fn status(&self) -> RpcResult<Value> {
        let pending = self.node.with_pool(|p| p.len());
        Ok(json!({ "pending": U64::from(pending), "queued": U64::ZERO }))
    }

    fn content(&self) -> RpcResult<Value> {
        let pending: serde_json::Map<String, Value> = self
            .by_sender(None)
            .into_iter()
            .map(|(a, txs)| (a.to_checksum(None), by_nonce(txs)))
            .collect();
        Ok(json!({ "pending": pending, "queued": {} }))
    }

    fn content_from(&self, from: Address) -> RpcResult<Value> {
        let txs = self.by_sender(Some(from)).remove(&from).unwrap_or_default();
        Ok(json!({ "pending": by_nonce(txs), "queued": {} }))
    }
}
