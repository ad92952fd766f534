//! Throughput: signed transfers through `eth_sendRawTransaction` into 1 s blocks
//! with persistence. Ignored by default; run in release:
//! `cargo test --release -p netmind-chain --test it -- --ignored --nocapture bench`.

use std::time::{Duration, Instant};

use alloy_consensus::TxEip1559;
use alloy_eips::eip2930::AccessList;
use alloy_primitives::{Address, Bytes, TxKind, U256};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes as HyperBytes;
use hyper_util::rt::TokioIo;
use serde_json::json;

use crate::transactions::raw;
use alloy_genesis::GenesisAccount;
use alloy_signer_local::PrivateKeySigner;
use netmind_chain::spec::ChainSpec;

use crate::util::{CHAIN_ID, GWEI, TestNode, sign};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run in release with --ignored"]
async fn bench_transfers_per_second() {
    const SENDERS: usize = 20;
    const PER_SENDER: u64 = 1_000;
    // The dev chain plus SENDERS funded random keys (the pool takes at most 1,024
    // transactions per sender).
    let senders: Vec<PrivateKeySigner> = (0..SENDERS).map(|_| PrivateKeySigner::random()).collect();
    let mut genesis = ChainSpec::dev(1).genesis;
    for s in &senders {
        genesis.alloc.insert(
            s.address(),
            GenesisAccount {
                balance: U256::from(10u128.pow(24)),
                ..Default::default()
            },
        );
    }
    let node = TestNode::start_spec(&ChainSpec::from_genesis(genesis).unwrap()).await;
    let signed: Vec<Vec<Bytes>> = senders
        .iter()
        .map(|key| {
            (0..PER_SENDER)
                .map(|nonce| {
                    raw(&sign(
                        key,
                        TxEip1559 {
                            chain_id: CHAIN_ID,
                            nonce,
                            gas_limit: 21_000,
                            max_fee_per_gas: 10 * GWEI,
                            max_priority_fee_per_gas: GWEI,
                            to: TxKind::Call(Address::repeat_byte(0x77)),
                            value: U256::from(1),
                            access_list: AccessList::default(),
                            input: Bytes::new(),
                        },
                    ))
                })
                .collect()
        })
        .collect();
    let total = signed.len() as u64 * PER_SENDER;
    let start_block = node.block_number().await;
    let t0 = Instant::now();
    let mut tasks = vec![];
    for txs in signed {
        let addr = node.addr;
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            for tx in txs {
                let body =
                    json!({"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":[tx]});
                let req = hyper::Request::post("/")
                    .header("host", "localhost")
                    .header("content-type", "application/json")
                    .body(Full::new(HyperBytes::from(body.to_string())))
                    .unwrap();
                let resp = sender.send_request(req).await.unwrap();
                let bytes = resp.into_body().collect().await.unwrap().to_bytes();
                assert!(
                    !bytes.windows(7).any(|w| w == b"\"error\""),
                    "{}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let submitted = t0.elapsed();
    let sink = Address::repeat_byte(0x77);
    while node.balance(sink).await < U256::from(total) {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "not mined within 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mined = t0.elapsed();
    let end_block = node.block_number().await;
    let mut per_block = vec![];
    for n in start_block + 1..=end_block {
        let b = node
            .call("eth_getBlockByNumber", json!([format!("{n:#x}"), false]))
            .await;
        per_block.push(b["transactions"].as_array().unwrap().len());
    }
    println!("transactions per block: {per_block:?}");
    println!(
        "{total} transfers: submitted in {:.2} s ({:.0}/s), all mined after {:.2} s ({:.0}/s) in blocks {}..={end_block}",
        submitted.as_secs_f64(),
        total as f64 / submitted.as_secs_f64(),
        mined.as_secs_f64(),
        total as f64 / mined.as_secs_f64(),
        start_block + 1,
    );
    node.running.unwrap().stop().await;
}
