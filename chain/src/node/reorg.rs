//! Reorganisations: the canonical chain switches to a heavier branch that
//! forks off at or after the finalized block.
//!
//! Fork choice is Clique's: the branch with more total difficulty wins (more
//! blocks sealed in turn); on a tie the shorter branch, then the one whose
//! first block has the lower hash, so that every node picks the same side.
//! A switch unwinds the canonical blocks after the fork point through the
//! state history ([`Store::unwind_head`], each checked against its parent's
//! state root), then imports the branch block by block with every check of
//! [`crate::import::import_block`] (seal, roots, execution). If a branch
//! block is refused, the old chain is put back and the error returned.
//! Transactions of the replaced blocks that the branch did not include go
//! back to the pool.

use std::cmp::Reverse;

use alloy_consensus::transaction::SignerRecoverable;
use alloy_primitives::{B256, U256};

use super::Node;
use crate::import::{ImportError, RlpBlock, SealMode, import_block};
use crate::store::{StoreReader, StoredBlock};
use crate::{Error, Result};

/// What [`Node::reorg`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reorg {
    /// The branch won: `replaced` canonical blocks were unwound, and its
    /// blocks are the chain up to the new head.
    Switched {
        /// How many canonical blocks the branch replaced.
        replaced: u64,
        /// The new head (number, hash).
        head: (u64, B256),
    },
    /// The canonical chain is heavier (or the branch is already canonical):
    /// nothing changed.
    Kept,
}

/// The weight fork choice compares: total difficulty, then fewer blocks,
/// then the lower hash of the first block after the fork point.
fn weight(headers: &[(U256, B256)]) -> (U256, Reverse<usize>, Reverse<B256>) {
    let td = headers.iter().map(|(d, _)| *d).sum();
    let first = headers.first().map_or(B256::ZERO, |(_, h)| *h);
    (td, Reverse(headers.len()), Reverse(first))
}

impl Node {
    /// Offers `branch`, consecutive blocks whose first one's parent is on the
    /// canonical chain, as a fork: if it outweighs the canonical blocks after
    /// that parent (see the module docs), they are replaced by it.
    ///
    /// # Errors
    ///
    /// The branch is not consecutive or does not start on the canonical
    /// chain, forks off below the finalized block, or one of its blocks is
    /// refused by import (the canonical chain is then as before).
    pub fn reorg(&self, branch: Vec<RlpBlock>) -> Result<Reorg> {
        let _chain = self.chain_lock.lock().expect("chain lock");
        let not_a_branch =
            |number: u64, why: String| -> Error { ImportError::NotABranch { number, why }.into() };
        let hashes: Vec<B256> = branch.iter().map(|b| b.header.hash_slow()).collect();
        for (i, w) in branch.windows(2).enumerate() {
            if w[1].header.parent_hash != hashes[i] || w[1].header.number != w[0].header.number + 1
            {
                return Err(not_a_branch(
                    w[1].header.number,
                    format!("its parent is not block {}", w[0].header.number),
                ));
            }
        }
        let reader = self.reader()?;
        // Skip the blocks the canonical chain already has.
        let mut skip = 0;
        while skip < branch.len()
            && reader.canonical_hash(branch[skip].header.number)? == Some(hashes[skip])
        {
            skip += 1;
        }
        let Some(first) = branch.get(skip) else {
            return Ok(Reorg::Kept);
        };
        let fork =
            first.header.number.checked_sub(1).ok_or_else(|| {
                not_a_branch(0, "a branch cannot replace the genesis block".into())
            })?;
        if reader.canonical_hash(fork)? != Some(first.header.parent_hash) {
            return Err(not_a_branch(
                first.header.number,
                format!(
                    "its parent {} is not canonical block {fork}",
                    first.header.parent_hash
                ),
            ));
        }
        let (finalized, _) = self.finalized();
        if fork < finalized {
            let finalized_block = reader.canonical_hash(fork + 1)?.unwrap_or_default();
            return Err(ImportError::ConflictsWithFinalized {
                number: fork + 1,
                finalized: finalized_block,
                got: hashes[skip],
            }
            .into());
        }
        let (head, _) = reader.head()?;
        let mut ours = Vec::new();
        for n in fork + 1..=head {
            let hash = reader
                .canonical_hash(n)?
                .ok_or_else(|| Error::Corrupt(format!("no canonical block {n}")))?;
            let h = reader
                .header(hash)?
                .ok_or_else(|| Error::Corrupt(format!("no header {hash}")))?;
            ours.push((h.difficulty, hash));
        }
        let theirs: Vec<(U256, B256)> = branch[skip..]
            .iter()
            .zip(&hashes[skip..])
            .map(|(b, h)| (b.header.difficulty, *h))
            .collect();
        if !ours.is_empty() && weight(&theirs) <= weight(&ours) {
            return Ok(Reorg::Kept);
        }
        let oldest = reader.oldest_state()?;
        if fork < oldest {
            return Err(Error::StateUnavailable(format!(
                "a reorg to block {fork} needs the state history, which this datadir keeps from block {oldest}"
            )));
        }
        drop(reader);

        let mut replaced = Vec::new();
        while self.store.reader()?.head()?.0 > fork {
            match self.store.unwind_head() {
                Ok(b) => replaced.push(b),
                Err(e) => {
                    self.reimport(&replaced);
                    return Err(e);
                }
            }
        }
        let mut imported: Vec<StoredBlock> = Vec::new();
        for block in branch.into_iter().skip(skip) {
            match import_block(&self.store, &self.spec, block, SealMode::Verify) {
                Ok(b) => imported.push(b),
                Err(e) => {
                    self.put_back(fork, &replaced);
                    return Err(e);
                }
            }
        }
        let new_head = imported.last().expect("at least one block").clone();
        self.set_head(&new_head, &[])?;
        self.requeue(&replaced, &imported);
        for b in &replaced {
            self.publish_removed(b);
        }
        for b in &imported {
            match crate::clique::recover_sealer(&b.header) {
                Ok(sealer) => self.publish_head(b, sealer),
                Err(e) => tracing::error!(target: "chain::reorg", block = b.header.number, "{e}"),
            }
        }
        tracing::warn!(
            target: "chain::reorg",
            fork,
            replaced = replaced.len(),
            by = imported.len(),
            head = new_head.header.number,
            hash = %new_head.hash,
            "reorganised onto a heavier branch"
        );
        Ok(Reorg::Switched {
            replaced: replaced.len() as u64,
            head: (new_head.header.number, new_head.hash),
        })
    }

