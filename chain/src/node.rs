//! The node: store + pool + sealer, and the running service (sealer task + RPC).
//!
//! With `period > 0` the sealer seals a block (empty or not) every `period`
//! seconds when this authority may (EIP-225): in turn at the due time
//! (difficulty 2); out of turn (difficulty 1) only after a further 500 ms plus
//! one second per rank among the backup signers (a deterministic back-off:
//! the signer in turn for the next block ranks last), if no block at that
//! height arrived meanwhile, and never while it signed one of the last `N/2 + 1` blocks or a
//! peer reports a longer chain ([`Node::set_peer_head`]). With `period == 0`
//! (single authority only) it seals as soon as transactions are pooled.
//! Blocks from peers come in through [`Node::import`] ([`crate::net`]).
//!
//! Each block that becomes the head goes through [`Node::publish_head`]: its seal
//! counts as the sealer's finality vote ([`crate::finality`]) and it is sent on a
//! broadcast channel that feeds `eth_subscribe`. Sending never waits: a
//! subscriber that falls more than [`EVENT_CAPACITY`] blocks behind is dropped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy_consensus::Header;
use alloy_primitives::{Address, B256, Bytes};
use alloy_signer_local::PrivateKeySigner;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

use crate::clique::{NONCE_AUTH, NONCE_DROP};
use crate::exec::{build_block, next_header};
use crate::finality::{Finality, FinalityError, SignedVote, Vote};
use crate::import::{ImportError, RlpBlock, SealMode};
use crate::pool::{Pool, PoolConfig, PoolError, decode_raw};
use crate::spec::ChainSpec;
use crate::store::{Store, StoreReader, StoredBlock};
use crate::{Error, Result};

mod reorg;
pub use reorg::Reorg;

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
    /// The authorities at the head ([`Node::signers`]).
    signers: RwLock<Vec<Address>>,
    head: RwLock<(Header, B256)>,
    new_tx: Notify,
    finality: RwLock<Finality>,
    events: broadcast::Sender<ChainEvent>,
    /// False for [`Node::open_readonly`] and [`Node::open_follower`].
    sealing: bool,
    /// Held while the head moves (sealing or importing).
    chain_lock: Mutex<()>,
    /// Woken when the head moves.
    head_moved: Notify,
    /// This authority's signed finality votes, for the network.
    votes: broadcast::Sender<SignedVote>,
    /// Raw transactions admitted through [`Node::submit_raw`], for the network.
    txs: broadcast::Sender<Bytes>,
    /// Signer votes to cast in sealed blocks (`clique_propose`): address → authorize.
    proposals: Mutex<BTreeMap<Address, bool>>,
    /// The highest head number a peer reported lately: no sealing below it.
    peer_head: AtomicU64,
    /// False until the network's first sync round ran.
    synced: AtomicBool,
    /// The last [`RECENT_VOTES`] valid votes of each authority (served to peers).
    recent_votes: Mutex<BTreeMap<Address, std::collections::VecDeque<SignedVote>>>,
}

/// How many recent votes per authority a node keeps to serve to peers.
pub const RECENT_VOTES: usize = 16;

/// Meta key of the persisted finalized head (number BE ‖ hash).
const FINALIZED_KEY: &str = "finalized";

/// What [`Node::import`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// The block was already stored.
    Known,
    /// The block is the new head.
    Head(u64, B256),
}

