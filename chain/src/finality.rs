//! Finality: which block can no longer be reverted (the `finalized` and `safe` tags).
//!
//! A block is final once more than 2/3 of the authorities signed it. The seal of
//! a block counts as its sealer's signature, so with a single authority every
//! sealed block is final as soon as it is sealed (1 of 1 > 2/3).
//!
//! With several authorities a vote overlay will add the other signatures: each
//! authority signs a [`Vote`] `(chain id, number, hash)` for blocks it has
//! imported, the votes are gossiped, and each one received goes through
//! [`Finality::vote`]. The finalized head only moves forward; a block's
//! ancestors are final with it. The tracker is in memory: on start the node
//! counts the seal of its head again (enough with one authority; an overlay will
//! also have to store the votes it finalized with).

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::{Address, B256, keccak256};

/// Domain separator of [`Vote::signing_hash`].
const VOTE_DOMAIN: &[u8] = b"netmind-finality-vote-v1";

/// An authority's statement that block `(number, hash)` of chain `chain_id` is
/// the one it builds on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vote {
    /// The chain (votes of other chains are refused).
    pub chain_id: u64,
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
}

impl Vote {
    /// The 32 bytes an authority signs:
    /// `keccak256("netmind-finality-vote-v1" ‖ chain_id ‖ number ‖ hash)`, integers big endian.
    pub fn signing_hash(&self) -> B256 {
        let mut buf = Vec::with_capacity(VOTE_DOMAIN.len() + 48);
        buf.extend_from_slice(VOTE_DOMAIN);
        buf.extend_from_slice(&self.chain_id.to_be_bytes());
        buf.extend_from_slice(&self.number.to_be_bytes());
        buf.extend_from_slice(self.hash.as_slice());
        keccak256(buf)
    }
}

/// A [`Vote`] with its signer's secp256k1 signature over [`Vote::signing_hash`]
/// (65 bytes `r ‖ s ‖ v`, as a Clique seal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedVote {
    /// What is signed.
    pub vote: Vote,
    /// The signature.
    pub signature: alloy_primitives::Signature,
}

impl SignedVote {
    /// Signs `vote` with `key`.
    pub fn sign(
        vote: Vote,
        key: &alloy_signer_local::PrivateKeySigner,
    ) -> Result<Self, FinalityError> {
        use alloy_signer::SignerSync;
        let signature = key
            .sign_hash_sync(&vote.signing_hash())
            .map_err(|e| FinalityError::BadSignature(e.to_string()))?;
        Ok(Self { vote, signature })
    }

    /// Recovers who signed.
    pub fn voter(&self) -> Result<Address, FinalityError> {
        alloy_consensus::crypto::secp256k1::recover_signer(
            &self.signature,
            self.vote.signing_hash(),
        )
        .map_err(|e| FinalityError::BadSignature(e.to_string()))
    }
}

/// Whether `signed` signatures of `authorities` authorities are more than 2/3.
pub fn is_final(signed: usize, authorities: usize) -> bool {
    authorities > 0 && 3 * signed > 2 * authorities
}

/// The fewest signatures that make a block final among `authorities` (`⌊2n/3⌋ + 1`).
pub fn quorum(authorities: usize) -> usize {
    2 * authorities / 3 + 1
}

/// Why a vote was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FinalityError {
    /// The vote names another chain.
    #[error("vote for chain {got}, this is chain {want}")]
    WrongChain {
        /// This chain.
        want: u64,
        /// The vote's chain.
        got: u64,
    },
    /// The signature does not recover.
    #[error("invalid vote signature: {0}")]
    BadSignature(String),
    /// The voter is not an authority.
    #[error("{0} is not an authority")]
    NotAuthority(Address),
    /// The authority already voted for another block at this height.
    #[error("{voter} voted for two blocks at height {number}: {first} and {second}")]
    Equivocation {
        /// The voter.
        voter: Address,
        /// The height.
        number: u64,
        /// The block it voted for first.
        first: B256,
        /// The other block.
        second: B256,
    },
}

/// Tracks the finalized head from authorities' votes.
#[derive(Debug, Clone)]
pub struct Finality {
    chain_id: u64,
    authorities: BTreeSet<Address>,
    finalized: (u64, B256),
    /// Votes above the finalized height: height → voter → hash.
    pending: BTreeMap<u64, BTreeMap<Address, B256>>,
}

impl Finality {
    /// A tracker whose finalized head is the genesis block `genesis_hash`.
    pub fn new(chain_id: u64, authorities: &[Address], genesis_hash: B256) -> Self {
        Self {
            chain_id,
            authorities: authorities.iter().copied().collect(),
            finalized: (0, genesis_hash),
            pending: BTreeMap::new(),
        }
    }

