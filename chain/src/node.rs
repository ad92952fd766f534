//! The node: store + pool + sealer, and the running service (sealer task + RPC).
//!
//! Only single-authority chains are sealed for now: [`Node::open`] refuses a
//! genesis with more than one authority (networking between authorities is not
//! implemented). The sealer follows geth's Clique dev mode: with `period > 0`
//! it seals a block (empty or not) every `period` seconds; with `period == 0` it
//! seals as soon as transactions are pooled.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy_consensus::Header;
use alloy_primitives::{Address, B256};
use alloy_signer_local::PrivateKeySigner;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::exec::{build_block, next_header};
use crate::pool::{Pool, PoolConfig, PoolError, decode_raw};
use crate::spec::ChainSpec;
use crate::store::{Store, StoreReader, StoredBlock};
use crate::{Error, Result};

/// How to run a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Directory holding `chain.redb`.
    pub datadir: PathBuf,
    /// Address for JSON-RPC over HTTP (port 0 picks a free port).
    pub http: SocketAddr,
    /// Pool limits.
    pub pool: PoolConfig,
}

/// A node over an initialised datadir.
#[derive(Debug)]
pub struct Node {
    /// The chain.
    pub spec: Arc<ChainSpec>,
    store: Store,
    pool: Mutex<Pool>,
    signer: PrivateKeySigner,
    signers: Vec<Address>,
    head: RwLock<(Header, B256)>,
    new_tx: Notify,
}

/// Writes the genesis of `spec` into `datadir` (no-op if it is already there).
pub fn init(datadir: &Path, spec: &ChainSpec) -> Result<B256> {
    Store::open(datadir)?.init_genesis(spec)
}

impl Node {
    /// Opens the chain in `datadir`, sealing with `signer` (an authority).
    pub fn open(datadir: &Path, signer: PrivateKeySigner, pool: PoolConfig) -> Result<Self> {
        let store = Store::open(datadir)?;
        let json = store
            .genesis_json()?
            .ok_or_else(|| Error::NotInitialized(datadir.display().to_string()))?;
        let json = String::from_utf8(json).map_err(|e| Error::Corrupt(e.to_string()))?;
        let spec = Arc::new(ChainSpec::from_genesis_json(&json)?);
        let signers = spec.genesis_signers()?;
        if !signers.contains(&signer.address()) {
            return Err(Error::NotAuthority(signer.address()));
        }
        if signers.len() > 1 {
            return Err(Error::Genesis(format!(
                "the genesis names {} authorities; this node can only seal single-authority chains so far",
                signers.len()
            )));
        }
        let reader = store.reader()?;
        let (_, hash) = reader.head()?;
        let header = reader
            .header(hash)?
            .ok_or_else(|| Error::Corrupt("head header missing".into()))?;
        drop(reader);
        Ok(Self {
            spec,
            store,
            pool: Mutex::new(Pool::new(pool)),
            signer,
            signers,
            head: RwLock::new((header, hash)),
            new_tx: Notify::new(),
        })
    }

    /// The head header and its hash.
    pub fn head(&self) -> (Header, B256) {
        self.head.read().expect("head lock").clone()
    }

    /// A read snapshot of the store.
    pub fn reader(&self) -> Result<StoreReader> {
        self.store.reader()
    }

    /// The authorities.
    pub fn signers(&self) -> &[Address] {
        &self.signers
    }

    /// The sealing key's address.
    pub fn authority(&self) -> Address {
        self.signer.address()
    }

    /// Runs `f` on the pool.
    pub fn with_pool<T>(&self, f: impl FnOnce(&Pool) -> T) -> T {
        f(&self.pool.lock().expect("pool lock"))
    }

    /// The base fee of the next block.
    pub fn next_base_fee(&self) -> u64 {
        let (h, _) = self.head();
        h.next_block_base_fee(alloy_eips::eip1559::BaseFeeParams::ethereum())
            .unwrap_or_default()
    }

    /// Decodes, checks and pools a raw signed transaction.
    pub fn submit_raw(&self, raw: &[u8]) -> Result<B256, SubmitError> {
        let max = self.with_pool(|p| p.config().max_tx_bytes);
        let tx = decode_raw(raw, max)?;
        let mut pool = self.pool.lock().expect("pool lock");
        let (head, _) = self.head();
        let base_fee = head
            .next_block_base_fee(alloy_eips::eip1559::BaseFeeParams::ethereum())
            .unwrap_or_default();
        let ctx = self.spec.admit_ctx(base_fee, head.gas_limit);
        let account = self.reader()?.account(tx.signer())?.unwrap_or_default();
        let hash = pool.add(tx, &ctx, account.nonce, account.balance)?;
        drop(pool);
        self.new_tx.notify_one();
        tracing::debug!(target: "chain::pool", tx_hash = %hash, "pooled");
        Ok(hash)
    }

