//! Jobs through their life, and the hosts that serve them (no I/O).
//!
//! A job is a bid: the engine's deals assign its replicas to hosts; hosts
//! then sign a [`Start`] and a [`Receipt`] for each. Replicated verification:
//! once more than half of a job's replicas agree on the output (with its
//! exit status), the job is `done`, those deals `accepted` and the others
//! `rejected`. A verdict needs more than half of the replicas reported (and
//! of those wanted): when every replica reported and none has that, the job
//! goes to one more host at a time ([`Jobs::due_extras`]), up to
//! `2 × replicas + 1` reports, and only then `failed`. See
//! docs/design/jobs-api.md for the states.
//!
//! [`Jobs`] is fed every committed journal entry, in order, then the stored
//! host reports; both are replayed at start, so it is rebuilt after a
//! restart. Finished jobs beyond [`KEEP_FINISHED`] are forgotten, oldest
//! first, so memory stays bounded.

use std::collections::{BTreeMap, HashMap, VecDeque};

use alloy_primitives::{Address, B256};
use netmind_protocol::work::{Receipt, Start};
use serde::Serialize;

use crate::engine::{Command, Event, Price, Side, Time};
use crate::journal::Entry;

/// Finished jobs kept in memory (older ones are forgotten).
pub const KEEP_FINISHED: usize = 100_000;

/// How long a host counts as online after it was last heard from.
pub const ONLINE_FOR: Time = 10 * 60 * 1000;

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// The bid waits for offers.
    Queued,
    /// Deals made; no host has started.
    Matched,
    /// A host runs a replica.
    Running,
    /// Some receipts are in; waiting for the others.
    Verifying,
    /// A majority of replicas agree; the result is released.
    Done,
    /// No majority.
    Failed,
    /// The owner cancelled it.
    Cancelled,
    /// The deadline passed unmatched.
    Expired,
}

impl JobState {
    /// Done, failed, cancelled or expired.
    pub fn finished(self) -> bool {
        matches!(
            self,
            Self::Done | Self::Failed | Self::Cancelled | Self::Expired
        )
    }

    /// The state's name, as the API writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Matched => "matched",
            Self::Running => "running",
            Self::Verifying => "verifying",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }
}

/// A replica's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DealState {
    /// Matched; the host has not started.
    Assigned,
    /// The host started it.
    Running,
    /// The host's receipt is in.
    Reported,
    /// Its output is the accepted one.
    Accepted,
    /// Its output disagrees with the majority.
    Rejected,
    /// The host did not start or report in time; the replica went to another host.
    Lapsed,
    /// The owner cancelled the job before the host reported.
    Cancelled,
}

impl DealState {
    /// Assigned or running: its host may still start, log and report it.
    pub fn open(self) -> bool {
        matches!(self, Self::Assigned | Self::Running)
    }
}

/// One replica of a job.
#[derive(Debug, Clone, Serialize)]
pub struct JobDeal {
    /// The deal id.
    pub id: B256,
    /// The host.
    pub host: Address,
    /// Which replica.
    pub replica: u32,
    /// Its state.
    pub state: DealState,
    /// Price per second (decimal).
    pub price: String,
    /// When it was made, ms.
    pub assigned: Time,
    /// When the host started, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<Time>,
    /// The output archive's id, once reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<B256>,
    /// How the run ended, once reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The exit code, once reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    /// The run's wall time, once reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_ms: Option<u64>,
    /// GPU time, once reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_time_ms: Option<u64>,
    /// The head of the GPU dispatch hash chain, when the job used the GPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_hash: Option<B256>,
}

/// The accepted result of a job.
#[derive(Debug, Clone, Serialize)]
pub struct JobResult {
    /// The output archive's id (a blob).
    pub output: B256,
    /// How the run ended.
    pub status: String,
    /// Its exit code.
    pub exit: i32,
    /// The hosts that agree.
    pub hosts: Vec<Address>,
}