/// What the chain announces to subscribers, in order.
#[derive(Debug, Clone)]
pub enum ChainEvent {
    /// A new head.
    Head(Arc<StoredBlock>),
    /// A block a reorg took off the canonical chain (newest first, before
    /// the heads of the branch that replaced it).
    Removed(Arc<StoredBlock>),
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
        Self::open_inner(datadir, Some(signer), pool, false)
    }

    /// Opens a Clique chain in `datadir` to follow it without a key: blocks
    /// come from peers ([`Node::import`]), finality from the authorities' votes.
    pub fn open_follower(datadir: &Path, pool: PoolConfig) -> Result<Self> {
        Self::open_inner(datadir, None, pool, true)
    }

    /// Opens the chain in `datadir` to serve it without sealing, e.g. a chain
    /// imported with trusted seals ([`crate::import`]), which may not be a Clique
    /// chain. Its head counts as final (`safe`/`finalized` are the head) and
    /// [`Node::seal_next`] refuses.
    pub fn open_readonly(datadir: &Path, pool: PoolConfig) -> Result<Self> {
        Self::open_inner(datadir, None, pool, false)
    }

    fn open_inner(
        datadir: &Path,
        signer: Option<PrivateKeySigner>,
        pool: PoolConfig,
        follower: bool,
    ) -> Result<Self> {
        let sealing = signer.is_some();
        let store = Store::open(datadir)?;
        let json = store
            .genesis_json()?
            .ok_or_else(|| Error::NotInitialized(datadir.display().to_string()))?;
        let json = String::from_utf8(json).map_err(|e| Error::Corrupt(e.to_string()))?;
        let spec = Arc::new(ChainSpec::from_genesis_json(&json)?);
        let signer = match signer {
            Some(s) => s,
            None if follower => PrivateKeySigner::random(),
            None => return Self::readonly(spec, store, pool),
        };
        let reader = store.reader()?;
        let (_, head_hash) = reader.head()?;
        let head_header = reader
            .header(head_hash)?
            .ok_or_else(|| Error::Corrupt("head header missing".into()))?;
        // The authorities now: the genesis list changed by the votes since.
        let signers = crate::import::snapshot_at(&spec, &reader, &head_header)?.sorted_signers();
        drop(reader);
        if sealing && !signers.contains(&signer.address()) {
            return Err(Error::NotAuthority(signer.address()));
        }
        if signers.len() > 1 && spec.period == 0 {
            return Err(Error::Genesis(format!(
                "the genesis names {} authorities: they need a clique period > 0",
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
        let mut finality = match store.meta(FINALIZED_KEY)? {
            Some(v) if v.len() == 40 => {
                let number = u64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
                Finality::resume(spec.chain_id, &signers, (number, B256::from_slice(&v[8..])))
            }
            _ => Finality::new(spec.chain_id, &signers, genesis),
        };
        if header.number > 0 {
            let sealer = crate::clique::recover_sealer(&header)?;
            finality.on_sealed(sealer, header.number, hash)?;
        }
        Ok(Self::assemble(
            spec,
            store,
            pool,
            signer,
            signers,
            (header, hash),
            finality,
            sealing,
        ))
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "a private constructor shared by the open paths"
    )]
    fn assemble(
        spec: Arc<ChainSpec>,
        store: Store,
        pool: PoolConfig,
        signer: PrivateKeySigner,
        signers: Vec<Address>,
        head: (Header, B256),
        finality: Finality,
        sealing: bool,
    ) -> Self {
        Self {
            spec,
            store,
            pool: Mutex::new(Pool::new(pool)),
            signer,
            signers: RwLock::new(signers),
            head: RwLock::new(head),
            new_tx: Notify::new(),
            finality: RwLock::new(finality),
            events: broadcast::channel(EVENT_CAPACITY).0,
            sealing,
            chain_lock: Mutex::new(()),
            head_moved: Notify::new(),
            votes: broadcast::channel(EVENT_CAPACITY).0,
            txs: broadcast::channel(1024).0,
            proposals: Mutex::new(BTreeMap::new()),
            peer_head: AtomicU64::new(0),
            synced: AtomicBool::new(true),
            recent_votes: Mutex::new(BTreeMap::new()),
        }
    }

    /// The read-only node of [`Node::open_readonly`]: a throwaway key stands in
    /// for the authority so that the head is final.
    fn readonly(spec: Arc<ChainSpec>, store: Store, pool: PoolConfig) -> Result<Self> {
        let signer = PrivateKeySigner::random();
        let reader = store.reader()?;
        let (_, hash) = reader.head()?;
        let header = reader
            .header(hash)?
            .ok_or_else(|| Error::Corrupt("head header missing".into()))?;
        let signers = if spec.clique {
            crate::import::snapshot_at(&spec, &reader, &header)?.sorted_signers()
        } else {
            vec![]
        };
        let genesis = reader
            .canonical_hash(0)?
            .ok_or_else(|| Error::Corrupt("genesis hash missing".into()))?;
        drop(reader);
        let mut finality = Finality::new(spec.chain_id, &[signer.address()], genesis);
        if header.number > 0 {
            finality.on_sealed(signer.address(), header.number, hash)?;
        }
        Ok(Self::assemble(
            spec,
            store,
            pool,
            signer,
            signers,
            (header, hash),
            finality,
            false,
        ))
    }

    /// The head header and its hash.
    pub fn head(&self) -> (Header, B256) {
        self.head.read().expect("head lock").clone()
    }

    /// The finalized block: (number, hash). With one authority, the head.
    pub fn finalized(&self) -> (u64, B256) {
        self.finality.read().expect("finality lock").finalized()
    }

    /// New heads, and blocks a reorg took off the chain, from now on (what
    /// `eth_subscribe` is fed from).
    pub fn subscribe_blocks(&self) -> broadcast::Receiver<ChainEvent> {
        self.events.subscribe()
    }

    /// Tells subscribers that a reorg took `block` off the canonical chain.
    fn publish_removed(&self, block: &StoredBlock) {
        if self.events.receiver_count() > 0 {
            let _ = self
                .events
                .send(ChainEvent::Removed(Arc::new(block.clone())));
        }
    }

    /// Announces `block`, sealed by `sealer` and just made the head: its seal
    /// counts as `sealer`'s finality vote, and subscribers are sent the block.
    /// Never waits on subscribers.
    /// An authority also signs a finality vote for the block, counts it and
    /// sends it to the network ([`Node::subscribe_votes`]).
    pub fn publish_head(&self, block: &StoredBlock, sealer: Address) {
        self.follow_votes(&block.header);
        let vote = Vote {
            chain_id: self.spec.chain_id,
            number: block.header.number,
            hash: block.hash,
        };
        if let Err(e) = self.count_vote(sealer, vote) {
            tracing::warn!(target: "chain::finality", block = block.header.number, "seal not counted: {e}");
        }
        if self.sealing {
            match SignedVote::sign(vote, &self.signer) {
                Ok(signed) => {
                    if let Err(e) = self.count_vote(self.authority(), vote) {
                        tracing::warn!(target: "chain::finality", block = vote.number, "own vote not counted: {e}");
                    }
                    self.remember(self.authority(), signed);
                    if self.votes.receiver_count() > 0 {
                        let _ = self.votes.send(signed);
                    }
                }
                Err(e) => tracing::error!(target: "chain::finality", "cannot sign a vote: {e}"),
            }
        }
        self.head_moved.notify_waiters();
        if self.events.receiver_count() > 0 {
            // Err only when every receiver went away meanwhile.
            let _ = self.events.send(ChainEvent::Head(Arc::new(block.clone())));
        }
    }

    /// Counts `voter`'s vote; persists the finalized head when it moves.
    fn count_vote(&self, voter: Address, vote: Vote) -> Result<Option<(u64, B256)>, FinalityError> {
        let mut finality = self.finality.write().expect("finality lock");
        let moved = finality.vote(voter, vote)?;
        drop(finality);
        if let Some((number, hash)) = moved {
            self.persist_finalized(number, hash);
        }
        Ok(moved)
    }

    fn persist_finalized(&self, number: u64, hash: B256) {
        let mut v = number.to_be_bytes().to_vec();
        v.extend_from_slice(hash.as_slice());
        if let Err(e) = self.store.set_meta(FINALIZED_KEY, &v) {
            tracing::error!(target: "chain::finality", "cannot persist the finalized head: {e}");
        }
        tracing::debug!(target: "chain::finality", block = number, %hash, "finalized");
    }

    /// Counts a finality vote received from the network: its signer must be an
    /// authority and it must name this chain. Returns the new finalized head if
    /// it moved.
    pub fn receive_vote(&self, signed: &SignedVote) -> Result<Option<(u64, B256)>, FinalityError> {
        let voter = signed.voter()?;
        let moved = self.count_vote(voter, signed.vote)?;
        self.remember(voter, *signed);
        Ok(moved)
    }

    fn remember(&self, voter: Address, signed: SignedVote) {
        let mut all = self.recent_votes.lock().expect("votes lock");
        let votes = all.entry(voter).or_default();
        if votes.contains(&signed) {
            return;
        }
        if votes.len() == RECENT_VOTES {
            votes.pop_front();
        }
        votes.push_back(signed);
    }

    /// The last valid finality votes seen of each authority (own included).
    pub fn recent_votes(&self) -> Vec<SignedVote> {
        let all = self.recent_votes.lock().expect("votes lock");
        all.values().flatten().copied().collect()
    }

    /// This authority's finality votes from now on.
    pub fn subscribe_votes(&self) -> broadcast::Receiver<SignedVote> {
        self.votes.subscribe()
    }

    /// Raw transactions admitted from now on (to forward to peers).
    pub fn subscribe_txs(&self) -> broadcast::Receiver<Bytes> {
        self.txs.subscribe()
    }

    /// Whether this node seals (an authority with its key).
    pub fn is_sealing(&self) -> bool {
        self.sealing
    }

    /// Records the highest head a peer reported: the node does not seal while
    /// its own head is below it.
    pub fn set_peer_head(&self, number: u64) {
        self.peer_head.store(number, Ordering::Relaxed);
    }

    /// Sets whether the initial sync ran (no sealing before).
    pub fn set_synced(&self, synced: bool) {
        self.synced.store(synced, Ordering::Relaxed);
    }

    /// Queues a signer vote (`clique_propose`): cast in blocks this authority
    /// seals until discarded.
    pub fn propose(&self, address: Address, authorize: bool) {
        self.proposals
            .lock()
            .expect("proposals lock")
            .insert(address, authorize);
    }

    /// Drops a queued signer vote (`clique_discard`).
    pub fn discard(&self, address: Address) {
        self.proposals
            .lock()
            .expect("proposals lock")
            .remove(&address);
    }

    /// The queued signer votes.
    pub fn proposals(&self) -> BTreeMap<Address, bool> {
        self.proposals.lock().expect("proposals lock").clone()
    }

    /// The Clique signer snapshot at the head.
    pub fn snapshot(&self) -> Result<crate::clique::tally::Snapshot> {
        let (head, _) = self.head();
        crate::import::snapshot_at(&self.spec, &self.reader()?, &head)
    }

    /// Validates (seal included), executes and stores a block from a peer on
    /// top of the head, then makes it the head: the pool drops its
    /// transactions, subscribers get it and an authority votes for it. A block
    /// at the finalized height other than the finalized block is refused.
    pub fn import(&self, block: RlpBlock) -> Result<Imported> {
        let _chain = self.chain_lock.lock().expect("chain lock");
        let hash = block.header.hash_slow();
        let number = block.header.number;
        if self.reader()?.block_number(hash)?.is_some() {
            return Ok(Imported::Known);
        }
        let (fin_number, fin_hash) = self.finalized();
        if number == fin_number && hash != fin_hash {
            return Err(ImportError::ConflictsWithFinalized {
                number,
                finalized: fin_hash,
                got: hash,
            }
            .into());
        }
        let stored = crate::import::import_block(&self.store, &self.spec, block, SealMode::Verify)?;
        let sealer = crate::clique::recover_sealer(&stored.header)?;
        self.set_head(&stored, &[])?;
        self.publish_head(&stored, sealer);
        tracing::info!(target: "chain::import", block = number, %hash, txs = stored.transactions.len(), "imported");
        Ok(Imported::Head(number, hash))
    }

    /// Makes `block` the head and drops its (and `rejected`) transactions from
    /// the pool, under the pool lock so admission never sees a head whose
    /// included transactions are still pooled.
    fn set_head(&self, block: &StoredBlock, rejected: &[(B256, String)]) -> Result<()> {
        let mut pool = self.pool.lock().expect("pool lock");
        *self.head.write().expect("head lock") = (block.header.clone(), block.hash);
        let reader = self.reader()?;
        let removed = block
            .transactions
            .iter()
            .map(|t| *t.tx_hash())
            .chain(rejected.iter().map(|(h, _)| *h));
        pool.on_block(removed, |a| {
            reader.account(a).ok().flatten().map_or(0, |acc| acc.nonce)
        });
        Ok(())
    }

    /// The full RLP block (header, transactions, ommers, withdrawals) `number`
    /// of the canonical chain.
    pub fn rlp_block(&self, number: u64) -> Result<Option<Bytes>> {
        let reader = self.reader()?;
        let Some(block) = reader.block_by_number(number)? else {
            return Ok(None);
        };
        Ok(Some(
            alloy_rlp::encode(reorg::rlp_of(&reader, block)?).into(),
        ))
    }

    /// A read snapshot of the store.
    pub fn reader(&self) -> Result<StoreReader> {
        self.store.reader()
    }

    /// The authorities at the head, in ascending order: the genesis list as
    /// changed by the Clique votes since (what `clique_getSigners` answers).
    pub fn signers(&self) -> Vec<Address> {
        self.signers.read().expect("signers lock").clone()
    }

    /// After a block that carries a vote: the authorities at the new head,
    /// for `clique_getSigners` and the finality overlay (whose quorum is
    /// more than two thirds of the current authorities).
    fn follow_votes(&self, header: &Header) {
        if header.beneficiary == Address::ZERO || !self.spec.clique {
            return;
        }
        let snap = self
            .reader()
            .and_then(|r| crate::import::snapshot_at(&self.spec, &r, header));
        let now = match snap {
            Ok(s) => s.sorted_signers(),
            Err(e) => {
                tracing::error!(target: "chain::clique", block = header.number, "cannot tally the votes: {e}");
                return;
            }
        };
        let mut signers = self.signers.write().expect("signers lock");
        if *signers == now {
            return;
        }
        tracing::info!(target: "chain::clique", block = header.number, ?now, "the authorities changed");
        *signers = now.clone();
        drop(signers);
        let mut finality = self.finality.write().expect("finality lock");
        // A read-only node's finality stands on its own throwaway key.
        let readonly = !self.sealing && finality.authorities().eq([&self.signer.address()]);
        if !readonly {
            let moved = finality.set_authorities(&now);
            drop(finality);
            if let Some((number, hash)) = moved {
                self.persist_finalized(number, hash);
            }
        }
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
        if self.txs.receiver_count() > 0 {
            let _ = self.txs.send(Bytes::copy_from_slice(raw));
        }
        tracing::debug!(target: "chain::pool", tx_hash = %hash, "pooled");
        Ok(hash)
    }

    /// Builds, seals and durably stores the next block from the pool.
    pub fn seal_next(&self, timestamp: u64) -> Result<StoredBlock> {
        let (_, head) = self.head();
        self.seal_on(head, timestamp)?
            .ok_or_else(|| Error::Corrupt("the head moved while sealing".into()))
    }

    /// Like [`Node::seal_next`] if the head is still `parent_hash` (else `None`:
    /// a block from a peer arrived meanwhile). Refuses when this authority
    /// signed recently (EIP-225).
    pub fn seal_on(&self, parent_hash: B256, timestamp: u64) -> Result<Option<StoredBlock>> {
        if !self.sealing {
            return Err(Error::Genesis(
                "this node was opened read-only: it does not seal".into(),
            ));
        }
        let _chain = self.chain_lock.lock().expect("chain lock");
        let (parent, hash) = self.head();
        if hash != parent_hash {
            return Ok(None);
        }
        let snap = crate::import::snapshot_at(&self.spec, &self.reader()?, &parent)?;
        let me = self.authority();
        if !snap.may_seal(parent.number + 1, me) {
            let why = if snap.signers.contains(&me) {
                crate::clique::CliqueError::RecentlySigned(me)
            } else {
                crate::clique::CliqueError::UnauthorizedSigner(me)
            };
            return Err(ImportError::Seal(why).into());
        }
        let signers = snap.sorted_signers();
        let mut header = next_header(&self.spec, &parent, timestamp, me, &signers);
        if !header.number.is_multiple_of(self.spec.epoch) {
            // One queued signer vote per block, rotating by height.
            let votes: Vec<_> = self
                .proposals()
                .into_iter()
                .filter(|(a, auth)| snap.signers.contains(a) != *auth)
                .collect();
            if !votes.is_empty() {
                let (address, authorize) = votes[header.number as usize % votes.len()];
                header.beneficiary = address;
                header.nonce = if authorize { NONCE_AUTH } else { NONCE_DROP };
            }
        }
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
        self.set_head(&block, &built.rejected)?;
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
        Ok(Some(block))
    }

    /// When this authority should seal on top of `parent`: `None` if it may
    /// not (signed recently, not an authority, still syncing, a peer is
    /// ahead), else the extra delay after the due time (zero in turn; out of
    /// turn 500 ms plus [`BACKOFF_MS`] per rank among the backups).
    fn seal_delay(&self, parent: &Header) -> Option<Duration> {
        if !self.synced.load(Ordering::Relaxed)
            || self.peer_head.load(Ordering::Relaxed) > parent.number
        {
            return None;
        }
        let snap = crate::import::snapshot_at(&self.spec, &self.reader().ok()?, parent).ok()?;
        let number = parent.number + 1;
        let me = self.authority();
        if !snap.may_seal(number, me) {
            return None;
        }
        if crate::clique::in_turn(number, me, &snap.sorted_signers()) {
            return Some(Duration::ZERO);
        }
        // Out of turn, the signers that may seal take ranks (those not in turn
        // for the next block first, then by distance from the one in turn),
        // and each waits 500 ms plus a second per rank: a deterministic
        // back-off, as BSC's Parlia does, instead of geth's random wiggle.
        // Two backups never race for one slot, so without reorgs a slow
        // network does not fork the chain.
        let signers = snap.sorted_signers();
        let n = signers.len();
        let due = (number % n as u64) as usize;
        let mut backups: Vec<(bool, usize, Address)> = signers
            .iter()
            .enumerate()
            .filter(|(i, s)| *i != due && snap.may_seal(number, **s))
            .map(|(i, s)| {
                (
                    crate::clique::in_turn(number + 1, *s, &signers),
                    (i + n - due) % n,
                    *s,
                )
            })
            .collect();
        backups.sort();
        let rank = backups.iter().position(|b| b.2 == me)? as u64;
        Some(Duration::from_millis(500 + rank * BACKOFF_MS))
    }
}

/// How much longer each further backup signer waits to seal out of turn, ms.
const BACKOFF_MS: u64 = 1_000;

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

/// Opens the datadir as a follower ([`Node::open_follower`]: no key, blocks
/// from peers through [`crate::net::spawn`]) and serves JSON-RPC.
pub async fn start_follower(cfg: NodeConfig) -> Result<Running> {
    let node = Arc::new(Node::open_follower(&cfg.datadir, cfg.pool.clone())?);
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
        let (parent, parent_hash) = node.head();
        let wait = if period == 0 {
            // A wake-up stored while the last block was being sealed finds
            // the pool empty again: wait on, never seal an empty block.
            while node.with_pool(Pool::is_empty) {
                tokio::select! {
                    () = node.new_tx.notified() => {}
                    () = shutdown.notified() => return,
                }
            }
            Duration::ZERO
        } else {
            let Some(extra) = node.seal_delay(&parent) else {
                // Not ours to seal now: wait for the head to move (or re-check).
                tokio::select! {
                    () = node.head_moved.notified() => {}
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                    () = shutdown.notified() => return,
                }
                continue;
            };
            let due = parent.timestamp + period;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            Duration::from_secs(due).saturating_sub(now) + extra
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = node.head_moved.notified(), if period > 0 => continue,
            () = shutdown.notified() => return,
        }
        if period > 0 && node.seal_delay(&parent).is_none() {
            continue;
        }
        let timestamp = now_secs().max(parent.timestamp + period);
        let n = node.clone();
        match tokio::task::spawn_blocking(move || n.seal_on(parent_hash, timestamp)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(target: "chain::sealer", "sealing failed: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => tracing::error!(target: "chain::sealer", "sealer task panicked: {e}"),
        }
    }
}
