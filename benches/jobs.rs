//! Jobs end to end, as users see them: a market (`netmind market serve`)
//! and three host daemons (`netmind host run`) as separate processes on
//! 127.0.0.1, SQLite journal, signed orders, starts and receipts, the
//! sandbox running `samples/hello`.
//!
//! Run with `cargo bench -p netmind --bench jobs`. Reported:
//! 1. submit → running on an idle host: the time from sending a signed bid
//!    until the market shows a host started it (its `Start`, signed and
//!    recorded), p50 and p99 over sequential jobs;
//! 2. `NETMIND_BENCH_JOBS` (default 1,000) trivial jobs through the three
//!    hosts: jobs per second from the first bid sent to the last job done
//!    (run, output uploaded, receipt verified), with the bids sent by 16
//!    owners at once. Each host offers `NETMIND_BENCH_SLOTS` (default 8)
//!    slots.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy_primitives::{B256, U256};
use alloy_signer_local::PrivateKeySigner;
use bytes::Bytes;
use netmind_market::client::MarketClient;
use netmind_protocol::orders::{JobOrder, Signed};

const HOSTS: usize = 3;
const OWNERS: usize = 16;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn netmind() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netmind"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn keystore(dir: &Path, name: &str) -> (String, String) {
    let pw = dir.join(format!("{name}.pw"));
    std::fs::write(&pw, "bench\n").unwrap();
    let ks = dir.join(format!("{name}.json"));
    let o = netmind()
        .args(["wallet", "new"])
        .arg(&ks)
        .arg("--password-file")
        .arg(&pw)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (
        ks.to_string_lossy().into_owned(),
        pw.to_string_lossy().into_owned(),
    )
}

fn bid(owner: &PrivateKeySigner, bundle: B256, n: u64) -> JobOrder {
    JobOrder {
        owner: owner.address(),
        bundle,
        input: B256::ZERO,
        class: "cpu".into(),
        gpu: false,
        minVram: 0,
        encodings: vec![],
        wgpuFeatures: vec![],
        cores: 1,
        minMemory: 64 << 20,
        minScore: 0,
        allow: vec![],
        deny: vec![],
        maxPrice: U256::from(1_000),
        maxSeconds: 30,
        replicas: 1,
        deadline: now_ms() + 600_000,
        nonce: n,
    }
}