/// A job: a bid and its replicas.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// The bid id.
    pub id: B256,
    /// The owner.
    pub owner: Address,
    /// The class.
    pub class: String,
    /// Its state.
    pub state: JobState,
    /// Runs wanted on distinct hosts.
    pub replicas: u32,
    /// Most paid per second (decimal).
    pub max_price: String,
    /// The longest run, seconds.
    pub max_seconds: u64,
    /// The bundle id.
    pub bundle: B256,
    /// The input id (zero for none).
    pub input: B256,
    /// Placed, ms.
    pub created: Time,
    /// Last changed, ms.
    pub updated: Time,
    /// The replicas matched so far.
    pub deals: Vec<JobDeal>,
    /// The accepted result, once done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<JobResult>,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The W3C trace context of the market's `market.order` span for this
    /// job, when its submitter was traced: hosts continue the job's trace
    /// from it (docs/TELEMETRY.md). Not journaled: gone after a restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// Replicas added because the reports had no majority.
    pub extra_replicas: u32,
    /// Every replica reported without a majority: one more is due.
    #[serde(skip)]
    pub(crate) wants_extra: bool,
    /// The bid as the engine took it (for replicas placed again).
    #[serde(skip)]
    pub(crate) bid: Option<crate::engine::Bid>,
}

/// A host as the market sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    /// Its address.
    pub address: Address,
    /// `idle`, `busy` or `offline`.
    pub status: &'static str,
    /// Classes it offers in.
    pub classes: Vec<String>,
    /// GPU model (empty for none).
    pub gpu_model: String,
    /// GPU memory, bytes.
    pub vram: u64,
    /// CPU cores per slot.
    pub cores: u32,
    /// Memory per slot, bytes.
    pub memory: u64,
    /// Benchmark score.
    pub score: u64,
    /// Its lowest open ask (decimal), empty when none is open.
    pub price: String,
    /// Slots of its open offers.
    pub slots_total: u32,
    /// Free slots of its open offers.
    pub slots_free: u32,
    /// Replicas it runs now.
    pub running: u32,
    /// Last heard from, ms.
    pub last_seen: Time,
}

/// Why a host's start or receipt is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkError {
    /// No such deal.
    #[error("no deal {0} is known to this market")]
    UnknownDeal(B256),
    /// Another host holds it.
    #[error("deal {deal} is held by host {holder}, not {host}")]
    NotYours {
        /// The deal.
        deal: B256,
        /// Its host.
        holder: Address,
        /// Who asked.
        host: Address,
    },
    /// No job has this id.
    #[error("no job {0} is known to this market")]
    UnknownJob(B256),
    /// Only the job's owner may cancel it.
    #[error("job {job} belongs to {owner}, not {by}: only its owner may cancel it")]
    NotOwner {
        /// The job.
        job: B256,
        /// Its owner.
        owner: Address,
        /// Who asked.
        by: Address,
    },
    /// The job is over.
    #[error("job {job} is already {state}: there is nothing to cancel")]
    Finished {
        /// The job.
        job: B256,
        /// Its state.
        state: &'static str,
    },
    /// Already reported, or the job is over.
    #[error("deal {deal} is {state:?} and its job is {job}: nothing more is accepted for it")]
    Closed {
        /// The deal.
        deal: B256,
        /// Its state.
        state: DealState,
        /// Its job's state.
        job: &'static str,
    },
}

#[derive(Debug, Clone)]
struct OpenOffer {
    host: Address,
    price: Price,
    slots: u32,
    free: u32,
}

#[derive(Debug, Clone, Default)]
struct HostRecord {
    classes: Vec<String>,
    gpu_model: String,
    vram: u64,
    cores: u32,
    memory: u64,
    score: u64,
    last_seen: Time,
}

/// Every job and host (see the module docs).
#[derive(Debug, Default)]
pub struct Jobs {
    /// Boxed: growing the map moves pointers, not every job (a job is a few
    /// hundred bytes; moving 100,000 of them stalled the sequencer ~100 ms).
    jobs: Sharded<Box<Job>>,
    /// Job ids by creation, for listings and forgetting.
    order: BTreeMap<(Time, B256), ()>,
    finished: VecDeque<B256>,
    /// Jobs not finished (what [`Jobs::hosts`] and the lease checks walk,
    /// instead of every job kept).
    live: Sharded<()>,
    by_deal: Sharded<B256>,
    offers: Sharded<OpenOffer>,
    hosts: HashMap<Address, HostRecord>,
    /// Bids placed again for lapsed replicas, or for extra ones → their job.
    pub(crate) aliases: HashMap<B256, B256>,
    /// Jobs whose reports had no majority and want one more replica.
    pub(crate) wanting: std::collections::HashSet<B256>,
    /// The last journal entry applied.
    seq: u64,
    /// Jobs changed since the last [`Jobs::take_changed`].
    changed: Vec<B256>,
    /// Trace context for bids on their way through the sequencer.
    traces: HashMap<B256, String>,
    /// When each lease may run out (see [`lease::Leases`]).
    leases: lease::Leases,
}