    /// A tracker resuming from a stored finalized head.
    pub fn resume(chain_id: u64, authorities: &[Address], finalized: (u64, B256)) -> Self {
        Self {
            chain_id,
            authorities: authorities.iter().copied().collect(),
            finalized,
            pending: BTreeMap::new(),
        }
    }

    /// The chain id votes must name.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The finalized head: (number, hash).
    pub fn finalized(&self) -> (u64, B256) {
        self.finalized
    }

    /// The authorities whose signatures count.
    pub fn authorities(&self) -> impl Iterator<Item = &Address> {
        self.authorities.iter()
    }

    /// Replaces the authorities (the Clique votes changed them): votes of
    /// those no longer authorities stop counting, and a block that more than
    /// two thirds of the new authorities already signed becomes final (the
    /// highest such); returns the new finalized head when it moved.
    pub fn set_authorities(&mut self, authorities: &[Address]) -> Option<(u64, B256)> {
        self.authorities = authorities.iter().copied().collect();
        let authorities = &self.authorities;
        for votes in self.pending.values_mut() {
            votes.retain(|voter, _| authorities.contains(voter));
        }
        let n = self.authorities.len();
        let newly = self.pending.iter().rev().find_map(|(number, votes)| {
            votes
                .values()
                .find(|h| is_final(votes.values().filter(|o| o == h).count(), n))
                .map(|h| (*number, *h))
        })?;
        self.finalized = newly;
        self.pending = self.pending.split_off(&(newly.0 + 1));
        Some(newly)
    }

    /// Counts `voter`'s signature of `vote`; returns the new finalized head when
    /// this vote made the block final. Votes at or below the finalized height
    /// are ignored.
    pub fn vote(
        &mut self,
        voter: Address,
        vote: Vote,
    ) -> Result<Option<(u64, B256)>, FinalityError> {
        if vote.chain_id != self.chain_id {
            return Err(FinalityError::WrongChain {
                want: self.chain_id,
                got: vote.chain_id,
            });
        }
        if !self.authorities.contains(&voter) {
            return Err(FinalityError::NotAuthority(voter));
        }
        if vote.number <= self.finalized.0 {
            return Ok(None);
        }
        let at = self.pending.entry(vote.number).or_default();
        match at.get(&voter) {
            Some(first) if *first != vote.hash => {
                return Err(FinalityError::Equivocation {
                    voter,
                    number: vote.number,
                    first: *first,
                    second: vote.hash,
                });
            }
            Some(_) => return Ok(None),
            None => {
                at.insert(voter, vote.hash);
            }
        }
        let signed = at.values().filter(|h| **h == vote.hash).count();
        if !is_final(signed, self.authorities.len()) {
            return Ok(None);
        }
        self.finalized = (vote.number, vote.hash);
        self.pending = self.pending.split_off(&(vote.number + 1));
        Ok(Some(self.finalized))
    }

