//! The node: store + pool + sealer, and the running service (sealer task + RPC).
//!
//! Only single-authority chains are sealed for now: [`Node::open`] refuses a
//! genesis with more than one authority (networking between authorities is not
//! implemented). The sealer follows geth's Clique dev mode: with `period > 0`
//! it seals a block (empty or not) every `period` seconds; with `period == 0` it
//! seals as soon as transactions are pooled.
//!
//! Each block that becomes the head goes through [`Node::publish_head`]: its seal
//! counts as the sealer's finality vote ([`crate::finality`]) and it is sent on a
//! broadcast channel that feeds `eth_subscribe`. Sending never waits: a
//! subscriber that falls more than [`EVENT_CAPACITY`] blocks behind is dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy_consensus::Header;
use alloy_primitives::{Address, B256};
use alloy_signer_local::PrivateKeySigner;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

use crate::exec::{build_block, next_header};
use crate::finality::Finality;
use crate::pool::{Pool, PoolConfig, PoolError, decode_raw};
use crate::spec::ChainSpec;
use crate::store::{Store, StoreReader, StoredBlock};
use crate::{Error, Result};

/// How to run a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Directory holding `chain.redb`.
    pub datadir: PathBuf,
    /// Address for JSON-RPC over HTTP and WebSocket (port 0 picks a free port).
    pub http: SocketAddr,
    /// An extra address that serves JSON-RPC over WebSocket only.
    pub ws: Option<SocketAddr>,
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
    finality: RwLock<Finality>,
    events: broadcast::Sender<Arc<StoredBlock>>,
    /// False for [`Node::open_readonly`].
    sealing: bool,
}

/// How many new-head events a subscriber may fall behind before it is dropped.
pub const EVENT_CAPACITY: usize = 64;

/// Writes the genesis of `spec` into `datadir` (no-op if it is already there).
pub fn init(datadir: &Path, spec: &ChainSpec) -> Result<B256> {
    Store::open(datadir)?.init_genesis(spec)
}

impl Node {
    /// Opens the chain in `datadir`, sealing with `signer` (an authority).
    pub fn open(datadir: &Path, signer: PrivateKeySigner, pool: PoolConfig) -> Result<Self> {
        Self::open_inner(datadir, Some(signer), pool)
    }

    /// Opens the chain in `datadir` to serve it without sealing, e.g. a chain
    /// imported with trusted seals ([`crate::import`]), which may not be a Clique
    /// chain. Its head counts as final (`safe`/`finalized` are the head) and
    /// [`Node::seal_next`] refuses.
    pub fn open_readonly(datadir: &Path, pool: PoolConfig) -> Result<Self> {
        Self::open_inner(datadir, None, pool)
    }

    fn open_inner(
        datadir: &Path,
        signer: Option<PrivateKeySigner>,
        pool: PoolConfig,
    ) -> Result<Self> {
        let sealing = signer.is_some();
        let store = Store::open(datadir)?;
        let json = store
            .genesis_json()?
            .ok_or_else(|| Error::NotInitialized(datadir.display().to_string()))?;
        let json = String::from_utf8(json).map_err(|e| Error::Corrupt(e.to_string()))?;
        let spec = Arc::new(ChainSpec::from_genesis_json(&json)?);
        let Some(signer) = signer else {
            return Self::readonly(spec, store, pool);
        };
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
        let genesis = reader
            .canonical_hash(0)?
            .ok_or_else(|| Error::Corrupt("genesis hash missing".into()))?;
        drop(reader);
        let mut finality = Finality::new(spec.chain_id, &signers, genesis);
        if header.number > 0 {
            let sealer = crate::clique::recover_sealer(&header)?;
            finality.on_sealed(sealer, header.number, hash)?;
        }
        Ok(Self {
            spec,
            store,
            pool: Mutex::new(Pool::new(pool)),
            signer,
            signers,
            head: RwLock::new((header, hash)),
            new_tx: Notify::new(),
            finality: RwLock::new(finality),
            events: broadcast::channel(EVENT_CAPACITY).0,
            sealing,
        })
    }

