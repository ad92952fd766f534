//! Integration tests of `netmind-chain`: a real node on 127.0.0.1 driven over
//! JSON-RPC (HTTP and WebSocket) with transactions signed by alloy.

mod anvil;
mod bad_input;
mod bench;
mod blocks;
mod cast;
mod crash;
mod eip225;
mod execution_apis;
mod history;
mod import;
mod network;
mod reorg;
mod restart;
mod state_growth;
mod tools;
mod transactions;
mod util;
mod ws;