    /// Counts the seal of block `(number, hash)` as `sealer`'s vote for it.
    pub fn on_sealed(
        &mut self,
        sealer: Address,
        number: u64,
        hash: B256,
    ) -> Result<Option<(u64, B256)>, FinalityError> {
        let vote = Vote {
            chain_id: self.chain_id,
            number,
            hash,
        };
        self.vote(sealer, vote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorities(n: u8) -> Vec<Address> {
        (1..=n).map(Address::with_last_byte).collect()
    }

    fn vote(number: u64, hash: u8) -> Vote {
        Vote {
            chain_id: 7,
            number,
            hash: B256::with_last_byte(hash),
        }
    }

    #[test]
    fn threshold_is_more_than_two_thirds() {
        // (authorities, fewest signatures that finalize)
        for (n, q) in [
            (1, 1),
            (2, 2),
            (3, 3),
            (4, 3),
            (5, 4),
            (6, 5),
            (7, 5),
            (21, 15),
        ] {
            assert_eq!(quorum(n), q, "quorum of {n}");
            assert!(is_final(q, n), "{q} of {n}");
            assert!(!is_final(q - 1, n), "{} of {n}", q - 1);
        }
        assert!(!is_final(0, 0));
    }

    #[test]
    fn votes_that_change_the_authorities_change_the_quorum() {
        let a = authorities(4);
        let mut f = Finality::new(7, &a[..3], B256::ZERO);
        // A fourth authority voted in: its votes count, 3 of 4 are needed.
        assert_eq!(f.set_authorities(&a), None);
        assert_eq!(f.vote(a[3], vote(1, 1)), Ok(None));
        assert_eq!(f.vote(a[0], vote(1, 1)), Ok(None));
        assert_eq!(
            f.vote(a[1], vote(1, 1)),
            Ok(Some((1, B256::with_last_byte(1))))
        );
        // Two votes for block 2 of four authorities; then two of them are
        // voted out: two of the remaining two signed, so block 2 is final.
        assert_eq!(f.vote(a[0], vote(2, 2)), Ok(None));
        assert_eq!(f.vote(a[2], vote(2, 2)), Ok(None));
        assert_eq!(f.vote(a[3], vote(3, 3)), Ok(None));
        let kept = [a[0], a[2]];
        assert_eq!(f.set_authorities(&kept), Some((2, B256::with_last_byte(2))));
        assert_eq!(f.finalized(), (2, B256::with_last_byte(2)));
        // The removed authority's vote at 3 no longer counts, nor do new ones.
        assert_eq!(f.vote(a[0], vote(3, 3)), Ok(None));
        assert_eq!(
            f.vote(a[3], vote(4, 4)),
            Err(FinalityError::NotAuthority(a[3]))
        );
        assert_eq!(
            f.vote(a[2], vote(3, 3)),
            Ok(Some((3, B256::with_last_byte(3))))
        );
    }

    #[test]
    fn one_authority_finalizes_each_sealed_block() {
        let a = authorities(1);
        let mut f = Finality::new(7, &a, B256::ZERO);
        assert_eq!(f.finalized(), (0, B256::ZERO));
        for n in 1..=3 {
            let h = B256::with_last_byte(n as u8);
            assert_eq!(f.on_sealed(a[0], n, h), Ok(Some((n, h))));
            assert_eq!(f.finalized(), (n, h));
        }
    }

    #[test]
    fn three_authorities_need_all_three() {
        let a = authorities(3);
        let mut f = Finality::new(7, &a, B256::ZERO);
        assert_eq!(f.vote(a[0], vote(1, 1)), Ok(None));
        assert_eq!(f.vote(a[1], vote(1, 1)), Ok(None), "2 of 3 is not > 2/3");
        assert_eq!(f.finalized().0, 0);
        assert_eq!(
            f.vote(a[2], vote(1, 1)),
            Ok(Some((1, B256::with_last_byte(1))))
        );
    }

    #[test]
    fn four_authorities_need_three_for_the_same_hash() {
        let a = authorities(4);
        let mut f = Finality::new(7, &a, B256::ZERO);
        assert_eq!(f.vote(a[0], vote(5, 1)), Ok(None));
        assert_eq!(f.vote(a[1], vote(5, 1)), Ok(None));
        // A vote for a sibling does not count for the block.
        assert_eq!(f.vote(a[2], vote(5, 2)), Ok(None));
        assert_eq!(f.finalized().0, 0);
        assert_eq!(
            f.vote(a[3], vote(5, 1)),
            Ok(Some((5, B256::with_last_byte(1))))
        );
        // Pending votes at or below the new finalized height are dropped; older
        // heights are ignored.
        assert!(f.pending.is_empty());
        assert_eq!(f.vote(a[0], vote(4, 9)), Ok(None));
        assert_eq!(f.finalized().0, 5);
    }

    #[test]
    fn refuses_foreign_votes_and_equivocation() {
        let a = authorities(4);
        let mut f = Finality::new(7, &a, B256::ZERO);
        let stranger = Address::with_last_byte(99);
        assert_eq!(
            f.vote(stranger, vote(1, 1)),
            Err(FinalityError::NotAuthority(stranger))
        );
        let mut other = vote(1, 1);
        other.chain_id = 8;
        assert_eq!(
            f.vote(a[0], other),
            Err(FinalityError::WrongChain { want: 7, got: 8 })
        );
        assert_eq!(f.vote(a[0], vote(1, 1)), Ok(None));
        assert_eq!(
            f.vote(a[0], vote(1, 1)),
            Ok(None),
            "a repeated vote counts once"
        );
        assert!(matches!(
            f.vote(a[0], vote(1, 2)),
            Err(FinalityError::Equivocation { number: 1, .. })
        ));
        assert_eq!(f.vote(a[1], vote(1, 1)), Ok(None), "2 distinct of 4");
    }

    #[test]
    fn signing_hash_binds_every_field() {
        let v = vote(1, 1);
        let mut hashes = vec![v.signing_hash()];
        let mut w = v;
        w.chain_id = 8;
        hashes.push(w.signing_hash());
        let mut w = v;
        w.number = 2;
        hashes.push(w.signing_hash());
        hashes.push(vote(1, 2).signing_hash());
        let unique: BTreeSet<_> = hashes.iter().collect();
        assert_eq!(unique.len(), 4);
    }
}