impl Jobs {
    /// Applies one committed journal entry.
    pub fn apply_entry(&mut self, entry: &Entry) {
        self.seq += 1;
        let at = entry.at;
        match &entry.command {
            // A replica placed again after a lapse belongs to its job.
            Command::Bid(b) if self.aliases.contains_key(&b.id) => {}
            Command::Bid(b) => {
                let ids = entry
                    .signed
                    .as_deref()
                    .map_or((B256::ZERO, B256::ZERO), bundle_ids);
                let job = Job {
                    id: b.id,
                    owner: b.owner,
                    class: b.class.clone(),
                    state: JobState::Queued,
                    replicas: b.replicas,
                    max_price: b.max_price.to_string(),
                    max_seconds: b.max_seconds,
                    bundle: ids.0,
                    input: ids.1,
                    created: at,
                    updated: at,
                    deals: Vec::new(),
                    result: None,
                    reason: None,
                    traceparent: self.traces.remove(&b.id),
                    extra_replicas: 0,
                    wants_extra: false,
                    bid: Some(b.clone()),
                };
                self.order.insert((at, b.id), ());
                self.live.insert(b.id, ());
                self.jobs.insert(b.id, Box::new(job));
                self.changed.push(b.id);
            }
            Command::Offer(o) => {
                let h = self.hosts.entry(o.host).or_default();
                if !h.classes.contains(&o.class) {
                    h.classes.push(o.class.clone());
                }
                h.gpu_model = o.caps.gpu_model.clone().unwrap_or_default();
                h.vram = o.caps.vram;
                h.cores = o.caps.cores;
                h.memory = o.caps.memory;
                h.score = o.caps.score;
                h.last_seen = at;
                self.offers.insert(
                    o.id,
                    OpenOffer {
                        host: o.host,
                        price: o.price,
                        slots: o.slots,
                        free: o.slots,
                    },
                );
            }
            _ => {}
        }
        for e in &entry.events {
            self.apply_event(e, at);
        }
        self.forget_old();
    }

    fn apply_event(&mut self, e: &Event, at: Time) {
        match e {
            Event::Deal(d) => {
                if let Some(o) = self.offers.get_mut(&d.offer) {
                    o.free = o.free.saturating_sub(1);
                    if o.free == 0 {
                        self.offers.remove(&d.offer);
                    }
                }
                let job_id = self.aliases.get(&d.bid).copied().unwrap_or(d.bid);
                self.by_deal.insert(d.id, job_id);
                if let Some(job) = self.jobs.get_mut(&job_id) {
                    self.leases.assigned(d.time, d.id);
                    job.deals.push(JobDeal {
                        id: d.id,
                        host: d.host,
                        replica: d.replica,
                        state: DealState::Assigned,
                        price: d.price.to_string(),
                        assigned: d.time,
                        started: None,
                        output: None,
                        status: None,
                        exit: None,
                        runtime_ms: None,
                        gpu_time_ms: None,
                        gpu_hash: None,
                    });
                    if job.state == JobState::Queued {
                        job.state = JobState::Matched;
                    }
                    job.updated = at;
                    self.changed.push(job_id);
                }
            }
            Event::Cancelled { id } => {
                self.offers.remove(id);
                self.finish_unless_done(id, JobState::Cancelled, at);
            }
            Event::Expired { id, side } => match side {
                Side::Offer => {
                    self.offers.remove(id);
                }
                // A bid that lapses with deals keeps running them.
                Side::Bid => {
                    if self.jobs.get(id).is_some_and(|j| j.deals.is_empty()) {
                        self.finish_unless_done(id, JobState::Expired, at);
                    }
                }
            },
            _ => {}
        }
    }

    fn finish_unless_done(&mut self, id: &B256, state: JobState, at: Time) {
        if let Some(job) = self.jobs.get_mut(id)
            && !job.state.finished()
        {
            if state == JobState::Cancelled {
                for d in &mut job.deals {
                    if d.state.open() {
                        d.state = DealState::Cancelled;
                    }
                }
            }
            job.state = state;
            job.updated = at;
            self.finished.push_back(*id);
            self.live.remove(id);
            self.changed.push(*id);
        }
    }

