//! The request/response methods: `eth_*`, `net_version`, `web3_clientVersion`,
//! `clique_getSigners`.

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_rpc_types_eth::{
    Block, EIP1186AccountProofResponse, FeeHistory, Filter, Log, SyncStatus, Transaction,
    TransactionInfo, TransactionReceipt, TransactionRequest,
};
use alloy_serde::storage::JsonStorageKey;
use jsonrpsee::core::RpcResult;
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;

use super::convert::{
    block_rewards, head_header, matching_logs, receipts_with_logs, rpc_block, rpc_tx,
};
use super::{MAX_FEE_HISTORY, MAX_LOG_RANGE, MAX_LOGS, SUGGESTED_TIP, err, internal};
use crate::Error;
use crate::exec::{CallError, call, estimate_gas};
use crate::node::{Node, SubmitError};
use crate::pool::PoolError;
use crate::store::StoreReader;

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
    fn storage_at(
        &self,
        address: Address,
        slot: StorageKey,
        block: Option<BlockId>,
    ) -> RpcResult<B256>;
    /// `eth_getProof` (EIP-1186): the account and storage slots with their
    /// Merkle proofs against the state root.
    #[method(name = "eth_getProof", blocking)]
    fn proof(
        &self,
        address: Address,
        slots: Vec<JsonStorageKey>,
        block: Option<BlockId>,
    ) -> RpcResult<EIP1186AccountProofResponse>;
    /// `eth_getStorageValues`: several slots of several accounts at once.
    #[method(name = "eth_getStorageValues")]
    fn storage_values(
        &self,
        slots: BTreeMap<Address, Vec<JsonStorageKey>>,
        block: Option<BlockId>,
    ) -> RpcResult<BTreeMap<Address, Vec<B256>>>;
    /// `eth_capabilities`: which history this node can answer for: every
    /// block, transaction, receipt and log since genesis, but state (and
    /// state proofs) at the head only.
    #[method(name = "eth_capabilities")]
    fn capabilities(&self) -> RpcResult<serde_json::Value>;
    /// `eth_baseFee`: the base fee of the next block.
    #[method(name = "eth_baseFee")]
    fn base_fee(&self) -> RpcResult<U256>;
    /// `eth_blobBaseFee`: the blob base fee of the next block.
    #[method(name = "eth_blobBaseFee")]
    fn blob_base_fee(&self) -> RpcResult<U256>;
    /// `eth_createAccessList`: the access list a transaction would use and
    /// its gas with it.
    #[method(name = "eth_createAccessList", blocking)]
    fn create_access_list(
        &self,
        req: TransactionRequest,
        block: Option<BlockId>,
    ) -> RpcResult<alloy_eips::eip2930::AccessListResult>;
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
    /// `eth_getBlockTransactionCountByHash`.
    #[method(name = "eth_getBlockTransactionCountByHash")]
    fn block_tx_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>>;

    /// `eth_getBlockTransactionCountByNumber`.
    #[method(name = "eth_getBlockTransactionCountByNumber")]
    fn block_tx_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>>;

    /// `eth_getTransactionByBlockHashAndIndex`.
    #[method(name = "eth_getTransactionByBlockHashAndIndex")]
    fn tx_by_block_hash_and_index(&self, hash: B256, index: U64) -> RpcResult<Option<Transaction>>;

    /// `eth_getTransactionByBlockNumberAndIndex`.
    #[method(name = "eth_getTransactionByBlockNumberAndIndex")]
    fn tx_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: U64,
    ) -> RpcResult<Option<Transaction>>;

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

/// A storage slot as `eth_getStorageAt` takes it: 0x-hex of at most 32
/// bytes (geth refuses longer keys, leading zeros or not).
#[derive(Debug, Clone, Copy)]
pub struct StorageKey(pub U256);

impl<'de> serde::Deserialize<'de> for StorageKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bad = |why: &str| serde::de::Error::custom(format!("{why}: {text:?}"));
        let hex = text
            .strip_prefix("0x")
            .ok_or_else(|| bad("storage key without 0x prefix"))?;
        if hex.len() > 64 {
            return Err(bad("storage key too long (want at most 32 bytes)"));
        }
        U256::from_str_radix(hex, 16)
            .map(Self)
            .map_err(|_| bad("storage key is not hex"))
    }
}

/// The implementation of [`EthApiServer`].
#[derive(Debug)]
pub struct EthRpc {
    node: Arc<Node>,
}

