//! Market orders as EIP-712 typed data: a host's [`Offer`] and a job owner's
//! [`JobOrder`], signed with the maker's secp256k1 key.
//!
//! The signing hash binds the order to the market's [`domain`] (name, version
//! and chain id), so an order signed for one chain cannot be replayed on
//! another, and a contract can check the same signature the market checks.
//! An order's id is its signing hash. A [`Cancel`] is signed the same way,
//! so only an order's maker can withdraw it.

use alloy_primitives::{Address, B256, Signature};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{Eip712Domain, SolStruct, eip712_domain, sol};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

mod hash;

sol! {
    /// A host's offer: `slots` identical slots at `price` NMT base units per second.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    struct Offer {
        /// The host's address (the signer).
        address host;
        /// The resource class, e.g. `gpu-24g`.
        string class;
        /// GPU model, empty for a CPU-only host.
        string gpuModel;
        /// GPU memory, bytes.
        uint64 vram;
        /// wgpu features of the adapter.
        string[] wgpuFeatures;
        /// wasi-nn encodings served.
        string[] encodings;
        /// CPU cores per slot.
        uint32 cores;
        /// Memory per slot, bytes.
        uint64 memoryBytes;
        /// Measured benchmark score.
        uint64 score;
        /// Price per second, NMT base units.
        uint256 price;
        /// Jobs taken at once.
        uint32 slots;
        /// Lapses at this time, ms since the Unix epoch.
        uint64 expiry;
        /// Makes otherwise equal orders distinct; never reused by a maker.
        uint64 nonce;
    }

    /// A job owner's bid for `replicas` runs of a bundle on distinct hosts.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    struct JobOrder {
        /// The owner's address (the signer).
        address owner;
        /// The bundle id (SHA-256 of the bundle file).
        bytes32 bundle;
        /// The input id (SHA-256 of the input archive), zero for none.
        bytes32 input;
        /// The resource class.
        string class;
        /// Needs a GPU.
        bool gpu;
        /// Minimum GPU memory, bytes.
        uint64 minVram;
        /// wasi-nn encodings needed.
        string[] encodings;
        /// wgpu features needed.
        string[] wgpuFeatures;
        /// Minimum CPU cores.
        uint32 cores;
        /// Minimum memory, bytes.
        uint64 minMemory;
        /// Minimum benchmark score.
        uint64 minScore;
        /// Only these hosts, when not empty.
        address[] allow;
        /// Never these hosts.
        address[] deny;
        /// Most it pays per second, NMT base units.
        uint256 maxPrice;
        /// Longest run, seconds.
        uint64 maxSeconds;
        /// Runs on distinct hosts (replicated verification).
        uint32 replicas;
        /// Lapses at this time, ms since the Unix epoch.
        uint64 deadline;
        /// Makes otherwise equal orders distinct; never reused by a maker.
        uint64 nonce;
    }

    /// A maker's request to withdraw what is left of one of its orders.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    struct Cancel {
        /// The order's maker (the signer).
        address maker;
        /// The order's id (its EIP-712 signing hash).
        bytes32 order;
        /// The request is refused after this time, ms since the Unix epoch.
        uint64 expiry;
    }
}

/// The EIP-712 domain of the NetMind market on chain `chain_id`.
pub fn domain(chain_id: u64) -> Eip712Domain {
    eip712_domain! {
        name: "NetMind Market",
        version: "1",
        chain_id: chain_id,
    }
}

/// An order the market accepts: typed data with a maker.
pub trait Order: SolStruct + Clone + 'static {
    /// Who must have signed it.
    fn maker(&self) -> Address;
    /// `offer` or `job order`, for messages.
    const KIND: &'static str;
}

impl Order for Offer {
    fn maker(&self) -> Address {
        self.host
    }
    const KIND: &'static str = "offer";
}

impl Order for JobOrder {
    fn maker(&self) -> Address {
        self.owner
    }
    const KIND: &'static str = "job order";
}

