//! The NetMind market.
//!
//! [`engine`]: the order-book matching engine, a pure deterministic function
//! of its command log (no I/O). The journal, the HTTP API and the blob store
//! build on it.

pub mod engine;
