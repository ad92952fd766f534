//! `netmind node`: run a NetMind Chain node (see `docs/CHAIN.md`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use netmind_chain::NodeConfig;
use netmind_chain::node::{Running, init, start};
use netmind_chain::pool::PoolConfig;
use netmind_chain::spec::{ChainSpec, DEV_KEYS, dev_signers};

/// Default JSON-RPC address.
const DEFAULT_HTTP: &str = "127.0.0.1:8545";

#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Write a chain's genesis block and state into a datadir.
    Init {
        /// Genesis JSON (geth/alloy-genesis format with a `clique` section and
        /// `cancunTime` or `pragueTime` at 0).
        #[arg(long)]
        genesis: PathBuf,
        /// Directory for the chain database.
        #[arg(long)]
        datadir: PathBuf,
    },
    /// Run a node: seal blocks (with `--authority-key`) or follow peers, and
    /// serve JSON-RPC.
    Run {
        /// Directory initialised with `netmind node init`.
        #[arg(long)]
        datadir: PathBuf,
        /// Keystore of the authority that seals blocks (none: a follower that
        /// only imports blocks from `--peers`).
        #[arg(long)]
        authority_key: Option<PathBuf>,
        /// Static peers: comma-separated `http://HOST:PORT` or `ws://HOST:PORT`
        /// JSON-RPC addresses of other nodes of the chain.
        #[arg(long, value_delimiter = ',')]
        peers: Vec<String>,
        /// File whose first line is the keystore password (else `NETMIND_KEY_PASSWORD` or a prompt).
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// JSON-RPC over HTTP and WebSocket listens here.
        #[arg(long, default_value = DEFAULT_HTTP)]
        http: SocketAddr,
        /// Also serve JSON-RPC over WebSocket (only) here.
        #[arg(long, value_name = "ADDR")]
        ws: Option<SocketAddr>,
    },
    /// Import blocks from a file of concatenated RLP blocks (geth's `chain.rlp`)
    /// on top of the datadir's head, then optionally serve the chain read-only.
    Import {
        /// Directory for the chain database (initialised from `--genesis` if empty).
        #[arg(long)]
        datadir: PathBuf,
        /// Genesis JSON to initialise the datadir with (any geth-style genesis:
        /// an ethash/proof-of-stake chain needs `--trust-seals`).
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// Do not check seals and signer authorization (a recorded chain); every
        /// other rule, execution and the roots are still checked.
        #[arg(long)]
        trust_seals: bool,
        /// After importing, serve JSON-RPC (read-only, no sealing) here until Ctrl-C.
        #[arg(long, value_name = "ADDR")]
        serve: Option<SocketAddr>,
        /// The RLP file.
        file: PathBuf,
    },
    /// A single-authority development chain (chain id 1337, Prague) whose
    /// well-known dev keys are funded.
    Dev {
        /// Keep the chain here (default: a temporary directory removed on exit).
        #[arg(long)]
        datadir: Option<PathBuf>,
        /// JSON-RPC over HTTP and WebSocket listens here.
        #[arg(long, default_value = DEFAULT_HTTP)]
        http: SocketAddr,
        /// Also serve JSON-RPC over WebSocket (only) here.
        #[arg(long, value_name = "ADDR")]
        ws: Option<SocketAddr>,
        /// Seconds between blocks; 0 seals as soon as transactions arrive.
        #[arg(long, default_value_t = 1)]
        period: u64,
    },
}

