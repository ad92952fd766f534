//! The NetMind market.
//!
//! [`engine`]: the order-book matching engine, a pure deterministic function
//! of its command log (no I/O); [`orders`]: signed EIP-712 orders checked and
//! turned into the engine's; [`journal`]: the durable journal (SQLite or
//! PostgreSQL) and the sequencer that acknowledges an order only once it is
//! committed; [`blob`]: the content-addressed blob store; [`api`]: the HTTP
//! API on `hyper`; [`server`]: all of them started together; [`client`]: a
//! typed client of the API (used by the CLI, the tests and the benchmark);
//! [`telemetry`]: W3C trace context over HTTP and the market's metrics.

pub mod api;
pub mod blob;
pub mod client;
pub mod engine;
pub mod error;
pub mod jobs;
pub mod journal;
pub mod logs;
pub mod orders;
pub mod server;
pub mod telemetry;

pub use error::{Error, Result};