impl EthRpc {
    /// The methods over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    fn reader(&self) -> RpcResult<StoreReader> {
        self.node.reader().map_err(internal)
    }

    /// Resolves a block tag to a number, given the head of the snapshot read:
    /// `safe` and `finalized` are the finalized block (never above that head).
    fn number_of(&self, tag: BlockNumberOrTag, head: u64) -> u64 {
        match tag {
            BlockNumberOrTag::Earliest => 0,
            BlockNumberOrTag::Number(n) => n,
            BlockNumberOrTag::Pending | BlockNumberOrTag::Latest => head,
            BlockNumberOrTag::Safe | BlockNumberOrTag::Finalized => {
                self.node.finalized().0.min(head)
            }
        }
    }

    /// A reader of the state as of `block` (default `latest`): the head's,
    /// or an earlier canonical block's read through the state history.
    fn state_at(&self, block: Option<BlockId>) -> RpcResult<StoreReader> {
        let reader = self.reader()?;
        let (head_number, _) = reader.head().map_err(internal)?;
        let wanted = match block.unwrap_or_default() {
            BlockId::Number(tag) => self.number_of(tag, head_number),
            BlockId::Hash(h) => {
                let n = reader.block_number(h.block_hash).map_err(internal)?;
                match n {
                    Some(n)
                        if reader.canonical_hash(n).map_err(internal)? == Some(h.block_hash) =>
                    {
                        n
                    }
                    Some(_) => {
                        return Err(err(
                            -32000,
                            format!("block {} is not canonical", h.block_hash),
                        ));
                    }
                    None => return Err(err(-32000, format!("header not found: {}", h.block_hash))),
                }
            }
        };
        if wanted > head_number {
            return Err(err(-32000, format!("header not found: block {wanted}")));
        }
        reader.at(wanted).map_err(|e| match e {
            crate::Error::StateUnavailable(_) => err(-32000, e.to_string()),
            e => internal(e),
        })
    }
}

