//! The work log: hosts' signed starts and receipts, stored before they are
//! applied to [`Jobs`] and replayed after the journal at start.

use alloy_primitives::{Address, B256};
use netmind_protocol::orders::Signed;
use netmind_protocol::work::{Receipt, Release, Start};
use sqlx::Row;

use tokio::sync::{mpsc, oneshot};

use super::{
    Checkpoint, Journal, JournalError, Pool, Result, Val, Writer, WriterConn, begin_write, insert,
};
use crate::engine::Time;
use crate::jobs::Jobs;

/// A host's signed report about a deal.
#[derive(Debug, Clone)]
pub enum Work {
    /// It started the replica.
    Start(Signed<Start>),
    /// It finished it.
    Receipt(Signed<Receipt>),
    /// It handed it back unfinished; bid `retry` places the replica again.
    Release {
        /// The host's signed release.
        signed: Signed<Release>,
        /// The job.
        job: B256,
        /// The bid placing the replica again.
        retry: B256,
    },
    /// The market's own decision: the deal's lease ran out and its replica
    /// was placed again as bid `retry`.
    Lapse {
        /// The job.
        job: B256,
        /// The deal.
        deal: B256,
        /// Its host.
        host: Address,
        /// The bid placing the replica again.
        retry: B256,
    },
    /// The owner cancelled the job (a signed cancel of its bid).
    Cancel {
        /// The job.
        job: B256,
        /// Its owner.
        by: Address,
    },
    /// The market's own decision: the job's reports had no majority, so
    /// bid `retry` places one more replica.
    Extra {
        /// The job.
        job: B256,
        /// The bid for the extra replica.
        retry: B256,
    },
}

impl Work {
    fn parts(&self) -> (&'static str, String, Address, String) {
        match self {
            Self::Start(s) => (
                "start",
                s.order.deal.to_string(),
                s.order.host,
                serde_json::to_string(s).expect("a start serializes"),
            ),
            Self::Receipt(r) => (
                "receipt",
                r.order.deal.to_string(),
                r.order.host,
                serde_json::to_string(r).expect("a receipt serializes"),
            ),
            Self::Lapse {
                job,
                deal,
                host,
                retry,
            } => (
                "lapse",
                deal.to_string(),
                *host,
                serde_json::json!({ "job": job, "deal": deal, "host": host, "retry": retry })
                    .to_string(),
            ),
            Self::Release { signed, job, retry } => (
                "release",
                signed.order.deal.to_string(),
                signed.order.host,
                serde_json::json!({ "signed": signed, "job": job, "retry": retry }).to_string(),
            ),
            Self::Cancel { job, by } => (
                "cancel",
                job.to_string(),
                *by,
                serde_json::json!({ "job": job, "by": by }).to_string(),
            ),
            Self::Extra { job, retry } => (
                "extra",
                job.to_string(),
                Address::ZERO,
                serde_json::json!({ "job": job, "retry": retry }).to_string(),
            ),
        }
    }

