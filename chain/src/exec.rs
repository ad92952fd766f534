//! Block building and `eth_call` with `alloy-evm`'s Ethereum block executor over revm.
//!
//! [`build_block`] runs pool transactions on top of the head state through
//! [`EthBlockExecutor`] (pre-block system calls for EIP-4788/EIP-2935, per-tx block
//! gas check, receipts with blooms, Prague requests), skipping transactions that
//! are no longer valid, and returns the unsealed header (every field but
//! `state_root`, which the store computes when it applies the changes) with the
//! block's transactions, receipts and state changes.

use std::sync::Arc;

use alloy_consensus::{
    EMPTY_OMMER_ROOT_HASH, Header, ReceiptEnvelope, Transaction, TxEnvelope, TxReceipt,
    constants::EMPTY_ROOT_HASH, proofs, transaction::Recovered,
};
use alloy_eips::eip1559::BaseFeeParams;
use alloy_evm::{
    EthEvmFactory, Evm, EvmEnv, EvmFactory,
    block::{BlockExecutionError, BlockExecutor, BlockValidationError},
    eth::{EthBlockExecutionCtx, EthBlockExecutor, receipt_builder::AlloyReceiptBuilder},
    rpc::TryIntoTxEnv,
};
use alloy_primitives::{Address, B256, Bloom, Bytes, U256};
use alloy_rpc_types_eth::TransactionRequest;
use revm::{
    context::result::ExecutionResult,
    database::{
        OriginalValuesKnown, State,
        states::{StateChangeset, bundle_state::BundleRetention},
    },
    database_interface::WrapDatabaseRef,
};

use crate::clique::{DIFF_IN_TURN, DIFF_NO_TURN, EXTRA_SEAL, EXTRA_VANITY, NONCE_DROP};
use crate::spec::{ChainSpec, Fork};
use crate::store::StoreReader;
use crate::{Error, Result};

/// The vanity bytes our sealer writes into `extra_data`.
pub const VANITY: &[u8] = b"netmind";

/// A block executed but not yet stored or sealed.
#[derive(Debug)]
pub struct BuiltBlock {
    /// The header without `state_root` and seal.
    pub header: Header,
    /// Included transactions.
    pub transactions: Vec<Recovered<TxEnvelope>>,
    /// Their receipts.
    pub receipts: Vec<ReceiptEnvelope>,
    /// The state changes to apply.
    pub changes: StateChangeset,
    /// Transactions that could not be included, with the reason (invalid now: drop them).
    pub rejected: Vec<(B256, String)>,
}

/// The header template of the block after `parent`, before execution.
pub fn next_header(
    spec: &ChainSpec,
    parent: &Header,
    timestamp: u64,
    signer: Address,
    signers: &[Address],
) -> Header {
    let number = parent.number + 1;
    let mut extra = vec![0u8; EXTRA_VANITY];
    extra[..VANITY.len()].copy_from_slice(VANITY);
    if number.is_multiple_of(spec.epoch) {
        let mut sorted = signers.to_vec();
        sorted.sort();
        sorted
            .iter()
            .for_each(|s| extra.extend_from_slice(s.as_slice()));
    }
    extra.extend_from_slice(&[0u8; EXTRA_SEAL]);
    Header {
        parent_hash: parent.hash_slow(),
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: Address::ZERO,
        difficulty: if crate::clique::in_turn(number, signer, signers) {
            DIFF_IN_TURN
        } else {
            DIFF_NO_TURN
        },
        number,
        gas_limit: parent.gas_limit,
        timestamp,
        extra_data: extra.into(),
        mix_hash: B256::ZERO,
        nonce: NONCE_DROP,
        base_fee_per_gas: parent.next_block_base_fee(BaseFeeParams::ethereum()),
        withdrawals_root: Some(EMPTY_ROOT_HASH),
        blob_gas_used: Some(0),
        excess_blob_gas: Some(0),
        parent_beacon_block_root: Some(B256::ZERO),
        requests_hash: None,
        ..Default::default()
    }
}

/// Executes `candidates` (in order) on top of the state in `reader` into the block
/// described by `header` (from [`next_header`]); `signer` receives the fees
/// (EIP-225: the sealer is the coinbase).
pub fn build_block(
    spec: &Arc<ChainSpec>,
    reader: &StoreReader,
    mut header: Header,
    signer: Address,
    candidates: impl IntoIterator<Item = Recovered<TxEnvelope>>,
) -> Result<BuiltBlock> {
    let mut env = EvmEnv::for_eth_block(
        &header,
        spec.as_ref(),
        spec.chain_id,
        Some(spec.blob_params()),
    );
    env.block_env.beneficiary = signer;
    let mut state = State::builder()
        .with_database(WrapDatabaseRef(reader))
        .with_bundle_update()
        .build();
    let evm = EthEvmFactory::default().create_evm(&mut state, env);
    let ctx = EthBlockExecutionCtx {
        parent_hash: header.parent_hash,
        parent_beacon_block_root: header.parent_beacon_block_root,
        ommers: &[],
        withdrawals: None,
        extra_data: header.extra_data.clone(),
        tx_count_hint: None,
        slot_number: None,
    };
    let mut executor =
        EthBlockExecutor::new(evm, ctx, spec.clone(), AlloyReceiptBuilder::default());
    executor.apply_pre_execution_changes().map_err(exec_err)?;
    let mut included = Vec::new();
    let mut rejected = Vec::new();
    let mut gas_used = 0u64;
    for tx in candidates {
        if gas_used + tx.gas_limit() > header.gas_limit {
            continue; // does not fit; stays in the pool for the next block
        }
        match executor.execute_transaction_without_commit(&tx) {
            Ok(out) => {
                gas_used += executor.commit_transaction(out).tx_gas_used();
                included.push(tx);
            }
            Err(BlockExecutionError::Validation(
                BlockValidationError::TransactionGasLimitMoreThanAvailableBlockGas { .. },
            )) => {}
            Err(e) => rejected.push((*tx.tx_hash(), e.to_string())),
        }
    }
    let (_evm, result) = executor.finish().map_err(exec_err)?;
    state.merge_transitions(BundleRetention::PlainState);
    let changes = state.take_bundle().to_plain_state(OriginalValuesKnown::Yes);

    let envelopes: Vec<&TxEnvelope> = included.iter().map(|t| t.inner()).collect();
    header.transactions_root = proofs::calculate_transaction_root(&envelopes);
    header.receipts_root = proofs::calculate_receipt_root(&result.receipts);
    header.logs_bloom = result
        .receipts
        .iter()
        .fold(Bloom::ZERO, |acc, r| acc | r.bloom());
    header.gas_used = result.gas_used;
    if spec.fork == Fork::Prague {
        header.requests_hash = Some(result.requests.requests_hash());
    }
    Ok(BuiltBlock {
        header,
        transactions: included,
        receipts: result.receipts,
        changes,
        rejected,
    })
}

