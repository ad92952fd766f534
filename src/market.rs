//! `netmind market serve|book`: run a market, look at its books. Also the
//! flags and helpers the order commands (`netmind offer`, `netmind job`)
//! share: which market, which key, how to print answers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alloy_signer_local::PrivateKeySigner;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use netmind_market::client::MarketClient;
use netmind_market::server::{Market, MarketConfig};
use serde_json::Value;

#[derive(Debug, Subcommand)]
pub(crate) enum MarketCommand {
    /// Run a market: the order book, its journal, the blob store and the HTTP API.
    ///
    /// State lives in --data (a SQLite journal `market.db` and `blobs/`) unless
    /// --db names a PostgreSQL database. Stops on Ctrl-C or SIGTERM after the
    /// requests in flight.
    Serve(ServeArgs),
    /// Show a class's book (offers cheapest first, bids highest first), or
    /// every class's best prices when no class is given.
    Book {
        /// The resource class, e.g. `gpu-24g`.
        class: Option<String>,
        #[command(flatten)]
        market: MarketArgs,
        /// Print the market's JSON answer.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Data directory (SQLite journal and blobs).
    #[arg(long, env = "NETMIND_MARKET_DATA", default_value = "netmind-market")]
    data: PathBuf,
    /// Journal database: `postgres://USER@HOST/DB`, or a SQLite file
    /// (default: DATA/market.db).
    #[arg(long, env = "NETMIND_MARKET_DB")]
    db: Option<String>,
    /// Address to listen on (port 0 picks a free one; the URL is printed).
    #[arg(long, env = "NETMIND_MARKET_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// A TOML file with market settings (`[api]` chain_id, classes, limits);
    /// flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Chain id of the EIP-712 domain orders are signed under.
    #[arg(long, env = "NETMIND_CHAIN_ID")]
    chain_id: Option<u64>,
    /// A resource class to trade (repeat for several; replaces the defaults).
    #[arg(long = "class")]
    classes: Vec<String>,
}

/// Which market to talk to.
#[derive(Debug, Args)]
pub(crate) struct MarketArgs {
    /// The market's URL.
    #[arg(long, env = "NETMIND_MARKET", default_value = "http://127.0.0.1:8080")]
    pub(crate) market: String,
}

impl MarketArgs {
    pub(crate) fn client(&self) -> Result<MarketClient> {
        Ok(MarketClient::new(&self.market)?)
    }
}

/// Which key signs.
#[derive(Debug, Args)]
pub(crate) struct KeyArgs {
    /// Keystore of the signing key (`netmind wallet new`).
    #[arg(long, env = "NETMIND_KEYSTORE")]
    keystore: PathBuf,
    /// File whose first line is the keystore password (else `NETMIND_KEY_PASSWORD` or a prompt).
    #[arg(long)]
    password_file: Option<PathBuf>,
}

impl KeyArgs {
    pub(crate) fn signer(&self) -> Result<PrivateKeySigner> {
        crate::wallet::open(&self.keystore, self.password_file.as_deref())
    }
}

/// A runtime for one command.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub(crate) fn market(cmd: MarketCommand) -> Result<ExitCode> {
    match cmd {
        MarketCommand::Serve(args) => serve(args),
        MarketCommand::Book {
            class,
            market,
            json,
        } => runtime()?.block_on(book(class, &market, json)),
    }
}

fn load_config(args: &ServeArgs) -> Result<MarketConfig> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str(&text)
                .with_context(|| format!("{} is not a market config", path.display()))?
        }
        None => MarketConfig::new(&args.data),
    };
    config.data.clone_from(&args.data);
    if args.db.is_some() {
        config.db.clone_from(&args.db);
    }
    if let Some(chain) = args.chain_id {
        config.api.chain_id = chain;
    }
    if !args.classes.is_empty() {
        config.api.classes.clone_from(&args.classes);
    }
    Ok(config)
}

fn serve(args: ServeArgs) -> Result<ExitCode> {
    let config = load_config(&args)?;
    let rt = runtime()?;
    rt.block_on(async {
        let market = Market::open(config.clone())
            .await
            .context("cannot open the market")?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        println!("http://{addr}");
        let journal = match &config.db {
            Some(db) if db.starts_with("postgres") => "PostgreSQL".to_owned(),
            Some(db) => db.clone(),
            None => config.data.join("market.db").display().to_string(),
        };
        eprintln!(
            "market listening on http://{addr} (journal: {journal}, blobs: {}, chain id {})",
            Path::new(&config.data).join("blobs").display(),
            config.api.chain_id
        );
        market.serve(listener, shutdown_signal()).await?;
        eprintln!("market stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let kind = tokio::signal::unix::SignalKind::terminate();
        let Ok(mut term) = tokio::signal::unix::signal(kind) else {
            return ctrl_c.await.unwrap_or(());
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}

/// `"12"` → `12`; absent → `-`.
pub(crate) fn price(v: &Value) -> String {
    v.as_str()
        .map(str::to_owned)
        .or_else(|| v.as_u64().map(|n| n.to_string()))
        .unwrap_or_else(|| "-".into())
}

/// An address as EIP-55 (checksummed) text, as `netmind wallet` prints it.
pub(crate) fn address(v: &Value) -> String {
    v.as_str()
        .and_then(|s| s.parse::<alloy_primitives::Address>().ok())
        .map_or_else(|| "-".into(), |a| a.to_string())
}

/// A JSON value as plain text (strings without quotes).
pub(crate) fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

pub(crate) fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

async fn book(class: Option<String>, market: &MarketArgs, json: bool) -> Result<ExitCode> {
    let client = market.client()?;
    let Some(class) = class else {
        let classes = client.get("/v1/classes").await?;
        if json {
            print_json(&classes);
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "{:<12} {:>14} {:>14} {:>14} {:>8}",
            "CLASS", "BEST ASK", "BEST BID", "LAST", "DEALS"
        );
        for c in classes.as_array().into_iter().flatten() {
            println!(
                "{:<12} {:>14} {:>14} {:>14} {:>8}",
                c["class"].as_str().unwrap_or_default(),
                price(&c["best_ask"]),
                price(&c["best_bid"]),
                price(&c["last_price"]),
                text(&c["deals"])
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    let book = client.get(&format!("/v1/book/{class}")).await?;
    if json {
        print_json(&book);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{class}: offers (cheapest first)");
    println!("  {:<68} {:>14} {:>6}  HOST", "ID", "PRICE/S", "FREE");
    for o in book["offers"].as_array().into_iter().flatten() {
        println!(
            "  {:<68} {:>14} {:>6}  {}",
            o["id"].as_str().unwrap_or_default(),
            price(&o["price"]),
            text(&o["free_slots"]),
            address(&o["host"])
        );
    }
    println!("{class}: bids (highest first)");
    println!("  {:<68} {:>14} {:>6}  OWNER", "ID", "MAX/S", "WAIT");
    for b in book["bids"].as_array().into_iter().flatten() {
        println!(
            "  {:<68} {:>14} {:>6}  {}",
            b["id"].as_str().unwrap_or_default(),
            price(&b["max_price"]),
            text(&b["waiting_replicas"]),
            address(&b["owner"])
        );
    }
    Ok(ExitCode::SUCCESS)
}
