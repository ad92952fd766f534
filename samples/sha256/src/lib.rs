//! The sha256 sample's kernel: SHA-256 with the portable software implementation.
//!
//! The `sha2` crate is built with `force-soft`, so the exact same Rust code runs natively and in wasm; the
//! host benchmark calls [`digest`] natively (depending on this crate with `default-features = false`)
//! and compares it with the `netmind-sample-sha256` component.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

// Only the `guest` binary uses these.
use sha2::{Digest, Sha256};
#[cfg(feature = "guest")]
use {netmind_sdk as _, serde as _};

/// The SHA-256 digest of `data`.
pub fn digest(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The `sha256sum` listing of `files` (name, contents): one `<hex digest>  <name>\n` line per file, in order.
pub fn sha256sums(files: &[(String, Vec<u8>)]) -> String {
    files
        .iter()
        .map(|(name, data)| format!("{}  {name}\n", hex::encode(digest(data))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            hex::encode(digest(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex::encode(digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sums_format() {
        let files = vec![
            ("a.txt".to_owned(), b"abc".to_vec()),
            ("e".to_owned(), Vec::new()),
        ];
        assert_eq!(
            sha256sums(&files),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  a.txt\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  e\n"
        );
    }
}
