//! [`BundleId`]: the SHA-256 of a packed bundle.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// The identity of a bundle: the SHA-256 of its packed archive bytes.
///
/// Displayed and serialized as 64 lowercase hex digits; parsing also accepts a `sha256:` prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BundleId(pub [u8; 32]);

impl BundleId {
    /// Hashes packed bundle bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The raw 32-byte digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for BundleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for BundleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BundleId({self})")
    }
}

impl FromStr for BundleId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidBundleId {
            input: s.to_owned(),
            reason,
        };
        let digits = s.strip_prefix("sha256:").unwrap_or(s);
        if digits.len() != 64 {
            return Err(invalid(format!(
                "expected 64 hex digits (optionally prefixed with `sha256:`), got {}",
                digits.len()
            )));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(digits, &mut bytes)
            .map_err(|e| invalid(format!("not hexadecimal: {e}")))?;
        Ok(Self(bytes))
    }
}

impl Serialize for BundleId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BundleId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        text.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_and_serde_round_trip() {
        let id = BundleId::of(b"hello");
        let text = id.to_string();
        assert_eq!(
            text,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(text.parse::<BundleId>().unwrap(), id);
        assert_eq!(format!("sha256:{text}").parse::<BundleId>().unwrap(), id);
        assert_eq!(text.to_uppercase().parse::<BundleId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<BundleId>(&json).unwrap(), id);
        assert_eq!(format!("{id:?}"), format!("BundleId({text})"));
        assert_eq!(id.as_bytes(), &id.0);
    }

    #[test]
    fn parse_rejects_bad_ids_with_reason() {
        let short = "abcd".parse::<BundleId>().unwrap_err().to_string();
        assert!(short.contains("expected 64 hex digits"), "{short}");
        let bad = "zz".repeat(32).parse::<BundleId>().unwrap_err().to_string();
        assert!(bad.contains("not hexadecimal"), "{bad}");
        let other_algo = format!("md5:{}", "00".repeat(32));
        assert!(other_algo.parse::<BundleId>().is_err());
        assert!(serde_json::from_str::<BundleId>("\"nope\"").is_err());
    }
}
