//! A 3-authority NetMind Chain on 127.0.0.1, each authority a separate
//! `netmind node run` process with static `--peers`: blocks are sealed in turn
//! and finalised (3 of 3 finality votes), a transaction sent to one node is
//! included, one authority is killed with SIGKILL (the other two keep sealing,
//! finality pauses) and restarted (it catches up and finality resumes), no two
//! nodes ever disagree on a finalised block, and a fourth node without a key
//! syncs from genesis.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, U256, keccak256};
use alloy_signer_local::PrivateKeySigner;
use serde_json::{Value, json};

use super::{keystore, netmind, stderr};

const CHAIN_ID: u64 = 4242;
/// The first anvil/hardhat dev key, funded in the genesis.
const FUNDED_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// A node process, killed (SIGKILL) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One JSON-RPC call over a fresh HTTP/1.1 connection.
fn rpc(port: u16, method: &str, params: Value) -> Result<Value, String> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    let json = out.split("\r\n\r\n").nth(1).ok_or("no body")?;
    let mut v: Value = serde_json::from_str(json).map_err(|e| format!("{e}: {json}"))?;
    match v.get("error") {
        Some(e) => Err(e.to_string()),
        None => Ok(v["result"].take()),
    }
}

fn hex_u64(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// (head number, finalized number) of the node on `port`, if it answers.
fn heads(port: u16) -> Option<(u64, u64)> {
    let h = rpc(port, "netmind_head", json!([])).ok()?;
    Some((hex_u64(&h["number"]), hex_u64(&h["finalized"])))
}

fn block(port: u16, number: u64) -> Value {
    rpc(
        port,
        "eth_getBlockByNumber",
        json!([format!("{number:#x}"), false]),
    )
    .unwrap()
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Net {
    dir: PathBuf,
    ports: Vec<u16>,
    keys: Vec<(PathBuf, PathBuf)>,
}

impl Net {
    fn datadir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node{i}"))
    }

    /// Starts node `i` (an authority if `i < 3`) with the other nodes as peers.
    fn start(&self, i: usize) -> Proc {
        let peers: Vec<String> = (0..3)
            .filter(|j| *j != i)
            .map(|j| format!("http://127.0.0.1:{}", self.ports[j]))
            .collect();
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node{i}.log")))
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_netmind"));
        cmd.args(["node", "run", "--datadir"])
            .arg(self.datadir(i))
            .args(["--http", &format!("127.0.0.1:{}", self.ports[i])])
            .args(["--peers", &peers.join(",")])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        if let Some((ks, pw)) = self.keys.get(i) {
            cmd.arg("--authority-key")
                .arg(ks)
                .arg("--password-file")
                .arg(pw);
        }
        Proc(cmd.spawn().unwrap())
    }

    /// Waits until node `i` serves JSON-RPC.
    fn wait_serving(&self, i: usize) {
        let port = self.ports[i];
        wait_for("the node to serve", Duration::from_secs(30), || {
            heads(port).is_some()
        });
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("node{i}.log"))).unwrap_or_default()
    }
}

fn genesis(signers: &[Address], funded: Address) -> Value {
    let mut sorted = signers.to_vec();
    sorted.sort();
    let mut extra = "0x".to_string() + &"00".repeat(32);
    for s in &sorted {
        extra += &alloy_primitives::hex::encode(s);
    }
    extra += &"00".repeat(65);
    json!({
        "config": {
            "chainId": CHAIN_ID,
            "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0, "eip158Block": 0,
            "byzantiumBlock": 0, "constantinopleBlock": 0, "petersburgBlock": 0,
            "istanbulBlock": 0, "berlinBlock": 0, "londonBlock": 0,
            "terminalTotalDifficulty": 0, "terminalTotalDifficultyPassed": true,
            "shanghaiTime": 0, "cancunTime": 0, "pragueTime": 0,
            "clique": {"period": 1, "epoch": 30000}
        },
        "extraData": extra,
        "gasLimit": "0x1c9c380",
        "difficulty": "0x1",
        "baseFeePerGas": "0x3b9aca00",
        "alloc": { format!("{funded:?}"): {"balance": "0x21e19e0c9bab2400000"} }
    })
}

