//! The NetMind Chain: a proof-of-authority Ethereum node built from the Ethereum
//! building blocks reth is made of.
//!
//! - [`spec`]: the chain specification (hardforks, chain id, Clique period) and the
//!   genesis block, read from an `alloy-genesis` JSON file;
//! - [`store`]: the redb store (headers, bodies, receipts, accounts, storage, code),
//!   one write transaction per block, state served to revm through `DatabaseRef`;
//! - [`exec`]: block building with `alloy-evm`'s Ethereum block executor over revm,
//!   receipts, blooms and roots, `eth_call`;
//! - [`import`]: validating, executing and storing blocks built elsewhere;
//! - [`pool`]: the transaction pool;
//! - [`proof`]: EIP-1186 account and storage proofs (`eth_getProof`);
//! - [`clique`]: EIP-225 header sealing and the signer-set vote tally;
//! - [`finality`]: the finalized head (more than 2/3 of the authorities signed);
//! - [`node`]: the sealer loop tying them together;
//! - [`net`]: static peers: block sync and push, finality votes, transaction forwarding;
//! - [`rpc`]: Ethereum JSON-RPC over HTTP and WebSocket, `eth_subscribe` (jsonrpsee).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod clique;
mod error;
pub mod exec;
pub mod finality;
pub mod import;
pub mod net;
pub mod node;
pub mod pool;
pub mod proof;
pub mod rpc;
pub mod spec;
pub mod store;

pub use error::{Error, Result};
pub use node::{Node, NodeConfig};
pub use spec::ChainSpec;
