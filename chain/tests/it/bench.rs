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

use crate::tools::{Word, calldata, token_deploy_code};
use crate::util::{CHAIN_ID, GWEI, TestNode, quantity, sign};
use netmind_chain::pool::PoolConfig;

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

/// ERC-20 transfers of the solc-compiled `Token` (`tests/data/Token.sol`):
/// deployed and spread to `SENDERS` random keys, then `SENDERS * PER_SENDER`
/// pre-signed `transfer`s to 1,000 recipients (`NETMIND_BENCH_RECIPIENTS`: a
/// recipient per transfer makes each one create a storage slot) sent over
/// `CONNECTIONS` HTTP connections. Reports the included transactions and gas
/// per 1 s block. Ignored by default; run in release:
/// `cargo test --release -p netmind-chain --test it -- --ignored --nocapture bench_erc20`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run in release with --ignored"]
async fn bench_erc20_transfers_per_second() {
    const SENDERS: usize = 100;
    const PER_SENDER: u64 = 1_000;
    const CONNECTIONS: usize = 30;
    let Some(token) = crate::tools::token() else {
        return;
    };
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
    let spec = ChainSpec::from_genesis(genesis).unwrap();
    // A pool that holds the whole load: the sealer, not admission, is measured.
    let pool = PoolConfig {
        max_txs: SENDERS * PER_SENDER as usize + 1_000,
        ..PoolConfig::default()
    };
    let node = TestNode::start_pool(&spec, pool).await;
    let owner = &crate::util::keys()[1];
    let token_addr = owner.address().create(0);
    let call = |key: &PrivateKeySigner, nonce, input: Bytes, gas| {
        raw(&sign(
            key,
            TxEip1559 {
                chain_id: CHAIN_ID,
                nonce,
                gas_limit: gas,
                max_fee_per_gas: 10 * GWEI,
                max_priority_fee_per_gas: GWEI,
                to: TxKind::Call(token_addr),
                value: U256::ZERO,
                access_list: AccessList::default(),
                input,
            },
        ))
    };
    // Deploy, then give each sender tokens.
    let deploy = raw(&sign(
        owner,
        TxEip1559 {
            chain_id: CHAIN_ID,
            nonce: 0,
            gas_limit: 2_000_000,
            max_fee_per_gas: 10 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to: TxKind::Create,
            value: U256::ZERO,
            access_list: AccessList::default(),
            input: token_deploy_code(&token, U256::MAX >> 1),
        },
    ));
    node.call("eth_sendRawTransaction", json!([deploy])).await;
    let mut last = Default::default();
    for (i, s) in senders.iter().enumerate() {
        let data = calldata(
            "transfer(address,uint256)",
            &[
                Word::Addr(s.address()),
                Word::Uint(U256::from(10u128.pow(30))),
            ],
        );
        let tx = call(owner, i as u64 + 1, data, 100_000);
        last = node.call("eth_sendRawTransaction", json!([tx])).await;
    }
    let last: alloy_primitives::B256 = serde_json::from_value(last).unwrap();
    assert_eq!(node.receipt(last).await["status"], json!("0x1"));

    let recipients: u64 = std::env::var("NETMIND_BENCH_RECIPIENTS").map_or(1_000, |v| {
        v.parse().expect("NETMIND_BENCH_RECIPIENTS: a number")
    });
    let recipients: Vec<Address> = (0..recipients)
        .map(|i| Address::left_padding_from(&(i + 1_000).to_be_bytes()))
        .collect();
    let t_sign = Instant::now();
    let mut signed: Vec<Vec<Bytes>> = vec![vec![]; CONNECTIONS];
    for nonce in 0..PER_SENDER {
        for (i, key) in senders.iter().enumerate() {
            let to = recipients[(nonce as usize * SENDERS + i) % recipients.len()];
            let data = calldata(
                "transfer(address,uint256)",
                &[Word::Addr(to), Word::Uint(U256::from(1))],
            );
            signed[i % CONNECTIONS].push(call(key, nonce, data, 60_000));
        }
    }
    let total = (SENDERS as u64) * PER_SENDER;
    println!(
        "signed {total} ERC-20 transfers in {:.1} s",
        t_sign.elapsed().as_secs_f64()
    );
    let start_block = node.block_number().await;
    let t0 = Instant::now();
    let tasks: Vec<_> = signed
        .into_iter()
        .map(|txs| tokio::spawn(send_all(node.addr, txs)))
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let submitted = t0.elapsed();
    let running = node.running.as_ref().unwrap().node.clone();
    while !running.with_pool(|p| p.is_empty()) {
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "not mined within 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(running);
    let mined = t0.elapsed();
    let end_block = node.block_number().await;
    let mut blocks = vec![];
    for n in start_block + 1..=end_block {
        let b = node
            .call("eth_getBlockByNumber", json!([format!("{n:#x}"), false]))
            .await;
        blocks.push((
            b["transactions"].as_array().unwrap().len() as u64,
            quantity(&b["gasUsed"]),
            quantity(&b["timestamp"]),
        ));
    }
    let txs: Vec<u64> = blocks.iter().map(|b| b.0).collect();
    println!("transactions per block: {txs:?}");
    assert_eq!(txs.iter().sum::<u64>(), total, "every transfer included");
    // Sustained: the blocks between the first and the last non-empty one (all
    // but the last are full while the pool still holds transactions).
    let busy: Vec<_> = blocks.iter().filter(|b| b.0 > 0).collect();
    let (first, last) = (busy[0].2, busy[busy.len() - 1].2);
    let secs = (last - first + 1) as f64;
    let gas: u64 = busy.iter().map(|b| b.1).sum();
    println!(
        "{total} ERC-20 transfers: submitted in {:.2} s ({:.0}/s); included in {} blocks over {secs:.0} s: {:.0} tx/s, {:.1} Mgas/s (gas per transfer {}); all mined after {:.2} s",
        submitted.as_secs_f64(),
        total as f64 / submitted.as_secs_f64(),
        busy.len(),
        total as f64 / secs,
        gas as f64 / secs / 1e6,
        gas / total,
        mined.as_secs_f64(),
    );
    node.running.unwrap().stop().await;
}

/// Sends `txs` in order over one HTTP connection; every answer must succeed.
async fn send_all(addr: std::net::SocketAddr, txs: Vec<Bytes>) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    for tx in txs {
        let body = json!({"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":[tx]});
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
}
