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
use alloy_hardforks::EthereumHardforks;
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

/// The outcome of re-executing a given block (see [`execute_block`]).
#[derive(Debug)]
pub struct ExecutedBlock {
    /// The receipts (pre-Byzantium ones carry the state root after each transaction).
    pub receipts: Vec<ReceiptEnvelope>,
    /// The state changes to apply.
    pub changes: StateChangeset,
    /// Gas used by the block.
    pub gas_used: u64,
    /// Blob gas used (Cancun).
    pub blob_gas_used: u64,
    /// The EIP-7685 requests hash (Prague), `None` before.
    pub requests_hash: Option<B256>,
}

/// Re-executes a given block: `transactions` in order on top of the state in
/// `reader` (the parent's), with `ommers` and `withdrawals`, paying fees and
/// rewards to `beneficiary` (the header's coinbase, or the sealer on a Clique
/// chain). Every transaction must be valid: a block is all or nothing.
pub fn execute_block(
    spec: &Arc<ChainSpec>,
    reader: &StoreReader,
    header: &Header,
    beneficiary: Address,
    transactions: &[Recovered<TxEnvelope>],
    ommers: &[Header],
    withdrawals: Option<&[alloy_eips::eip4895::Withdrawal]>,
) -> Result<ExecutedBlock> {
    let mut env = EvmEnv::for_eth_block(
        header,
        spec.as_ref(),
        spec.chain_id,
        spec.blob_params_at(header.timestamp),
    );
    env.block_env.beneficiary = beneficiary;
    let byzantium = spec.is_byzantium_active_at_block(header.number);
    let mut state = State::builder()
        .with_database(WrapDatabaseRef(reader))
        .with_bundle_update()
        .build();
    let evm = EthEvmFactory::default().create_evm(&mut state, env);
    let ctx = EthBlockExecutionCtx {
        parent_hash: header.parent_hash,
        parent_beacon_block_root: header.parent_beacon_block_root,
        ommers,
        withdrawals: withdrawals.map(std::borrow::Cow::Borrowed),
        extra_data: header.extra_data.clone(),
        tx_count_hint: Some(transactions.len()),
        slot_number: None,
    };
    let mut executor =
        EthBlockExecutor::new(evm, ctx, spec.clone(), AlloyReceiptBuilder::default());
    executor.apply_pre_execution_changes().map_err(exec_err)?;
    // Before Byzantium (EIP-658) a receipt holds the state root after its transaction.
    let mut post_states = Vec::new();
    for tx in transactions {
        let out = executor
            .execute_transaction_without_commit(tx)
            .map_err(exec_err)?;
        executor.commit_transaction(out);
        if !byzantium {
            let db = executor.evm_mut().db_mut();
            db.merge_transitions(BundleRetention::PlainState);
            let changes = db.bundle_state.to_plain_state(OriginalValuesKnown::Yes);
            post_states.push(reader.state_root_after(&changes)?);
        }
    }
    let (_evm, mut result) = executor.finish().map_err(exec_err)?;
    for (receipt, root) in result.receipts.iter_mut().zip(post_states) {
        if let Some(r) = receipt.as_receipt_with_bloom_mut() {
            r.receipt.status = alloy_consensus::Eip658Value::PostState(root);
        }
    }
    state.merge_transitions(BundleRetention::PlainState);
    let changes = state.take_bundle().to_plain_state(OriginalValuesKnown::Yes);
    Ok(ExecutedBlock {
        receipts: result.receipts,
        changes,
        gas_used: result.gas_used,
        blob_gas_used: result.blob_gas_used,
        requests_hash: spec
            .is_prague_active_at_timestamp(header.timestamp)
            .then(|| result.requests.requests_hash()),
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
    /// Gas refunded (included in `gas_used` already).
    pub refunded: u64,
}

/// The most gas a call may use on top of `head`: the block gas limit, and from
/// Osaka the EIP-7825 transaction gas cap.
pub fn call_gas_cap(spec: &ChainSpec, head: &Header) -> u64 {
    if spec.is_osaka_active_at_timestamp(head.timestamp) {
        head.gas_limit
            .min(alloy_eips::eip7825::MAX_TX_GAS_LIMIT_OSAKA)
    } else {
        head.gas_limit
    }
}

/// Runs `req` against the state in `reader` in the context of the block after
/// `head`, without committing anything. Without a gas limit the call gets
/// [`call_gas_cap`].
pub fn call(
    spec: &ChainSpec,
    reader: &StoreReader,
    head: &Header,
    req: TransactionRequest,
) -> Result<CallOutcome, CallError> {
    let (result, _) = transact(spec, reader, head, req)?;
    let gas_used = result.tx_gas_used();
    match result {
        ExecutionResult::Success { output, gas, .. } => Ok(CallOutcome {
            output: output.into_data(),
            gas_used,
            refunded: gas.final_refunded(),
        }),
        ExecutionResult::Revert { output, .. } => Err(CallError::Revert(output)),
        ExecutionResult::Halt { reason, .. } => Err(CallError::Halt(format!("{reason:?}"))),
    }
}

/// `eth_createAccessList`: the accounts and storage slots `req` touches (as
/// geth: not its sender, not its recipient unless it touches the
/// recipient's storage, not precompiles, not the coinbase), and the gas it
/// uses with that list; run again with the list until it stops changing. A
/// call that fails still gets its list, with the error.
pub fn create_access_list(
    spec: &ChainSpec,
    reader: &StoreReader,
    head: &Header,
    req: TransactionRequest,
) -> Result<alloy_eips::eip2930::AccessListResult, CallError> {
    let from = req.from.unwrap_or_default();
    let to = match req.to {
        Some(alloy_primitives::TxKind::Call(to)) => Some(to),
        _ => None,
    };
    let created = req.from.map(|f| f.create(req.nonce.unwrap_or_default()));
    let precompile = |a: &Address| {
        let n = U256::from_be_slice(a.as_slice());
        n >= U256::from(1) && n <= U256::from(0x11) || n == U256::from(0x100)
    };
    let mut list = req.access_list.clone().unwrap_or_default();
    for _ in 0..8 {
        let mut r = req.clone();
        r.access_list = Some(list.clone());
        let (result, state) = transact(spec, reader, head, r)?;
        let mut items: Vec<alloy_eips::eip2930::AccessListItem> = state
            .iter()
            .filter(|(a, _)| **a != from && Some(**a) != created && !precompile(a))
            .filter(|(a, _)| **a != head.beneficiary)
            .filter(|(a, acc)| Some(**a) != to || !acc.storage.is_empty())
            .map(|(a, acc)| {
                let mut keys: Vec<B256> = acc.storage.keys().map(|k| B256::from(*k)).collect();
                keys.sort();
                alloy_eips::eip2930::AccessListItem {
                    address: *a,
                    storage_keys: keys,
                }
            })
            .collect();
        items.sort_by_key(|i| i.address);
        let next = alloy_eips::eip2930::AccessList(items);
        if next == list {
            let error = match &result {
                ExecutionResult::Success { .. } => None,
                ExecutionResult::Revert { .. } => Some("execution reverted".to_owned()),
                ExecutionResult::Halt { reason, .. } => Some(format!("{reason:?}")),
            };
            return Ok(alloy_eips::eip2930::AccessListResult {
                access_list: list,
                gas_used: U256::from(result.tx_gas_used()),
                error,
            });
        }
        list = next;
    }
    Err(CallError::Invalid(
        "the access list did not settle in 8 runs".into(),
    ))
}

/// Runs `req` on top of `head` (nothing committed): the result and every
/// account and slot it touched.
fn transact(
    spec: &ChainSpec,
    reader: &StoreReader,
    head: &Header,
    mut req: TransactionRequest,
) -> Result<(ExecutionResult, revm::state::EvmState), CallError> {
    let mut env = call_env(spec, head);
    if req.gas_price.is_none()
        && req.max_fee_per_gas.is_none()
        && req.max_priority_fee_per_gas.is_none()
    {
        // As geth: a call that names no fee sees BASEFEE 0.
        env.block_env.basefee = 0;
    }
    if req.gas.is_none() {
        req.gas = Some(call_gas_cap(spec, head));
    }
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
    Ok((out.result, out.state))
}

/// Estimates the gas `req` needs the way geth does (so answers match its): a
/// plain transfer to a codeless account is 21000 if that works; otherwise run
/// at the cap, try `(used + refund + 2300) * 64/63`, then bisect (the midpoint
/// at most twice the lower bound) until the bounds are within 1.5 %.
pub fn estimate_gas(
    spec: &ChainSpec,
    reader: &StoreReader,
    head: &Header,
    req: TransactionRequest,
) -> Result<u64, CallError> {
    const TX_GAS: u64 = 21_000;
    let cap = call_gas_cap(spec, head);
    let mut hi = match req.gas {
        Some(g) if g >= TX_GAS => g.min(cap),
        _ => cap,
    };
    let plain_transfer = req.input.input().is_none_or(|d| d.is_empty())
        && match req.to {
            Some(alloy_primitives::TxKind::Call(to)) => reader
                .account(to)?
                .is_none_or(|a| a.code_hash == alloy_trie::KECCAK_EMPTY),
            _ => false,
        };
    let run = |gas: u64| {
        let mut r = req.clone();
        r.gas = Some(gas);
        call(spec, reader, head, r)
    };
    if plain_transfer && run(TX_GAS).is_ok() {
        return Ok(TX_GAS);
    }
    let first = run(hi)?;
    let mut lo = first.gas_used.saturating_sub(1);
    let optimistic = (first.gas_used + first.refunded + 2_300) * 64 / 63;
    if optimistic < hi {
        match run(optimistic) {
            Ok(_) => hi = optimistic,
            Err(CallError::Node(e)) => return Err(CallError::Node(e)),
            Err(_) => lo = optimistic,
        }
    }
    while lo + 1 < hi {
        if ((hi - lo) as f64) / (hi as f64) < 0.015 {
            break;
        }
        let mid = ((hi + lo) / 2).min(lo.saturating_mul(2));
        match run(mid) {
            Ok(_) => hi = mid,
            Err(CallError::Node(e)) => return Err(CallError::Node(e)),
            Err(_) => lo = mid,
        }
    }
    Ok(hi)
}

fn call_env(spec: &ChainSpec, head: &Header) -> EvmEnv {
    let mut env = EvmEnv::for_eth_block(
        head,
        spec,
        spec.chain_id,
        spec.blob_params_at(head.timestamp),
    );
    env.cfg_env.disable_nonce_check = true;
    env.cfg_env.disable_base_fee = true;
    env.cfg_env.disable_eip3607 = true;
    env
}