    /// Builds, seals and durably stores the next block from the pool.
    pub fn seal_next(&self, timestamp: u64) -> Result<StoredBlock> {
        let (parent, _) = self.head();
        let header = next_header(
            &self.spec,
            &parent,
            timestamp,
            self.authority(),
            &self.signers,
        );
        let base_fee = header.base_fee_per_gas.unwrap_or_default();
        let candidates = self.with_pool(|p| p.best(base_fee, 50_000));
        let reader = self.reader()?;
        let built = build_block(&self.spec, &reader, header, self.authority(), candidates)?;
        drop(reader);
        let signer = &self.signer;
        let block = self.store.commit_block(&built.changes, |state_root| {
            let mut header = built.header.clone();
            header.state_root = state_root;
            crate::clique::seal(&mut header, signer)?;
            let hash = header.hash_slow();
            let (transactions, senders) = built
                .transactions
                .iter()
                .map(|t| (t.inner().clone(), t.signer()))
                .unzip();
            Ok(StoredBlock {
                header,
                hash,
                transactions,
                senders,
                receipts: built.receipts.clone(),
            })
        })?;
        // Head and pool change together, under the pool lock, so admission never
        // sees a head whose included transactions are still pooled.
        let mut pool = self.pool.lock().expect("pool lock");
        *self.head.write().expect("head lock") = (block.header.clone(), block.hash);
        let reader = self.reader()?;
        let removed = block
            .transactions
            .iter()
            .map(|t| *t.tx_hash())
            .chain(built.rejected.iter().map(|(h, _)| *h));
        pool.on_block(removed, |a| {
            reader.account(a).ok().flatten().map_or(0, |acc| acc.nonce)
        });
        drop(pool);
        for (hash, why) in &built.rejected {
            tracing::debug!(target: "chain::pool", tx_hash = %hash, why, "dropped");
        }
        tracing::info!(
            target: "chain::sealer",
            block = block.header.number,
            hash = %block.hash,
            txs = block.transactions.len(),
            gas_used = block.header.gas_used,
            "sealed"
        );
        Ok(block)
    }
}

/// Why `eth_sendRawTransaction` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The pool refused it.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The store failed.
    #[error(transparent)]
    Node(#[from] Error),
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A running node: the sealer task and the JSON-RPC server.
#[derive(Debug)]
pub struct Running {
    /// The node.
    pub node: Arc<Node>,
    /// Where JSON-RPC listens.
    pub http_addr: SocketAddr,
    rpc: jsonrpsee::server::ServerHandle,
    sealer: JoinHandle<()>,
    shutdown: Arc<Notify>,
}

impl Running {
    /// Stops sealing and serving, and waits until both have ended (the datadir
    /// can then be reopened).
    pub async fn stop(self) {
        self.shutdown.notify_one();
        let _ = self.sealer.await;
        let _ = self.rpc.stop();
        self.rpc.stopped().await;
        // Connection tasks of the server may still hold the node (and so the
        // database file) for a moment after it stopped: wait for them, so a
        // restart on the same datadir never finds the database still open.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&self.node) > 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// Opens the datadir, starts the sealer and serves JSON-RPC on `cfg.http`.
pub async fn start(cfg: NodeConfig, signer: PrivateKeySigner) -> Result<Running> {
    let node = Arc::new(Node::open(&cfg.datadir, signer, cfg.pool.clone())?);
    let (rpc, http_addr) = crate::rpc::serve(node.clone(), cfg.http).await?;
    let shutdown = Arc::new(Notify::new());
    let sealer = tokio::spawn(sealer_loop(node.clone(), shutdown.clone()));
    tracing::info!(target: "chain::node", chain_id = node.spec.chain_id, %http_addr, "node started");
    Ok(Running {
        node,
        http_addr,
        rpc,
        sealer,
        shutdown,
    })
}

async fn sealer_loop(node: Arc<Node>, shutdown: Arc<Notify>) {
    let period = node.spec.period;
    loop {
        let (parent, _) = node.head();
        let wait = if period == 0 {
            if node.with_pool(Pool::is_empty) {
                tokio::select! {
                    () = node.new_tx.notified() => {}
                    () = shutdown.notified() => return,
                }
            }
            Duration::ZERO
        } else {
            let due = parent.timestamp + period;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            Duration::from_secs(due).saturating_sub(now)
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.notified() => return,
        }
        let timestamp = now_secs().max(parent.timestamp + period);
        let n = node.clone();
        match tokio::task::spawn_blocking(move || n.seal_next(timestamp)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(target: "chain::sealer", "sealing failed: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => tracing::error!(target: "chain::sealer", "sealer task panicked: {e}"),
        }
    }
}
