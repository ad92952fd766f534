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
    /// Run an authority node: seal blocks and serve JSON-RPC.
    Run {
        /// Directory initialised with `netmind node init`.
        #[arg(long)]
        datadir: PathBuf,
        /// Keystore of the authority that seals blocks.
        #[arg(long)]
        authority_key: PathBuf,
        /// File whose first line is the keystore password (else `NETMIND_KEY_PASSWORD` or a prompt).
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// JSON-RPC over HTTP listens here.
        #[arg(long, default_value = DEFAULT_HTTP)]
        http: SocketAddr,
    },
    /// A single-authority development chain (chain id 1337, Prague) whose
    /// well-known dev keys are funded.
    Dev {
        /// Keep the chain here (default: a temporary directory removed on exit).
        #[arg(long)]
        datadir: Option<PathBuf>,
        /// JSON-RPC over HTTP listens here.
        #[arg(long, default_value = DEFAULT_HTTP)]
        http: SocketAddr,
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
        } => {
            let signer = crate::wallet::open(&authority_key, password_file.as_deref())?;
            serve(&datadir, http, signer)?;
        }
        NodeCommand::Dev {
            datadir,
            http,
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
            serve(dir, http, dev_signers().remove(0))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(
    datadir: &Path,
    http: SocketAddr,
    signer: alloy_signer_local::PrivateKeySigner,
) -> Result<()> {
    let cfg = NodeConfig {
        datadir: datadir.to_path_buf(),
        http,
        pool: PoolConfig::default(),
    };
    crate::market::runtime()?.block_on(async {
        let running: Running = start(cfg, signer).await.context("cannot start the node")?;
        eprintln!("JSON-RPC on http://{}  (Ctrl-C stops)", running.http_addr);
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        running.stop().await;
        Ok(())
    })
}
