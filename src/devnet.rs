//! `netmind devnet`: a whole market on this machine in one command — the
//! market (SQLite under a data directory), N host daemons as separate
//! processes, ready-to-use keys, and the dashboard's address. `--demo` also
//! submits the samples as jobs (two replicas each) and prints their results.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use alloy_signer_local::PrivateKeySigner;
use anyhow::{Context, Result, bail};
use clap::Args;
use netmind_market::client::MarketClient;
use netmind_market::server::{Market, MarketConfig};

use crate::market::runtime;

#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
    /// Host daemons to start.
    #[arg(long, default_value_t = 2)]
    hosts: u32,
    /// Where the market, the hosts and the keys keep their files (default: a new temporary directory).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Address the market (API and dashboard) listens on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Submit the samples as jobs and print their results.
    #[arg(long)]
    demo: bool,
    /// Stop once the demo is over instead of serving until Ctrl-C.
    #[arg(long, requires = "demo")]
    once: bool,
    /// How long a host has to start a deal before it goes to another host.
    #[arg(long, default_value = "30s")]
    lease_start: humantime::Duration,
    /// How long past a bid's maximum run time a host may take to report.
    #[arg(long, default_value = "30s")]
    lease_grace: humantime::Duration,
}

/// The keystores' password on a devnet (its keys hold nothing of value).
const PASSWORD: &str = "devnet";

/// Children killed when dropped.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        // SIGTERM first: a host withdraws its offer and finishes what it runs.
        for c in &mut self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        for c in &mut self.0 {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn keystore(dir: &Path, name: &str) -> Result<(PathBuf, alloy_primitives::Address)> {
    let path = dir.join(name);
    if path.exists() {
        let signer = PrivateKeySigner::decrypt_keystore(&path, PASSWORD)
            .with_context(|| format!("cannot open {}", path.display()))?;
        return Ok((path, signer.address()));
    }
    let key = PrivateKeySigner::random();
    let (signer, _) = PrivateKeySigner::encrypt_keystore(
        dir,
        &mut rand08::thread_rng(),
        key.to_bytes(),
        PASSWORD,
        Some(name),
    )
    .context("cannot write a keystore")?;
    Ok((path, signer.address()))
}

pub(crate) fn devnet(args: DevnetArgs) -> Result<ExitCode> {
    let data = match &args.data {
        Some(d) => d.clone(),
        None => tempfile::Builder::new()
            .prefix("netmind-devnet-")
            .tempdir()?
            .keep(),
    };
    let keys = data.join("keys");
    std::fs::create_dir_all(&keys).with_context(|| format!("cannot create {}", keys.display()))?;
    let password = keys.join("password");
    std::fs::write(&password, PASSWORD)?;
    let rt = runtime()?;
    let market = rt
        .block_on(Market::open(MarketConfig::new(data.join("market"))))
        .context("cannot open the market")?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(args.listen))
        .with_context(|| {
            format!(
                "cannot listen on {} (pass --listen 127.0.0.1:0 for any free port)",
                args.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = rt.spawn(market.serve(listener, async {
        let _ = stopped.await;
    }));

    let exe = std::env::current_exe().context("cannot find this program")?;
    let children = std::sync::Arc::new(std::sync::Mutex::new(Children(Vec::new())));
    // Ctrl-C or SIGTERM at any moment (the demo included) stops the hosts too.
    let on_signal = children.clone();
    rt.spawn(async move {
        crate::market::shutdown_signal().await;
        eprintln!("stopping the devnet");
        let mut c = on_signal.lock().unwrap_or_else(|e| e.into_inner());
        drop(std::mem::replace(&mut *c, Children(Vec::new())));
        crate::telemetry::shutdown();
        std::process::exit(130);
    });
    println!("NetMind devnet");
    println!("  market + dashboard  {url}/");
    println!("  data                {}", data.display());
    for i in 0..args.hosts {
        let (ks, address) = keystore(&keys, &format!("host-{i}.json"))?;
        let log = std::fs::File::create(data.join(format!("host-{i}.log")))?;
        let child = Command::new(&exe)
            .args([
                "host",
                "run",
                "--market",
                &url,
                "--price",
                &(100 + u64::from(i) * 10).to_string(),
                // The devnet's hosts share one machine with the market and
                // each other: the idle policy would see them as its owner.
                "--no-idle",
            ])
            .arg("--keystore")
            .arg(&ks)
            .arg("--password-file")
            .arg(&password)
            .arg("--data")
            .arg(data.join(format!("host-{i}")))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start a host daemon")?;
        println!(
            "  host {i}              {address} (pid {}, log {})",
            child.id(),
            data.join(format!("host-{i}.log")).display()
        );
        children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .push(child);
    }
    let (owner, address) = keystore(&keys, "owner.json")?;
    println!("  owner key           {address}");
    println!(
        "                      --keystore {} --password-file {}",
        owner.display(),
        password.display()
    );
    println!(
        "  submit a job        netmind job submit samples/hello --max-price 1000 --replicas 2 --wait --market {url} --keystore {} --password-file {}",
        owner.display(),
        password.display()
    );

    let client = MarketClient::new(&url)?;
    rt.block_on(wait_for_hosts(&client, args.hosts as usize))?;
    println!("{} host(s) online", args.hosts);

    let mut code = ExitCode::SUCCESS;
    if args.demo {
        code = demo(&exe, &url, &owner, &password, &data)?;
    }
    if !args.once {
        println!("serving until Ctrl-C");
        rt.block_on(std::future::pending::<()>());
    }
    drop(std::mem::replace(
        &mut *children.lock().unwrap_or_else(|e| e.into_inner()),
        Children(Vec::new()),
    ));
    let _ = stop.send(());
    let _ = rt.block_on(served);
    Ok(code)
}

async fn wait_for_hosts(client: &MarketClient, n: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = client.get("/v1/hosts").await?;
        let idle = v["hosts"].as_array().map_or(0, |h| {
            h.iter()
                .filter(|h| h["slots_free"].as_u64().unwrap_or(0) > 0)
                .count()
        });
        if idle >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {idle} of {n} host(s) came online in 2 minutes; see their logs");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Submits the samples that need nothing but the sandbox, two replicas each.
fn demo(exe: &Path, url: &str, owner: &Path, password: &Path, data: &Path) -> Result<ExitCode> {
    let samples = [("hello", "samples/hello"), ("sha256", "samples/sha256")];
    let mut code = ExitCode::SUCCESS;
    for (name, dir) in samples {
        if !Path::new(dir).join("netmind.toml").exists() {
            eprintln!("demo: {dir} not found (run from the repository's root); skipped");
            continue;
        }
        let out = data.join("results").join(name);
        println!("demo: {name} on 2 hosts");
        let status = Command::new(exe)
            .args([
                "job",
                "submit",
                dir,
                "--input",
                dir,
                "--max-price",
                "1000",
                "--replicas",
                "2",
                "--wait",
                "--market",
                url,
            ])
            .arg("--output")
            .arg(&out)
            .arg("--keystore")
            .arg(owner)
            .arg("--password-file")
            .arg(password)
            .status()
            .context("cannot run `netmind job submit`")?;
        if !status.success() {
            code = ExitCode::FAILURE;
            continue;
        }
        for entry in walkdir::WalkDir::new(&out).sort_by_file_name() {
            let entry = entry?;
            if entry.file_type().is_file() {
                let text =
                    std::fs::read_to_string(entry.path()).unwrap_or_else(|_| "(binary)".into());
                println!(
                    "  {}: {}",
                    entry.path().strip_prefix(&out)?.display(),
                    text.trim()
                );
            }
        }
    }
    Ok(code)
}
