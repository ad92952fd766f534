//! Stored blocks, transactions, receipts and logs as JSON-RPC objects.

use alloy_consensus::{Header, Transaction as _, TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, B256, Sealed, U256};
use alloy_rpc_types_eth::{
    Block, BlockTransactions, Filter, Log, Transaction, TransactionInfo, TransactionReceipt,
    Withdrawals,
};
use jsonrpsee::core::RpcResult;

use super::internal;
use crate::Error;
use crate::store::{StoreReader, StoredBlock};

/// A header as `eth_getBlockBy*` and `newHeads` show it (`size` only for blocks).
pub(crate) fn rpc_header(block: &StoredBlock, size: Option<U256>) -> alloy_rpc_types_eth::Header {
    alloy_rpc_types_eth::Header::from_consensus(
        Sealed::new_unchecked(block.header.clone(), block.hash),
        None,
        size,
    )
}

/// The logs of `block` that match `filter`'s address and topics, with their
/// block, transaction and block-wide log index (`removed: false`).
pub(crate) fn matching_logs(block: &StoredBlock, filter: &Filter) -> Vec<Log> {
    let mut out = Vec::new();
    if !filter.matches_bloom(block.header.logs_bloom) {
        return out;
    }
    let mut log_index = 0u64;
    for (i, (receipt, tx)) in block.receipts.iter().zip(&block.transactions).enumerate() {
        for log in receipt.logs() {
            if filter.matches(log) {
                out.push(Log {
                    inner: log.clone(),
                    block_hash: Some(block.hash),
                    block_number: Some(block.header.number),
                    block_timestamp: Some(block.header.timestamp),
                    transaction_hash: Some(*tx.tx_hash()),
                    transaction_index: Some(i as u64),
                    log_index: Some(log_index),
                    removed: false,
                });
            }
            log_index += 1;
        }
    }
    out
}

/// A stored block as an RPC block (transaction hashes, or full transactions).
pub(crate) fn rpc_block(r: &StoreReader, block: StoredBlock, full: bool) -> RpcResult<Block> {
    // Ommers and withdrawals are kept beside the body (imported blocks may have them).
    let ommers = r.ommers(block.hash).map_err(internal)?;
    let withdrawals = r
        .withdrawals(&block.header, block.hash)
        .map_err(internal)?
        .map(Withdrawals::new);
    let size = {
        let body = alloy_consensus::BlockBody {
            transactions: block.transactions.clone(),
            ommers: ommers.clone(),
            withdrawals: withdrawals.clone(),
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
    Ok(Block {
        header,
        uncles: ommers.iter().map(Header::hash_slow).collect(),
        transactions,
        withdrawals,
    })
}

/// The head header of a snapshot.
pub(crate) fn head_header(r: &StoreReader) -> RpcResult<Header> {
    let (_, hash) = r.head().map_err(internal)?;
    r.header(hash)
        .map_err(internal)?
        .ok_or_else(|| internal(Error::Corrupt(format!("head header {hash} missing"))))
}

pub(crate) fn rpc_tx(
    tx: TxEnvelope,
    from: Address,
    header: &Header,
    hash: B256,
    index: usize,
) -> Transaction {
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

/// The block's receipts as the RPC shows them; a blob transaction's carry
/// its blob gas and the block's blob base fee under `blob_params`.
pub(crate) fn receipts_with_logs(
    block: &StoredBlock,
    blob_params: alloy_eips::eip7840::BlobParams,
) -> Vec<TransactionReceipt> {
    let blob_price = block.header.blob_fee(blob_params);
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
                blob_gas_used: alloy_consensus::Transaction::blob_gas_used(tx),
                blob_gas_price: alloy_consensus::Transaction::blob_gas_used(tx).and(blob_price),
                from: *from,
                to: tx.to(),
                contract_address: tx.is_create().then(|| from.create(tx.nonce())),
            }
        })
        .collect()
}

/// The tips at `percentiles` of a block's gas (as geth: transactions sorted by
/// tip, each weighted by the gas it used).
pub(crate) fn block_rewards(block: &StoredBlock, percentiles: &[f64]) -> Vec<u128> {
    let base_fee = block.header.base_fee_per_gas.unwrap_or_default();
    let receipts = receipts_with_logs(block, alloy_eips::eip7840::BlobParams::cancun());
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
