//! The NetMind market.
//!
//! [`engine`]: the order-book matching engine, a pure deterministic function
//! of its command log (no I/O); [`orders`]: signed EIP-712 orders checked and
//! turned into the engine's; [`journal`]: the durable journal (SQLite) and
//! the sequencer that acknowledges an order only once it is committed. The
//! HTTP API and the blob store build on them.

pub mod engine;
pub mod journal;
pub mod orders;
