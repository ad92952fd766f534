//! From signed orders (EIP-712, `netmind_protocol::orders`) to the engine's
//! orders: the signature is checked and the order's id is its signing hash.
//!
//! [`verify`] recovers signers with libsecp256k1 (about five times faster
//! than the pure-Rust `k256` that `Signed::verify` uses: the market checks
//! every order it receives) and refuses high-`s` signatures, as
//! OpenZeppelin's `ECDSA.recover` does, so whatever the market accepts a
//! contract accepts too.

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_sol_types::Eip712Domain;
use netmind_protocol::orders::{JobOrder, Offer as SignedOffer, Order, Signed};
use secp256k1::SECP256K1;
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};

use crate::engine::{Bid, Capabilities, Offer, Price, Requirements};

/// Why a signed order cannot enter the book.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The signature is not the maker's.
    #[error(transparent)]
    Signature(#[from] netmind_protocol::Error),
    /// A price above what the engine trades.
    #[error("{field} of {value} NMT base units per second is above the market's maximum of {max}")]
    Price {
        /// Which price.
        field: &'static str,
        /// Its value.
        value: U256,
        /// The largest accepted.
        max: Price,
    },
    /// Zero slots or replicas, or an empty class.
    #[error("{0}")]
    Empty(&'static str),
}

fn bad(message: String) -> OrderError {
    OrderError::Signature(netmind_protocol::Error::OrderSignature(message))
}

/// The address whose key made `signature` over `hash`.
fn recover(hash: &B256, signature: &alloy_primitives::Signature) -> Result<Address, OrderError> {
    if signature.normalize_s().is_some() {
        return Err(bad(
            "the signature does not recover: its s is in the upper half of the curve order \
             (a malleable signature; sign again with a standard signer)"
                .into(),
        ));
    }
    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&signature.r().to_be_bytes::<32>());
    compact[32..].copy_from_slice(&signature.s().to_be_bytes::<32>());
    let id = RecoveryId::from_u8_masked(u8::from(signature.v()));
    let key = RecoverableSignature::from_compact(&compact, id)
        .and_then(|sig| SECP256K1.recover_ecdsa(secp256k1::Message::from_digest(hash.0), &sig))
        .map_err(|e| bad(format!("the signature does not recover: {e}")))?;
    let public = key.serialize_uncompressed();
    Ok(Address::from_slice(&keccak256(&public[1..])[12..]))
}

/// Checks that the maker signed this order (or cancel) for `domain`;
/// returns its id (the signing hash). The same answers as
/// [`Signed::verify`], and high-`s` signatures are refused.
///
/// # Errors
///
/// [`OrderError::Signature`] naming the address that did sign, when that
/// is not the maker (altered, another domain or chain id, another key).
pub fn verify<T: Order>(signed: &Signed<T>, domain: &Eip712Domain) -> Result<B256, OrderError> {
    let id = signed.id(domain);
    let signer = recover(&id, &signed.signature)?;
    let maker = signed.order.maker();
    if signer != maker {
        return Err(bad(format!(
            "this {} names {maker} as its maker but was signed by {signer} (altered after signing, \
             signed for another chain id, or signed with another key)",
            T::KIND
        )));
    }
    Ok(id)
}

fn price(field: &'static str, value: U256) -> Result<Price, OrderError> {
    Price::try_from(value).map_err(|_| OrderError::Price {
        field,
        value,
        max: Price::MAX,
    })
}

/// Checks a signed offer and turns it into the engine's.
///
/// # Errors
///
/// A bad signature, a price over `u128`, no slots or no class.
pub fn offer(signed: &Signed<SignedOffer>, domain: &Eip712Domain) -> Result<Offer, OrderError> {
    let id = verify(signed, domain)?;
    let o = &signed.order;
    if o.slots == 0 {
        return Err(OrderError::Empty("an offer must have at least one slot"));
    }
    if o.class.is_empty() {
        return Err(OrderError::Empty("an offer must name its resource class"));
    }
    Ok(Offer {
        id,
        host: o.host,
        class: o.class.clone(),
        caps: Capabilities {
            gpu_model: (!o.gpuModel.is_empty()).then(|| o.gpuModel.clone()),
            vram: o.vram,
            wgpu_features: o.wgpuFeatures.clone(),
            encodings: o.encodings.clone(),
            cores: o.cores,
            memory: o.memoryBytes,
            score: o.score,
        },
        price: price("price", o.price)?,
        slots: o.slots,
        expiry: o.expiry,
    })
}

