//! Leases: a host must start a deal within [`START_WITHIN`] and report
//! within the bid's `max_seconds` plus [`REPORT_GRACE`] of starting. A deal
//! that misses either lapses: it is marked `lapsed`, and its replica is
//! placed again as a bid of one replica that denies every host the job has
//! used, so it goes to another host. No job is lost when a host dies, and
//! none runs twice for pay: the lapsed host's late receipt is refused.
//! Replicas whose reports have no majority get one more the same way
//! ([`Jobs::due_extras`]).

use std::collections::BTreeSet;

use alloy_primitives::{Address, B256};
use sha2::{Digest, Sha256};

use super::{DealState, JobState, Jobs, WorkError};
use crate::engine::{Bid, Time};

/// How long a host has to start a deal it was assigned, ms (by default).
pub const START_WITHIN: Time = 30_000;

/// How long past the bid's `max_seconds` a started deal may take to report, ms (by default).
pub const REPORT_GRACE: Time = 30_000;

/// A lapsed deal and the bid that places its replica again.
#[derive(Debug, Clone)]
pub struct Lapse {
    /// The job.
    pub job: B256,
    /// The deal that lapsed.
    pub deal: B256,
    /// Its host.
    pub host: Address,
    /// The bid for one replica elsewhere.
    pub retry: Bid,
}

/// One more replica for a job whose reports had no majority.
#[derive(Debug, Clone)]
pub struct Extra {
    /// The job.
    pub job: B256,
    /// The bid for one replica on a host the job has not used.
    pub retry: Bid,
}

/// The open deals by the time their lease runs from: when they were
/// assigned (for a start) and when their run's `max_seconds` end (for a
/// report). Entries are added as deals open and dropped lazily, by
/// [`Jobs::due_leases`], once due and no longer what they were.
#[derive(Debug, Default)]
pub(super) struct Leases {
    start: BTreeSet<(Time, B256)>,
    report: BTreeSet<(Time, B256)>,
}

impl Leases {
    /// `deal` was assigned at `at`: its host must start it.
    pub(super) fn assigned(&mut self, at: Time, deal: B256) {
        self.start.insert((at, deal));
    }

    /// `deal` started, and its run may last `until`: its host must report.
    pub(super) fn started(&mut self, until: Time, deal: B256) {
        self.report.insert((until, deal));
    }

    fn of(&self, report: bool) -> &BTreeSet<(Time, B256)> {
        if report { &self.report } else { &self.start }
    }

    fn of_mut(&mut self, report: bool) -> &mut BTreeSet<(Time, B256)> {
        if report {
            &mut self.report
        } else {
            &mut self.start
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.start.len() + self.report.len()
    }
}

/// When a run started at `started` reaches its bid's `max_seconds`.
pub(super) fn run_ends(started: Time, max_seconds: u64) -> Time {
    started.saturating_add(max_seconds.saturating_mul(1000))
}

/// The id of the bid that places the `n`th extra replica of `job`.
pub(super) fn extra_id(job: &B256, n: u32) -> B256 {
    let mut h = Sha256::new();
    h.update(b"netmind extra");
    h.update(job);
    h.update(n.to_be_bytes());
    B256::from(<[u8; 32]>::from(h.finalize()))
}

/// A bid for one replica of `job`, denying every host it has used.
pub(super) fn one_more(job: &super::Job, bid: &Bid, id: B256, now: Time) -> Bid {
    let mut req = bid.req.clone();
    for used in &job.deals {
        if !req.deny.contains(&used.host) {
            req.deny.push(used.host);
        }
    }
    Bid {
        id,
        owner: bid.owner,
        class: bid.class.clone(),
        req,
        max_price: bid.max_price,
        max_seconds: bid.max_seconds,
        replicas: 1,
        deadline: bid.deadline.max(now.saturating_add(600_000)),
    }
}

/// The id of the bid that places a lapsed deal's replica again.
pub(super) fn retry_id(job: &B256, deal: &B256) -> B256 {
    let mut h = Sha256::new();
    h.update(b"netmind lapse");
    h.update(job);
    h.update(deal);
    B256::from(<[u8; 32]>::from(h.finalize()))
}

impl Jobs {
    /// Deals whose lease has run out at `now` (`start_within` to start,
    /// `max_seconds` plus `grace` to report), with the bids that place their
    /// replicas again. Reads only the deals due (see [`Leases`]), so a check
    /// costs the same with ten live jobs as with a million; entries of deals
    /// that have moved on are dropped as they are met.
    pub fn due_leases(&mut self, now: Time, start_within: Time, grace: Time) -> Vec<Lapse> {
        let mut out = Vec::new();
        let mut stale = Vec::new();
        for (report, margin) in [(false, start_within), (true, grace)] {
            let Some(latest) = now.checked_sub(margin) else {
                continue;
            };
            let index = self.leases.of(report);
            for &(from, deal) in index.range(..=(latest, B256::repeat_byte(0xff))) {
                match self.lapse_of(deal, from, report, now) {
                    Some(lapse) => out.push(lapse),
                    None => stale.push((from, deal)),
                }
            }
            let index = self.leases.of_mut(report);
            for key in stale.drain(..) {
                index.remove(&key);
            }
        }
        out
    }

