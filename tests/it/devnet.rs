//! The whole product on one machine: `netmind devnet` (a market and host
//! daemons as separate processes on 127.0.0.1) running real sample jobs
//! submitted with `netmind job submit --wait`, replicated on distinct hosts,
//! with results checked against a local run of the same job.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{netmind, stderr, stdout};

/// Kills (SIGTERM, then SIGKILL) the devnet when the test ends, pass or fail.
pub(super) struct Devnet(Child);

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `netmind devnet ARGS --data DATA`; returns it once its hosts are
/// online, with the market's URL and the hosts' pids. Its stdout keeps being
/// drained, so it never writes to a closed pipe.
pub(super) fn start_devnet(args: &[&str], data: &Path) -> (Devnet, String, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netmind"))
        .arg("devnet")
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let devnet = Devnet(child);
    let (mut url, mut pids) = (None, Vec::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(u) = line.trim().strip_prefix("market + dashboard") {
            url = Some(u.trim().trim_end_matches('/').to_owned());
        }
        if line.trim_start().starts_with("host ") {
            let pid = line.split("(pid ").nth(1).and_then(|r| r.split(',').next());
            pids.extend(pid.map(str::to_owned));
        }
        if line.contains("host(s) online") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (devnet, url.expect("the devnet prints its address"), pids)
}

pub(super) fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn devnet_demo_runs_the_samples_on_two_hosts_and_releases_agreed_results() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_netmind"))
        .args([
            "devnet",
            "--listen",
            "127.0.0.1:0",
            "--demo",
            "--once",
            "--data",
        ])
        .arg(data.path())
        .current_dir(repo())
        .output()
        .unwrap();
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{o}\n{e}");
    assert_eq!(e.matches("agreed by 2 host(s)").count(), 2, "{o}\n{e}");
    assert!(o.contains("hello.txt: hello, NetMind!"), "{o}");
    let hello = std::fs::read_to_string(data.path().join("results/hello/hello.txt")).unwrap();
    assert!(hello.starts_with("hello, NetMind!"), "{hello}");
    // Both hosts served, each with its own log.
    for i in 0..2 {
        let log = std::fs::read_to_string(data.path().join(format!("host-{i}.log"))).unwrap();
        assert!(log.contains(": exited (job "), "host {i}: {log}");
    }
}