    fn forget_old(&mut self) {
        while self.finished.len() > KEEP_FINISHED {
            let Some(id) = self.finished.pop_front() else {
                break;
            };
            if let Some(job) = self.jobs.remove(&id) {
                self.order.remove(&(job.created, id));
                for d in &job.deals {
                    self.by_deal.remove(&d.id);
                }
            }
        }
    }

    /// Where a host's start or receipt for `deal` would go, or why it may not.
    fn deal_mut(&mut self, deal: B256, host: Address) -> Result<(&mut Job, usize), WorkError> {
        let bid = *self
            .by_deal
            .get(&deal)
            .ok_or(WorkError::UnknownDeal(deal))?;
        let job = self
            .jobs
            .get_mut(&bid)
            .ok_or(WorkError::UnknownDeal(deal))?;
        let i = job
            .deals
            .iter()
            .position(|d| d.id == deal)
            .ok_or(WorkError::UnknownDeal(deal))?;
        let d = &job.deals[i];
        if d.host != host {
            return Err(WorkError::NotYours {
                deal,
                holder: d.host,
                host,
            });
        }
        if job.state.finished() || !d.state.open() {
            return Err(WorkError::Closed {
                deal,
                state: d.state,
                job: job.state.name(),
            });
        }
        Ok((job, i))
    }

    /// Checks that `start` may be applied (the signature is checked by the caller).
    ///
    /// # Errors
    ///
    /// The deal is unknown, another host's, or closed.
    pub fn check_start(&mut self, start: &Start) -> Result<(), WorkError> {
        self.deal_mut(start.deal, start.host).map(|_| ())
    }

    /// Checks that `host` holds `deal` and that it is open (a host may
    /// send its job's log until it reports).
    ///
    /// # Errors
    ///
    /// As [`Jobs::check_start`].
    pub fn check_open(&mut self, deal: B256, host: Address) -> Result<(), WorkError> {
        self.deal_mut(deal, host).map(|_| ())
    }

    /// A host started a replica.
    ///
    /// # Errors
    ///
    /// As [`Jobs::check_start`].
    pub fn start(&mut self, start: &Start, at: Time) -> Result<&Job, WorkError> {
        let (job, i) = self.deal_mut(start.deal, start.host)?;
        let d = &mut job.deals[i];
        let mut running_until = None;
        if d.state == DealState::Assigned {
            d.state = DealState::Running;
            d.started = Some(at);
            running_until = Some(lease::run_ends(at, job.max_seconds));
        }
        if matches!(job.state, JobState::Queued | JobState::Matched) {
            job.state = JobState::Running;
        }
        job.updated = at;
        let id = job.id;
        if let Some(until) = running_until {
            self.leases.started(until, start.deal);
        }
        self.touch(start.host, at);
        self.changed.push(id);
        Ok(self.jobs.get(&id).expect("the job just changed"))
    }

    /// Checks that `receipt` may be applied.
    ///
    /// # Errors
    ///
    /// As [`Jobs::check_start`].
    pub fn check_receipt(&mut self, receipt: &Receipt) -> Result<(), WorkError> {
        self.deal_mut(receipt.deal, receipt.host).map(|_| ())
    }

    /// A host's receipt: records it, then decides the job when a verdict
    /// has a majority of its replicas or every replica reported.
    ///
    /// # Errors
    ///
    /// As [`Jobs::check_start`].
    pub fn receipt(&mut self, r: &Receipt, at: Time) -> Result<&Job, WorkError> {
        let (job, i) = self.deal_mut(r.deal, r.host)?;
        let d = &mut job.deals[i];
        d.state = DealState::Reported;
        d.started.get_or_insert(at);
        d.output = Some(r.output);
        d.status = Some(r.status.clone());
        d.exit = Some(r.exitCode);
        d.runtime_ms = Some(r.runtimeMs);
        d.gpu_time_ms = Some(r.gpuTimeMs);
        d.gpu_hash = (r.gpuHash != B256::ZERO).then_some(r.gpuHash);
        job.updated = at;
        decide(job);
        let (id, finished, wants_extra) = (job.id, job.state.finished(), job.wants_extra);
        if finished {
            self.finished.push_back(id);
            self.live.remove(&id);
        }
        if wants_extra {
            self.wanting.insert(id);
        }
        self.touch(r.host, at);
        self.changed.push(id);
        Ok(self.jobs.get(&id).expect("the job just changed"))
    }

    fn touch(&mut self, host: Address, at: Time) {
        let h = self.hosts.entry(host).or_default();
        h.last_seen = h.last_seen.max(at);
    }