    /// Applies it to `jobs`; a refusal changes nothing.
    ///
    /// # Errors
    ///
    /// The deal is unknown, another host's, or closed.
    pub fn apply(&self, jobs: &mut Jobs, at: Time) -> Result<(), crate::jobs::WorkError> {
        match self {
            Self::Start(s) => jobs.start(&s.order, at).map(|_| ()),
            Self::Receipt(r) => jobs.receipt(&r.order, at).map(|_| ()),
            Self::Lapse {
                job, deal, retry, ..
            } => jobs.lapse(*job, *deal, *retry, at),
            Self::Extra { job, retry } => jobs.add_replica(*job, *retry, at),
            Self::Cancel { job, by } => jobs.cancel(job, *by, at),
            Self::Release { signed, job, retry } => {
                jobs.release(&signed.order)?;
                jobs.lapse(*job, signed.order.deal, *retry, at)
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct ReleaseRow {
    signed: Signed<Release>,
    job: B256,
    retry: B256,
}

#[derive(serde::Deserialize)]
struct CancelRow {
    job: B256,
    by: Address,
}

#[derive(serde::Deserialize)]
struct ExtraRow {
    job: B256,
    retry: B256,
}

#[derive(serde::Deserialize)]
struct LapseRow {
    job: B256,
    deal: B256,
    host: Address,
    retry: B256,
}

impl Journal {
    /// Stores a host's report (durably, before it is applied). Reports
    /// arriving together are stored in one transaction (group commit), on the
    /// journal's own writer connection.
    ///
    /// # Errors
    ///
    /// The database failed; nothing was stored.
    pub async fn append_work(&self, work: &Work, at: Time) -> Result<()> {
        let (kind, deal, host, signed) = work.parts();
        let (ack, stored) = oneshot::channel();
        let row = [
            Val::I(at as i64),
            Val::S(kind.to_owned()),
            Val::S(deal),
            Val::S(host.to_string()),
            Val::S(signed),
        ];
        self.work
            .send((row, ack))
            .await
            .map_err(|_| JournalError::Stopped)?;
        stored
            .await
            .map_err(|_| JournalError::Stopped)?
            .map_err(JournalError::Failed)
    }

    /// Applies every stored report to `jobs`, in order (after the journal).
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn replay_work(&self, jobs: &mut Jobs) -> Result<u64> {
        let rows = sqlx::query("SELECT at, kind, signed FROM work ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        for row in &rows {
            let at: i64 = row.get(0);
            let kind: String = row.get(1);
            let text: String = row.get(2);
            let work = match kind.as_str() {
                "start" => serde_json::from_str(&text).map(Work::Start),
                "lapse" => serde_json::from_str::<LapseRow>(&text).map(|l| Work::Lapse {
                    job: l.job,
                    deal: l.deal,
                    host: l.host,
                    retry: l.retry,
                }),
                "release" => serde_json::from_str::<ReleaseRow>(&text).map(|r| Work::Release {
                    signed: r.signed,
                    job: r.job,
                    retry: r.retry,
                }),
                "cancel" => serde_json::from_str::<CancelRow>(&text).map(|c| Work::Cancel {
                    job: c.job,
                    by: c.by,
                }),
                "extra" => serde_json::from_str::<ExtraRow>(&text).map(|e| Work::Extra {
                    job: e.job,
                    retry: e.retry,
                }),
                _ => serde_json::from_str(&text).map(Work::Receipt),
            };
            match work {
                // Checked when it was stored; a report refused now (its job
                // was decided by an earlier one) changes nothing, as then.
                Ok(work) => {
                    let _ = work.apply(jobs, at as Time);
                }
                Err(error) => {
                    tracing::warn!(target: "market::journal", %error, "a stored host report does not parse; skipped");
                }
            }
        }
        Ok(rows.len() as u64)
    }
}

/// A report's `work` row on its way to the database, and who waits for it.
pub(super) type WorkUnit = ([Val; 5], oneshot::Sender<std::result::Result<(), String>>);

/// What stores reports: the journal's writer connection (SQLite has one
/// writer at a time; reports wait their turn there instead of in SQLite's
/// busy handler), and the WAL checkpoint state.
pub(super) struct WorkWriter {
    pub(super) pool: Pool,
    pub(super) writer: Writer,
    pub(super) postgres: bool,
    pub(super) checkpoint: Checkpoint,
}

impl WorkWriter {
    /// Stores reports as they come, all those waiting in one transaction;
    /// stops when every [`Journal`] is gone.
    pub(super) async fn run(self, mut rx: mpsc::Receiver<WorkUnit>) {
        while let Some(first) = rx.recv().await {
            let mut units = vec![first];
            while units.len() < 1_000 {
                match rx.try_recv() {
                    Ok(unit) => units.push(unit),
                    Err(_) => break,
                }
            }
            let (rows, acks): (Vec<_>, Vec<_>) = units.into_iter().unzip();
            let stored = self
                .store(rows.into_iter().flatten().collect())
                .await
                .map_err(|e| e.to_string());
            for ack in acks {
                let _ = ack.send(stored.clone());
            }
        }
    }

    async fn store(&self, mut rows: Vec<Val>) -> Result<()> {
        let mut writer = self.writer.lock().await;
        let conn = &mut WriterConn::get(&mut writer, &self.pool).await?.conn;
        let stored = async {
            let mut tx = begin_write(conn, self.postgres).await?;
            insert(
                &mut tx,
                self.postgres,
                "INSERT INTO work (at, kind, deal, host, signed)",
                5,
                &mut rows,
                "",
            )
            .await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        if stored.is_err() {
            // The connection may be broken: the next write takes a fresh one.
            *writer = None;
        }
        drop(writer);
        if !self.postgres {
            self.checkpoint.start(&self.pool, &self.writer);
        }
        stored
    }
}