#[test]
fn jobs_from_the_cli_run_on_three_host_processes_and_match_a_local_run() {
    let data = tempfile::tempdir().unwrap();
    let (devnet, url, _) = start_devnet(&["--hosts", "3"], data.path());
    let keys = data.path().join("keys");

    // Inputs: a few files to hash, different per job.
    let local = tempfile::tempdir().unwrap();
    let jobs: Vec<_> = (0..6)
        .map(|n| {
            let input = local.path().join(format!("in-{n}"));
            std::fs::create_dir_all(&input).unwrap();
            for f in 0..=n {
                std::fs::write(input.join(format!("f{f}.txt")), format!("job {n} file {f}"))
                    .unwrap();
            }
            input
        })
        .collect();
    let started = Instant::now();
    let handles: Vec<_> = jobs
        .iter()
        .enumerate()
        .map(|(n, input)| {
            let (url, keys, input) = (url.clone(), keys.clone(), input.clone());
            let out = local.path().join(format!("out-{n}"));
            std::thread::spawn(move || {
                let replicas = if n % 2 == 0 { "2" } else { "1" };
                let o = Command::new(env!("CARGO_BIN_EXE_netmind"))
                    .args([
                        "job",
                        "submit",
                        "samples/sha256",
                        "--max-price",
                        "1000",
                        "--replicas",
                        replicas,
                        "--wait",
                        "--market",
                        &url,
                    ])
                    .arg("--input")
                    .arg(&input)
                    .arg("--output")
                    .arg(&out)
                    .arg("--keystore")
                    .arg(keys.join("owner.json"))
                    .arg("--password-file")
                    .arg(keys.join("password"))
                    .current_dir(repo())
                    .output()
                    .unwrap();
                (o, out)
            })
        })
        .collect();
    for (n, h) in handles.into_iter().enumerate() {
        let (o, out) = h.join().unwrap();
        assert!(
            o.status.success(),
            "job {n}: {}\n{}",
            stdout(&o),
            stderr(&o)
        );
        let want = if n % 2 == 0 {
            "agreed by 2 host(s)"
        } else {
            "agreed by 1 host(s)"
        };
        assert!(stderr(&o).contains(want), "job {n}: {}", stderr(&o));
        // The market's verified result is what the sandbox gives here.
        let here = local.path().join(format!("local-{n}"));
        let run = netmind(&[
            "run",
            repo().join("samples/sha256").to_str().unwrap(),
            "--input",
            jobs[n].to_str().unwrap(),
            "--output",
            here.to_str().unwrap(),
            "--deterministic",
            "-q",
        ]);
        assert!(run.status.success(), "{}", stderr(&run));
        assert_eq!(
            std::fs::read(out.join("result.json")).unwrap(),
            std::fs::read(here.join("result.json")).unwrap(),
            "job {n}"
        );
    }
    eprintln!("6 jobs (9 replicas) on 3 hosts in {:?}", started.elapsed());

    // Logs: followed from submission until the job is decided; a replicated
    // job shows each replica's log under its header.
    let hello = repo().join("samples/hello");
    for replicas in ["1", "2"] {
        let submitted = netmind(&[
            "job",
            "submit",
            hello.to_str().unwrap(),
            "--max-price",
            "1000",
            "--replicas",
            replicas,
            "--market",
            &url,
            "--keystore",
            keys.join("owner.json").to_str().unwrap(),
            "--password-file",
            keys.join("password").to_str().unwrap(),
        ]);
        assert!(submitted.status.success(), "{}", stderr(&submitted));
        let id = stdout(&submitted).trim().to_owned();
        let follow = netmind(&["job", "logs", &id, "--follow", "--market", &url]);
        let (out, err) = (stdout(&follow), stderr(&follow));
        assert!(follow.status.success(), "{out}\n{err}");
        assert!(err.contains(&format!("job {id}: done")), "{err}");
        let headers = out.matches("==> replica ").count();
        if replicas == "1" {
            assert_eq!(headers, 0, "{out}");
            assert_eq!(out.matches("GREETING=hello\n").count(), 1, "{out}");
        } else {
            assert_eq!(headers, 2, "{out}");
            assert_eq!(out.matches("GREETING=hello\n").count(), 2, "{out}");
        }
        // Read again once done: the same text, without waiting.
        let again = netmind(&["job", "logs", &id, "--market", &url]);
        assert!(again.status.success(), "{}", stderr(&again));
        assert_eq!(stdout(&again), out);
    }
    drop(devnet);
}

