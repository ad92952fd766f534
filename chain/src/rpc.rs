//! Ethereum JSON-RPC over HTTP (jsonrpsee).
//!
//! Error codes: -32700/-32600/-32601/-32602 come from jsonrpsee for malformed
//! requests; -32602 for undecodable parameters we parse ourselves (transaction
//! bytes); -32000 for refused transactions and unavailable state; 3 with the
//! revert data for reverted calls; -32603 for internal failures.
//!
//! State is kept for the head block only: state queries for an older block are
//! refused with -32000. `pending` reads the head state (and pooled nonces for
//! `eth_getTransactionCount`); `safe` and `finalized` are the head (one authority).

use std::net::SocketAddr;
use std::sync::Arc;

use alloy_consensus::{Header, Transaction as _, TxEnvelope, transaction::Recovered};
use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_rpc_types_eth::{
    Block, BlockTransactions, FeeHistory, Filter, Log, SyncStatus, Transaction, TransactionInfo,
    TransactionReceipt, TransactionRequest, Withdrawals,
};
use jsonrpsee::core::RpcResult;
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::server::{BatchRequestConfig, Server, ServerConfig, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;

use crate::exec::{CallError, call, estimate_gas};
use crate::node::{Node, SubmitError};
use crate::pool::PoolError;
use crate::store::{StoreReader, StoredBlock};
use crate::{Error, Result};

/// Most blocks one `eth_getLogs` may scan.
pub const MAX_LOG_RANGE: u64 = 10_000;
/// Most logs one `eth_getLogs` returns.
pub const MAX_LOGS: usize = 20_000;
/// Most blocks one `eth_feeHistory` covers.
pub const MAX_FEE_HISTORY: u64 = 1024;
/// Suggested priority fee (1 gwei).
pub const SUGGESTED_TIP: u64 = 1_000_000_000;

/// The methods served.
#[rpc(server)]
pub trait EthApi {
    /// `eth_chainId`
    #[method(name = "eth_chainId")]
    fn chain_id(&self) -> RpcResult<U64>;
    /// `net_version`: the chain id in decimal.
    #[method(name = "net_version")]
    fn net_version(&self) -> RpcResult<String>;
    /// `web3_clientVersion`
    #[method(name = "web3_clientVersion")]
    fn client_version(&self) -> RpcResult<String>;
    /// `eth_blockNumber`
    #[method(name = "eth_blockNumber")]
    fn block_number(&self) -> RpcResult<U64>;
    /// `eth_getBalance`
    #[method(name = "eth_getBalance")]
    fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256>;
    /// `eth_getTransactionCount`
    #[method(name = "eth_getTransactionCount")]
    fn transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U64>;
    /// `eth_getCode`
    #[method(name = "eth_getCode")]
    fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes>;
    /// `eth_getStorageAt`
    #[method(name = "eth_getStorageAt")]
    fn storage_at(&self, address: Address, slot: U256, block: Option<BlockId>) -> RpcResult<B256>;
    /// `eth_call`
    #[method(name = "eth_call", blocking)]
    fn call(&self, req: TransactionRequest, block: Option<BlockId>) -> RpcResult<Bytes>;
    /// `eth_estimateGas`
    #[method(name = "eth_estimateGas", blocking)]
    fn estimate_gas(&self, req: TransactionRequest, block: Option<BlockId>) -> RpcResult<U64>;
    /// `eth_gasPrice`: next base fee plus the suggested tip.
    #[method(name = "eth_gasPrice")]
    fn gas_price(&self) -> RpcResult<U256>;
    /// `eth_maxPriorityFeePerGas`
    #[method(name = "eth_maxPriorityFeePerGas")]
    fn max_priority_fee(&self) -> RpcResult<U256>;
    /// `eth_sendRawTransaction`
    #[method(name = "eth_sendRawTransaction")]
    fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<B256>;
    /// `eth_getTransactionByHash` (pooled transactions have no block fields)
    #[method(name = "eth_getTransactionByHash")]
    fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Transaction>>;
    /// `eth_getTransactionReceipt`
    #[method(name = "eth_getTransactionReceipt")]
    fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<TransactionReceipt>>;
    /// `eth_getBlockByNumber`
    #[method(name = "eth_getBlockByNumber")]
    fn block_by_number(&self, number: BlockNumberOrTag, full: bool) -> RpcResult<Option<Block>>;
    /// `eth_getBlockByHash`
    #[method(name = "eth_getBlockByHash")]
    fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>>;
    /// `eth_getLogs`
    #[method(name = "eth_getLogs", blocking)]
    fn logs(&self, filter: Filter) -> RpcResult<Vec<Log>>;
    /// `eth_getBlockReceipts`
    #[method(name = "eth_getBlockReceipts")]
    fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>>;
    /// `eth_feeHistory`
    #[method(name = "eth_feeHistory", blocking)]
    fn fee_history(
        &self,
        block_count: U64,
        newest: BlockNumberOrTag,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory>;
    /// `eth_syncing`: always `false` (no sync between nodes yet).
    #[method(name = "eth_syncing")]
    fn syncing(&self) -> RpcResult<SyncStatus>;
    /// `clique_getSigners`
    #[method(name = "clique_getSigners")]
    fn clique_signers(&self, block: Option<BlockNumberOrTag>) -> RpcResult<Vec<Address>>;
}

/// Starts the HTTP server for `node` on `addr`; returns its handle and bound address.
pub async fn serve(node: Arc<Node>, addr: SocketAddr) -> Result<(ServerHandle, SocketAddr)> {
    let cfg = ServerConfig::builder()
        .http_only()
        .max_request_body_size(5 << 20)
        .max_response_body_size(50 << 20)
        .max_connections(500)
        .set_batch_request_config(BatchRequestConfig::Limit(100))
        .build();
    let server = Server::builder().set_config(cfg).build(addr).await?;
    let bound = server.local_addr()?;
    let handle = server.start(EthRpc { node }.into_rpc());
    Ok((handle, bound))
}

/// The implementation of [`EthApiServer`].
#[derive(Debug)]
pub struct EthRpc {
    node: Arc<Node>,
}

fn err(code: i32, msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, msg.into(), None::<()>)
}

fn internal(e: Error) -> ErrorObjectOwned {
    tracing::error!(target: "chain::rpc", "internal error: {e}");
    err(-32603, format!("internal error: {e}"))
}

impl EthRpc {
    fn reader(&self) -> RpcResult<StoreReader> {
        self.node.reader().map_err(internal)
    }

    /// Resolves a block tag to a number, given the head of the snapshot read.
    fn number_of(tag: BlockNumberOrTag, head: u64) -> u64 {
        match tag {
            BlockNumberOrTag::Earliest => 0,
            BlockNumberOrTag::Number(n) => n,
            BlockNumberOrTag::Pending
            | BlockNumberOrTag::Latest
            | BlockNumberOrTag::Safe
            | BlockNumberOrTag::Finalized => head,
        }
    }

    /// A reader positioned at the head, after checking `block` names the head.
    fn state_at(&self, block: Option<BlockId>) -> RpcResult<StoreReader> {
        let reader = self.reader()?;
        let (head_number, head_hash) = reader.head().map_err(internal)?;
        let wanted = match block.unwrap_or_default() {
            BlockId::Number(tag) => Some(Self::number_of(tag, head_number)),
            BlockId::Hash(h) => reader.block_number(h.block_hash).map_err(internal)?,
        };
        match wanted {
            Some(n) if n == head_number => Ok(reader),
            Some(n) if n > head_number => Err(err(-32000, format!("header not found: block {n}"))),
            Some(n) => Err(err(
                -32000,
                format!(
                    "historical state unavailable: block {n} is not the head {head_number} ({head_hash})"
                ),
            )),
            None => Err(err(-32000, "header not found")),
        }
    }

    fn rpc_block(&self, block: StoredBlock, full: bool) -> Block {
        let size = {
            let body = alloy_consensus::BlockBody {
                transactions: block.transactions.clone(),
                ommers: vec![],
                withdrawals: Some(Withdrawals::default()),
            };
            alloy_rlp::Encodable::length(&alloy_consensus::Block {
                header: block.header.clone(),
                body,
            })
        };
        let transactions = if full {
            BlockTransactions::Full(
                block
                    .transactions
                    .iter()
                    .zip(&block.senders)
                    .enumerate()
                    .map(|(i, (tx, from))| rpc_tx(tx.clone(), *from, &block.header, block.hash, i))
                    .collect(),
            )
        } else {
            BlockTransactions::Hashes(block.transactions.iter().map(|t| *t.tx_hash()).collect())
        };
        let header = alloy_rpc_types_eth::Header::from_consensus(
            alloy_primitives::Sealed::new_unchecked(block.header, block.hash),
            None,
            Some(U256::from(size)),
        );
        Block {
            header,
            uncles: vec![],
            transactions,
            withdrawals: Some(Withdrawals::default()),
        }
    }
}

/// The head header of a snapshot.
fn head_header(r: &StoreReader) -> RpcResult<Header> {
    let (_, hash) = r.head().map_err(internal)?;
    r.header(hash)
        .map_err(internal)?
        .ok_or_else(|| internal(Error::Corrupt(format!("head header {hash} missing"))))
}

fn rpc_tx(tx: TxEnvelope, from: Address, header: &Header, hash: B256, index: usize) -> Transaction {
    let info = TransactionInfo {
        hash: Some(*tx.tx_hash()),
        index: Some(index as u64),
        block_hash: Some(hash),
        block_number: Some(header.number),
        base_fee: header.base_fee_per_gas,
        block_timestamp: Some(header.timestamp),
    };
    Transaction::from_transaction(Recovered::new_unchecked(tx, from), info)
}

fn receipts_with_logs(block: &StoredBlock) -> Vec<TransactionReceipt> {
    let mut log_index = 0u64;
    let mut prev_cumulative = 0u64;
    let base_fee = block.header.base_fee_per_gas;
    block
        .receipts
        .iter()
        .zip(&block.transactions)
        .zip(&block.senders)
        .enumerate()
        .map(|(i, ((receipt, tx), from))| {
            let cumulative = receipt.cumulative_gas_used();
            let gas_used = cumulative - prev_cumulative;
            prev_cumulative = cumulative;
            let tx_hash = *tx.tx_hash();
            let inner = receipt.clone().map_logs(|l| {
                let log = Log {
                    inner: l,
                    block_hash: Some(block.hash),
                    block_number: Some(block.header.number),
                    block_timestamp: Some(block.header.timestamp),
                    transaction_hash: Some(tx_hash),
                    transaction_index: Some(i as u64),
                    log_index: Some(log_index),
                    removed: false,
                };
                log_index += 1;
                log
            });
            TransactionReceipt {
                inner,
                transaction_hash: tx_hash,
                transaction_index: Some(i as u64),
                block_hash: Some(block.hash),
                block_number: Some(block.header.number),
                gas_used,
                effective_gas_price: tx.effective_gas_price(base_fee),
                blob_gas_used: None,
                blob_gas_price: None,
                from: *from,
                to: tx.to(),
                contract_address: tx.is_create().then(|| from.create(tx.nonce())),
            }
        })
        .collect()
}

/// The tips at `percentiles` of a block's gas (as geth: transactions sorted by
/// tip, each weighted by the gas it used).
fn block_rewards(block: &StoredBlock, percentiles: &[f64]) -> Vec<u128> {
    let base_fee = block.header.base_fee_per_gas.unwrap_or_default();
    let receipts = receipts_with_logs(block);
    let mut tips: Vec<(u128, u64)> = block
        .transactions
        .iter()
        .zip(&receipts)
        .map(|(tx, r)| {
            (
                tx.effective_tip_per_gas(base_fee).unwrap_or_default(),
                r.gas_used,
            )
        })
        .collect();
    if tips.is_empty() {
        return vec![0; percentiles.len()];
    }
    tips.sort_unstable();
    let total: u64 = tips.iter().map(|(_, g)| g).sum();
    percentiles
        .iter()
        .map(|p| {
            let threshold = (total as f64 * p / 100.0) as u64;
            let mut sum = 0;
            for (tip, gas) in &tips {
                sum += gas;
                if sum >= threshold {
                    return *tip;
                }
            }
            tips.last().map_or(0, |t| t.0)
        })
        .collect()
}

fn call_error(e: CallError) -> ErrorObjectOwned {
    match e {
        CallError::Revert(data) => {
            let msg = CallError::Revert(data.clone()).to_string();
            ErrorObjectOwned::owned(3, msg, Some(data))
        }
        CallError::Halt(_) | CallError::Invalid(_) => err(-32000, e.to_string()),
        CallError::Node(e) => internal(e),
    }
}

impl EthApiServer for EthRpc {
    fn chain_id(&self) -> RpcResult<U64> {
        Ok(U64::from(self.node.spec.chain_id))
    }

    fn net_version(&self) -> RpcResult<String> {
        Ok(self.node.spec.chain_id.to_string())
    }

    fn client_version(&self) -> RpcResult<String> {
        Ok(format!("netmind/v{}", env!("CARGO_PKG_VERSION")))
    }

    fn block_number(&self) -> RpcResult<U64> {
        Ok(U64::from(self.node.head().0.number))
    }

    fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256> {
        let r = self.state_at(block)?;
        Ok(r.account(address)
            .map_err(internal)?
            .map(|a| a.balance)
            .unwrap_or_default())
    }

    fn transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U64> {
        let pending = matches!(block, Some(BlockId::Number(BlockNumberOrTag::Pending)));
        let r = self.state_at(block)?;
        let nonce = r
            .account(address)
            .map_err(internal)?
            .map(|a| a.nonce)
            .unwrap_or_default();
        if pending {
            return Ok(U64::from(
                self.node.with_pool(|p| p.pending_nonce(address, nonce)),
            ));
        }
        Ok(U64::from(nonce))
    }

    fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes> {
        let r = self.state_at(block)?;
        let Some(acc) = r.account(address).map_err(internal)? else {
            return Ok(Bytes::new());
        };
        Ok(r.code(acc.code_hash).map_err(internal)?.unwrap_or_default())
    }

    fn storage_at(&self, address: Address, slot: U256, block: Option<BlockId>) -> RpcResult<B256> {
        let r = self.state_at(block)?;
        Ok(B256::from(r.storage(address, slot).map_err(internal)?))
    }

    fn call(&self, req: TransactionRequest, block: Option<BlockId>) -> RpcResult<Bytes> {
        let r = self.state_at(block)?;
        let head = head_header(&r)?;
        call(&self.node.spec, &r, &head, req)
            .map(|o| o.output)
            .map_err(call_error)
    }

    fn estimate_gas(&self, req: TransactionRequest, block: Option<BlockId>) -> RpcResult<U64> {
        let r = self.state_at(block)?;
        let head = head_header(&r)?;
        estimate_gas(&self.node.spec, &r, &head, req)
            .map(U64::from)
            .map_err(call_error)
    }

    fn gas_price(&self) -> RpcResult<U256> {
        Ok(U256::from(self.node.next_base_fee()) + U256::from(SUGGESTED_TIP))
    }

    fn max_priority_fee(&self) -> RpcResult<U256> {
        Ok(U256::from(SUGGESTED_TIP))
    }

    fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<B256> {
        self.node.submit_raw(&raw).map_err(|e| match e {
            SubmitError::Pool(e @ (PoolError::Decode(_) | PoolError::Signature(_))) => {
                err(-32602, e.to_string())
            }
            SubmitError::Pool(e) => err(-32000, e.to_string()),
            SubmitError::Node(e) => internal(e),
        })
    }

    fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Transaction>> {
        let r = self.reader()?;
        if let Some((number, index)) = r.tx_location(hash).map_err(internal)? {
            let block = r.block_by_number(number).map_err(internal)?;
            let Some(block) = block else { return Ok(None) };
            let i = index as usize;
            let (Some(tx), Some(from)) = (block.transactions.get(i), block.senders.get(i)) else {
                return Err(internal(Error::Corrupt(format!(
                    "tx index {i} missing in block {number}"
                ))));
            };
            return Ok(Some(rpc_tx(
                tx.clone(),
                *from,
                &block.header,
                block.hash,
                i,
            )));
        }
        Ok(self.node.with_pool(|p| {
            p.get(&hash)
                .map(|t| Transaction::from_transaction(t.clone(), TransactionInfo::default()))
        }))
    }

    fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<TransactionReceipt>> {
        let r = self.reader()?;
        let Some((number, index)) = r.tx_location(hash).map_err(internal)? else {
            return Ok(None);
        };
        let Some(block) = r.block_by_number(number).map_err(internal)? else {
            return Ok(None);
        };
        Ok(receipts_with_logs(&block).into_iter().nth(index as usize))
    }

    fn block_by_number(&self, number: BlockNumberOrTag, full: bool) -> RpcResult<Option<Block>> {
        let r = self.reader()?;
        let n = Self::number_of(number, r.head().map_err(internal)?.0);
        Ok(r.block_by_number(n)
            .map_err(internal)?
            .map(|b| self.rpc_block(b, full)))
    }

    fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>> {
        let r = self.reader()?;
        Ok(r.block(hash)
            .map_err(internal)?
            .map(|b| self.rpc_block(b, full)))
    }

    fn logs(&self, filter: Filter) -> RpcResult<Vec<Log>> {
        let r = self.reader()?;
        let blocks: Vec<u64> = if let Some(hash) = filter.get_block_hash() {
            match r.block_number(hash).map_err(internal)? {
                Some(n) => vec![n],
                None => return Err(err(-32000, format!("unknown block {hash}"))),
            }
        } else {
            let head = r.head().map_err(internal)?.0;
            let resolve =
                |t: Option<&BlockNumberOrTag>| t.map_or(head, |t| Self::number_of(*t, head));
            let from = resolve(filter.block_option.get_from_block());
            let to = resolve(filter.block_option.get_to_block()).min(head);
            if from > to {
                return Ok(vec![]);
            }
            if to - from >= MAX_LOG_RANGE {
                return Err(err(
                    -32602,
                    format!("query exceeds max block range {MAX_LOG_RANGE}"),
                ));
            }
            (from..=to).collect()
        };
        let mut out = Vec::new();
        for n in blocks {
            let Some(hash) = r.canonical_hash(n).map_err(internal)? else {
                continue;
            };
            let Some(header) = r.header(hash).map_err(internal)? else {
                continue;
            };
            if !filter.matches_bloom(header.logs_bloom) {
                continue;
            }
            let Some(block) = r.block(hash).map_err(internal)? else {
                continue;
            };
            for receipt in receipts_with_logs(&block) {
                for log in receipt.inner.logs() {
                    if filter.matches(&log.inner) {
                        out.push(log.clone());
                        if out.len() > MAX_LOGS {
                            return Err(err(
                                -32000,
                                format!("query returned more than {MAX_LOGS} results"),
                            ));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>> {
        let r = self.reader()?;
        let block = match block {
            BlockId::Number(tag) => {
                r.block_by_number(Self::number_of(tag, r.head().map_err(internal)?.0))
            }
            BlockId::Hash(h) => r.block(h.block_hash),
        }
        .map_err(internal)?;
        Ok(block.map(|b| receipts_with_logs(&b)))
    }

    fn fee_history(
        &self,
        block_count: U64,
        newest: BlockNumberOrTag,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory> {
        let percentiles = percentiles.unwrap_or_default();
        if percentiles.iter().any(|p| !(0.0..=100.0).contains(p))
            || percentiles.windows(2).any(|w| w[0] > w[1])
        {
            return Err(err(
                -32602,
                "reward percentiles must be ascending values in [0, 100]",
            ));
        }
        let r = self.reader()?;
        let head = r.head().map_err(internal)?.0;
        let newest = Self::number_of(newest, head);
        if newest > head {
            return Err(err(-32000, format!("header not found: block {newest}")));
        }
        let count = block_count.to::<u64>().min(MAX_FEE_HISTORY).min(newest + 1);
        let oldest = newest + 1 - count;
        let mut history = FeeHistory {
            oldest_block: oldest,
            ..Default::default()
        };
        let mut rewards = vec![];
        let mut last = None;
        for n in oldest..=newest {
            let Some(block) = r.block_by_number(n).map_err(internal)? else {
                return Err(err(-32000, format!("header not found: block {n}")));
            };
            let h = &block.header;
            history
                .base_fee_per_gas
                .push(h.base_fee_per_gas.unwrap_or_default().into());
            history
                .gas_used_ratio
                .push(h.gas_used as f64 / h.gas_limit.max(1) as f64);
            history.base_fee_per_blob_gas.push(1);
            history.blob_gas_used_ratio.push(0.0);
            if !percentiles.is_empty() {
                rewards.push(block_rewards(&block, &percentiles));
            }
            last = Some(block.header);
        }
        if let Some(h) = last {
            let next = h.next_block_base_fee(alloy_eips::eip1559::BaseFeeParams::ethereum());
            history
                .base_fee_per_gas
                .push(next.unwrap_or_default().into());
            history.base_fee_per_blob_gas.push(1);
        }
        history.reward = (!percentiles.is_empty()).then_some(rewards);
        Ok(history)
    }

    fn syncing(&self) -> RpcResult<SyncStatus> {
        Ok(SyncStatus::None)
    }

    fn clique_signers(&self, _block: Option<BlockNumberOrTag>) -> RpcResult<Vec<Address>> {
        Ok(self.node.signers().to_vec())
    }
}
