//! EIP-225 (Clique) header sealing.
//!
//! A sealed header's `extra_data` is 32 bytes of vanity, (at epoch checkpoints)
//! the sorted signer addresses, then a 65-byte secp256k1 signature `r ‖ s ‖ v`
//! (v ∈ {0, 1}) over the *seal hash*: keccak256 of the header's RLP with the last
//! 65 bytes of `extra_data` removed. `difficulty` is 2 for the in-turn signer and
//! 1 otherwise; `mix_hash` is zero; `beneficiary`/`nonce` carry votes.

use alloy_consensus::Header;
use alloy_primitives::{Address, B64, B256, Signature, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;

pub mod tally;

/// Bytes of vanity at the start of `extra_data`.
pub const EXTRA_VANITY: usize = 32;
/// Bytes of seal at the end of `extra_data`.
pub const EXTRA_SEAL: usize = 65;
/// `nonce` of a vote to add the beneficiary as a signer.
pub const NONCE_AUTH: B64 = B64::new([0xff; 8]);
/// `nonce` of a vote to drop the beneficiary (and of every non-vote block).
pub const NONCE_DROP: B64 = B64::ZERO;
/// Difficulty of a block sealed by the in-turn signer.
pub const DIFF_IN_TURN: U256 = U256::from_limbs([2, 0, 0, 0]);
/// Difficulty of a block sealed out of turn.
pub const DIFF_NO_TURN: U256 = U256::from_limbs([1, 0, 0, 0]);

/// A Clique rule a header breaks.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CliqueError {
    /// `extra_data` is shorter than vanity + seal.
    #[error("extra data is {0} bytes, shorter than 32 vanity + 65 seal bytes")]
    MissingSignature(usize),
    /// The seal is not a valid signature.
    #[error("invalid seal signature: {0}")]
    InvalidSeal(String),
    /// The sealer is not in the signer set.
    #[error("unauthorized signer {0}")]
    UnauthorizedSigner(Address),
    /// The sealer signed one of the last `signers/2 + 1` blocks.
    #[error("signer {0} signed recently")]
    RecentlySigned(Address),
    /// `nonce` is neither the authorize nor the drop value.
    #[error("invalid vote nonce {0}")]
    InvalidVote(B64),
    /// A checkpoint's signer list is malformed or does not match the snapshot.
    #[error("invalid checkpoint signer list: {0}")]
    InvalidCheckpoint(String),
    /// Headers given to the tally are not consecutive.
    #[error("header {got} does not follow {expected}")]
    NonContiguous {
        /// Number expected.
        expected: u64,
        /// Number given.
        got: u64,
    },
}

/// The seal hash: keccak256(RLP(header without the 65 seal bytes)).
pub fn seal_hash(header: &Header) -> Result<B256, CliqueError> {
    let n = header.extra_data.len();
    if n < EXTRA_VANITY + EXTRA_SEAL {
        return Err(CliqueError::MissingSignature(n));
    }
    let mut unsealed = header.clone();
    unsealed.extra_data = header.extra_data.slice(..n - EXTRA_SEAL);
    Ok(unsealed.hash_slow())
}

/// Signs `header` with `key`, writing the seal into the last 65 bytes of `extra_data`.
pub fn seal(header: &mut Header, key: &PrivateKeySigner) -> Result<(), CliqueError> {
    let hash = seal_hash(header)?;
    let sig = key
        .sign_hash_sync(&hash)
        .map_err(|e| CliqueError::InvalidSeal(e.to_string()))?;
    let mut extra = header.extra_data.to_vec();
    let n = extra.len();
    extra[n - EXTRA_SEAL..].copy_from_slice(&sig.as_rsy());
    header.extra_data = extra.into();
    Ok(())
}

/// Recovers the address that sealed `header`.
pub fn recover_sealer(header: &Header) -> Result<Address, CliqueError> {
    let hash = seal_hash(header)?;
    let raw = &header.extra_data[header.extra_data.len() - EXTRA_SEAL..];
    let sig = Signature::from_raw(raw).map_err(|e| CliqueError::InvalidSeal(e.to_string()))?;
    alloy_consensus::crypto::secp256k1::recover_signer(&sig, hash)
        .map_err(|e| CliqueError::InvalidSeal(e.to_string()))
}

/// Whether `signer` is in turn for block `number` among the sorted `signers`.
pub fn in_turn(number: u64, signer: Address, signers: &[Address]) -> bool {
    let mut sorted = signers.to_vec();
    sorted.sort();
    sorted
        .iter()
        .position(|s| *s == signer)
        .is_some_and(|i| number % sorted.len() as u64 == i as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips() {
        let key = PrivateKeySigner::random();
        let mut h = Header {
            number: 7,
            extra_data: vec![0u8; 97].into(),
            ..Default::default()
        };
        let before = seal_hash(&h).unwrap();
        seal(&mut h, &key).unwrap();
        assert_eq!(
            seal_hash(&h).unwrap(),
            before,
            "the seal is not part of the seal hash"
        );
        assert_eq!(recover_sealer(&h).unwrap(), key.address());
        h.number = 8;
        assert_ne!(
            recover_sealer(&h).unwrap(),
            key.address(),
            "tampering changes the sealer"
        );
    }

    #[test]
    fn short_extra_data_is_rejected() {
        let h = Header {
            extra_data: vec![0u8; 96].into(),
            ..Default::default()
        };
        assert_eq!(recover_sealer(&h), Err(CliqueError::MissingSignature(96)));
    }

    #[test]
    fn zero_seal_is_invalid() {
        let h = Header {
            extra_data: vec![0u8; 97].into(),
            ..Default::default()
        };
        assert!(matches!(
            recover_sealer(&h),
            Err(CliqueError::InvalidSeal(_))
        ));
    }

    #[test]
    fn turn_follows_sorted_order() {
        let a = Address::repeat_byte(1);
        let b = Address::repeat_byte(2);
        assert!(in_turn(0, a, &[b, a]));
        assert!(in_turn(1, b, &[b, a]));
        assert!(!in_turn(1, a, &[b, a]));
    }
}
