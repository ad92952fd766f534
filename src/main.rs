//! `netmind`: the one command-line interface of NetMind Power.
//!
//! Job owners pack, sign, inspect and try jobs locally in exactly the sandbox
//! hosts use (`netmind bundle`, `netmind run`); keys are Ethereum keystores
//! (`netmind wallet`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: many small allocations from several threads (HTTP, JSON, the
/// market's sequencer) cost a tenth of the market's CPU in glibc's malloc
/// (docs/PERFORMANCE.md, market over HTTP).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bundle;
mod daemon;
mod devnet;
mod gpu;
mod host;
mod job;
mod market;
mod nn;
mod node;
mod offer;
mod run;
mod source;
mod tarball;
mod telemetry;
mod wallet;

/// NetMind Power: a decentralized GPU compute marketplace.
///
/// Jobs are WebAssembly components packed into signed, content-addressed
/// bundles. Try one locally with `netmind run samples/hello`.
#[derive(Debug, Parser)]
#[command(
    name = "netmind",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// Log filter, e.g. `info` or `host::sandbox=debug` (also `NETMIND_LOG`).
    #[arg(long, global = true, env = "NETMIND_LOG", default_value = "warn")]
    log: String,
    /// Write logs as JSON lines.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a job (bundle file, bundle directory or .wasm) in the local sandbox.
    Run(Box<run::RunArgs>),
    /// Pack, inspect and verify job bundles.
    #[command(subcommand)]
    Bundle(bundle::BundleCommand),
    /// What this machine offers as a host (capabilities, wasi-nn backends).
    #[command(subcommand)]
    Host(host::HostCommand),
    /// Create and show Ethereum keystores used to sign bundles and orders.
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
    /// Run a market, or look at its books.
    #[command(subcommand)]
    Market(market::MarketCommand),
    /// Post and cancel a host's signed offers.
    #[command(subcommand)]
    Offer(offer::OfferCommand),
    /// Submit jobs to a market and follow them.
    #[command(subcommand)]
    Job(job::JobCommand),
    /// Start a local devnet: a market with its dashboard, host daemons and keys.
    Devnet(devnet::DevnetArgs),
    /// Run a NetMind Chain node (`init`, `run`, `dev`).
    #[command(subcommand)]
    Node(node::NodeCommand),
}

/// The OpenTelemetry service a command exports as, for those that export
/// (docs/TELEMETRY.md); `OTEL_SERVICE_NAME` overrides it.
fn service(command: &Command) -> Option<&'static str> {
    match command {
        Command::Market(market::MarketCommand::Serve(_)) | Command::Devnet(_) => {
            Some("netmind-market")
        }
        Command::Host(host::HostCommand::Run(_)) => Some("netmind-host"),
        Command::Job(_) => Some("netmind-cli"),
        _ => None,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Dropped at the end of the command: exports what is buffered.
    let _telemetry = telemetry::init(&cli.log, cli.log_json, service(&cli.command));
    let result = match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Bundle(cmd) => bundle::bundle(cmd),
        Command::Wallet(cmd) => wallet::wallet(cmd),
        Command::Host(cmd) => host::host(cmd),
        Command::Market(cmd) => market::market(cmd),
        Command::Offer(cmd) => offer::offer(cmd),
        Command::Job(cmd) => job::job(cmd),
        Command::Devnet(args) => devnet::devnet(args),
        Command::Node(cmd) => node::node(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
