//! `netmind host run`: the host daemon. It offers this machine's slots on a
//! market, takes the deals it is assigned (followed live over the market's
//! event stream, with a catch-up listing at every (re)connection), runs each
//! job in the sandbox under the bid's limits, uploads the output and returns
//! a signed receipt.
//!
//! Offers are short-lived (`--offer-ttl`) and renewed while the daemon runs,
//! so a host that goes away stops being matched within one TTL. On SIGTERM or
//! Ctrl-C it withdraws its offer, finishes the replicas it runs (up to
//! `--grace`), and exits.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_primitives::{Address, B256, U256};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::Eip712Domain;
use anyhow::{Context, Result};
use clap::Args;
use netmind_market::client::MarketClient;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::market::{KeyArgs, MarketArgs, runtime};

mod caps;
mod config;
mod idle;
mod input;
mod logs;
mod offers;
pub(crate) mod owner;
mod work;
mod workdir;

#[derive(Debug, Args)]
pub(crate) struct HostRunArgs {
    #[command(flatten)]
    market: MarketArgs,
    #[command(flatten)]
    key: KeyArgs,
    /// Price asked per second, in NMT base units [default: 100].
    #[arg(long)]
    price: Option<U256>,
    /// Jobs run at once [default: 1].
    #[arg(long)]
    slots: Option<u32>,
    /// A resource class to offer in; repeat (or separate with commas) for
    /// several, one offer each [default: the GPU's class (by --gpu-memory,
    /// at least gpu-8g) and cpu on a host with a GPU, else cpu].
    #[arg(long = "class", value_delimiter = ',')]
    classes: Vec<String>,
    /// Where bundles, inputs, outputs and the status file are kept.
    #[arg(long, default_value_os_t = default_data())]
    data: PathBuf,
    /// The config file (TOML: price, slots, class, offer-ttl, grace and the
    /// `[idle]` policy; see docs/HOSTS.md) [default: DATA/host.toml, if any].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Never yield to the machine's owner (ignore the idle policy).
    #[arg(long)]
    no_idle: bool,
    /// How long each offer stands; it is renewed at half this [default: 60s].
    #[arg(long)]
    offer_ttl: Option<humantime::Duration>,
    /// On SIGTERM, how long running jobs may take to finish [default: 30s].
    #[arg(long)]
    grace: Option<humantime::Duration>,
    #[command(flatten)]
    nn: crate::nn::NnArgs,
    #[command(flatten)]
    gpu: crate::gpu::GpuArgs,
}

/// What the daemon shares between its tasks.
pub(crate) struct Daemon {
    pub(crate) client: MarketClient,
    pub(crate) signer: PrivateKeySigner,
    pub(crate) domain: Eip712Domain,
    pub(crate) data: PathBuf,
    pub(crate) nn: Arc<netmind_host::nn::NnHost>,
    pub(crate) gpu: netmind_host::GpuConfig,
    pub(crate) gpu_args: crate::gpu::GpuArgs,
    /// Deals taken (running or done) by this process.
    taken: Mutex<HashSet<B256>>,
    /// The stop flag of each deal running now: set when its job is
    /// cancelled or decided without it.
    pub(crate) running: Mutex<HashMap<B256, Arc<std::sync::atomic::AtomicBool>>>,
    slots: Arc<Semaphore>,
    /// Deals taken that wait for a slot (they will hold one).
    waiting: std::sync::atomic::AtomicU32,
    /// Wakes the offer task when a slot frees up.
    freed: tokio::sync::Notify,
    /// The sandboxes, by (deterministic, fuel): built once.
    pub(crate) runtimes: Mutex<HashMap<SandboxKey, Arc<netmind_host::Runtime>>>,
    /// Compiled components by sandbox and SHA-256.
    pub(crate) components: Mutex<Compiled>,
    /// Bundles unpacked, by id.
    pub(crate) bundles: Mutex<HashMap<B256, Arc<work::UnpackedBundle>>>,
    /// The offers standing now.
    standing: Mutex<offers::Standing>,
    /// Where deals run (`DATA/work`).
    pub(crate) work_dirs: Arc<workdir::WorkDirs>,
    /// The settings in force (flags, config file, defaults).
    pub(crate) settings: config::Settings,
    /// The owner uses the machine: no offer stands.
    pub(crate) yielding: std::sync::atomic::AtomicBool,
    /// Running jobs are paused (the sandbox's `RunOptions::pause`).
    pub(crate) paused: Arc<std::sync::atomic::AtomicBool>,
    /// Running jobs are stopped and handed back to the market.
    pub(crate) handing_back: std::sync::atomic::AtomicBool,
}

/// Which sandbox a job needs: (deterministic, fuel metered).
pub(crate) type SandboxKey = (bool, bool);