/// A host killed with SIGKILL while its offer still stands: the deals it is
/// given lapse, their replicas go to the other hosts, and every job still
/// completes with a verified result; none is lost or decided twice.
#[test]
fn a_killed_host_loses_its_deals_and_every_job_still_completes() {
    let data = tempfile::tempdir().unwrap();
    let (devnet, url, pids) = start_devnet(&["--hosts", "3", "--lease-start", "2s"], data.path());
    let victim = pids[0].clone();
    // Dead, but its offer stands until it lapses: it will be matched.
    assert!(
        Command::new("kill")
            .args(["-KILL", &victim])
            .status()
            .unwrap()
            .success()
    );
    let keys = data.path().join("keys");
    let handles: Vec<_> = (0..4)
        .map(|n| {
            let (url, keys) = (url.clone(), keys.clone());
            std::thread::spawn(move || {
                Command::new(env!("CARGO_BIN_EXE_netmind"))
                    .args([
                        "job",
                        "submit",
                        "samples/hello",
                        "--input",
                        "samples/hello",
                        "--max-price",
                        "1000",
                        "--replicas",
                        "2",
                        "--wait",
                        "--market",
                        &url,
                    ])
                    .arg("--keystore")
                    .arg(keys.join("owner.json"))
                    .arg("--password-file")
                    .arg(keys.join("password"))
                    .env("NETMIND_TEST_JOB", n.to_string())
                    .current_dir(repo())
                    .output()
                    .unwrap()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for h in handles {
        let o = h.join().unwrap();
        assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains("agreed by 2 host(s)"), "{}", stderr(&o));
        ids.push(stdout(&o).trim().to_owned());
    }
    // The market saw the dead host's deals lapse and gave them to others.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = netmind_market::client::MarketClient::new(&url).unwrap();
    let mut lapsed = 0;
    for id in &ids {
        let job = rt.block_on(client.get(&format!("/v1/jobs/{id}"))).unwrap();
        assert_eq!(job["state"], "done", "{job}");
        let deals = job["deals"].as_array().unwrap();
        lapsed += deals.iter().filter(|d| d["state"] == "lapsed").count();
        let accepted: Vec<_> = deals
            .iter()
            .filter(|d| d["state"] == "accepted")
            .map(|d| d["host"].clone())
            .collect();
        assert_eq!(accepted.len(), 2, "{job}");
        assert_ne!(
            accepted[0], accepted[1],
            "replicas on distinct hosts: {job}"
        );
    }
    assert!(
        lapsed >= 1,
        "the killed host was given work that then lapsed"
    );
    drop(devnet);
}

/// The owner cancels a job while a host runs it: the host stops the run at
/// once (the job sleeps for ever and has a minute of wall time), sends no
/// receipt, and its only slot is free for the next job within seconds.
#[test]
fn a_job_cancelled_while_it_runs_is_stopped_on_its_host_which_takes_the_next_job() {
    let data = tempfile::tempdir().unwrap();
    let (devnet, url, _) = start_devnet(&["--hosts", "1"], data.path());
    let bundle = data.path().join("sleeper");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::copy(
        netmind_samples_artifacts::TP_INFINITE_LOOP,
        bundle.join("loop.wasm"),
    )
    .unwrap();
    std::fs::write(
        bundle.join("netmind.toml"),
        "[job]\nname = \"sleeper\"\nversion = \"0.1.0\"\nentry = \"loop.wasm\"\n\
         args = [\"sleep\"]\n\n[resources]\nmemory = \"64MiB\"\nwall-time = \"60s\"\n",
    )
    .unwrap();
    let keys = data.path().join("keys");
    let owner = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_netmind"))
            .args(args)
            .args(["--market", &url])
            .arg("--keystore")
            .arg(keys.join("owner.json"))
            .arg("--password-file")
            .arg(keys.join("password"))
            .current_dir(repo())
            .output()
            .unwrap()
    };
    let o = owner(&[
        "job",
        "submit",
        bundle.to_str().unwrap(),
        "--max-price",
        "1000",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).trim().to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = netmind_market::client::MarketClient::new(&url).unwrap();
    let state = |id: &str| rt.block_on(client.get(&format!("/v1/jobs/{id}"))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while state(&id)["state"] != "running" {
        assert!(Instant::now() < deadline, "never running: {}", state(&id));
        std::thread::sleep(Duration::from_millis(100));
    }
    // The host offers its GPU (the software adapter in CI) with a measured score.
    if std::env::var_os("NETMIND_REQUIRE_GPU").is_some() {
        let hosts = rt.block_on(client.get("/v1/hosts")).unwrap();
        let host = &hosts["hosts"][0];
        assert_ne!(host["gpu_model"], "", "{hosts}");
        assert!(host["score"].as_u64().unwrap() > 0, "{hosts}");
        assert_eq!(host["vram"], 1u64 << 30, "{hosts}");
    }
    let o = owner(&["job", "cancel", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("now cancelled"), "{}", stderr(&o));
    let job = state(&id);
    assert_eq!(job["deals"][0]["state"], "cancelled", "{job}");
    // The host's one slot is free again: the next job runs and is verified.
    let started = Instant::now();
    let o = owner(&[
        "job",
        "submit",
        "samples/hello",
        "--max-price",
        "1000",
        "--wait",
    ]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the cancelled run kept the slot: {:?}",
        started.elapsed()
    );
    drop(devnet);
}
