//! The transaction pool.
//!
//! Transactions are checked when they arrive ([`Pool::add`]): decodable, signed
//! (low-s, recoverable), replay-protected for this chain id, a supported type,
//! not oversized, enough intrinsic gas, within the block gas limit, paying at
//! least the next block's base fee, affordable from the sender's balance, and
//! with the sender's next nonce. Each sender's transactions form a gap-free
//! nonce sequence starting at its account nonce, so every pooled transaction is
//! executable in order; a transaction with a nonce already pooled replaces it if
//! it raises both fee caps by at least [`PoolConfig::price_bump_percent`].
//! [`Pool::best`] yields transactions for a block by descending tip, keeping
//! each sender's nonce order.

use std::collections::{BTreeMap, BinaryHeap, HashMap};

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{Transaction, TxEnvelope, transaction::Recovered};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, B256, U256};
use revm::context_interface::cfg::gas::calculate_initial_tx_gas;
use revm::primitives::hardfork::SpecId;

use crate::spec::{ChainSpec, Fork};

/// Limits of the pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Most transactions held in total.
    pub max_txs: usize,
    /// Most transactions held per sender.
    pub max_per_sender: usize,
    /// Largest encoded transaction accepted, in bytes.
    pub max_tx_bytes: usize,
    /// Fee increase (percent) a replacement must offer on both fee caps.
    pub price_bump_percent: u128,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_txs: 20_000,
            max_per_sender: 1_024,
            max_tx_bytes: 128 * 1024,
            price_bump_percent: 10,
        }
    }
}