/// Compiled components, by sandbox and bundle id.
pub(crate) type Compiled = HashMap<(SandboxKey, [u8; 32]), Arc<netmind_host::Job>>;

impl Daemon {
    /// Slots free for new deals: not held, nor about to be by a deal taken.
    pub(crate) fn free_slots(&self) -> u32 {
        (self.slots.available_permits() as u32)
            .saturating_sub(self.waiting.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The offers standing now.
    pub(crate) fn standing(&self) -> std::sync::MutexGuard<'_, offers::Standing> {
        self.standing.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where a host keeps its data unless told: `$XDG_DATA_HOME/netmind/host`,
/// else `~/.local/share/netmind/host`, else a directory under the temp dir.
pub(crate) fn default_data() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir)
        .join("netmind/host")
}

pub(crate) fn run(args: HostRunArgs) -> Result<ExitCode> {
    let signer = args.key.signer()?;
    runtime()?.block_on(serve(args, signer))
}

async fn serve(args: HostRunArgs, signer: PrivateKeySigner) -> Result<ExitCode> {
    let client = args.market.client()?;
    let domain = retry("reach the market", || client.domain()).await?;
    let data = args.data.clone();
    std::fs::create_dir_all(&data).with_context(|| format!("cannot create {}", data.display()))?;
    // One daemon per data directory: its cache, status and config are its own.
    let lock = std::fs::File::create(data.join("daemon.lock"))?;
    if lock.try_lock().is_err() {
        anyhow::bail!(
            "another host daemon uses {}; stop it first (see `netmind host status --data {}`), \
             or give this one another --data",
            data.display(),
            data.display()
        );
    }
    let file = config::HostConfig::load(
        args.config.as_deref().unwrap_or(&data.join("host.toml")),
        args.config.is_some(),
    )?;
    let mut settings = file.settings(config::Flags {
        price: args.price,
        slots: args.slots,
        classes: args.classes.clone(),
        offer_ttl: args.offer_ttl.map(Into::into),
        grace: args.grace.map(Into::into),
        no_idle: args.no_idle,
    });
    let (enabled, adapter, vram) = args.gpu.offered();
    let gpu = caps::detect(enabled, adapter, vram).await;
    if gpu.model.is_empty() {
        eprintln!("offering no GPU");
    } else {
        eprintln!(
            "offering GPU {} ({} per job, benchmark score {})",
            gpu.model,
            bytesize::ByteSize(gpu.vram).display().iec(),
            gpu.score
        );
    }
    if settings.classes.is_empty() {
        settings.classes = default_classes(&gpu);
    }
    let nn = args.nn.build()?;
    let work_dirs = workdir::WorkDirs::new(data.join("work"))
        .with_context(|| format!("cannot prepare {}", data.join("work").display()))?;
    let daemon = Arc::new(Daemon {
        client,
        domain,
        data,
        gpu: args.gpu.config()?,
        gpu_args: args.gpu.clone(),
        nn,
        taken: Mutex::default(),
        running: Mutex::default(),
        slots: Arc::new(Semaphore::new(settings.slots as usize)),
        waiting: Default::default(),
        freed: tokio::sync::Notify::new(),
        runtimes: Mutex::default(),
        components: Mutex::default(),
        bundles: Mutex::default(),
        standing: Mutex::default(),
        work_dirs,
        yielding: Default::default(),
        paused: Default::default(),
        handing_back: Default::default(),
        settings: settings.clone(),
        signer,
    });
    let me = daemon.signer.address();
    eprintln!(
        "host {me} serving the market at {} ({} slot(s) at {}/s in {}); data in {}",
        daemon.client.base(),
        settings.slots,
        settings.price,
        settings.classes.join(", "),
        daemon.data.display()
    );
    let offers = tokio::spawn(offers::keep_offering(
        daemon.clone(),
        offers::Terms {
            price: settings.price,
            slots: settings.slots,
            gpu,
            ttl: settings.offer_ttl,
        },
    ));
    let intake = tokio::spawn(take_deals(daemon.clone()));
    let owner = tokio::spawn(owner::keep_idle_policy(
        daemon.clone(),
        settings.idle.clone(),
    ));
    crate::market::shutdown_signal().await;
    eprintln!("stopping: withdrawing the offer and finishing running jobs");
    intake.abort();
    offers.abort();
    owner.abort();
    // Paused jobs finish too.
    daemon
        .paused
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = offers.await;
    offers::withdraw(&daemon, None).await;
    let all = settings.slots;
    let _ = tokio::time::timeout(settings.grace, daemon.slots.acquire_many(all)).await;
    drop(lock);
    Ok(ExitCode::SUCCESS)
}

/// Retries `f` with backoff (0.2 s doubling to 10 s) until it succeeds.
pub(crate) async fn retry<
    T,
    E: std::fmt::Display,
    F: std::future::Future<Output = Result<T, E>>,
>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> Result<T> {
    let mut wait = Duration::from_millis(200);
    let mut tries = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                tries += 1;
                if tries >= 8 {
                    anyhow::bail!("cannot {what}: {e}");
                }
                tracing::warn!(%e, retry_in = ?wait, "cannot {what}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// The classes a host offers in unless told: a host with a GPU serves GPU
/// jobs in the class of the GPU memory it gives a job (the largest
/// `gpu-<N>g` it fills, `gpu-8g` at least) and CPU jobs too.
pub(crate) fn default_classes(gpu: &caps::GpuCaps) -> Vec<String> {
    if gpu.model.is_empty() {
        return vec!["cpu".into()];
    }
    let fits = crate::job::GPU_CLASSES
        .iter()
        .rev()
        .find(|g| **g << 30 <= gpu.vram)
        .unwrap_or(&crate::job::GPU_CLASSES[0]);
    vec![format!("gpu-{fits}g"), "cpu".into()]
}

/// Follows the market's trades for deals made with this host (its own
/// stream: `?host=`, each trade with its job); lists its deals at every
/// (re)connection so none made while away is missed.
async fn take_deals(d: Arc<Daemon>) {
    let me = d.signer.address();
    let mut wait = Duration::from_millis(200);
    loop {
        match d.client.events(&format!("?host={me}")).await {
            Ok(mut stream) => {
                wait = Duration::from_millis(200);
                catch_up(&d, me).await;
                loop {
                    match stream.next().await {
                        Ok(Some((name, data))) if name == "trade" => {
                            if let Ok(deal) = serde_json::from_str::<Value>(&data) {
                                consider(&d, me, &deal);
                            }
                        }
                        Ok(Some((name, data))) if name == "job" => {
                            if let Ok(job) = serde_json::from_str::<Value>(&data) {
                                stop_if_over(&d, &job);
                            }
                        }
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break,
                    }
                }
            }
            Err(e) => tracing::warn!(%e, retry_in = ?wait, "cannot follow the market's events"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(10));
    }
}

async fn catch_up(d: &Arc<Daemon>, me: Address) {
    match d
        .client
        .get(&format!("/v1/deals?host={me}&limit=1000"))
        .await
    {
        Ok(v) => {
            for deal in v.as_array().into_iter().flatten() {
                consider(d, me, deal);
            }
        }
        Err(e) => tracing::warn!(%e, "cannot list this host's deals"),
    }
}

/// Stops the replicas this host runs for `job` once it is over (cancelled
/// by its owner, or decided without them): their results would be refused.
fn stop_if_over(d: &Daemon, job: &Value) {
    if !matches!(
        job["state"].as_str(),
        Some("cancelled" | "done" | "failed" | "expired")
    ) {
        return;
    }
    let running = d.running.lock().unwrap_or_else(|e| e.into_inner());
    for deal in job["deals"].as_array().into_iter().flatten() {
        let id: Option<B256> = deal["id"].as_str().and_then(|s| s.parse().ok());
        if let Some(flag) = id.and_then(|id| running.get(&id)) {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Takes a deal made with this host, once.
fn consider(d: &Arc<Daemon>, me: Address, deal: &Value) {
    let host: Option<Address> = deal["host"].as_str().and_then(|s| s.parse().ok());
    let id: Option<B256> = deal["id"].as_str().and_then(|s| s.parse().ok());
    let bid: Option<B256> = deal["bid"].as_str().and_then(|s| s.parse().ok());
    let (Some(host), Some(id), Some(bid)) = (host, id, bid) else {
        return;
    };
    if host != me || !d.taken.lock().unwrap_or_else(|e| e.into_inner()).insert(id) {
        return;
    }
    // Counted as waiting for a slot before its offer's slot is counted taken,
    // so the offer task never sees the slot both free and not offered.
    d.waiting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Some(offer) = deal["offer"].as_str().and_then(|s| s.parse().ok()) {
        d.standing().took(offer, id);
    }
    // A trade on the host's own stream brings its job along.
    let mut job = deal.get("job").filter(|j| j.is_object()).cloned();
    let d = d.clone();
    tokio::spawn(async move {
        let permit = match d.slots.clone().try_acquire_owned() {
            Ok(permit) => Ok(permit),
            Err(_) => {
                // The job may move on while the deal waits: read it again.
                job = None;
                d.slots.clone().acquire_owned().await
            }
        };
        d.waiting.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let Ok(permit) = permit else {
            return;
        };
        // With offers in several classes, the others still stand for the
        // slot just taken: renew them. (One offer's slots already went down
        // in the market when it was matched.)
        if d.settings.classes.len() > 1 {
            d.freed.notify_one();
        }
        if let Err(e) = work::serve_deal(&d, id, bid, job).await {
            eprintln!("deal {id}: {e:#}");
        }
        drop(permit);
        d.freed.notify_one();
    });
}