/// Checks a signed job order and turns it into the engine's bid.
///
/// # Errors
///
/// A bad signature, a price over `u128`, no replicas or no class.
pub fn bid(signed: &Signed<JobOrder>, domain: &Eip712Domain) -> Result<Bid, OrderError> {
    let id = verify(signed, domain)?;
    let j = &signed.order;
    if j.replicas == 0 {
        return Err(OrderError::Empty(
            "a job order must ask for at least one replica",
        ));
    }
    if j.class.is_empty() {
        return Err(OrderError::Empty(
            "a job order must name its resource class",
        ));
    }
    Ok(Bid {
        id,
        owner: j.owner,
        class: j.class.clone(),
        req: Requirements {
            gpu: j.gpu,
            min_vram: j.minVram,
            encodings: j.encodings.clone(),
            wgpu_features: j.wgpuFeatures.clone(),
            cores: j.cores,
            memory: j.minMemory,
            min_score: j.minScore,
            allow: j.allow.clone(),
            deny: j.deny.clone(),
        },
        max_price: price("maxPrice", j.maxPrice)?,
        max_seconds: j.maxSeconds,
        replicas: j.replicas,
        deadline: j.deadline,
    })
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{Address, B256};
    use alloy_signer_local::PrivateKeySigner;
    use netmind_protocol::orders::domain;

    use super::*;
    use crate::engine::{Command, Engine, Event};

    fn signed_offer(key: &PrivateKeySigner, price: u64) -> Signed<SignedOffer> {
        let o = SignedOffer {
            host: key.address(),
            class: "gpu".into(),
            gpuModel: "RTX 4090".into(),
            vram: 24 << 30,
            wgpuFeatures: vec![],
            encodings: vec!["onnx".into()],
            cores: 8,
            memoryBytes: 32 << 30,
            score: 100,
            price: U256::from(price),
            slots: 1,
            expiry: 10_000,
            nonce: 1,
        };
        Signed::sign(o, key, &domain(1)).unwrap()
    }

    fn signed_bid(key: &PrivateKeySigner, max: U256) -> Signed<JobOrder> {
        let j = JobOrder {
            owner: key.address(),
            bundle: B256::repeat_byte(1),
            input: B256::ZERO,
            class: "gpu".into(),
            gpu: true,
            minVram: 16 << 30,
            encodings: vec!["onnx".into()],
            wgpuFeatures: vec![],
            cores: 4,
            minMemory: 8 << 30,
            minScore: 50,
            allow: vec![],
            deny: vec![Address::repeat_byte(9)],
            maxPrice: max,
            maxSeconds: 600,
            replicas: 1,
            deadline: 10_000,
            nonce: 1,
        };
        Signed::sign(j, key, &domain(1)).unwrap()
    }

    #[test]
    fn signed_orders_enter_the_book_under_their_signing_hash_and_match() {
        let (host, owner) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let d = domain(1);
        let o = offer(&signed_offer(&host, 10), &d).unwrap();
        let b = bid(&signed_bid(&owner, U256::from(12u64)), &d).unwrap();
        assert_eq!(o.id, signed_offer(&host, 10).id(&d));
        let mut e = Engine::default();
        e.apply(Command::Offer(o.clone()), 1);
        let ev = e.apply(Command::Bid(b.clone()), 2);
        let Some(Event::Deal(deal)) = ev.first() else {
            panic!("{ev:?}")
        };
        assert_eq!(
            (deal.offer, deal.bid, deal.host, deal.price),
            (o.id, b.id, host.address(), 10)
        );
    }

    #[test]
    fn libsecp256k1_recovery_agrees_with_k256_and_refuses_high_s() {
        let key = PrivateKeySigner::random();
        let d = domain(1);
        for price in 0..20 {
            let s = signed_offer(&key, price);
            assert_eq!(verify(&s, &d).unwrap(), s.verify(&d).unwrap());
            let mut other = s.clone();
            other.order.price = U256::from(price + 1);
            let (a, b) = (verify(&other, &d), other.verify(&d));
            assert_eq!(a.unwrap_err().to_string(), b.unwrap_err().to_string());
        }
        // The same signature with s flipped to n - s (and the parity
        // flipped) recovers to the same key: k256 accepts it, we refuse it.
        let s = signed_offer(&key, 1);
        let sig = s.signature;
        let n = U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        let high = alloy_primitives::Signature::new(sig.r(), n - sig.s(), !sig.v());
        let malleable = Signed {
            order: s.order,
            signature: high,
        };
        assert!(malleable.verify(&d).is_ok(), "k256 takes it");
        let e = verify(&malleable, &d).unwrap_err().to_string();
        assert!(e.contains("upper half"), "{e}");
    }

    #[test]
    fn forged_and_out_of_range_orders_are_refused() {
        let (host, owner) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let d = domain(1);
        let mut forged = signed_offer(&host, 10);
        forged.order.slots = 100;
        let e = offer(&forged, &d).unwrap_err().to_string();
        assert!(e.contains("invalid order signature"), "{e}");
        assert!(
            offer(&signed_offer(&host, 10), &domain(2)).is_err(),
            "another chain"
        );
        let e = bid(&signed_bid(&owner, U256::MAX), &d)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("maxPrice") && e.contains("above the market's maximum"),
            "{e}"
        );
    }
}