pub(crate) fn node(cmd: NodeCommand) -> Result<ExitCode> {
    match cmd {
        NodeCommand::Init { genesis, datadir } => {
            let spec = ChainSpec::from_genesis_file(&genesis)?;
            let hash = init(&datadir, &spec)
                .with_context(|| format!("cannot initialise {}", datadir.display()))?;
            println!("{hash}");
            eprintln!(
                "chain {} initialised in {} (genesis {hash})",
                spec.chain_id,
                datadir.display()
            );
        }
        NodeCommand::Run {
            datadir,
            authority_key,
            password_file,
            http,
            ws,
            peers,
        } => {
            let signer = match authority_key {
                Some(k) => Some(crate::wallet::open(&k, password_file.as_deref())?),
                None if peers.is_empty() => {
                    anyhow::bail!(
                        "a node without --authority-key follows --peers: give at least one"
                    )
                }
                None => None,
            };
            serve(&datadir, http, ws, signer, &peers)?;
        }
        NodeCommand::Dev {
            datadir,
            http,
            ws,
            period,
        } => {
            let temp;
            let dir: &Path = match &datadir {
                Some(d) => d,
                None => {
                    temp = tempfile::tempdir().context("cannot create a temporary datadir")?;
                    temp.path()
                }
            };
            init(dir, &ChainSpec::dev(period))
                .with_context(|| format!("cannot initialise {}", dir.display()))?;
            eprintln!(
                "dev chain 1337 in {} (period {period} s); funded dev keys:",
                dir.display()
            );
            for (key, signer) in DEV_KEYS.iter().zip(dev_signers()) {
                eprintln!("  {}  0x{key}", signer.address());
            }
            serve(dir, http, ws, Some(dev_signers().remove(0)), &[])?;
        }
        NodeCommand::Import {
            datadir,
            genesis,
            trust_seals,
            serve,
            file,
        } => {
            if !import(&datadir, genesis.as_deref(), trust_seals, &file)? {
                return Ok(ExitCode::FAILURE);
            }
            if let Some(addr) = serve {
                serve_readonly(&datadir, addr)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `netmind node import`: returns whether every block was imported.
fn import(datadir: &Path, genesis: Option<&Path>, trusted: bool, file: &Path) -> Result<bool> {
    use netmind_chain::import::{SealMode, decode_blocks, import_block};
    use netmind_chain::store::Store;
    if let Some(g) = genesis {
        let spec = ChainSpec::from_genesis_file(g)?;
        init(datadir, &spec).with_context(|| format!("cannot initialise {}", datadir.display()))?;
    }
    let store = Store::open(datadir)?;
    let json = store
        .genesis_json()?
        .with_context(|| format!("{} holds no chain: pass --genesis", datadir.display()))?;
    let spec = std::sync::Arc::new(ChainSpec::from_genesis_json(std::str::from_utf8(&json)?)?);
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let blocks = decode_blocks(&bytes)?;
    let mode = if trusted {
        SealMode::Trusted
    } else {
        SealMode::Verify
    };
    let bar = indicatif::ProgressBar::new(blocks.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed}] {bar:30} {pos}/{len} {msg}")
            .expect("valid template"),
    );
    let (mut imported, mut known) = (0u64, 0u64);
    for block in blocks {
        let number = block.header.number;
        let reader = store.reader()?;
        // Blocks already in the chain (a re-run) are skipped.
        if reader.canonical_hash(number)? == Some(block.header.hash_slow()) {
            known += 1;
            bar.inc(1);
            continue;
        }
        drop(reader);
        match import_block(&store, &spec, block, mode) {
            Ok(b) => {
                imported += 1;
                bar.set_message(format!("block {} {}", b.header.number, b.hash));
                bar.inc(1);
            }
            Err(e) => {
                bar.abandon();
                eprintln!("block {number} refused: {e}");
                eprintln!(
                    "imported {imported} blocks ({known} already present); head unchanged since"
                );
                return Ok(false);
            }
        }
    }
    bar.finish();
    let (number, hash) = store.reader()?.head()?;
    eprintln!("imported {imported} blocks ({known} already present); head {number} {hash}");
    Ok(true)
}

fn serve_readonly(datadir: &Path, http: SocketAddr) -> Result<()> {
    let cfg = NodeConfig {
        datadir: datadir.to_path_buf(),
        http,
        ws: None,
        pool: PoolConfig::default(),
    };
    crate::market::runtime()?.block_on(async {
        let running = netmind_chain::node::start_readonly(cfg)
            .await
            .context("cannot start the node")?;
        eprintln!(
            "read-only JSON-RPC on http://{}  (Ctrl-C stops)",
            running.http_addr
        );
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        running.stop().await;
        Ok(())
    })
}

fn serve(
    datadir: &Path,
    http: SocketAddr,
    ws: Option<SocketAddr>,
    signer: Option<alloy_signer_local::PrivateKeySigner>,
    peers: &[String],
) -> Result<()> {
    let cfg = NodeConfig {
        datadir: datadir.to_path_buf(),
        http,
        ws,
        pool: PoolConfig::default(),
    };
    crate::market::runtime()?.block_on(async {
        let running: Running = match signer {
            Some(signer) => start(cfg, signer).await,
            None => netmind_chain::node::start_follower(cfg).await,
        }
        .context("cannot start the node")?;
        let net = if peers.is_empty() {
            None
        } else {
            Some(netmind_chain::net::spawn(running.node.clone(), peers)?)
        };
        let http = running.http_addr;
        match running.ws_addr {
            Some(ws) => eprintln!(
                "JSON-RPC on http://{http} and ws://{http}, WebSocket on ws://{ws}  (Ctrl-C stops)"
            ),
            None => eprintln!("JSON-RPC on http://{http} and ws://{http}  (Ctrl-C stops)"),
        }
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        if let Some(net) = net {
            net.abort();
        }
        running.stop().await;
        Ok(())
    })
}