/// Why a transaction was refused. Messages follow geth's where one exists, so
/// tools recognise them.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolError {
    /// The bytes are not an EIP-2718 transaction.
    #[error("failed to decode signed transaction: {0}")]
    Decode(String),
    /// The signature does not recover to an address.
    #[error("invalid transaction signature: {0}")]
    Signature(String),
    /// A legacy transaction without EIP-155 replay protection.
    #[error("only replay-protected (EIP-155) transactions allowed over RPC")]
    Unprotected,
    /// Signed for another chain.
    #[error("invalid chain id: transaction is for chain {got}, this chain is {expected}")]
    WrongChain {
        /// This chain's id.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// A transaction type this chain does not take.
    #[error("transaction type not supported: {0}")]
    UnsupportedType(&'static str),
    /// Larger than [`PoolConfig::max_tx_bytes`].
    #[error("oversized data: transaction is {size} bytes, limit {max}")]
    Oversized {
        /// Encoded size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// Gas limit below the intrinsic cost.
    #[error("intrinsic gas too low: gas limit {gas}, intrinsic cost {need}")]
    IntrinsicGas {
        /// The gas limit.
        gas: u64,
        /// What the transaction needs before executing.
        need: u64,
    },
    /// Gas limit above the block gas limit.
    #[error("exceeds block gas limit: gas limit {gas}, block gas limit {block}")]
    GasLimit {
        /// The gas limit.
        gas: u64,
        /// The block gas limit.
        block: u64,
    },
    /// Tip cap above fee cap.
    #[error("max priority fee per gas higher than max fee per gas")]
    TipAboveFeeCap,
    /// Fee cap below the next block's base fee.
    #[error("transaction underpriced: max fee per gas {max_fee} below base fee {base_fee}")]
    Underpriced {
        /// The fee cap.
        max_fee: u128,
        /// The next block's base fee.
        base_fee: u64,
    },
    /// Replacement without a large enough fee increase.
    #[error("replacement transaction underpriced: raise max fee and priority fee by at least {0}%")]
    ReplacementUnderpriced(u128),
    /// Not enough balance for gas × fee cap + value.
    #[error("insufficient funds for gas * price + value: balance {have}, tx cost {want}")]
    InsufficientFunds {
        /// The sender's balance.
        have: U256,
        /// gas limit × max fee + value.
        want: U256,
    },
    /// Nonce already used.
    #[error("nonce too low: next nonce {next}, tx nonce {got}")]
    NonceTooLow {
        /// The sender's account nonce.
        next: u64,
        /// The transaction's.
        got: u64,
    },
    /// Nonce leaves a gap.
    #[error("nonce too high: next nonce {next}, tx nonce {got} (nonce gaps are not queued)")]
    NonceTooHigh {
        /// The next nonce the pool accepts for this sender.
        next: u64,
        /// The transaction's.
        got: u64,
    },
    /// The same transaction is already pooled.
    #[error("already known")]
    AlreadyKnown,
    /// The pool or the sender's share of it is full.
    #[error("txpool is full")]
    Full,
}

/// What [`Pool::add`] needs about the chain and the sender's account.
#[derive(Debug, Clone, Copy)]
pub struct AdmitCtx {
    /// The chain id.
    pub chain_id: u64,
    /// The active fork.
    pub fork: Fork,
    /// Base fee of the next block.
    pub base_fee: u64,
    /// Gas limit of the next block.
    pub block_gas_limit: u64,
}

/// Decodes raw EIP-2718 bytes and recovers the sender.
pub fn decode_raw(raw: &[u8], max: usize) -> Result<Recovered<TxEnvelope>, PoolError> {
    if raw.len() > max {
        return Err(PoolError::Oversized {
            size: raw.len(),
            max,
        });
    }
    let mut buf = raw;
    let tx = TxEnvelope::decode_2718(&mut buf).map_err(|e| PoolError::Decode(e.to_string()))?;
    if !buf.is_empty() {
        return Err(PoolError::Decode(format!("{} trailing bytes", buf.len())));
    }
    let sender = tx
        .recover_signer()
        .map_err(|e| PoolError::Signature(e.to_string()))?;
    Ok(Recovered::new_unchecked(tx, sender))
}

/// The pool.
#[derive(Debug, Default)]
pub struct Pool {
    cfg: PoolConfig,
    by_sender: HashMap<Address, BTreeMap<u64, Recovered<TxEnvelope>>>,
    by_hash: HashMap<B256, (Address, u64)>,
}

impl Pool {
    /// An empty pool.
    pub fn new(cfg: PoolConfig) -> Self {
        Self {
            cfg,
            ..Default::default()
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &PoolConfig {
        &self.cfg
    }

    /// Number of pooled transactions.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The pooled transactions of `only` (every sender when `None`), by
    /// sender and nonce.
    pub fn all(&self, only: Option<Address>) -> Vec<Recovered<TxEnvelope>> {
        self.by_sender
            .iter()
            .filter(|(a, _)| only.is_none_or(|o| o == **a))
            .flat_map(|(_, txs)| txs.values().cloned())
            .collect()
    }

    /// A pooled transaction by hash.
    pub fn get(&self, hash: &B256) -> Option<&Recovered<TxEnvelope>> {
        let (sender, nonce) = self.by_hash.get(hash)?;
        self.by_sender.get(sender)?.get(nonce)
    }

    /// The next nonce for `sender` counting pooled transactions.
    pub fn pending_nonce(&self, sender: Address, account_nonce: u64) -> u64 {
        self.by_sender
            .get(&sender)
            .and_then(|q| q.last_key_value())
            .map_or(account_nonce, |(n, _)| (n + 1).max(account_nonce))
    }

    /// Checks `tx` and adds it. `nonce`/`balance` are the sender's account at the
    /// head. Returns the transaction hash.
    pub fn add(
        &mut self,
        tx: Recovered<TxEnvelope>,
        ctx: &AdmitCtx,
        account_nonce: u64,
        balance: U256,
    ) -> Result<B256, PoolError> {
        let hash = *tx.tx_hash();
        if self.by_hash.contains_key(&hash) {
            return Err(PoolError::AlreadyKnown);
        }
        validate(&tx, ctx, self.cfg.max_tx_bytes)?;
        let want = U256::from(tx.gas_limit()) * U256::from(tx.max_fee_per_gas()) + tx.value();
        if balance < want {
            return Err(PoolError::InsufficientFunds {
                have: balance,
                want,
            });
        }
        let sender = tx.signer();
        let nonce = tx.nonce();
        if nonce < account_nonce {
            return Err(PoolError::NonceTooLow {
                next: account_nonce,
                got: nonce,
            });
        }
        let next = self.pending_nonce(sender, account_nonce);
        if nonce > next {
            return Err(PoolError::NonceTooHigh { next, got: nonce });
        }
        if nonce < next {
            // Replacement of a pooled transaction.
            let queue = self
                .by_sender
                .get_mut(&sender)
                .expect("pending nonce came from this queue");
            let old = queue.get(&nonce).expect("queues are gap-free");
            let bump = |x: u128| x.saturating_mul(100 + self.cfg.price_bump_percent) / 100;
            let old_tip = old
                .max_priority_fee_per_gas()
                .unwrap_or(old.max_fee_per_gas());
            let new_tip = tx
                .max_priority_fee_per_gas()
                .unwrap_or(tx.max_fee_per_gas());
            if tx.max_fee_per_gas() < bump(old.max_fee_per_gas()) || new_tip < bump(old_tip) {
                return Err(PoolError::ReplacementUnderpriced(
                    self.cfg.price_bump_percent,
                ));
            }
            let old_hash = *old.tx_hash();
            self.by_hash.remove(&old_hash);
            queue.insert(nonce, tx);
            self.by_hash.insert(hash, (sender, nonce));
            return Ok(hash);
        }
        if self
            .by_sender
            .get(&sender)
            .is_some_and(|q| q.len() >= self.cfg.max_per_sender)
        {
            return Err(PoolError::Full);
        }
        if self.by_hash.len() >= self.cfg.max_txs && !self.evict_cheapest_tail(&tx, ctx.base_fee) {
            return Err(PoolError::Full);
        }
        self.by_sender.entry(sender).or_default().insert(nonce, tx);
        self.by_hash.insert(hash, (sender, nonce));
        Ok(hash)
    }

    /// Makes room by dropping the last transaction of the sender whose last
    /// transaction pays the lowest tip, if that is less than `incoming` pays.
    fn evict_cheapest_tail(&mut self, incoming: &Recovered<TxEnvelope>, base_fee: u64) -> bool {
        let victim = self
            .by_sender
            .iter()
            .filter(|(s, _)| **s != incoming.signer())
            .filter_map(|(s, q)| q.last_key_value().map(|(n, t)| (tip(t, base_fee), *s, *n)))
            .min();
        match victim {
            Some((t, sender, nonce)) if t < tip(incoming, base_fee) => {
                self.remove(sender, nonce);
                true
            }
            _ => false,
        }
    }

    fn remove(&mut self, sender: Address, nonce: u64) {
        if let Some(q) = self.by_sender.get_mut(&sender) {
            if let Some(t) = q.remove(&nonce) {
                self.by_hash.remove(t.tx_hash());
            }
            if q.is_empty() {
                self.by_sender.remove(&sender);
            }
        }
    }

    /// Transactions for the next block: each sender's in nonce order, senders
    /// interleaved by descending tip at `base_fee`; those that cannot pay the base
    /// fee (and their successors) are left out.
    pub fn best(&self, base_fee: u64, max: usize) -> Vec<Recovered<TxEnvelope>> {
        let mut heads: BinaryHeap<(u128, Address, u64)> = BinaryHeap::new();
        let mut iters: HashMap<
            Address,
            std::collections::btree_map::Values<'_, u64, Recovered<TxEnvelope>>,
        > = HashMap::new();
        for (sender, q) in &self.by_sender {
            let mut it = q.values();
            if let Some(t) = it.next()
                && t.max_fee_per_gas() >= u128::from(base_fee)
            {
                heads.push((tip(t, base_fee), *sender, t.nonce()));
                iters.insert(*sender, it);
            }
        }
        let mut out = Vec::new();
        while let Some((_, sender, nonce)) = heads.pop() {
            if out.len() >= max {
                break;
            }
            out.push(self.by_sender[&sender][&nonce].clone());
            if let Some(t) = iters.get_mut(&sender).and_then(Iterator::next)
                && t.max_fee_per_gas() >= u128::from(base_fee)
            {
                heads.push((tip(t, base_fee), sender, t.nonce()));
            }
        }
        out
    }

    /// After a block: drops included and rejected transactions and, per sender,
    /// everything below its new account nonce or after a gap.
    pub fn on_block(
        &mut self,
        removed: impl IntoIterator<Item = B256>,
        account_nonce: impl Fn(Address) -> u64,
    ) {
        for hash in removed {
            if let Some((sender, nonce)) = self.by_hash.get(&hash).copied() {
                self.remove(sender, nonce);
            }
        }
        let senders: Vec<Address> = self.by_sender.keys().copied().collect();
        for sender in senders {
            let mut expect = account_nonce(sender);
            let nonces: Vec<u64> = self.by_sender[&sender].keys().copied().collect();
            for n in nonces {
                if n == expect {
                    expect += 1;
                } else {
                    self.remove(sender, n);
                }
            }
        }
    }
}

/// The tip a transaction pays per gas at `base_fee`.
fn tip(tx: &Recovered<TxEnvelope>, base_fee: u64) -> u128 {
    tx.effective_tip_per_gas(base_fee).unwrap_or(0)
}

/// Stateless checks (everything but balance and nonce).
fn validate(tx: &Recovered<TxEnvelope>, ctx: &AdmitCtx, max_bytes: usize) -> Result<(), PoolError> {
    use alloy_eips::eip2718::Encodable2718;
    let size = tx.encode_2718_len();
    if size > max_bytes {
        return Err(PoolError::Oversized {
            size,
            max: max_bytes,
        });
    }
    match tx.inner() {
        TxEnvelope::Eip4844(_) => {
            return Err(PoolError::UnsupportedType("blob transactions (EIP-4844)"));
        }
        TxEnvelope::Eip7702(_) if ctx.fork != Fork::Prague => {
            return Err(PoolError::UnsupportedType(
                "set-code transactions (EIP-7702) before Prague",
            ));
        }
        _ => {}
    }
    match tx.chain_id() {
        None => return Err(PoolError::Unprotected),
        Some(id) if id != ctx.chain_id => {
            return Err(PoolError::WrongChain {
                expected: ctx.chain_id,
                got: id,
            });
        }
        Some(_) => {}
    }
    if tx.gas_limit() > ctx.block_gas_limit {
        return Err(PoolError::GasLimit {
            gas: tx.gas_limit(),
            block: ctx.block_gas_limit,
        });
    }
    let spec = match ctx.fork {
        Fork::Cancun => SpecId::CANCUN,
        Fork::Prague => SpecId::PRAGUE,
    };
    let (accounts, slots) = tx.access_list().map_or((0, 0), |l| {
        (
            l.len() as u64,
            l.iter().map(|i| i.storage_keys.len() as u64).sum(),
        )
    });
    let auths = tx.authorization_list().map_or(0, |a| a.len() as u64);
    let g = calculate_initial_tx_gas(
        spec,
        tx.input(),
        tx.is_create(),
        accounts,
        slots,
        auths,
        None,
    );
    let need = (g.initial_regular_gas + g.initial_state_gas).max(g.floor_gas);
    if tx.gas_limit() < need {
        return Err(PoolError::IntrinsicGas {
            gas: tx.gas_limit(),
            need,
        });
    }
    if let Some(tip) = tx.max_priority_fee_per_gas()
        && tip > tx.max_fee_per_gas()
    {
        return Err(PoolError::TipAboveFeeCap);
    }
    if tx.max_fee_per_gas() < u128::from(ctx.base_fee) {
        return Err(PoolError::Underpriced {
            max_fee: tx.max_fee_per_gas(),
            base_fee: ctx.base_fee,
        });
    }
    Ok(())
}

impl ChainSpec {
    /// The admission context for the block after one with `base_fee` and `gas_limit`.
    pub fn admit_ctx(&self, base_fee: u64, block_gas_limit: u64) -> AdmitCtx {
        AdmitCtx {
            chain_id: self.chain_id,
            fork: self.fork,
            base_fee,
            block_gas_limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy_consensus::{SignableTransaction, TxEip1559};
    use alloy_eips::eip2718::Encodable2718;
    use alloy_primitives::TxKind;
    use alloy_signer::SignerSync;
    use alloy_signer_local::PrivateKeySigner;

    use super::*;

    const GWEI: u128 = 1_000_000_000;

    fn tx(key: &PrivateKeySigner, nonce: u64, tip: u128) -> Recovered<TxEnvelope> {
        let t = TxEip1559 {
            chain_id: 7,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: 10 * GWEI,
            max_priority_fee_per_gas: tip,
            to: TxKind::Call(Address::repeat_byte(1)),
            ..Default::default()
        };
        let sig = key.sign_hash_sync(&t.signature_hash()).unwrap();
        let env: TxEnvelope = t.into_signed(sig).into();
        decode_raw(&env.encoded_2718(), 1 << 20).unwrap()
    }

    fn ctx() -> AdmitCtx {
        AdmitCtx {
            chain_id: 7,
            fork: Fork::Prague,
            base_fee: GWEI as u64,
            block_gas_limit: 30_000_000,
        }
    }

    const RICH: U256 = U256::MAX;

    #[test]
    fn best_interleaves_senders_by_tip_in_nonce_order() {
        let (a, b) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let mut pool = Pool::default();
        pool.add(tx(&a, 0, GWEI), &ctx(), 0, RICH).unwrap();
        pool.add(tx(&a, 1, 5 * GWEI), &ctx(), 0, RICH).unwrap();
        pool.add(tx(&b, 0, 2 * GWEI), &ctx(), 0, RICH).unwrap();
        let order: Vec<(Address, u64)> = pool
            .best(GWEI as u64, 10)
            .iter()
            .map(|t| (t.signer(), t.nonce()))
            .collect();
        // b's 2 gwei beats a's head (1 gwei); a's nonce 1 must wait for nonce 0.
        assert_eq!(
            order,
            vec![(b.address(), 0), (a.address(), 0), (a.address(), 1)]
        );
        assert_eq!(pool.best(GWEI as u64, 1).len(), 1);
    }

    #[test]
    fn on_block_drops_mined_and_stale_transactions() {
        let a = PrivateKeySigner::random();
        let mut pool = Pool::default();
        let t0 = tx(&a, 0, GWEI);
        let h0 = *t0.tx_hash();
        pool.add(t0, &ctx(), 0, RICH).unwrap();
        pool.add(tx(&a, 1, GWEI), &ctx(), 0, RICH).unwrap();
        pool.add(tx(&a, 2, GWEI), &ctx(), 0, RICH).unwrap();
        // Block mined nonce 0 (and, say, nonce 1 came from elsewhere): account nonce 2.
        pool.on_block([h0], |_| 2);
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.pending_nonce(a.address(), 2), 3);
        // A rejected middle transaction takes its successors with it (gap).
        pool.add(tx(&a, 3, GWEI), &ctx(), 2, RICH).unwrap();
        pool.add(tx(&a, 4, GWEI), &ctx(), 2, RICH).unwrap();
        let h3 = *pool.best(GWEI as u64, 10)[1].tx_hash();
        pool.on_block([h3], |_| 2);
        assert_eq!(pool.len(), 1, "nonce 4 cannot run without nonce 3");
    }

    #[test]
    fn full_pool_evicts_the_cheapest_tail_only_for_a_better_tip() {
        let mut pool = Pool::new(PoolConfig {
            max_txs: 2,
            ..Default::default()
        });
        let (a, b, c) = (
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
        );
        pool.add(tx(&a, 0, GWEI), &ctx(), 0, RICH).unwrap();
        pool.add(tx(&b, 0, 3 * GWEI), &ctx(), 0, RICH).unwrap();
        assert_eq!(
            pool.add(tx(&c, 0, GWEI / 2), &ctx(), 0, RICH),
            Err(PoolError::Full)
        );
        pool.add(tx(&c, 0, 2 * GWEI), &ctx(), 0, RICH).unwrap();
        assert_eq!(pool.len(), 2);
        assert!(
            pool.best(GWEI as u64, 10)
                .iter()
                .all(|t| t.signer() != a.address())
        );
    }

    #[test]
    fn tip_above_fee_cap_is_refused() {
        let a = PrivateKeySigner::random();
        let mut pool = Pool::default();
        let err = pool.add(tx(&a, 0, 11 * GWEI), &ctx(), 0, RICH).unwrap_err();
        assert_eq!(err, PoolError::TipAboveFeeCap);
    }
}