    /// A job (by its bid, or a bid placed again for one of its replicas).
    pub fn job(&self, id: &B256) -> Option<&Job> {
        self.jobs
            .get(self.aliases.get(id).unwrap_or(id))
            .map(|j| &**j)
    }

    /// The job a deal belongs to.
    pub fn job_of_deal(&self, deal: &B256) -> Option<&Job> {
        self.jobs.get(self.by_deal.get(deal)?).map(|j| &**j)
    }

    /// Jobs newest first, filtered by owner and state, at most `limit`.
    pub fn list(&self, owner: Option<Address>, state: Option<&str>, limit: usize) -> Vec<&Job> {
        self.order
            .keys()
            .rev()
            .filter_map(|(_, id)| self.jobs.get(id).map(|j| &**j))
            .filter(|j| owner.is_none_or(|o| j.owner == o))
            .filter(|j| state.is_none_or(|s| j.state.name() == s))
            .take(limit)
            .collect()
    }

    /// Hosts heard from within [`ONLINE_FOR`] of `now`, or with open offers
    /// or running replicas.
    pub fn hosts(&self, now: Time) -> Vec<Host> {
        let mut running: HashMap<Address, u32> = HashMap::new();
        for job in self.live_jobs() {
            for d in &job.deals {
                if d.state.open() {
                    *running.entry(d.host).or_default() += 1;
                }
            }
        }
        let mut open: HashMap<Address, (u32, u32, Option<Price>)> = HashMap::new();
        for o in self.offers.values() {
            let e = open.entry(o.host).or_insert((0, 0, None));
            e.0 += o.slots;
            e.1 += o.free;
            e.2 = Some(e.2.map_or(o.price, |p: Price| p.min(o.price)));
        }
        let mut out: Vec<Host> = self
            .hosts
            .iter()
            .filter_map(|(addr, h)| {
                let (total, free, price) = open.get(addr).copied().unwrap_or((0, 0, None));
                let run = running.get(addr).copied().unwrap_or(0);
                let online = now.saturating_sub(h.last_seen) <= ONLINE_FOR || total > 0 || run > 0;
                online.then(|| Host {
                    address: *addr,
                    status: if run > 0 {
                        "busy"
                    } else if total > 0 {
                        "idle"
                    } else {
                        "offline"
                    },
                    classes: h.classes.clone(),
                    gpu_model: h.gpu_model.clone(),
                    vram: h.vram,
                    cores: h.cores,
                    memory: h.memory,
                    score: h.score,
                    price: price.map(|p| p.to_string()).unwrap_or_default(),
                    slots_total: total,
                    slots_free: free,
                    running: run,
                    last_seen: h.last_seen,
                })
            })
            .collect();
        out.sort_by_key(|h| h.address);
        out
    }

    /// Gives the job that bid `id` will make the trace context
    /// `traceparent` (set before the bid is sequenced, so a host never sees
    /// the job without it).
    pub fn expect_trace(&mut self, id: B256, traceparent: String) {
        self.traces.insert(id, traceparent);
    }

    /// Drops a trace context [`Jobs::expect_trace`] left unused (a refused bid).
    pub fn forget_trace(&mut self, id: &B256) {
        self.traces.remove(id);
    }

    /// The jobs not finished.
    pub(crate) fn live_jobs(&self) -> impl Iterator<Item = &Job> {
        self.live
            .keys()
            .filter_map(|id| self.jobs.get(id).map(|j| &**j))
    }

    /// Ids of the jobs changed since the last call (for event streams).
    pub fn take_changed(&mut self) -> Vec<B256> {
        let mut ids = std::mem::take(&mut self.changed);
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// The bundle and input ids of a signed job order's JSON.
fn bundle_ids(signed: &str) -> (B256, B256) {
    #[derive(serde::Deserialize)]
    struct Ids {
        bundle: B256,
        input: B256,
    }
    #[derive(serde::Deserialize)]
    struct Signed {
        order: Ids,
    }
    serde_json::from_str::<Signed>(signed).map_or((B256::ZERO, B256::ZERO), |s| {
        (s.order.bundle, s.order.input)
    })
}

mod decide;
mod lease;
mod owner;
mod sharded;
use decide::decide;
pub use lease::{Extra, Lapse, REPORT_GRACE, START_WITHIN};
use sharded::Sharded;

#[cfg(test)]
mod tests;
