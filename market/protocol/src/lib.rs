#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod bundle;
pub mod error;
pub mod manifest;
pub mod orders;
pub mod signing;
mod units;
pub mod work;

pub use bundle::{Bundle, BundleId, BundleLimits};
pub use error::{Error, Result};
pub use manifest::{GpuNeed, IoDecl, JobSection, MANIFEST_FILE, Manifest, Resources};
pub use signing::{BundleSignature, sign_bundle, signature_path, signing_message};