fn exec_err(e: BlockExecutionError) -> Error {
    Error::Execution(e.to_string())
}

/// Why `eth_call`/`eth_estimateGas` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The call reverted; `data` is the revert output.
    #[error("execution reverted{}", revert_reason(.0).map(|r| format!(": {r}")).unwrap_or_default())]
    Revert(Bytes),
    /// The call halted (out of gas, invalid opcode, ...).
    #[error("execution halted: {0}")]
    Halt(String),
    /// The request could not become a transaction, or revm refused it.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Node(#[from] Error),
}

/// Decodes a Solidity `Error(string)` revert reason.
pub fn revert_reason(data: &Bytes) -> Option<String> {
    alloy_sol_types_revert(data)
}

fn alloy_sol_types_revert(data: &[u8]) -> Option<String> {
    // Error(string) selector 0x08c379a0, then an ABI-encoded string.
    if data.len() < 4 + 64 || data[..4] != [0x08, 0xc3, 0x79, 0xa0] {
        return None;
    }
    let body = &data[4..];
    let len = U256::from_be_slice(&body[32..64]).try_into().ok()?;
    let bytes: &[u8] = body.get(64..64usize.checked_add(len)?)?;
    String::from_utf8(bytes.to_vec()).ok()
}

/// The outcome of a successful call.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// Returned data (or the deployed code for a create).
    pub output: Bytes,
    /// Gas used.
    pub gas_used: u64,
}

/// Runs `req` against the state in `reader` in the context of the block after
/// `head`, without committing anything.
pub fn call(
    spec: &ChainSpec,
    reader: &StoreReader,
    head: &Header,
    req: TransactionRequest,
) -> Result<CallOutcome, CallError> {
    let env = call_env(spec, head);
    let tx_env = req
        .try_into_tx_env(&env)
        .map_err(|e| CallError::Invalid(e.to_string()))?;
    let mut state = State::builder()
        .with_database(WrapDatabaseRef(reader))
        .build();
    let mut evm = EthEvmFactory::default().create_evm(&mut state, env);
    let out = evm
        .transact(tx_env)
        .map_err(|e| CallError::Invalid(e.to_string()))?;
    let gas_used = out.result.tx_gas_used();
    match out.result {
        ExecutionResult::Success { output, .. } => Ok(CallOutcome {
            output: output.into_data(),
            gas_used,
        }),
        ExecutionResult::Revert { output, .. } => Err(CallError::Revert(output)),
        ExecutionResult::Halt { reason, .. } => Err(CallError::Halt(format!("{reason:?}"))),
    }
}

/// Estimates the gas `req` needs: the smallest gas limit at which it succeeds
/// (binary search between the gas it used and the block gas limit).
pub fn estimate_gas(
    spec: &ChainSpec,
    reader: &StoreReader,
    head: &Header,
    mut req: TransactionRequest,
) -> Result<u64, CallError> {
    let cap = req.gas.unwrap_or(head.gas_limit).min(head.gas_limit);
    req.gas = Some(cap);
    let first = call(spec, reader, head, req.clone())?;
    let mut lo = first.gas_used.saturating_sub(1).max(20_999);
    let mut hi = cap;
    // Most calls succeed with a little more than they used (refunds, the 63/64 rule).
    let optimistic = (first.gas_used + 2_300) * 64 / 63;
    if optimistic < hi {
        req.gas = Some(optimistic);
        if call(spec, reader, head, req.clone()).is_ok() {
            hi = optimistic;
        } else {
            lo = optimistic;
        }
    }
    while hi - lo > 1 && (hi - lo) * 1000 / hi > 15 {
        let mid = lo + (hi - lo) / 2;
        req.gas = Some(mid);
        match call(spec, reader, head, req.clone()) {
            Ok(_) => hi = mid,
            Err(CallError::Node(e)) => return Err(CallError::Node(e)),
            Err(_) => lo = mid,
        }
    }
    Ok(hi)
}

fn call_env(spec: &ChainSpec, head: &Header) -> EvmEnv {
    let mut env = EvmEnv::for_eth_block(head, spec, spec.chain_id, Some(spec.blob_params()));
    env.cfg_env.disable_nonce_check = true;
    env.cfg_env.disable_base_fee = true;
    env.cfg_env.disable_eip3607 = true;
    env
}
