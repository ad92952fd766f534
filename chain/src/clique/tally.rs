//! The EIP-225 signer-set snapshot and vote tally (geth's `snapshot.apply`).
//!
//! A [`Snapshot`] is the authorization state at a block: the signer set, who
//! signed recently, and the open votes. [`Snapshot::apply`] advances it over
//! consecutive sealed headers, enforcing the signer and recently-signed rules and
//! applying votes that reach a majority (only the current header's beneficiary is
//! ever added or dropped: no cascades).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use alloy_consensus::Header;
use alloy_primitives::Address;

use super::{CliqueError, EXTRA_SEAL, EXTRA_VANITY, NONCE_AUTH, NONCE_DROP, recover_sealer};

/// One signer's vote for (or against) a beneficiary.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Vote {
    signer: Address,
    block: u64,
    address: Address,
    authorize: bool,
}

/// The running count for one proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tally {
    authorize: bool,
    votes: usize,
}

/// The authorization state of a Clique chain at one block.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Epoch length: votes are discarded at multiples of it.
    pub epoch: u64,
    /// Number of the last applied block.
    pub number: u64,
    /// The current authorities.
    pub signers: BTreeSet<Address>,
    /// Block number → signer, for the recently-signed rule.
    recents: BTreeMap<u64, Address>,
    votes: Vec<Vote>,
    tally: HashMap<Address, Tally>,
}

impl Snapshot {
    /// The snapshot at a genesis (or checkpoint) block `number` with `signers`.
    pub fn new(epoch: u64, number: u64, signers: impl IntoIterator<Item = Address>) -> Self {
        Self {
            epoch,
            number,
            signers: signers.into_iter().collect(),
            recents: BTreeMap::new(),
            votes: Vec::new(),
            tally: HashMap::new(),
        }
    }

    /// Signers in ascending order (the order that decides turns).
    pub fn sorted_signers(&self) -> Vec<Address> {
        self.signers.iter().copied().collect()
    }

    /// Whether `signer` may seal block `number` (not among the last `len/2 + 1` sealers).
    pub fn may_seal(&self, number: u64, signer: Address) -> bool {
        let limit = (self.signers.len() / 2 + 1) as u64;
        self.signers.contains(&signer)
            && !self
                .recents
                .iter()
                .any(|(&n, &s)| s == signer && number < limit + n)
    }

    fn valid_vote(&self, address: Address, authorize: bool) -> bool {
        let is_signer = self.signers.contains(&address);
        (is_signer && !authorize) || (!is_signer && authorize)
    }

    fn cast(&mut self, address: Address, authorize: bool) -> bool {
        if !self.valid_vote(address, authorize) {
            return false;
        }
        self.tally
            .entry(address)
            .or_insert(Tally {
                authorize,
                votes: 0,
            })
            .votes += 1;
        true
    }

    fn uncast(&mut self, address: Address, authorize: bool) {
        let Some(t) = self.tally.get_mut(&address) else {
            return;
        };
        if t.authorize != authorize {
            return;
        }
        if t.votes > 1 {
            t.votes -= 1;
        } else {
            self.tally.remove(&address);
        }
    }

