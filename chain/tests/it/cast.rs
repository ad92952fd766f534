//! Foundry's `cast` (npm `@foundry-rs/cast-linux-amd64`) against our dev node:
//! `cast send` (EIP-1559, legacy, a deployment of the solc-compiled ERC-20, a
//! contract call), `cast call` (decoded returns and a decoded revert),
//! `cast receipt`, `cast logs`, `cast tx`, `cast estimate`, `cast balance`,
//! `cast nonce`, `cast code`, `cast chain-id`, `cast block-number`. Each answer
//! is checked against our JSON-RPC answers.

use std::path::PathBuf;
use std::process::Command;

use alloy_primitives::{Address, B256, U256};
use netmind_chain::spec::DEV_KEYS;
use serde_json::{Value, json};

use crate::tools::{Rpc, token, tool};
use crate::util::{TestNode, keys};

/// Runs `cast SUBCOMMAND --rpc-url URL ARGS..` off the async runtime (options
/// first: trailing varargs would swallow them); (success, stdout, stderr).
async fn cast(bin: &PathBuf, url: &str, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(bin);
    cmd.arg(args[0]).args(["--rpc-url", url]).args(&args[1..]);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run cast"))
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

/// `cast ARGS` that must succeed; its stdout.
async fn cast_ok(bin: &PathBuf, url: &str, args: &[&str]) -> String {
    let (ok, out, err) = cast(bin, url, args).await;
    assert!(ok, "cast {args:?} failed: {err}\n{out}");
    out
}

async fn cast_json(bin: &PathBuf, url: &str, args: &[&str]) -> Value {
    let out = cast_ok(bin, url, args).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("cast {args:?}: not JSON ({e}): {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cast_sends_calls_and_reads_receipts_and_logs() {
    let Some(bin) = tool("cast") else { return };
    let Some(compiled) = token() else { return };
    let node = TestNode::start(0).await;
    let rpc = Rpc(node.addr);
    let url = format!("http://{}", node.addr);
    let url = url.as_str();
    let k = keys();
    let (a1, a2, a3) = (k[1].address(), k[2].address(), k[3].address());
    let (s1, s2) = (a1.to_string(), a2.to_string());

    assert_eq!(cast_ok(&bin, url, &["chain-id"]).await, "1337");
    let before = cast_ok(&bin, url, &["balance", &s2]).await;
    assert_eq!(before, node.balance(a2).await.to_string());

    // EIP-1559 and legacy value transfers: cast fills nonce, gas and fees.
    let mut sent = vec![];
    for extra in [&[][..], &["--legacy"][..]] {
        let mut args = vec!["send", "--json", "--private-key", DEV_KEYS[1], &s2];
        args.extend(["--value", "1000000000000000000"]);
        args.extend(extra);
        let r = cast_json(&bin, url, &args).await;
        assert_eq!(r["status"], json!("0x1"), "{r}");
        let hash: B256 = serde_json::from_value(r["transactionHash"].clone()).unwrap();
        let ours = rpc.receipt(hash).await;
        for key in [
            "status",
            "gasUsed",
            "blockNumber",
            "blockHash",
            "effectiveGasPrice",
        ] {
            assert_eq!(r[key], ours[key], "{key} of {hash}");
        }
        sent.push(hash);
    }
    assert_eq!(
        cast_json(&bin, url, &["tx", "--json", &sent[1].to_string()]).await["type"],
        json!("0x0"),
        "--legacy sends a legacy transaction"
    );
    let after: U256 = cast_ok(&bin, url, &["balance", &s2]).await.parse().unwrap();
    assert_eq!(
        after,
        before.parse::<U256>().unwrap() + U256::from(2_000_000_000_000_000_000u128)
    );
    assert_eq!(cast_ok(&bin, url, &["nonce", &s1]).await, "2");

    // Deploy the ERC-20 with a constructor argument.
    let code = compiled.bytecode.to_string();
    let r = cast_json(
        &bin,
        url,
        &[
            "send",
            "--json",
            "--private-key",
            DEV_KEYS[1],
            "--create",
            &code,
            "constructor(uint256)",
            "1000000",
        ],
    )
    .await;
    assert_eq!(r["status"], json!("0x1"), "{r}");
    let token_addr: Address = serde_json::from_value(r["contractAddress"].clone()).unwrap();
    assert_eq!(token_addr, a1.create(2));
    let t = token_addr.to_string();
    assert_eq!(
        cast_ok(&bin, url, &["code", &t]).await,
        compiled.runtime.to_string()
    );

    // Decoded calls.
    let call = |sig: &'static str, args: Vec<String>| {
        let (bin, t) = (bin.clone(), t.clone());
        async move {
            let mut a = vec!["call".to_string(), t, sig.to_string()];
            a.extend(args);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            // Large numbers come as "1000000 [1e6]".
            let out = cast_ok(&bin, url, &a).await;
            out.split(" [").next().unwrap().to_string()
        }
    };
    assert_eq!(call("symbol()(string)", vec![]).await, "\"NMT\"");
    assert_eq!(call("decimals()(uint8)", vec![]).await, "18");
    assert_eq!(
        call("balanceOf(address)(uint256)", vec![s1.clone()]).await,
        "1000000"
    );

    // A token transfer: estimate, send, receipt, logs.
    let transfer = ["transfer(address,uint256)", &s2, "250"];
    let mut args = vec!["estimate", "--from", &s1, &t];
    args.extend(transfer);
    let estimate: u64 = cast_ok(&bin, url, &args).await.parse().unwrap();
    let mut args = vec!["send", "--json", "--private-key", DEV_KEYS[1], &t];
    args.extend(transfer);
    let r = cast_json(&bin, url, &args).await;
    assert_eq!(r["status"], json!("0x1"), "{r}");
    let gas_used = crate::util::quantity(&r["gasUsed"]);
    assert!(
        gas_used <= estimate,
        "gas used {gas_used} > estimate {estimate}"
    );
    let hash = r["transactionHash"].as_str().unwrap().to_string();
    let receipt = cast_json(&bin, url, &["receipt", "--json", &hash]).await;
    let ours = rpc.call("eth_getTransactionReceipt", json!([hash])).await;
    for key in [
        "status",
        "gasUsed",
        "cumulativeGasUsed",
        "logs",
        "logsBloom",
        "blockHash",
    ] {
        assert_eq!(receipt[key], ours[key], "receipt {key}");
    }
    assert_eq!(
        call("balanceOf(address)(uint256)", vec![s2.clone()]).await,
        "250"
    );

    let logs = cast_json(
        &bin,
        url,
        &[
            "logs",
            "--json",
            "--from-block",
            "0",
            "--address",
            &t,
            "Transfer(address indexed,address indexed,uint256)",
        ],
    )
    .await;
    let logs = logs.as_array().unwrap();
    assert_eq!(logs.len(), 2, "mint and transfer: {logs:?}");
    assert_eq!(logs[1], ours["logs"][0]);
    // Filtered by the indexed `from` topic: the transfer, not the mint.
    let from_a1 = cast_json(
        &bin,
        url,
        &[
            "logs",
            "--json",
            "--from-block",
            "0",
            "--address",
            &t,
            "Transfer(address indexed,address indexed,uint256)",
            &s1,
        ],
    )
    .await;
    assert_eq!(from_a1.as_array().unwrap().len(), 1, "{from_a1}");

    // A call that reverts: cast decodes the Error(string).
    let (ok, _, err) = cast(
        &bin,
        url,
        &[
            "call",
            "--from",
            &a3.to_string(),
            &t,
            "transfer(address,uint256)(bool)",
            &s1,
            "1",
        ],
    )
    .await;
    assert!(!ok && err.contains("insufficient balance"), "{err}");

    let head = cast_ok(&bin, url, &["block-number"]).await;
    assert_eq!(head, node.block_number().await.to_string());
    node.running.unwrap().stop().await;
}