impl Order for Cancel {
    fn maker(&self) -> Address {
        self.maker
    }
    const KIND: &'static str = "cancel";
}

/// An order and its maker's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed<T> {
    /// The order.
    pub order: T,
    /// 65 bytes: `r || s || v`, over the EIP-712 signing hash.
    pub signature: Signature,
}

impl<T: Order> Signed<T> {
    /// Signs `order` for `domain` with `signer`, which must be the order's
    /// maker. Signed with libsecp256k1 (RFC 6979 nonces: the same signature
    /// alloy's k256 signer makes, in a fraction of the time, which matters to
    /// a host that signs several orders per job).
    ///
    /// # Errors
    ///
    /// [`Error::OrderSignature`] if `signer` is not the order's maker.
    pub fn sign(order: T, signer: &PrivateKeySigner, domain: &Eip712Domain) -> Result<Self> {
        if signer.address() != order.maker() {
            return Err(Error::OrderSignature(format!(
                "this {} names {} as its maker; the key given is {}'s",
                T::KIND,
                order.maker(),
                signer.address()
            )));
        }
        let hash = hash::signing_hash(&order, domain);
        let key = secp256k1::SecretKey::from_byte_array(signer.to_bytes().0)
            .map_err(|e| Error::OrderSignature(format!("unusable key: {e}")))?;
        let (recovery, rs) = secp256k1::SECP256K1
            .sign_ecdsa_recoverable(secp256k1::Message::from_digest(hash.0), &key)
            .serialize_compact();
        let signature = Signature::from_bytes_and_parity(&rs, i32::from(recovery) == 1);
        Ok(Self { order, signature })
    }

    /// The order's id: its EIP-712 signing hash under `domain`.
    pub fn id(&self, domain: &Eip712Domain) -> B256 {
        hash::signing_hash(&self.order, domain)
    }