/// A signed EIP-155 legacy transfer, RLP encoded by hand.
fn legacy_transfer(key: &PrivateKeySigner, nonce: u64, to: Address, value: u64) -> String {
    fn item(bytes: &[u8]) -> Vec<u8> {
        match bytes {
            [b] if *b < 0x80 => vec![*b],
            _ => {
                let mut v = vec![0x80 + bytes.len() as u8];
                v.extend_from_slice(bytes);
                v
            }
        }
    }
    fn int(n: U256) -> Vec<u8> {
        let b = n.to_be_bytes_trimmed_vec();
        item(&b)
    }
    fn list(items: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = items.concat();
        let mut v = if body.len() < 56 {
            vec![0xc0 + body.len() as u8]
        } else {
            let len = (body.len() as u64).to_be_bytes();
            let len: Vec<u8> = len.iter().copied().skip_while(|b| *b == 0).collect();
            let mut v = vec![0xf7 + len.len() as u8];
            v.extend(len);
            v
        };
        v.extend(body);
        v
    }
    let fields = |v: U256, r: U256, s: U256| {
        list(&[
            int(U256::from(nonce)),
            int(U256::from(10_000_000_000u64)),
            int(U256::from(21_000u64)),
            item(to.as_slice()),
            int(U256::from(value)),
            item(&[]),
            int(v),
            int(r),
            int(s),
        ])
    };
    let unsigned = fields(U256::from(CHAIN_ID), U256::ZERO, U256::ZERO);
    use alloy_signer::SignerSync;
    let sig = key.sign_hash_sync(&keccak256(&unsigned)).unwrap();
    let v = U256::from(CHAIN_ID * 2 + 35 + u64::from(sig.v()));
    let raw = fields(v, sig.r(), sig.s());
    format!("0x{}", alloy_primitives::hex::encode(raw))
}

/// Every node answering on `ports` has the same hash at each number up to the
/// lowest finalized number among them.
fn finalized_agree(ports: &[u16]) -> u64 {
    let fin = ports
        .iter()
        .filter_map(|p| heads(*p))
        .map(|(_, f)| f)
        .min()
        .unwrap();
    for n in 1..=fin {
        let hashes: Vec<Value> = ports.iter().map(|p| block(*p, n)["hash"].clone()).collect();
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "nodes disagree on finalized block {n}: {hashes:?}"
        );
    }
    fin
}