/// CPU seconds (user + system) a process used so far.
fn cpu_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let f: Vec<&str> = stat[close + 2..].split(' ').collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let jobs: usize = std::env::var("NETMIND_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 30 } else { 1_000 });
    let sequential = if quick { 5 } else { 50 };
    let slots: u32 = std::env::var("NETMIND_BENCH_SLOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let tmp = tempfile::tempdir().unwrap();
    // One client IP sends everything: no per-IP or per-address limit.
    let config = tmp.path().join("market.toml");
    std::fs::write(
        &config,
        "[api]\nip_rate = { per_second = 1e9, burst = 1e9 }\n\
         address_rate = { per_second = 1e9, burst = 1e9 }\n",
    )
    .unwrap();
    let mut market = netmind()
        .args(["market", "serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(tmp.path().join("market"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(market.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let market_pid = market.id();
    let _market = Kill(market);
    let url = line.trim().to_owned();
    let mut hosts = Vec::new();
    for i in 0..HOSTS {
        let (ks, pw) = keystore(tmp.path(), &format!("host-{i}"));
        hosts.push(Kill(
            netmind()
                .args(["host", "run", "--no-idle", "--gpu", "off", "--market", &url])
                .args(["--slots", &slots.to_string(), "--keystore", &ks])
                .args(["--password-file", &pw, "--data"])
                .arg(tmp.path().join(format!("host-{i}")))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = Arc::new(MarketClient::new(&url).unwrap());
    let packed = tmp.path().join("hello.bundle");
    let o = netmind()
        .args(["bundle", "pack", "samples/hello", "-o"])
        .arg(&packed)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = Bytes::from(std::fs::read(&packed).unwrap());
    let (bundle, domain) = rt.block_on(async {
        let (id, _) = client.put_blob(bytes).await.unwrap();
        (B256::from(id.0), client.domain().await.unwrap())
    });
    // Wait until every host offers all its slots.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let h = rt.block_on(client.get("/v1/hosts")).unwrap();
        let free: u64 = h["hosts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| h["slots_free"].as_u64().unwrap_or(0))
            .sum();
        if free == (HOSTS as u64) * u64::from(slots) {
            break;
        }
        assert!(Instant::now() < deadline, "hosts never came online: {h}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let owners: Vec<PrivateKeySigner> = (0..OWNERS).map(|_| PrivateKeySigner::random()).collect();
    // Polls a job's state (every `every`: short where latency is measured,
    // longer where the polling would otherwise load the market it measures).
    let wait_state = |id: &str, want: &[&str], every: Duration| loop {
        let j = rt.block_on(client.get(&format!("/v1/jobs/{id}"))).unwrap();
        if want.contains(&j["state"].as_str().unwrap_or_default()) {
            return j;
        }
        std::thread::sleep(every);
    };
    let fine = Duration::from_micros(500);

    // 1. Submit → running, one job at a time on idle hosts. The first job
    // compiles the component on its host (cached after): warm up each host.
    for n in 0..(HOSTS * 2) as u64 {
        let signed = Signed::sign(bid(&owners[0], bundle, n), &owners[0], &domain).unwrap();
        let placed = rt.block_on(client.post_bid(&signed)).unwrap();
        wait_state(placed["id"].as_str().unwrap(), &["done", "failed"], fine);
    }
    let mut latencies = Vec::new();
    for n in 0..sequential as u64 {
        let signed = Signed::sign(bid(&owners[0], bundle, 1_000 + n), &owners[0], &domain).unwrap();
        let t = Instant::now();
        let placed = rt.block_on(client.post_bid(&signed)).unwrap();
        let id = placed["id"].as_str().unwrap().to_owned();
        wait_state(&id, &["running", "verifying", "done", "failed"], fine);
        latencies.push(t.elapsed());
        wait_state(&id, &["done", "failed"], fine);
    }
    latencies.sort_unstable();
    println!(
        "submit -> running   {} jobs, one at a time: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        pct(&latencies, 0.5),
        pct(&latencies, 0.99),
        pct(&latencies, 1.0)
    );

    // 2. Many trivial jobs through the three hosts.
    let signed: Vec<_> = (0..jobs)
        .map(|n| {
            let o = &owners[n % OWNERS];
            Signed::sign(bid(o, bundle, 10_000 + n as u64), o, &domain).unwrap()
        })
        .collect();
    let host_pids: Vec<u32> = hosts.iter().map(|h| h.0.id()).collect();
    let cpu = |pids: &[u32]| pids.iter().map(|p| cpu_of(*p)).sum::<f64>();
    let (market_cpu, hosts_cpu) = (cpu(&[market_pid]), cpu(&host_pids));
    let start = Instant::now();
    let ids: Vec<String> = rt.block_on(async {
        let mut tasks = Vec::new();
        for chunk in signed.chunks(jobs.div_ceil(OWNERS)) {
            let (client, chunk) = (client.clone(), chunk.to_vec());
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for s in chunk {
                    let placed = client.post_bid(&s).await.unwrap();
                    ids.push(placed["id"].as_str().unwrap().to_owned());
                }
                ids
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.extend(t.await.unwrap());
        }
        ids
    });
    let sent = start.elapsed();
    let mut failed = 0;
    for id in &ids {
        if wait_state(id, &["done", "failed"], Duration::from_millis(20))["state"] != "done" {
            failed += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{jobs} trivial jobs   {HOSTS} hosts x {slots} slots: all done in {secs:.2} s = {:.0} jobs/s \
         (bids sent in {:.2} s), failed {failed}",
        jobs as f64 / secs,
        sent.as_secs_f64()
    );
    println!(
        "                    CPU per job: market {:.2} ms, hosts {:.2} ms (user + system)",
        (cpu(&[market_pid]) - market_cpu) * 1e3 / jobs as f64,
        (cpu(&host_pids) - hosts_cpu) * 1e3 / jobs as f64,
    );
    assert_eq!(failed, 0);
    drop(hosts);
}
