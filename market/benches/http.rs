//! Orders through the whole market: HTTP on loopback, JSON, EIP-712 signature
//! recovery, the sequencer and the journal (SQLite, and PostgreSQL when
//! `NETMIND_TEST_POSTGRES` names a server), acknowledged after commit.
//!
//! Run with `cargo bench -p netmind-market --bench http`.
//!
//! Orders are signed before the clock starts (by 512 hosts and 512 owners,
//! across 20 classes, offers and bids alternating with overlapping prices),
//! then sent by `NETMIND_BENCH_CONNS` (default 64) keep-alive connections,
//! each waiting for its answer before sending the next. Each request is
//! serialized before the clock starts and the client only writes it and
//! reads the answer (as `wrk` does), so that it takes as little of the
//! shared cores as it can. The server has its
//! own runtime with two worker threads; the client shares the machine's two
//! cores with it. Reported: sustained orders per second, deals made, and the
//! acknowledgement latency (request sent → 201 received) at p50/p99/max.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy_primitives::{B256, U256};
use alloy_signer_local::PrivateKeySigner;
use netmind_market::api::{DEFAULT_CHAIN_ID, Rate};
use netmind_market::server::{Market, MarketConfig};
use netmind_protocol::orders::{JobOrder, Offer, Signed, domain};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The allocator the `netmind` binary (and so `netmind market serve`) uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CLASSES: usize = 20;
const KEYS: usize = 512;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` signed orders, each as a whole HTTP/1.1 request (serialized before
/// the clock starts, as `wrk` does), alternating offers and bids.
fn orders(n: usize) -> Vec<Vec<u8>> {
    let d = domain(DEFAULT_CHAIN_ID);
    let keys: Vec<PrivateKeySigner> = (0..2 * KEYS).map(|_| PrivateKeySigner::random()).collect();
    let expiry = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 3_600_000;
    let make = |i: usize| -> Vec<u8> {
        let class = format!("c{}", (i / 2) % CLASSES);
        // Bids reach a little above offers, so about half of them match.
        let price = U256::from(100 + (i * 7919) % 40 + if i % 2 == 1 { 3 } else { 0 });
        if i.is_multiple_of(2) {
            let key = &keys[(i / 2) % KEYS];
            let o = Offer {
                host: key.address(),
                class,
                gpuModel: "RTX 4090".into(),
                vram: 24 << 30,
                wgpuFeatures: vec![],
                encodings: vec!["onnx".into()],
                cores: 8,
                memoryBytes: 32 << 30,
                score: 100,
                price,
                slots: 2,
                expiry,
                nonce: i as u64,
            };
            let s = Signed::sign(o, key, &d).unwrap();
            request("/v1/offers", &serde_json::to_vec(&s).unwrap())
        } else {
            let key = &keys[KEYS + (i / 2) % KEYS];
            let j = JobOrder {
                owner: key.address(),
                bundle: B256::repeat_byte(1),
                input: B256::ZERO,
                class,
                gpu: true,
                minVram: 16 << 30,
                encodings: vec!["onnx".into()],
                wgpuFeatures: vec![],
                cores: 4,
                minMemory: 8 << 30,
                minScore: 50,
                allow: vec![],
                deny: vec![],
                maxPrice: price,
                maxSeconds: 600,
                replicas: 1 + (i % 3) as u32,
                deadline: expiry,
                nonce: i as u64,
            };
            let s = Signed::sign(j, key, &d).unwrap();
            request("/v1/bids", &serde_json::to_vec(&s).unwrap())
        }
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t * chunk..((t + 1) * chunk).min(n))
                        .map(make)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn request(path: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Reads one HTTP/1.1 response with a `content-length` (the market's
/// answers have one); returns its status and body.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> (u16, Vec<u8>) {
    buf.clear();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap();
            let status: u16 = head[9..12].parse().unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().unwrap())
                })
                .expect("a content-length");
            while buf.len() < end + 4 + len {
                let mut chunk = [0u8; 16 << 10];
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the server closed the connection");
                buf.extend_from_slice(&chunk[..n]);
            }
            return (status, buf[end + 4..end + 4 + len].to_vec());
        }
        let mut chunk = [0u8; 16 << 10];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

struct Run {
    orders: usize,
    secs: f64,
    deals: u64,
    latencies: Vec<Duration>,
    errors: usize,
    /// CPU seconds (user + system) of the server's threads and the client's.
    cpu: (f64, f64),
}

/// CPU seconds so far of this process's threads, split into the client's
/// (threads named `bench-client`) and everyone else's (the server, its
/// database workers). Read from `/proc/self/task/*/stat`; a figure that is
/// stable when other work shares the machine, unlike orders per second.
fn cpu_split() -> (f64, f64) {
    let tick = 100.0; // USER_HZ on Linux
    let (mut server, mut client) = (0.0, 0.0);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0.0, 0.0);
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // After the command: state is field 3, utime 14 and stime 15.
        let ticks: f64 =
            fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
        if comm.starts_with("bench-client") {
            client += ticks / tick;
        } else if !comm.starts_with("http-") {
            server += ticks / tick;
        }
    }
    (server, client)
}

/// Starts a market on `db` (None: SQLite under `dir`) in its own runtime,
/// sends every order, stops it.
fn run(dir: &Path, db: Option<String>, work: &[Vec<u8>], conns: usize) -> Run {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut config = MarketConfig {
        db,
        ..MarketConfig::new(dir)
    };
    config.api.classes = (0..CLASSES).map(|c| format!("c{c}")).collect();
    // One client on loopback sends everything: no per-IP or per-address limit.
    config.api.ip_rate = Rate::UNLIMITED;
    config.api.address_rate = Rate::UNLIMITED;
    // No host starts its deals here: with the usual 30 s to start, a
    // sustained run's first deals would lapse (and be placed again) at its end.
    config.api.lease_start_ms = 3_600_000;
    let (addr, stop, served) = server_rt.block_on(async {
        let market = Market::open(config).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(market.serve(listener, async {
            let _ = stopped.await;
        }));
        (addr, stop, served)
    });

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .unwrap();
    let work = Arc::new(work.to_vec());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cpu_before = cpu_split();
    let start = Instant::now();
    let results = client_rt.block_on(async {
        let tasks: Vec<_> = (0..conns)
            .map(|_| {
                let (work, next) = (work.clone(), next.clone());
                tokio::spawn(async move {
                    let mut stream = TcpStream::connect(addr).await.unwrap();
                    stream.set_nodelay(true).unwrap();
                    let mut buf = Vec::with_capacity(64 << 10);
                    let mut lat = Vec::new();
                    let (mut deals, mut errors) = (0u64, 0usize);
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(request) = work.get(i) else {
                            break;
                        };
                        let t = Instant::now();
                        stream.write_all(request).await.unwrap();
                        let (status, body) = read_response(&mut stream, &mut buf).await;
                        lat.push(t.elapsed());
                        if status == 201 {
                            // Count deals without parsing every answer.
                            let text = std::str::from_utf8(&body).unwrap();
                            deals += text.matches("\"replica\":").count() as u64;
                        } else {
                            errors += 1;
                            if errors == 1 {
                                eprintln!("{status}: {}", String::from_utf8_lossy(&body));
                            }
                        }
                    }
                    (lat, deals, errors)
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let secs = start.elapsed().as_secs_f64();
    let cpu_after = cpu_split();
    let _ = stop.send(());
    server_rt.block_on(served).unwrap().unwrap();
    let mut latencies = Vec::new();
    let (mut deals, mut errors) = (0, 0);
    for (l, d, e) in results {
        latencies.extend(l);
        deals += d;
        errors += e;
    }
    latencies.sort_unstable();
    Run {
        orders: work.len(),
        secs,
        deals,
        latencies,
        errors,
        cpu: (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1),
    }
}

fn pct(l: &[Duration], p: f64) -> f64 {
    l[((l.len() as f64 * p) as usize).min(l.len() - 1)].as_secs_f64() * 1e3
}

fn report(name: &str, r: &Run) {
    println!(
        "{name:<10} {:>7} orders in {:>5.2} s = {:>7.0} orders/s, {:>6} deals, ack p50 {:>6.2} ms, p99 {:>6.2} ms, max {:>7.2} ms, errors {}",
        r.orders,
        r.secs,
        r.orders as f64 / r.secs,
        r.deals,
        pct(&r.latencies, 0.50),
        pct(&r.latencies, 0.99),
        pct(&r.latencies, 1.0),
        r.errors
    );
    println!(
        "{:<10} CPU per order: server {:>5.0} µs, client {:>4.0} µs (user + system; 2 cores allow {:.0} orders/s at this cost)",
        "",
        r.cpu.0 / r.orders as f64 * 1e6,
        r.cpu.1 / r.orders as f64 * 1e6,
        2.0 * r.orders as f64 / (r.cpu.0 + r.cpu.1),
    );
}

fn postgres_db() -> Option<String> {
    let admin = std::env::var("NETMIND_TEST_POSTGRES").ok()?;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let name = format!(
        "netmind_bench_{}_{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    rt.block_on(async {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
        // The name is ours (pid and clock digits), not input.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
    });
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    Some(format!("{base}/{name}"))
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep it short then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = env("NETMIND_BENCH_ORDERS", if quick { 2_000 } else { 60_000 });
    let conns = env("NETMIND_BENCH_CONNS", 64);
    let t = Instant::now();
    let work = orders(n);
    eprintln!(
        "signed {n} orders in {:.1} s; {conns} connections",
        t.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().unwrap();
    let sqlite = run(&dir.path().join("sqlite"), None, &work, conns);
    report("sqlite", &sqlite);
    if let Some(db) = postgres_db() {
        let pg = run(&dir.path().join("pg"), Some(db), &work, conns);
        report("postgres", &pg);
    }
}