    /// The lapse of `deal` if its lease is still the one indexed at `from`
    /// (assigned then, for a start; its run ending then, for a report).
    fn lapse_of(&self, deal: B256, from: Time, report: bool, now: Time) -> Option<Lapse> {
        let job_id = self.by_deal.get(&deal)?;
        if !self.live.contains_key(job_id) {
            return None;
        }
        let job = self.jobs.get(job_id)?;
        let bid = job.bid.as_ref()?;
        let d = job.deals.iter().find(|d| d.id == deal)?;
        let runs_from = match d.state {
            DealState::Assigned if !report => d.assigned,
            DealState::Running if report => {
                run_ends(d.started.unwrap_or(d.assigned), job.max_seconds)
            }
            _ => return None,
        };
        (runs_from == from).then(|| Lapse {
            job: job.id,
            deal: d.id,
            host: d.host,
            retry: one_more(job, bid, retry_id(&job.id, &d.id), now),
        })
    }

    /// Marks `deal` of `job` lapsed and routes the deals of bid `retry` to
    /// the job (merging any already seen, as when replaying).
    ///
    /// # Errors
    ///
    /// The deal is unknown or already reported.
    pub fn lapse(
        &mut self,
        job_id: B256,
        deal: B256,
        retry: B256,
        at: Time,
    ) -> Result<(), WorkError> {
        let job = self
            .jobs
            .get_mut(&job_id)
            .ok_or(WorkError::UnknownDeal(deal))?;
        let d = job
            .deals
            .iter_mut()
            .find(|d| d.id == deal)
            .ok_or(WorkError::UnknownDeal(deal))?;
        if !d.state.open() {
            return Err(WorkError::Closed {
                deal,
                state: d.state,
                job: job.state.name(),
            });
        }
        d.state = DealState::Lapsed;
        job.updated = job.updated.max(at);
        if !job.deals.iter().any(|d| d.state.open()) && !job.state.finished() {
            job.state = if job.deals.iter().any(|d| d.state == DealState::Reported) {
                JobState::Verifying
            } else {
                JobState::Queued
            };
        }
        self.adopt(job_id, retry);
        self.changed.push(job_id);
        Ok(())
    }

    /// Jobs whose every replica reported without a majority, with the bid
    /// for one more replica each (on a host the job has not used).
    pub fn due_extras(&self, now: Time) -> Vec<Extra> {
        let mut out = Vec::new();
        for id in &self.wanting {
            let Some(job) = self.jobs.get(id) else {
                continue;
            };
            let Some(bid) = &job.bid else { continue };
            if job.state.finished() || !job.wants_extra {
                continue;
            }
            out.push(Extra {
                job: job.id,
                retry: one_more(job, bid, extra_id(&job.id, job.extra_replicas + 1), now),
            });
        }
        out
    }

    /// Records that bid `retry` places one more replica of `job_id`, and
    /// routes its deals to the job.
    ///
    /// # Errors
    ///
    /// The job is unknown, finished, or wants no extra replica.
    pub fn add_replica(&mut self, job_id: B256, retry: B256, at: Time) -> Result<(), WorkError> {
        self.wanting.remove(&job_id);
        let job = self
            .jobs
            .get_mut(&job_id)
            .ok_or(WorkError::UnknownDeal(job_id))?;
        if job.state.finished() || !job.wants_extra {
            return Err(WorkError::Closed {
                deal: job_id,
                state: DealState::Reported,
                job: job.state.name(),
            });
        }
        job.wants_extra = false;
        job.extra_replicas += 1;
        job.updated = job.updated.max(at);
        self.adopt(job_id, retry);
        self.changed.push(job_id);
        Ok(())
    }

    /// Routes the deals of bid `retry` to `job_id`, merging any already
    /// seen (as when replaying, where the bid came before its record).
    fn adopt(&mut self, job_id: B256, retry: B256) {
        self.aliases.insert(retry, job_id);
        if let Some(orphan) = self.jobs.remove(&retry) {
            self.order.remove(&(orphan.created, retry));
            let Some(job) = self.jobs.get_mut(&job_id) else {
                return;
            };
            job.updated = job.updated.max(orphan.updated);
            for d in orphan.deals {
                self.by_deal.insert(d.id, job_id);
                if job.state == JobState::Queued {
                    job.state = JobState::Matched;
                }
                job.deals.push(d);
            }
        }
    }
}