    /// Checks that the maker signed this order for `domain`; returns its id.
    ///
    /// # Errors
    ///
    /// [`Error::OrderSignature`] naming the address that did sign, when that
    /// is not the maker (a tampered order, another domain or chain id, or
    /// someone else's key).
    pub fn verify(&self, domain: &Eip712Domain) -> Result<B256> {
        let id = self.id(domain);
        let signer = self
            .signature
            .recover_address_from_prehash(&id)
            .map_err(|e| Error::OrderSignature(format!("the signature does not recover: {e}")))?;
        if signer != self.order.maker() {
            return Err(Error::OrderSignature(format!(
                "this {} names {} as its maker but was signed by {signer} (altered after signing, \
                 signed for another chain id, or signed with another key)",
                T::KIND,
                self.order.maker()
            )));
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::U256;
    use alloy_signer_local::PrivateKeySigner;

    use super::*;

    fn offer(host: Address) -> Offer {
        Offer {
            host,
            class: "gpu-24g".into(),
            gpuModel: "RTX 4090".into(),
            vram: 24 << 30,
            wgpuFeatures: vec!["shader-f16".into()],
            encodings: vec!["onnx".into()],
            cores: 8,
            memoryBytes: 32 << 30,
            score: 1234,
            price: U256::from(1_000_000u64),
            slots: 2,
            expiry: 1_800_000_000_000,
            nonce: 7,
        }
    }

    #[test]
    fn signed_orders_verify_and_their_id_is_the_signing_hash() {
        let key = PrivateKeySigner::random();
        let d = domain(1);
        let signed = Signed::sign(offer(key.address()), &key, &d).unwrap();
        let id = signed.verify(&d).unwrap();
        assert_eq!(id, signed.order.eip712_signing_hash(&d));
        // libsecp256k1 signs exactly as alloy's k256 signer does (RFC 6979).
        use alloy_signer::SignerSync;
        assert_eq!(signed.signature, key.sign_hash_sync(&id).unwrap());
        // JSON round trip keeps the signature valid.
        let json = serde_json::to_string(&signed).unwrap();
        let back: Signed<Offer> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.verify(&d).unwrap(), id);
    }

    #[test]
    fn tampering_another_chain_or_another_key_is_refused_naming_the_signer() {
        let key = PrivateKeySigner::random();
        let d = domain(1);
        let signed = Signed::sign(offer(key.address()), &key, &d).unwrap();
        let mut cheaper = signed.clone();
        cheaper.order.price = U256::from(1u64);
        let e = cheaper.verify(&d).unwrap_err().to_string();
        assert!(
            e.contains("altered after signing") && e.contains("signed by 0x"),
            "{e}"
        );
        assert!(signed.verify(&domain(97)).is_err(), "bound to the chain id");
        let other = PrivateKeySigner::random();
        let e = Signed::sign(offer(key.address()), &other, &d)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&other.address().to_string()), "{e}");
    }

    /// Runs `conformance/eip712/check.py` (eth-account) on a signed order.
    fn independent_check<T: Order + Serialize>(signed: &Signed<T>, d: &Eip712Domain) {
        let case = serde_json::json!({
            "encode_type": T::eip712_encode_type(),
            "domain": {"name": "NetMind Market", "version": "1", "chainId": d.chain_id.unwrap().to::<u64>()},
            "message": serde_json::to_value(&signed.order).unwrap(),
            "hash": signed.id(d).to_string(),
            "signature": format!("0x{}", alloy_primitives::hex::encode(signed.signature.as_bytes())),
            "signer": signed.order.maker().to_string(),
        });
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../conformance/eip712/check.py");
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3 (pip install -r scripts/requirements-test.txt)");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(case.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "eth-account disagrees:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn an_independent_eip712_implementation_agrees_on_hashes_and_signers() {
        let key = PrivateKeySigner::random();
        for chain in [1, 97, 2_026_112] {
            let d = domain(chain);
            let offer = Signed::sign(offer(key.address()), &key, &d).unwrap();
            independent_check(&offer, &d);
            // Cancels of that offer: an id eth-account has just agreed on, and the extremes.
            for (order, expiry) in [
                (offer.id(&d), 1_800_000_000_000),
                (B256::ZERO, 0),
                (B256::repeat_byte(0xff), u64::MAX),
            ] {
                let cancel = Cancel {
                    maker: key.address(),
                    order,
                    expiry,
                };
                independent_check(&Signed::sign(cancel, &key, &d).unwrap(), &d);
            }
            let job = JobOrder {
                owner: key.address(),
                bundle: B256::repeat_byte(0xab),
                input: B256::ZERO,
                class: "gpu-24g".into(),
                gpu: true,
                minVram: 16 << 30,
                encodings: vec!["onnx".into()],
                wgpuFeatures: vec![],
                cores: 4,
                minMemory: 8 << 30,
                minScore: 10,
                allow: vec![Address::repeat_byte(1)],
                deny: vec![Address::repeat_byte(2), Address::repeat_byte(3)],
                maxPrice: U256::from(10u64).pow(U256::from(30u64)),
                maxSeconds: 3600,
                replicas: 3,
                deadline: 1_800_000_000_000,
                nonce: u64::MAX,
            };
            independent_check(&Signed::sign(job, &key, &d).unwrap(), &d);
        }
    }

    #[test]
    fn the_type_hash_is_the_eip712_encoding_of_the_struct() {
        assert_eq!(
            Offer::eip712_encode_type(),
            "Offer(address host,string class,string gpuModel,uint64 vram,string[] wgpuFeatures,\
             string[] encodings,uint32 cores,uint64 memoryBytes,uint64 score,uint256 price,uint32 slots,\
             uint64 expiry,uint64 nonce)"
        );
        assert_eq!(
            Cancel::eip712_encode_type(),
            "Cancel(address maker,bytes32 order,uint64 expiry)"
        );
    }
}
