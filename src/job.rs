//! `netmind job submit|status|cancel|result|logs|explain`: a job owner's signed job orders.

mod logs;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alloy_primitives::{Address, B256, U256};
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use netmind_protocol::orders::{JobOrder, Signed};
use netmind_protocol::{Bundle, BundleLimits};
use serde_json::Value;
use tracing::Instrument;

use crate::market::{KeyArgs, MarketArgs, address, price, print_json, runtime};
use crate::offer::{ms_from_now, nonce, order_id};

#[derive(Debug, Subcommand)]
pub(crate) enum JobCommand {
    /// Upload a bundle and its input, then sign and post a job order (a bid).
    ///
    /// Requirements (GPU, GPU memory, wasi-nn encodings, memory, run time) come
    /// from the bundle's manifest. Prints the order id.
    Submit(Box<SubmitArgs>),
    /// A job order's state and its deals.
    Status {
        /// The order id.
        id: String,
        #[command(flatten)]
        market: MarketArgs,
        /// Print the market's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a job: a waiting order leaves the book; a job under way is
    /// cancelled with its replicas (hosts stop them, and are not paid for
    /// results sent after the cancel). Only the job's owner may.
    Cancel {
        /// The job (its order id).
        id: String,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        market: MarketArgs,
    },
    /// Download a done job's accepted output (checked against its hash) into a directory.
    Result {
        /// The job (its order id).
        id: String,
        /// Where to unpack the output (created).
        #[arg(long, short)]
        output: PathBuf,
        #[command(flatten)]
        market: MarketArgs,
    },
    /// What the job printed (stdout and stderr, and its progress reports).
    ///
    /// A job on several replicas shows each replica's log under a header,
    /// once the job is decided (so no host copies another's answer).
    Logs {
        /// The job (its order id).
        id: String,
        /// Keep printing as the job runs, until it is decided.
        #[arg(long, short)]
        follow: bool,
        #[command(flatten)]
        market: MarketArgs,
    },
    /// Why a waiting job order has not matched, and the price at which it would.
    Explain {
        /// The order id.
        id: String,
        #[command(flatten)]
        market: MarketArgs,
        /// Print the market's JSON answer.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// A packed bundle (`netmind bundle pack`) or a bundle directory.
    bundle: PathBuf,
    /// Directory given to the job read-only at `/input` (uploaded as a tar).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Most paid per second, in NMT base units.
    #[arg(long)]
    max_price: U256,
    /// Runs on distinct hosts (replicated verification).
    #[arg(long, default_value_t = 1)]
    replicas: u32,
    /// Resource class (default: `cpu`, or the smallest `gpu-<N>g` class that
    /// fits the manifest's GPU memory).
    #[arg(long)]
    class: Option<String>,
    /// Longest run in seconds (default: the manifest's wall time).
    #[arg(long)]
    max_seconds: Option<u64>,
    /// How long the order stands (e.g. `1h`).
    #[arg(long, default_value = "1h")]
    deadline_in: humantime::Duration,
    /// Minimum host CPU cores.
    #[arg(long, default_value_t = 1)]
    cores: u32,
    /// Minimum host benchmark score.
    #[arg(long, default_value_t = 0)]
    min_score: u64,
    /// Only these hosts (repeat).
    #[arg(long = "allow")]
    allow: Vec<Address>,
    /// Never these hosts (repeat).
    #[arg(long = "deny")]
    deny: Vec<Address>,
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    market: MarketArgs,
    /// Print the market's JSON answer.
    #[arg(long)]
    json: bool,
    /// Wait until the job is decided, showing its progress; exit 0 only when it is done.
    #[arg(long)]
    wait: bool,
    /// With --wait: also download the accepted output into this directory.
    #[arg(long, short, requires = "wait")]
    output: Option<PathBuf>,
}

pub(crate) fn job(cmd: JobCommand) -> Result<ExitCode> {
    runtime()?.block_on(async {
        match cmd {
            JobCommand::Submit(args) => {
                // The root of the job's trace (docs/TELEMETRY.md).
                let span = tracing::info_span!(
                    target: "cli::job",
                    "job.submit",
                    otel.kind = "client",
                    bundle = %args.bundle.display(),
                    replicas = args.replicas,
                    job_id = tracing::field::Empty
                );
                submit(*args).instrument(span).await
            }
            JobCommand::Status { id, market, json } => status(&id, &market, json).await,
            JobCommand::Explain { id, market, json } => explain(&id, &market, json).await,
            JobCommand::Logs { id, follow, market } => logs::logs(&id, &market, follow).await,
            JobCommand::Cancel { id, key, market } => {
                crate::offer::cancel(&id, &key, &market).await
            }
            JobCommand::Result { id, output, market } => {
                let client = market.client()?;
                let job = client.get(&format!("/v1/jobs/{}", order_id(&id)?)).await?;
                fetch_result(&client, &job, &output).await?;
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

/// The bundle's bytes and manifest, packing a directory.
fn load_bundle(path: &Path) -> Result<(Vec<u8>, Bundle)> {
    let limits = BundleLimits::default();
    if path.is_dir() {
        let bundle = Bundle::from_dir(path, &limits)
            .with_context(|| format!("cannot read bundle directory {}", path.display()))?;
        return Ok((bundle.pack(), bundle));
    }
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read bundle {}", path.display()))?;
    let bundle = Bundle::unpack(&bytes, &limits)
        .with_context(|| format!("{} is not a valid bundle", path.display()))?;
    Ok((bytes, bundle))
}

/// `gpu-<N>g` classes by GPU memory, smallest first.
pub(crate) const GPU_CLASSES: [u64; 6] = [8, 12, 16, 24, 48, 80];

fn default_class(bundle: &Bundle) -> Result<String> {
    let gpu = &bundle.manifest.resources.gpu;
    if !gpu.required {
        return Ok("cpu".into());
    }
    let need = gpu.min_vram.map_or(0, |v| v.as_u64());
    match GPU_CLASSES.iter().find(|g| **g << 30 >= need) {
        Some(g) => Ok(format!("gpu-{g}g")),
        None => bail!("no GPU class has {need} bytes of GPU memory; pass --class"),
    }
}

async fn submit(a: SubmitArgs) -> Result<ExitCode> {
    let signer = a.key.signer()?;
    let client = a.market.client()?;
    let domain = client.domain().await?;
    let (bytes, bundle) = load_bundle(&a.bundle)?;
    let (bundle_id, new) = client
        .put_blob(Bytes::from(bytes))
        .await
        .context("cannot upload the bundle")?;
    eprintln!(
        "bundle {bundle_id} {}",
        if new { "uploaded" } else { "already there" }
    );
    let input = match &a.input {
        Some(dir) => {
            let tar = crate::tarball::pack(dir)?;
            let (id, new) = client
                .put_blob(Bytes::from(tar))
                .await
                .context("cannot upload the input")?;
            eprintln!(
                "input {id} {}",
                if new { "uploaded" } else { "already there" }
            );
            B256::from(id.0)
        }
        None => B256::ZERO,
    };
    let r = &bundle.manifest.resources;
    let order = JobOrder {
        owner: signer.address(),
        bundle: B256::from(bundle_id.0),
        input,
        class: match a.class {
            Some(c) => c,
            None => default_class(&bundle)?,
        },
        gpu: r.gpu.required,
        minVram: r.gpu.min_vram.map_or(0, |v| v.as_u64()),
        encodings: r.wasi_nn.clone(),
        wgpuFeatures: vec![],
        cores: a.cores,
        minMemory: r.memory.as_u64(),
        minScore: a.min_score,
        allow: a.allow,
        deny: a.deny,
        maxPrice: a.max_price,
        maxSeconds: a.max_seconds.unwrap_or(r.wall_time.as_secs().max(1)),
        replicas: a.replicas,
        deadline: ms_from_now(*a.deadline_in),
        nonce: nonce(),
    };
    let signed = Signed::sign(order, &signer, &domain).context("cannot sign the job order")?;
    let placed = client.post_bid(&signed).await?;
    tracing::Span::current().record("job_id", placed["id"].as_str().unwrap_or_default());
    if a.wait {
        let id = placed["id"].as_str().unwrap_or_default().to_owned();
        println!("{id}");
        let span = tracing::info_span!(
            target: "cli::job",
            "job.wait",
            job_id = %id,
            state = tracing::field::Empty
        );
        return wait(&client, &id, a.output.as_deref())
            .instrument(span)
            .await;
    }
    if a.json {
        print_json(&placed);
    } else {
        println!("{}", placed["id"].as_str().unwrap_or_default());
        eprintln!(
            "job order {} in class {}: {} replica(s) waiting, {} deal(s)",
            placed["status"].as_str().unwrap_or_default(),
            placed["class"].as_str().unwrap_or_default(),
            placed["remaining"],
            placed["deals"].as_array().map_or(0, Vec::len)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Follows a job through queued → matched → running → verifying → done.
async fn wait(
    client: &netmind_market::client::MarketClient,
    id: &str,
    output: Option<&Path>,
) -> Result<ExitCode> {
    let bar = indicatif::ProgressBar::new(4).with_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed}] {bar:20} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    loop {
        let job = client.get(&format!("/v1/jobs/{id}")).await?;
        let state = job["state"].as_str().unwrap_or_default().to_owned();
        let step = match state.as_str() {
            "queued" => 0,
            "matched" => 1,
            "running" => 2,
            "verifying" => 3,
            _ => 4,
        };
        bar.set_position(step);
        let reported = job["deals"].as_array().map_or(0, |d| {
            d.iter()
                .filter(|x| x["state"] != "assigned" && x["state"] != "running")
                .count()
        });
        bar.set_message(format!(
            "{state} ({reported}/{} replicas reported)",
            job["replicas"]
        ));
        tracing::Span::current().record("state", state.as_str());
        match state.as_str() {
            "done" => {
                bar.finish_and_clear();
                let r = &job["result"];
                eprintln!(
                    "done: {} (exit {}), output {} agreed by {} host(s)",
                    r["status"].as_str().unwrap_or_default(),
                    r["exit"],
                    r["output"].as_str().unwrap_or_default(),
                    r["hosts"].as_array().map_or(0, Vec::len)
                );
                if let Some(dir) = output {
                    fetch_result(client, &job, dir).await?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            "failed" | "cancelled" | "expired" => {
                bar.finish_and_clear();
                eprintln!(
                    "job {state}{}",
                    job["reason"]
                        .as_str()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                );
                return Ok(ExitCode::FAILURE);
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

/// Downloads a done job's output, checks it against the accepted hash, unpacks it.
async fn fetch_result(
    client: &netmind_market::client::MarketClient,
    job: &Value,
    dir: &Path,
) -> Result<()> {
    if job["state"] != "done" {
        bail!(
            "job is {}, not done: results are released once a majority of replicas agree",
            job["state"].as_str().unwrap_or("unknown")
        );
    }
    let output: B256 = job["result"]["output"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .context("the job's result names no output")?;
    let bytes = client
        .get_blob(&netmind_market::blob::BlobId(output.0))
        .await?
        .with_context(|| format!("the market has no blob {output}"))?;
    crate::tarball::unpack(&bytes, dir, 16 << 30)?;
    eprintln!("output {output} (verified) unpacked into {}", dir.display());
    Ok(())
}

fn print_deals(deals: &Value) {
    for d in deals.as_array().into_iter().flatten() {
        println!(
            "  deal {} replica {} on host {} at {}/s for up to {} s",
            d["id"].as_str().unwrap_or_default(),
            d["replica"],
            address(&d["host"]),
            price(&d["price"]),
            d["seconds"]
        );
    }
}

async fn status(id: &str, market: &MarketArgs, json: bool) -> Result<ExitCode> {
    let id = order_id(id)?;
    let v = market.client()?.get(&format!("/v1/orders/{id}")).await?;
    if json {
        print_json(&v);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} {} in {}: {} ({} waiting), {} deal(s)",
        v["kind"].as_str().unwrap_or_default(),
        id,
        v["class"].as_str().unwrap_or_default(),
        v["status"].as_str().unwrap_or_default(),
        v["remaining"],
        v["deals"].as_array().map_or(0, Vec::len)
    );
    print_deals(&v["deals"]);
    Ok(ExitCode::SUCCESS)
}

async fn explain(id: &str, market: &MarketArgs, json: bool) -> Result<ExitCode> {
    let id = order_id(id)?;
    let v = market
        .client()?
        .get(&format!("/v1/bids/{id}/explain"))
        .await?;
    if json {
        print_json(&v);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} replica(s) waiting; {} offer(s) match now",
        v["waiting_replicas"],
        v["matching"].as_array().map_or(0, Vec::len)
    );
    for r in v["by_reason"].as_array().into_iter().flatten() {
        println!("  {} offer(s): {}", r[1], r[0].as_str().unwrap_or_default());
    }
    for n in v["nearest"].as_array().into_iter().flatten() {
        println!(
            "  nearest: offer {} at {}/s ({} free)",
            n["id"].as_str().unwrap_or_default(),
            price(&n["price"]),
            n["slots"]
        );
    }
    match v["match_price"].as_u64() {
        Some(p) => println!("would match now at a maximum of {p}/s"),
        None => match &v["match_price"] {
            Value::Null => println!("too few compatible hosts to match at any price"),
            other => println!("would match now at a maximum of {other}/s"),
        },
    }
    Ok(ExitCode::SUCCESS)
}
