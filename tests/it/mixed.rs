//! The whole lifecycle under a mixed load: 50 jobs (CPU, wasi-nn, GPU on
//! the machine's adapter, a third of them on 2 replicas) through a market
//! and 3 host processes, one host killed with SIGKILL midway. Every job
//! completes with verified outputs that are right, on distinct hosts, and
//! no deal is lost or accepted twice.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::devnet::{repo, start_devnet};
use super::{netmind, stderr, stdout};

/// The four kinds of job, by sample.
const KINDS: [&str; 4] = ["hello", "sha256", "digits", "gpu-scan"];

/// `x.npy` of `values` (uint32, little-endian, shape `(n,)`).
fn npy_u32(values: &[u32]) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '<u4', 'fortran_order': False, 'shape': ({},), }}",
        values.len()
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    out
}

/// The uint32 values of an `.npy` file.
fn read_npy_u32(bytes: &[u8]) -> Vec<u32> {
    assert!(bytes.starts_with(b"\x93NUMPY"), "not an npy file");
    let len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let header = String::from_utf8_lossy(&bytes[10..10 + len]);
    assert!(header.contains("'<u4'"), "{header}");
    bytes[10 + len..]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Job `n`'s input directory (each job its own, so its output is its own).
fn input(n: usize, dir: &Path) -> PathBuf {
    let input = dir.join(format!("in-{n}"));
    std::fs::create_dir_all(&input).unwrap();
    match KINDS[n % 4] {
        "gpu-scan" => {
            let x: Vec<u32> = (0..4096u32)
                .map(|i| i.wrapping_mul(2_654_435_761).wrapping_add(n as u32))
                .collect();
            std::fs::write(input.join("x.npy"), npy_u32(&x)).unwrap();
        }
        "digits" => {}
        _ => std::fs::write(input.join("data.txt"), format!("job {n}\n")).unwrap(),
    }
    input
}

/// Checks job `n`'s downloaded output against what it must be.
fn check_output(n: usize, input: &Path, out: &Path) {
    let read = |name: &str| {
        std::fs::read(out.join(name)).unwrap_or_else(|e| panic!("job {n}: {name}: {e}"))
    };
    match KINDS[n % 4] {
        "hello" => {
            let hello = String::from_utf8(read("hello.txt")).unwrap();
            assert!(hello.starts_with("hello"), "job {n}: {hello}");
        }
        "sha256" => {
            let sums = String::from_utf8(read("SHA256SUMS")).unwrap();
            let want = Command::new("sha256sum")
                .arg("data.txt")
                .current_dir(input)
                .output()
                .unwrap();
            assert_eq!(sums, stdout(&want), "job {n}");
        }
        "digits" => {
            let r: Value = serde_json::from_slice(&read("result.json")).unwrap();
            let (got, want) = (
                r["value"]["accuracy"].as_f64(),
                r["value"]["expected_accuracy"].as_f64(),
            );
            assert!(
                got.zip(want).is_some_and(|(g, w)| (g - w).abs() < 1e-3),
                "job {n}: {r}"
            );
        }
        _ => {
            let x = read_npy_u32(&std::fs::read(input.join("x.npy")).unwrap());
            let mut sum = 0u32;
            let want: Vec<u32> = x
                .iter()
                .map(|v| {
                    sum = sum.wrapping_add(*v);
                    sum
                })
                .collect();
            assert_eq!(read_npy_u32(&read("scan.npy")), want, "job {n}");
        }
    }
}

#[test]
fn fifty_mixed_jobs_on_three_hosts_complete_verified_with_one_host_killed_midway() {
    let data = tempfile::tempdir().unwrap();
    let (devnet, url, pids) = start_devnet(
        &[
            "--hosts",
            "3",
            "--lease-start",
            "10s",
            "--lease-grace",
            "5s",
        ],
        data.path(),
    );
    let keys = data.path().join("keys");
    let key = |k: &str| keys.join(k).to_str().unwrap().to_owned();
    let (owner, password) = (key("owner.json"), key("password"));
    let local = tempfile::tempdir().unwrap();
    // Each sample packed once; its bundle blob is then uploaded once.
    let bundles: Vec<PathBuf> = KINDS
        .iter()
        .map(|k| {
            let out = local.path().join(format!("{k}.bundle"));
            let o = super::pack(&repo().join("samples").join(k), &out, &[]);
            assert!(o.status.success(), "{}", stderr(&o));
            out
        })
        .collect();

    let started = Instant::now();
    let submit = |n: usize| {
        let replicas = if n.is_multiple_of(3) { "2" } else { "1" };
        let o = netmind(&[
            "job",
            "submit",
            bundles[n % 4].to_str().unwrap(),
            "--input",
            input(n, local.path()).to_str().unwrap(),
            "--max-price",
            "1000",
            "--replicas",
            replicas,
            "--max-seconds",
            "15",
            "--market",
            &url,
            "--keystore",
            &owner,
            "--password-file",
            &password,
        ]);
        assert!(o.status.success(), "job {n}: {}", stderr(&o));
        stdout(&o).trim().to_owned()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = netmind_market::client::MarketClient::new(&url).unwrap();
    let job = |id: &str| rt.block_on(client.get(&format!("/v1/jobs/{id}"))).unwrap();
    let finished = |j: &Value| {
        matches!(
            j["state"].as_str(),
            Some("done" | "failed" | "cancelled" | "expired")
        )
    };

    // The first 20 jobs, then a host dies while the market has work for it.
    let mut ids: Vec<String> = (0..20).map(submit).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while ids.iter().filter(|id| finished(&job(id))).count() < 6 {
        assert!(Instant::now() < deadline, "no progress before the kill");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Killed while it runs a job: that deal's lease must lapse.
    let victim_address = host_of(&data.path().join("host-0.log")).expect("host 0's address");
    let runs_a_job = |id: &String| {
        job(id)["deals"].as_array().unwrap().iter().any(|d| {
            d["state"] == "running"
                && d["host"].as_str().map(str::to_lowercase).as_ref() == Some(&victim_address)
        })
    };
    while !ids.iter().any(runs_a_job) {
        assert!(Instant::now() < deadline, "host 0 never ran a job");
        std::thread::sleep(Duration::from_millis(20));
    }
    let victim = &pids[0];
    let killed = Command::new("kill")
        .args(["-KILL", victim])
        .status()
        .unwrap();
    assert!(killed.success());
    ids.extend((20..50).map(submit));

    // Every job completes, each replica on its own host, none lost.
    let deadline = Instant::now() + Duration::from_secs(420);
    let jobs: Vec<Value> = loop {
        let jobs: Vec<Value> = ids.iter().map(|id| job(id)).collect();
        if jobs.iter().all(finished) {
            break jobs;
        }
        let waiting: Vec<_> = jobs.iter().filter(|j| !finished(j)).collect();
        assert!(
            Instant::now() < deadline,
            "{} jobs not finished after 7 minutes: {}",
            waiting.len(),
            waiting[0]
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let took = started.elapsed();
    let mut lapsed = 0;
    let mut victim_accepted_after_kill = 0;
    for (n, j) in jobs.iter().enumerate() {
        assert_eq!(j["state"], "done", "job {n}: {j}");
        let deals = j["deals"].as_array().unwrap();
        let accepted: Vec<String> = deals
            .iter()
            .filter(|d| d["state"] == "accepted")
            .map(|d| d["host"].as_str().unwrap().to_lowercase())
            .collect();
        let replicas = j["replicas"].as_u64().unwrap() as usize;
        assert_eq!(accepted.len(), replicas, "job {n}: {j}");
        let hosts: std::collections::HashSet<_> = accepted.iter().collect();
        assert_eq!(hosts.len(), replicas, "replicas on distinct hosts: {j}");
        let ids: std::collections::HashSet<_> = deals.iter().map(|d| &d["id"]).collect();
        assert_eq!(ids.len(), deals.len(), "no deal twice: {j}");
        lapsed += deals.iter().filter(|d| d["state"] == "lapsed").count();
        if n >= 20 {
            victim_accepted_after_kill += accepted.iter().filter(|h| **h == victim_address).count();
        }
    }
    assert_eq!(
        victim_accepted_after_kill, 0,
        "a dead host's result was accepted"
    );
    assert!(lapsed >= 1, "the deal the killed host ran lapsed");
    // The verified output of each job, downloaded and checked.
    for (n, id) in ids.iter().enumerate() {
        let out = local.path().join(format!("out-{n}"));
        let o = netmind(&[
            "job",
            "result",
            id,
            "-o",
            out.to_str().unwrap(),
            "--market",
            &url,
        ]);
        assert!(o.status.success(), "job {n}: {}", stderr(&o));
        check_output(n, &local.path().join(format!("in-{n}")), &out);
    }
    eprintln!(
        "50 mixed jobs ({} replicas, {lapsed} lapsed on the killed host) in {took:?}",
        jobs.iter()
            .map(|j| j["replicas"].as_u64().unwrap())
            .sum::<u64>()
    );
    drop(devnet);
}

/// The host address a devnet host's log names (`host 0x… serving …`).
fn host_of(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().find(|l| l.starts_with("host 0x"))?;
    line.split_whitespace().nth(1).map(str::to_lowercase)
}