/// Keys, genesis and 4 initialised datadirs (3 authorities, 1 follower).
fn setup() -> (tempfile::TempDir, Net, PrivateKeySigner) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut keys = Vec::new();
    let mut signers = Vec::new();
    for i in 0..3 {
        let d = dir.join(format!("key{i}"));
        std::fs::create_dir_all(&d).unwrap();
        let (ks, pw, addr) = keystore(&d);
        keys.push((ks, pw));
        signers.push(addr.parse::<Address>().unwrap());
    }
    let funded: PrivateKeySigner = FUNDED_KEY.parse().unwrap();
    let genesis_file = dir.join("genesis.json");
    std::fs::write(
        &genesis_file,
        genesis(&signers, funded.address()).to_string(),
    )
    .unwrap();
    let net = Net {
        dir,
        ports: (0..4).map(|_| free_port()).collect(),
        keys,
    };
    for i in 0..4 {
        let o = netmind(&[
            "node",
            "init",
            "--genesis",
            genesis_file.to_str().unwrap(),
            "--datadir",
            net.datadir(i).to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    (tmp, net, funded)
}

/// Seal-to-finality latency on 3 authorities (period 1 s): polls node 0 every
/// 5 ms and, for 40 blocks, times from the first poll that shows a block as
/// the head to the first that shows it finalized, and from the block's
/// timestamp (the second it was due) to that. Run with
/// `cargo test -p netmind --test it finality_latency -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark"]
fn finality_latency() {
    let (_tmp, net, _) = setup();
    let _procs: Vec<Proc> = (0..3).map(|i| net.start(i)).collect();
    (0..3).for_each(|i| net.wait_serving(i));
    let port = net.ports[0];
    wait_for("steady sealing", Duration::from_secs(60), || {
        heads(port).is_some_and(|(_, f)| f >= 3)
    });
    let (start, _) = heads(port).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    let mut final_at = std::collections::BTreeMap::new();
    let last = start + 40;
    while final_at.len() < 40 {
        let (h, f) = heads(port).unwrap();
        let now = std::time::SystemTime::now();
        for n in start + 1..=h.min(last) {
            seen.entry(n).or_insert(now);
        }
        for n in start + 1..=f.min(last) {
            final_at.entry(n).or_insert(now);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut from_head = Vec::new();
    let mut from_due = Vec::new();
    for (n, fin) in &final_at {
        from_head.push(fin.duration_since(seen[n]).unwrap_or_default().as_millis() as u64);
        let ts = hex_u64(&block(port, *n)["timestamp"]);
        let due = std::time::UNIX_EPOCH + Duration::from_secs(ts);
        from_due.push(fin.duration_since(due).unwrap_or_default().as_millis() as u64);
    }
    let stats = |v: &mut Vec<u64>| {
        v.sort_unstable();
        (v[v.len() / 2], v[v.len() * 95 / 100], v[v.len() - 1])
    };
    let in_turn = (start + 1..=last)
        .filter(|n| block(port, *n)["difficulty"] == "0x2")
        .count();
    println!(
        "40 blocks, {in_turn} in turn; head->finalized ms (median, p95, max): {:?}; block timestamp->finalized ms: {:?}",
        stats(&mut from_head),
        stats(&mut from_due)
    );
}

#[test]
fn three_authorities_seal_finalise_survive_a_kill_and_a_follower_syncs() {
    let (_tmp, net, funded) = setup();
    let mut procs: Vec<Option<Proc>> = (0..3).map(|i| Some(net.start(i))).collect();
    (0..3).for_each(|i| net.wait_serving(i));
    let auth = &net.ports[..3];

    // Blocks are sealed and finalised on every authority.
    wait_for(
        "8 blocks finalised everywhere",
        Duration::from_secs(60),
        || auth.iter().all(|p| heads(*p).is_some_and(|(_, f)| f >= 8)),
    );
    let (head, fin) = heads(auth[0]).unwrap();
    assert!(
        head - fin <= 2,
        "finality lags: head {head}, finalized {fin}"
    );
    // Sealed in turn once all three run: difficulty 2 (start-up blocks,
    // sealed while some nodes were still starting, may be out of turn).
    let in_turn = (head - 5..=head)
        .filter(|n| block(auth[0], *n)["difficulty"] == "0x2")
        .count();
    assert!(
        in_turn >= 5,
        "only {in_turn} of the last 6 blocks in turn: {}",
        net.log(0)
    );
    finalized_agree(auth);

    // A transaction sent to one node is forwarded and included.
    let to = Address::repeat_byte(0x42);
    let raw = legacy_transfer(&funded, 0, to, 12345);
    let tx = rpc(auth[1], "eth_sendRawTransaction", json!([raw])).unwrap();
    wait_for(
        "the transfer to be included",
        Duration::from_secs(20),
        || rpc(auth[2], "eth_getTransactionReceipt", json!([tx])).is_ok_and(|r| !r.is_null()),
    );
    wait_for(
        "the transfer on every authority",
        Duration::from_secs(10),
        || {
            auth.iter().all(|p| {
                rpc(*p, "eth_getBalance", json!([format!("{to:?}"), "latest"]))
                    .is_ok_and(|b| hex_u64(&b) == 12345)
            })
        },
    );

    // Kill one authority: the other two keep sealing (they alternate, within
    // the recently-signed limit of 2 of 3); finality needs 3 of 3 and pauses.
    let victim = 1;
    drop(procs[victim].take());
    let alive: Vec<u16> = (0..3)
        .filter(|i| *i != victim)
        .map(|i| net.ports[i])
        .collect();
    let (before, _) = heads(alive[0]).unwrap();
    wait_for(
        "sealing without the killed authority",
        Duration::from_secs(30),
        || {
            alive
                .iter()
                .all(|p| heads(*p).is_some_and(|(h, _)| h >= before + 4))
        },
    );
    let (_, paused_at) = heads(alive[0]).unwrap();
    finalized_agree(&alive);

    // Restart it: it catches up from its peers and finality resumes past the
    // blocks sealed while it was down.
    procs[victim] = Some(net.start(victim));
    net.wait_serving(victim);
    let (target, _) = heads(alive[0]).unwrap();
    wait_for(
        "finality to resume after the restart",
        Duration::from_secs(60),
        || {
            auth.iter()
                .all(|p| heads(*p).is_some_and(|(_, f)| f > target && f > paused_at))
        },
    );
    let fin = finalized_agree(auth);
    assert!(fin > target);

    // A fourth node without a key syncs from genesis to the same chain.
    let follower = net.start(3);
    net.wait_serving(3);
    let all = net.ports.clone();
    wait_for("the follower to sync", Duration::from_secs(60), || {
        let (h0, _) = heads(auth[0]).unwrap();
        heads(all[3]).is_some_and(|(h, _)| h + 1 >= h0)
    });
    let (h3, _) = heads(all[3]).unwrap();
    assert_eq!(block(all[3], h3)["hash"], block(auth[0], h3)["hash"]);
    let bal = rpc(
        all[3],
        "eth_getBalance",
        json!([format!("{to:?}"), "latest"]),
    )
    .unwrap();
    assert_eq!(hex_u64(&bal), 12345);
    wait_for(
        "the follower to see finality",
        Duration::from_secs(20),
        || heads(all[3]).is_some_and(|(_, f)| f >= fin),
    );
    finalized_agree(&all);
    drop(follower);
    drop(procs);
}
