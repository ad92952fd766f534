//! geth's raw `debug_*` getters: the consensus encodings of blocks, headers,
//! receipts and transactions, as stored (what a tool re-importing or proving
//! them needs).

use std::sync::Arc;

use alloy_eips::eip2718::Encodable2718;
use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{B256, Bytes};
use jsonrpsee::core::RpcResult;
use jsonrpsee::proc_macros::rpc;

use super::{err, internal};
use crate::node::Node;
use crate::store::StoredBlock;

/// The `debug_getRaw*` methods.
#[rpc(server, namespace = "debug")]
pub trait DebugApi {
    /// `debug_getRawBlock`: the RLP block (header, transactions, ommers, withdrawals).
    #[method(name = "getRawBlock")]
    fn raw_block(&self, block: BlockId) -> RpcResult<Bytes>;
    /// `debug_getRawHeader`: the RLP header.
    #[method(name = "getRawHeader")]
    fn raw_header(&self, block: BlockId) -> RpcResult<Bytes>;
    /// `debug_getRawReceipts`: each receipt's EIP-2718 encoding, in block order.
    #[method(name = "getRawReceipts")]
    fn raw_receipts(&self, block: BlockId) -> RpcResult<Vec<Bytes>>;
    /// `debug_getRawTransaction`: a mined or pooled transaction's EIP-2718 encoding.
    #[method(name = "getRawTransaction")]
    fn raw_transaction(&self, hash: String) -> RpcResult<Bytes>;
}

/// The implementation of [`DebugApiServer`].
#[derive(Debug)]
pub struct DebugRpc {
    node: Arc<Node>,
}

impl DebugRpc {
    /// The methods over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    /// The canonical block number `block` names.
    fn number(&self, block: BlockId) -> RpcResult<u64> {
        let head = self.node.head().0.number;
        let n = match block {
            BlockId::Number(BlockNumberOrTag::Earliest) => 0,
            BlockId::Number(BlockNumberOrTag::Number(n)) => n,
            BlockId::Number(BlockNumberOrTag::Latest | BlockNumberOrTag::Pending) => head,
            BlockId::Number(BlockNumberOrTag::Safe | BlockNumberOrTag::Finalized) => {
                self.node.finalized().0.min(head)
            }
            BlockId::Hash(h) => self
                .node
                .reader()
                .and_then(|r| r.block_number(h.block_hash))
                .map_err(internal)?
                .ok_or_else(|| err(-32000, format!("block {} not found", h.block_hash)))?,
        };
        if n > head {
            return Err(err(
                -32000,
                format!("block {n} not found (the head is {head})"),
            ));
        }
        Ok(n)
    }

    fn block(&self, block: BlockId) -> RpcResult<StoredBlock> {
        let n = self.number(block)?;
        self.node
            .reader()
            .and_then(|r| r.block_by_number(n))
            .map_err(internal)?
            .ok_or_else(|| err(-32000, format!("block {n} not found")))
    }
}

impl DebugApiServer for DebugRpc {
    fn raw_block(&self, block: BlockId) -> RpcResult<Bytes> {
        let n = self.number(block)?;
        self.node
            .rlp_block(n)
            .map_err(internal)?
            .ok_or_else(|| err(-32000, format!("block {n} not found")))
    }

    fn raw_header(&self, block: BlockId) -> RpcResult<Bytes> {
        Ok(alloy_rlp::encode(self.block(block)?.header).into())
    }

    fn raw_receipts(&self, block: BlockId) -> RpcResult<Vec<Bytes>> {
        let block = self.block(block)?;
        Ok(block
            .receipts
            .iter()
            .map(|r| r.encoded_2718().into())
            .collect())
    }

    fn raw_transaction(&self, hash: String) -> RpcResult<Bytes> {
        // A hash must be 0x-prefixed (as geth insists), not bare hex.
        let hash: B256 = hash
            .strip_prefix("0x")
            .and_then(|h| h.parse().ok())
            .ok_or_else(|| {
                err(
                    -32602,
                    format!("invalid argument 0: `{hash}` is not a 0x-prefixed 32-byte hash"),
                )
            })?;
        let r = self.node.reader().map_err(internal)?;
        if let Some((number, index)) = r.tx_location(hash).map_err(internal)? {
            let block = r.block_by_number(number).map_err(internal)?;
            if let Some(tx) = block.and_then(|b| b.transactions.into_iter().nth(index as usize)) {
                return Ok(tx.encoded_2718().into());
            }
        }
        self.node
            .with_pool(|p| p.get(&hash).map(|t| t.inner().encoded_2718()))
            .map(Bytes::from)
            .ok_or_else(|| err(-32000, format!("transaction {hash} not found")))
    }
}
