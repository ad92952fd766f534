//! The EIP-712 signing hash of an order, without hashing again for every
//! order what never changes: the domain separator (four Keccak-256 hashes and
//! an allocation each time alloy computes it) and each type's type hash.
//! The same value as alloy's [`SolStruct::eip712_signing_hash`].

use std::any::TypeId;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use alloy_primitives::{B256, Keccak256, keccak256};
use alloy_sol_types::{Eip712Domain, SolStruct};

/// `keccak256(encodeType)` of `T`, computed once per type.
fn type_hash<T: SolStruct + 'static>() -> B256 {
    static HASHES: OnceLock<RwLock<HashMap<TypeId, B256>>> = OnceLock::new();
    let hashes = HASHES.get_or_init(RwLock::default);
    let id = TypeId::of::<T>();
    if let Some(h) = hashes.read().unwrap_or_else(|e| e.into_inner()).get(&id) {
        return *h;
    }
    let h = keccak256(T::eip712_encode_type().as_bytes());
    hashes
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, h);
    h
}

/// The domain separator, remembered for the last domain each thread used
/// (a market and a host use one).
fn separator(domain: &Eip712Domain) -> B256 {
    thread_local! {
        static LAST: RefCell<Option<(Eip712Domain, B256)>> = const { RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((d, s)) if d == domain => *s,
            _ => {
                let s = domain.separator();
                *last = Some((domain.clone(), s));
                s
            }
        }
    })
}

/// `keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(order))`.
pub(crate) fn signing_hash<T: SolStruct + 'static>(order: &T, domain: &Eip712Domain) -> B256 {
    let mut hasher = Keccak256::new();
    hasher.update(type_hash::<T>());
    hasher.update(order.eip712_encode_data());
    let hash_struct = hasher.finalize();
    let mut digest = [0u8; 66];
    digest[..2].copy_from_slice(&[0x19, 0x01]);
    digest[2..34].copy_from_slice(separator(domain).as_slice());
    digest[34..].copy_from_slice(hash_struct.as_slice());
    keccak256(digest)
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{Address, U256};

    use super::*;
    use crate::orders::{Cancel, JobOrder, domain};
    use crate::work::{Log, Receipt, Start};

    #[test]
    fn the_same_hash_as_alloy_for_every_order_type_and_domain() {
        let bid = JobOrder {
            owner: Address::repeat_byte(1),
            bundle: B256::repeat_byte(2),
            input: B256::ZERO,
            class: "gpu-24g".into(),
            gpu: true,
            minVram: 8 << 30,
            encodings: vec!["onnx".into(), "gguf".into()],
            wgpuFeatures: vec![],
            cores: 4,
            minMemory: 1 << 30,
            minScore: 10,
            allow: vec![Address::repeat_byte(3)],
            deny: vec![],
            maxPrice: U256::from(77u64),
            maxSeconds: 60,
            replicas: 2,
            deadline: 1_800_000_000_000,
            nonce: 9,
        };
        let cancel = Cancel {
            maker: Address::repeat_byte(4),
            order: B256::repeat_byte(5),
            expiry: 1,
        };
        let start = Start {
            host: Address::repeat_byte(6),
            deal: B256::repeat_byte(7),
            at: 2,
        };
        let log = Log {
            host: Address::repeat_byte(6),
            deal: B256::repeat_byte(7),
            offset: 3,
            text: "hello\n".into(),
        };
        let receipt = Receipt {
            host: Address::repeat_byte(6),
            deal: B256::repeat_byte(7),
            output: B256::repeat_byte(8),
            status: "exited".into(),
            exitCode: 0,
            runtimeMs: 5,
            fuel: 6,
            gpuTimeMs: 0,
            gpuDispatches: 0,
            gpuHash: B256::ZERO,
        };
        // Alternating domains: the remembered separator follows the domain.
        for chain in [1, 97, 1, 56, 56, 1] {
            let d = domain(chain);
            assert_eq!(signing_hash(&bid, &d), bid.eip712_signing_hash(&d));
            assert_eq!(signing_hash(&cancel, &d), cancel.eip712_signing_hash(&d));
            assert_eq!(signing_hash(&start, &d), start.eip712_signing_hash(&d));
            assert_eq!(signing_hash(&log, &d), log.eip712_signing_hash(&d));
            assert_eq!(signing_hash(&receipt, &d), receipt.eip712_signing_hash(&d));
        }
        assert_ne!(
            signing_hash(&bid, &domain(1)),
            signing_hash(&bid, &domain(97))
        );
    }
}
