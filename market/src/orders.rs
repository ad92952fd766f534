//! From signed orders (EIP-712, `netmind_protocol::orders`) to the engine's
//! orders: the signature is checked and the order's id is its signing hash.

use alloy_primitives::U256;
use alloy_sol_types::Eip712Domain;
use netmind_protocol::orders::{JobOrder, Offer as SignedOffer, Signed};

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
    let id = signed.verify(domain)?;
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
    let id = signed.verify(domain)?;
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