    /// Advances the snapshot over consecutive sealed `headers`, returning the new
    /// snapshot or the first rule a header breaks (the snapshot is then unchanged).
    pub fn apply(&self, headers: &[Header]) -> Result<Self, CliqueError> {
        let mut snap = self.clone();
        for header in headers {
            let number = header.number;
            if number != snap.number + 1 {
                return Err(CliqueError::NonContiguous {
                    expected: snap.number + 1,
                    got: number,
                });
            }
            if number.is_multiple_of(snap.epoch) {
                snap.votes.clear();
                snap.tally.clear();
            }
            let limit = (snap.signers.len() / 2 + 1) as u64;
            if number >= limit {
                snap.recents.remove(&(number - limit));
            }
            let signer = recover_sealer(header)?;
            if !snap.signers.contains(&signer) {
                return Err(CliqueError::UnauthorizedSigner(signer));
            }
            if snap.recents.values().any(|s| *s == signer) {
                return Err(CliqueError::RecentlySigned(signer));
            }
            snap.recents.insert(number, signer);
            if number.is_multiple_of(snap.epoch) {
                snap.check_checkpoint(header)?;
            }

            // A signer's new vote on the same beneficiary replaces the old one.
            let target = header.beneficiary;
            if let Some(i) = snap
                .votes
                .iter()
                .position(|v| v.signer == signer && v.address == target)
            {
                let old = snap.votes.remove(i);
                snap.uncast(old.address, old.authorize);
            }
            let authorize = match header.nonce {
                NONCE_AUTH => true,
                NONCE_DROP => false,
                other => return Err(CliqueError::InvalidVote(other)),
            };
            if target != Address::ZERO && snap.cast(target, authorize) {
                snap.votes.push(Vote {
                    signer,
                    block: number,
                    address: target,
                    authorize,
                });
            }
            if let Some(t) = snap.tally.get(&target).copied()
                && t.votes > snap.signers.len() / 2
            {
                if t.authorize {
                    snap.signers.insert(target);
                } else {
                    snap.signers.remove(&target);
                    // The signer set shrank: release the oldest recent slot.
                    let limit = (snap.signers.len() / 2 + 1) as u64;
                    if number >= limit {
                        snap.recents.remove(&(number - limit));
                    }
                    // Discard every vote the dropped signer cast.
                    let (theirs, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut snap.votes)
                        .into_iter()
                        .partition(|v| v.signer == target);
                    snap.votes = rest;
                    for v in theirs {
                        snap.uncast(v.address, v.authorize);
                    }
                }
                snap.votes.retain(|v| v.address != target);
                snap.tally.remove(&target);
            }
            snap.number = number;
        }
        Ok(snap)
    }

    fn check_checkpoint(&self, header: &Header) -> Result<(), CliqueError> {
        let extra = &header.extra_data;
        let list = &extra[EXTRA_VANITY..extra.len() - EXTRA_SEAL];
        if !list.len().is_multiple_of(20) {
            return Err(CliqueError::InvalidCheckpoint(format!(
                "{} signer bytes is not a multiple of 20",
                list.len()
            )));
        }
        let listed: Vec<Address> = list.chunks(20).map(Address::from_slice).collect();
        if listed != self.sorted_signers() {
            return Err(CliqueError::InvalidCheckpoint(
                "the list differs from the current signer set".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::U256;
    use alloy_signer_local::PrivateKeySigner;

    use super::*;
    use crate::clique::seal;

    fn block(number: u64, key: &PrivateKeySigner) -> Header {
        let mut h = Header {
            number,
            difficulty: U256::from(2),
            extra_data: vec![0u8; EXTRA_VANITY + EXTRA_SEAL].into(),
            ..Default::default()
        };
        seal(&mut h, key).unwrap();
        h
    }

    #[test]
    fn recently_signed_rule_and_may_seal_agree() {
        let (a, b, c) = (
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
        );
        let snap = Snapshot::new(100, 0, [a.address(), b.address(), c.address()]);
        let s1 = snap.apply(&[block(1, &a)]).unwrap();
        // Three signers: limit 2, so A may not seal block 2 but may seal block 3.
        assert!(!s1.may_seal(2, a.address()));
        assert!(s1.may_seal(2, b.address()));
        assert!(s1.may_seal(3, a.address()));
        assert_eq!(
            s1.apply(&[block(2, &a)]).unwrap_err(),
            CliqueError::RecentlySigned(a.address())
        );
        let s2 = s1.apply(&[block(2, &b)]).unwrap();
        assert!(s2.apply(&[block(3, &a)]).is_ok());
        assert!(matches!(
            s2.apply(&[block(4, &c)]),
            Err(CliqueError::NonContiguous {
                expected: 3,
                got: 4
            })
        ));
    }

    #[test]
    fn bad_vote_nonce_is_refused() {
        let a = PrivateKeySigner::random();
        let snap = Snapshot::new(100, 0, [a.address()]);
        let mut h = block(1, &a);
        h.nonce = alloy_primitives::B64::with_last_byte(1);
        seal(&mut h, &a).unwrap();
        assert!(matches!(snap.apply(&[h]), Err(CliqueError::InvalidVote(_))));
    }
}
