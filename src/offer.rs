//! `netmind offer post|cancel`: a host's signed offers.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy_primitives::{B256, U256};
use anyhow::{Context, Result, bail};
use bytesize::ByteSize;
use clap::{Args, Subcommand};
use netmind_protocol::orders::{Cancel, Offer, Signed};

use crate::market::{KeyArgs, MarketArgs, print_json, runtime};

#[derive(Debug, Subcommand)]
pub(crate) enum OfferCommand {
    /// Sign and post an offer: SLOTS slots of this machine at PRICE per second.
    Post(Box<PostArgs>),
    /// Withdraw what is left of an order (an offer or a job order) you made.
    Cancel {
        /// The order id (0x and 64 hex digits), as `post` printed it.
        id: String,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        market: MarketArgs,
    },
}

#[derive(Debug, Args)]
pub(crate) struct PostArgs {
    /// Resource class, e.g. `gpu-24g` or `cpu` (`netmind market book` lists them).
    #[arg(long)]
    class: String,
    /// Price per second, in NMT base units.
    #[arg(long)]
    price: U256,
    /// Jobs taken at once.
    #[arg(long, default_value_t = 1)]
    slots: u32,
    /// How long the offer stands (e.g. `1h`, `30m`).
    #[arg(long, default_value = "1h")]
    expires_in: humantime::Duration,
    /// GPU model; empty for a CPU-only host.
    #[arg(long, default_value = "")]
    gpu_model: String,
    /// GPU memory, e.g. `24GiB`.
    #[arg(long, default_value = "0B")]
    vram: ByteSize,
    /// A wgpu feature of the adapter (repeat).
    #[arg(long = "wgpu-feature")]
    wgpu_features: Vec<String>,
    /// A wasi-nn encoding served, e.g. `onnx` (repeat).
    #[arg(long = "encoding")]
    encodings: Vec<String>,
    /// CPU cores per slot.
    #[arg(long, default_value_t = 1)]
    cores: u32,
    /// Memory per slot, e.g. `8GiB`.
    #[arg(long, default_value = "1GiB")]
    memory: ByteSize,
    /// Measured benchmark score (`netmind host gpu` reports one).
    #[arg(long, default_value_t = 0)]
    score: u64,
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    market: MarketArgs,
    /// Print the market's JSON answer.
    #[arg(long)]
    json: bool,
}

/// Milliseconds since the Unix epoch, `after` from now.
pub(crate) fn ms_from_now(after: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now + after).as_millis() as u64
}

/// A nonce no other order of this maker is likely to have: the clock in ns.
pub(crate) fn nonce() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

pub(crate) fn offer(cmd: OfferCommand) -> Result<ExitCode> {
    runtime()?.block_on(async {
        match cmd {
            OfferCommand::Post(args) => post(*args).await,
            OfferCommand::Cancel { id, key, market } => cancel(&id, &key, &market).await,
        }
    })
}

async fn post(a: PostArgs) -> Result<ExitCode> {
    let signer = a.key.signer()?;
    let client = a.market.client()?;
    let domain = client.domain().await?;
    let order = Offer {
        host: signer.address(),
        class: a.class,
        gpuModel: a.gpu_model,
        vram: a.vram.as_u64(),
        wgpuFeatures: a.wgpu_features,
        encodings: a.encodings,
        cores: a.cores,
        memoryBytes: a.memory.as_u64(),
        score: a.score,
        price: a.price,
        slots: a.slots,
        expiry: ms_from_now(*a.expires_in),
        nonce: nonce(),
    };
    let signed = Signed::sign(order, &signer, &domain).context("cannot sign the offer")?;
    let placed = client.post_offer(&signed).await?;
    if a.json {
        print_json(&placed);
    } else {
        println!("{}", placed["id"].as_str().unwrap_or_default());
        eprintln!(
            "offer {}: {} slot(s) left, {} deal(s)",
            placed["status"].as_str().unwrap_or_default(),
            placed["remaining"],
            placed["deals"].as_array().map_or(0, Vec::len)
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn order_id(id: &str) -> Result<B256> {
    match id.parse() {
        Ok(id) => Ok(id),
        Err(_) => bail!("`{id}` is not an order id: expected 0x and 64 hex digits"),
    }
}

pub(crate) async fn cancel(id: &str, key: &KeyArgs, market: &MarketArgs) -> Result<ExitCode> {
    let order = order_id(id)?;
    let signer = key.signer()?;
    let client = market.client()?;
    let domain = client.domain().await?;
    let c = Cancel {
        maker: signer.address(),
        order,
        expiry: ms_from_now(Duration::from_secs(60)),
    };
    let signed = Signed::sign(c, &signer, &domain).context("cannot sign the cancel")?;
    let answer = client.cancel(&signed).await?;
    match answer["state"].as_str() {
        // A job under way: the market answers the job as it now is.
        Some(state) => eprintln!("cancelled job {order}: it is now {state}"),
        None => eprintln!("cancelled {order}"),
    }
    Ok(ExitCode::SUCCESS)
}
