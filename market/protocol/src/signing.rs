//! Detached signatures over bundle ids, made with Ethereum (secp256k1) keys.
//!
//! The signer signs [`signing_message`] with EIP-191 `personal_sign`, the same scheme wallets use,
//! so a job owner can sign with a local key, a keystore or a hardware wallet. Anyone can check the
//! signature and learn which address published the bundle, with no key material.
//!
//! The signature is stored as JSON next to the bundle, at [`signature_path`].

use std::path::{Path, PathBuf};

use alloy_primitives::{Address, Bytes, Signature};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use serde::{Deserialize, Serialize};

use crate::{
    bundle::BundleId,
    error::{Error, Result},
};

/// What the signer signs for a bundle: `NetMind bundle <64 hex digits>`.
///
/// This is the text a wallet shows the user when asked to sign, so it names what is being signed.
pub fn signing_message(id: &BundleId) -> Vec<u8> {
    format!("NetMind bundle {id}").into_bytes()
}

/// Signs a bundle id with EIP-191 `personal_sign` over [`signing_message`].
///
/// # Errors
///
/// [`Error::Signing`] if the signer fails.
pub fn sign_bundle(id: &BundleId, signer: &PrivateKeySigner) -> Result<BundleSignature> {
    let signature = signer.sign_message_sync(&signing_message(id))?;
    Ok(BundleSignature {
        bundle: *id,
        signer: signer.address(),
        signature: Bytes::copy_from_slice(&signature.as_bytes()),
    })
}

/// Where the detached signature of a bundle file lives: `<bundle file>.sig`.
pub fn signature_path(bundle_path: &Path) -> PathBuf {
    let mut path = bundle_path.as_os_str().to_owned();
    path.push(".sig");
    PathBuf::from(path)
}

/// A detached signature: who signed which bundle.
///
/// Serialized as JSON, e.g.
/// `{"bundle":"<64 hex>","signer":"0x<40 hex>","signature":"0x<130 hex>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleSignature {
    /// The signed bundle.
    pub bundle: BundleId,
    /// The address that claims to have signed.
    pub signer: Address,
    /// 65 bytes: `r || s || v`.
    pub signature: Bytes,
}

impl BundleSignature {
    /// Checks that this signs `id` and was made by `signer`; returns the signer's address.
    ///
    /// # Errors
    ///
    /// [`Error::SignatureMismatch`] if it signs another bundle, [`Error::MalformedSignature`] if the
    /// bytes are not a valid signature, [`Error::ForgedSignature`] if it was made by another key
    /// than `signer`.
    pub fn verify(&self, id: &BundleId) -> Result<Address> {
        if self.bundle != *id {
            return Err(Error::SignatureMismatch {
                signed: self.bundle,
                expected: *id,
            });
        }
        let signature = Signature::from_raw(&self.signature).map_err(|e| {
            Error::MalformedSignature(format!("{e} (got {} bytes)", self.signature.len()))
        })?;
        let recovered = signature
            .recover_address_from_msg(signing_message(id))
            .map_err(|e| Error::MalformedSignature(e.to_string()))?;
        if recovered != self.signer {
            return Err(Error::ForgedSignature {
                recovered,
                claimed: self.signer,
            });
        }
        Ok(recovered)
    }

    /// Pretty-printed JSON, as written to a `.sig` file.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a bundle signature always serializes")
    }

    /// Parses [`to_json`](Self::to_json) output. Does not [`verify`](Self::verify).
    ///
    /// # Errors
    ///
    /// [`Error::SignatureJson`] naming the field and position that is wrong.
    pub fn from_json(s: &str) -> Result<Self> {
        Ok(serde_json::from_str(s)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> BundleId {
        BundleId([n; 32])
    }

    #[test]
    fn message_names_the_bundle() {
        let message = signing_message(&id(0xab));
        assert_eq!(
            message,
            format!("NetMind bundle {}", "ab".repeat(32)).into_bytes()
        );
    }

    #[test]
    fn sign_then_verify_returns_signer() {
        let key = PrivateKeySigner::random();
        let sig = sign_bundle(&id(1), &key).unwrap();
        assert_eq!(sig.signature.len(), 65);
        assert_eq!(sig.signer, key.address());
        assert_eq!(sig.verify(&id(1)).unwrap(), key.address());

        let parsed = BundleSignature::from_json(&sig.to_json()).unwrap();
        assert_eq!(parsed, sig);
        assert_eq!(parsed.verify(&id(1)).unwrap(), key.address());
    }

    #[test]
    fn signature_for_another_bundle_is_rejected() {
        let sig = sign_bundle(&id(1), &PrivateKeySigner::random()).unwrap();
        let err = sig.verify(&id(2)).unwrap_err();
        assert!(matches!(err, Error::SignatureMismatch { .. }), "{err}");
        assert!(
            err.to_string().starts_with("signature is for bundle 0101"),
            "{err}"
        );

        // Rewriting the bundle field does not help: the signature no longer recovers to the signer.
        let mut tampered = sig;
        tampered.bundle = id(2);
        let err = tampered.verify(&id(2)).unwrap_err();
        assert!(matches!(err, Error::ForgedSignature { .. }), "{err}");
    }

    #[test]
    fn claiming_another_signer_is_forgery() {
        let key = PrivateKeySigner::random();
        let other = PrivateKeySigner::random().address();
        let mut sig = sign_bundle(&id(7), &key).unwrap();
        sig.signer = other;
        let err = sig.verify(&id(7)).unwrap_err();
        assert!(
            matches!(err, Error::ForgedSignature { recovered, claimed }
                if recovered == key.address() && claimed == other),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("forged signature: recovers to 0x"),
            "{err}"
        );
    }

    #[test]
    fn malformed_signatures_are_rejected() {
        let mut sig = sign_bundle(&id(3), &PrivateKeySigner::random()).unwrap();
        let good = sig.signature.clone();

        sig.signature = Bytes::copy_from_slice(&good[..64]);
        let err = sig.verify(&id(3)).unwrap_err();
        assert!(matches!(err, Error::MalformedSignature(_)), "{err}");
        assert!(err.to_string().contains("64 bytes"), "{err}");

        let mut bad_v = good.to_vec();
        bad_v[64] = 9;
        sig.signature = bad_v.into();
        assert!(matches!(
            sig.verify(&id(3)),
            Err(Error::MalformedSignature(_))
        ));

        // r = 0 is not a valid signature.
        let mut zero_r = good.to_vec();
        zero_r[..32].fill(0);
        sig.signature = zero_r.into();
        assert!(matches!(
            sig.verify(&id(3)),
            Err(Error::MalformedSignature(_))
        ));
    }

    #[test]
    fn bad_json_is_rejected() {
        let err = BundleSignature::from_json("{\"bundle\": \"xyz\"}").unwrap_err();
        assert!(matches!(err, Error::SignatureJson(_)), "{err}");
        assert!(err.to_string().contains("invalid bundle id"), "{err}");
    }

    #[test]
    fn signature_path_appends_sig() {
        assert_eq!(
            signature_path(Path::new("out/hello.tar.gz")),
            PathBuf::from("out/hello.tar.gz.sig")
        );
    }
}