    /// After a refused branch: unwinds what of it was imported and imports
    /// the `replaced` blocks (newest first) again.
    fn put_back(&self, fork: u64, replaced: &[StoredBlock]) {
        let unwind = || -> Result<()> {
            while self.store.reader()?.head()?.0 > fork {
                self.store.unwind_head()?;
            }
            Ok(())
        };
        match unwind() {
            Ok(()) => self.reimport(replaced),
            Err(e) => {
                tracing::error!(target: "chain::reorg", "cannot unwind the refused branch: {e}");
            }
        }
    }

    /// Imports the `replaced` blocks (newest first) again on top of the head.
    fn reimport(&self, replaced: &[StoredBlock]) {
        let restore = || -> Result<()> {
            for b in replaced.iter().rev() {
                let block = rlp_of(&self.store.reader()?, b.clone())?;
                import_block(&self.store, &self.spec, block, SealMode::Trusted)?;
            }
            Ok(())
        };
        if let Err(e) = restore() {
            tracing::error!(target: "chain::reorg", "cannot put the replaced blocks back: {e}");
        }
    }

    /// Returns to the pool the transactions of `replaced` blocks that the
    /// new branch did not include (those now invalid are dropped).
    fn requeue(&self, replaced: &[StoredBlock], imported: &[StoredBlock]) {
        let included: std::collections::HashSet<B256> = imported
            .iter()
            .flat_map(|b| b.transactions.iter().map(|t| *t.tx_hash()))
            .collect();
        for b in replaced.iter().rev() {
            for tx in &b.transactions {
                if included.contains(tx.tx_hash()) {
                    continue;
                }
                let Ok(recovered) = tx.clone().try_into_recovered() else {
                    continue;
                };
                let raw = alloy_eips::eip2718::Encodable2718::encoded_2718(recovered.inner());
                if let Err(e) = self.submit_raw(&raw) {
                    tracing::debug!(target: "chain::reorg", tx = %tx.tx_hash(), "not requeued: {e}");
                }
            }
        }
    }
}

/// `block` with its ommers and withdrawals, as it travels between nodes.
pub(super) fn rlp_of(reader: &StoreReader, block: StoredBlock) -> Result<RlpBlock> {
    let ommers = reader.ommers(block.hash)?;
    let withdrawals = reader
        .withdrawals(&block.header, block.hash)?
        .map(alloy_eips::eip4895::Withdrawals::new);
    Ok(RlpBlock {
        header: block.header,
        body: alloy_consensus::BlockBody {
            transactions: block.transactions,
            ommers,
            withdrawals,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// More total difficulty wins; on a tie the shorter branch; then the
    /// lower first hash, so both sides of a fork choose alike.
    #[test]
    fn fork_choice_weighs_difficulty_then_length_then_hash() {
        let (one, two) = (U256::from(1), U256::from(2));
        let (low, high) = (B256::repeat_byte(1), B256::repeat_byte(2));
        assert!(weight(&[(two, high)]) > weight(&[(one, low)]));
        assert!(weight(&[(one, high), (one, high), (one, high)]) > weight(&[(two, low)]));
        assert!(weight(&[(two, high)]) > weight(&[(one, low), (one, low)]));
        assert!(weight(&[(two, low)]) > weight(&[(two, high)]));
        assert_eq!(weight(&[(two, low)]), weight(&[(two, low)]));
    }
}
