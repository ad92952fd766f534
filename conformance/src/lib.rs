//! Conformance runners: NetMind code held against suites and peers we did not write.
//!
//! Today this crate is the home of `conformance/test-programs`, the hostile
//! and edge-case guests (compiled from Rust) that the sandbox's tests run.
//! Runners for the Ethereum execution-API suites in `../shared/conformance`
//! and differential tests against anvil arrive with the chain.