    /// The read-only node of [`Node::open_readonly`]: a throwaway key stands in
    /// for the authority so that the head is final.
    fn readonly(spec: Arc<ChainSpec>, store: Store, pool: PoolConfig) -> Result<Self> {
        let signer = PrivateKeySigner::random();
        let signers = if spec.clique {
            spec.genesis_signers()?
        } else {
            vec![]
        };
        let reader = store.reader()?;
        let (_, hash) = reader.head()?;
        let header = reader
            .header(hash)?
            .ok_or_else(|| Error::Corrupt("head header missing".into()))?;
        let genesis = reader
            .canonical_hash(0)?
            .ok_or_else(|| Error::Corrupt("genesis hash missing".into()))?;
        drop(reader);
        let mut finality = Finality::new(spec.chain_id, &[signer.address()], genesis);
        if header.number > 0 {
            finality.on_sealed(signer.address(), header.number, hash)?;
        }
        Ok(Self {
            spec,
            store,
            pool: Mutex::new(Pool::new(pool)),
            signer,
            signers,
            head: RwLock::new((header, hash)),
            new_tx: Notify::new(),
            finality: RwLock::new(finality),
            events: broadcast::channel(EVENT_CAPACITY).0,
            sealing: false,
        })
    }

    /// The head header and its hash.
    pub fn head(&self) -> (Header, B256) {
        self.head.read().expect("head lock").clone()
    }

    /// The finalized block: (number, hash). With one authority, the head.
    pub fn finalized(&self) -> (u64, B256) {
        self.finality.read().expect("finality lock").finalized()
    }

    /// New head blocks from now on (what `eth_subscribe` is fed from).
    pub fn subscribe_blocks(&self) -> broadcast::Receiver<Arc<StoredBlock>> {
        self.events.subscribe()
    }

    /// Announces `block`, sealed by `sealer` and just made the head: its seal
    /// counts as `sealer`'s finality vote, and subscribers are sent the block.
    /// Never waits on subscribers.
    pub fn publish_head(&self, block: &StoredBlock, sealer: Address) {
        let vote = self.finality.write().expect("finality lock").on_sealed(
            sealer,
            block.header.number,
            block.hash,
        );
        match vote {
            Ok(Some((number, hash))) => {
                tracing::debug!(target: "chain::finality", block = number, %hash, "finalized");
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(target: "chain::finality", block = block.header.number, "seal not counted: {e}")
            }
        }
        if self.events.receiver_count() > 0 {
            // Err only when every receiver went away meanwhile.
            let _ = self.events.send(Arc::new(block.clone()));
        }
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
        if !self.sealing {
            return Err(Error::Genesis(
                "this node was opened read-only: it does not seal".into(),
            ));
        }
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
        self.publish_head(&block, self.authority());
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
    /// Where JSON-RPC listens (HTTP and WebSocket).
    pub http_addr: SocketAddr,
    /// Where the WebSocket-only JSON-RPC server listens, if one was asked for.
    pub ws_addr: Option<SocketAddr>,
    rpc: jsonrpsee::server::ServerHandle,
    ws_rpc: Option<jsonrpsee::server::ServerHandle>,
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
        if let Some(ws) = self.ws_rpc {
            let _ = ws.stop();
            ws.stopped().await;
        }
        // Connection tasks of the server may still hold the node (and so the
        // database file) for a moment after it stopped: wait for them, so a
        // restart on the same datadir never finds the database still open.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&self.node) > 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// Opens the datadir, starts the sealer and serves JSON-RPC on `cfg.http`
/// (HTTP and WebSocket) and, if set, on `cfg.ws` (WebSocket only).
pub async fn start(cfg: NodeConfig, signer: PrivateKeySigner) -> Result<Running> {
    let node = Arc::new(Node::open(&cfg.datadir, signer, cfg.pool.clone())?);
    serve_node(node, cfg).await
}

/// Opens the datadir read-only ([`Node::open_readonly`]) and serves JSON-RPC
/// without sealing.
pub async fn start_readonly(cfg: NodeConfig) -> Result<Running> {
    let node = Arc::new(Node::open_readonly(&cfg.datadir, cfg.pool.clone())?);
    serve_node(node, cfg).await
}

async fn serve_node(node: Arc<Node>, cfg: NodeConfig) -> Result<Running> {
    let (rpc, http_addr) = crate::rpc::serve(node.clone(), cfg.http).await?;
    let (ws_rpc, ws_addr) = match cfg.ws {
        Some(addr) => {
            let (handle, bound) = crate::rpc::serve_ws(node.clone(), addr).await?;
            (Some(handle), Some(bound))
        }
        None => (None, None),
    };
    let shutdown = Arc::new(Notify::new());
    let sealer = if node.sealing {
        tokio::spawn(sealer_loop(node.clone(), shutdown.clone()))
    } else {
        let stop = shutdown.clone();
        tokio::spawn(async move { stop.notified().await })
    };
    tracing::info!(target: "chain::node", chain_id = node.spec.chain_id, %http_addr, ?ws_addr, "node started");
    Ok(Running {
        node,
        http_addr,
        ws_addr,
        rpc,
        ws_rpc,
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