/// The transaction at `index` of `block`, as the RPC shows it.
fn tx_at(block: &crate::store::StoredBlock, index: u64) -> Option<Transaction> {
    let i = usize::try_from(index).ok()?;
    let (tx, from) = (block.transactions.get(i)?, block.senders.get(i)?);
    Some(rpc_tx(tx.clone(), *from, &block.header, block.hash, i))
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

    fn storage_at(
        &self,
        address: Address,
        slot: StorageKey,
        block: Option<BlockId>,
    ) -> RpcResult<B256> {
        let r = self.state_at(block)?;
        Ok(B256::from(r.storage(address, slot.0).map_err(internal)?))
    }

    fn proof(
        &self,
        address: Address,
        slots: Vec<JsonStorageKey>,
        block: Option<BlockId>,
    ) -> RpcResult<EIP1186AccountProofResponse> {
        if slots.len() > crate::proof::MAX_SLOTS {
            return Err(err(
                -32602,
                format!(
                    "{} storage keys asked for; at most {} per call",
                    slots.len(),
                    crate::proof::MAX_SLOTS
                ),
            ));
        }
        let r = self.state_at(block)?;
        if r.is_historical() {
            return Err(err(
                -32000,
                "proofs are served for the head block only (its state trie is the one kept)",
            ));
        }
        let head = head_header(&r)?;
        crate::proof::account_proof(&r, head.state_root, address, &slots).map_err(internal)
    }

    fn storage_values(
        &self,
        slots: BTreeMap<Address, Vec<JsonStorageKey>>,
        block: Option<BlockId>,
    ) -> RpcResult<BTreeMap<Address, Vec<B256>>> {
        let n: usize = slots.values().map(Vec::len).sum();
        if n == 0 {
            return Err(err(-32602, "empty request"));
        }
        if n > crate::proof::MAX_SLOTS {
            return Err(err(
                -32602,
                format!(
                    "{n} storage keys asked for; at most {} per call",
                    crate::proof::MAX_SLOTS
                ),
            ));
        }
        let r = self.state_at(block)?;
        slots
            .into_iter()
            .map(|(a, keys)| {
                let values = keys
                    .iter()
                    .map(|k| {
                        r.storage(a, U256::from_be_bytes(k.as_b256().0))
                            .map(B256::from)
                    })
                    .collect::<crate::Result<Vec<_>>>()
                    .map_err(internal)?;
                Ok((a, values))
            })
            .collect()
    }

    fn capabilities(&self) -> RpcResult<serde_json::Value> {
        let (head, hash) = self.node.head();
        let number = U64::from(head.number);
        let oldest = self
            .reader()?
            .oldest_state()
            .map_err(internal)?
            .min(head.number);
        let all = serde_json::json!({ "disabled": false, "oldestBlock": U64::ZERO });
        let state = serde_json::json!({ "disabled": false, "oldestBlock": U64::from(oldest) });
        let at_head = serde_json::json!({ "disabled": false, "oldestBlock": number });
        Ok(serde_json::json!({
            "head": { "number": number, "hash": hash },
            "state": state,
            "stateproofs": at_head,
            "tx": all,
            "receipts": all,
            "blocks": all,
            "logs": {
                "disabled": false,
                "oldestBlock": U64::ZERO,
                "deleteStrategy": { "type": "none" },
            },
        }))
    }

    fn base_fee(&self) -> RpcResult<U256> {
        Ok(U256::from(self.node.next_base_fee()))
    }

    fn blob_base_fee(&self) -> RpcResult<U256> {
        let (head, _) = self.node.head();
        head.next_block_blob_fee(self.node.spec.blob_params())
            .map(U256::from)
            .ok_or_else(|| err(-32000, "the head has no blob gas fields (before Cancun)"))
    }

    fn create_access_list(
        &self,
        req: TransactionRequest,
        block: Option<BlockId>,
    ) -> RpcResult<alloy_eips::eip2930::AccessListResult> {
        let r = self.state_at(block)?;
        let head = head_header(&r)?;
        crate::exec::create_access_list(&self.node.spec, &r, &head, req).map_err(call_error)
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
        Ok(receipts_with_logs(&block, self.node.spec.blob_params())
            .into_iter()
            .nth(index as usize))
    }

    fn block_by_number(&self, number: BlockNumberOrTag, full: bool) -> RpcResult<Option<Block>> {
        let r = self.reader()?;
        let n = self.number_of(number, r.head().map_err(internal)?.0);
        r.block_by_number(n)
            .map_err(internal)?
            .map(|b| rpc_block(&r, b, full))
            .transpose()
    }

    fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>> {
        let r = self.reader()?;
        r.block(hash)
            .map_err(internal)?
            .map(|b| rpc_block(&r, b, full))
            .transpose()
    }

    fn block_tx_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        let r = self.reader()?;
        Ok(r.block(hash)
            .map_err(internal)?
            .map(|b| U64::from(b.transactions.len())))
    }

    fn block_tx_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>> {
        let r = self.reader()?;
        let n = self.number_of(number, r.head().map_err(internal)?.0);
        Ok(r.block_by_number(n)
            .map_err(internal)?
            .map(|b| U64::from(b.transactions.len())))
    }

    fn tx_by_block_hash_and_index(&self, hash: B256, index: U64) -> RpcResult<Option<Transaction>> {
        let r = self.reader()?;
        Ok(r.block(hash)
            .map_err(internal)?
            .and_then(|b| tx_at(&b, index.to::<u64>())))
    }

    fn tx_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: U64,
    ) -> RpcResult<Option<Transaction>> {
        let r = self.reader()?;
        let n = self.number_of(number, r.head().map_err(internal)?.0);
        Ok(r.block_by_number(n)
            .map_err(internal)?
            .and_then(|b| tx_at(&b, index.to::<u64>())))
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
                |t: Option<&BlockNumberOrTag>| t.map_or(head, |t| self.number_of(*t, head));
            let from = resolve(filter.block_option.get_from_block());
            let to = resolve(filter.block_option.get_to_block());
            // geth's errors (execution-apis eth_getLogs/filter-error-*).
            if from > to {
                return Err(err(-32602, "invalid block range params"));
            }
            if to > head {
                return Err(err(-32602, "block range extends beyond current head block"));
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
            for log in matching_logs(&block, &filter) {
                out.push(log);
                if out.len() > MAX_LOGS {
                    return Err(err(
                        -32000,
                        format!("query returned more than {MAX_LOGS} results"),
                    ));
                }
            }
        }
        Ok(out)
    }

    fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>> {
        let r = self.reader()?;
        let block = match block {
            BlockId::Number(tag) => {
                r.block_by_number(self.number_of(tag, r.head().map_err(internal)?.0))
            }
            BlockId::Hash(h) => r.block(h.block_hash),
        }
        .map_err(internal)?;
        Ok(block.map(|b| receipts_with_logs(&b, self.node.spec.blob_params())))
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
        let newest = self.number_of(newest, head);
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
        Ok(self.node.signers())
    }
}
