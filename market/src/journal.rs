//! Durable state: the journal of accepted commands in SQLite (the default: an
//! embedded file, WAL, `synchronous = FULL`) or PostgreSQL (`postgres://…`),
//! through `sqlx` with migrations for each; the deals derived from it; and the
//! sequencer that acknowledges a command only after its journal entry is
//! committed.
//!
//! The book is a pure function of the journal ([`crate::engine`]), so a
//! restart replays the journal and gets the same book; a crash at any moment
//! loses only commands that were never acknowledged. Deals are keyed by their
//! deterministic id, so none is ever written twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::pool::{PoolConnection, PoolOptions};
use sqlx::{Any, AnyPool as Pool, Connection, Executor, Row};
use tokio::sync::{Mutex, RwLock, broadcast, mpsc, oneshot, watch};

use crate::engine::{Command, Engine, EngineConfig, Event, Time};
use crate::jobs::Jobs;

/// Why the journal failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The database.
    #[error("journal database: {0}")]
    Db(#[from] sqlx::Error),
    /// The schema.
    #[error("journal migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A journal entry that does not parse (a corrupt or foreign database).
    #[error("journal entry {seq} is not a command: {error}")]
    Entry {
        /// Its sequence number.
        seq: i64,
        /// Why.
        error: serde_json::Error,
    },
    /// The sequencer stopped.
    #[error("the market's sequencer has stopped")]
    Stopped,
    /// The database refused a transaction shared with other writes.
    #[error("journal database: {0}")]
    Failed(String),
    /// Another market process sequences this journal.
    #[error("{0}")]
    Locked(String),
    /// The journal was written with other engine rules or settings.
    #[error(
        "the journal was written with {have}, not {want}: replaying it would give another book; start with the same settings or a new journal"
    )]
    Settings {
        /// What the journal records.
        have: String,
        /// What this market runs.
        want: String,
    },
}

type Result<T, E = JournalError> = std::result::Result<T, E>;

/// The journal and its derived tables.
#[derive(Debug, Clone)]
pub struct Journal {
    pool: Pool,
    /// The derived tables (deals, orders): the same database on PostgreSQL,
    /// a file of their own beside a SQLite journal.
    views: Pool,
    /// PostgreSQL (`$n` placeholders) rather than SQLite (`?`, bound by
    /// position: SQLite looks each `$n` up by name, which is quadratic in a
    /// statement of a thousand rows).
    postgres: bool,
    /// The connection every append goes through (one writer: its page cache
    /// stays warm); replaced by a fresh one after an error.
    writer: Writer,
    /// SQLite: the journal's WAL checkpoints (see [`wal`]).
    checkpoint: Checkpoint,
    /// Hosts' reports on their way into the `work` table.
    work: mpsc::Sender<work::WorkUnit>,
    /// Committed entries on their way into the derived tables.
    project: mpsc::Sender<project::Unit>,
    /// The last entry committed (by this process, or found by `replay`).
    committed: Arc<AtomicI64>,
    /// The last entry the derived tables hold.
    projected: Arc<watch::Sender<i64>>,
    /// Wakes the projector at once: a reader waits for the derived tables.
    hurry: Arc<project::Hurry>,
    /// Where it is: a PostgreSQL URL or a SQLite file path.
    location: Arc<str>,
}

/// The one connection that writes the journal (and the work log).
type Writer = Arc<Mutex<Option<WriterConn>>>;

/// The writer's connection, and the next journal sequence number once known
/// (read from the table once per connection: this process is the journal's
/// only writer, so it need not ask again for every batch).
#[derive(Debug)]
struct WriterConn {
    conn: PoolConnection<Any>,
    next_seq: Option<i64>,
}

impl WriterConn {
    /// The writer's connection, taken from the pool if there is none (at
    /// first, or after an error dropped the last one).
    async fn get<'a>(slot: &'a mut Option<Self>, pool: &Pool) -> Result<&'a mut Self> {
        Ok(match slot {
            Some(conn) => conn,
            None => slot.insert(Self {
                conn: pool.acquire().await?,
                next_seq: None,
            }),
        })
    }
}

/// Begins a write transaction. On SQLite it takes the write lock up front
/// (waiting for another writer), not on the first write, where a concurrent
/// commit fails it.
async fn begin_write(
    conn: &mut sqlx::AnyConnection,
    postgres: bool,
) -> Result<sqlx::Transaction<'_, Any>> {
    Ok(if postgres {
        conn.begin().await?
    } else {
        conn.begin_with("BEGIN IMMEDIATE").await?
    })
}

/// An accepted command with the time it was accepted and what it did.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The command.
    pub command: Command,
    /// When it was accepted.
    pub at: Time,
    /// What the engine did with it.
    pub events: Vec<Event>,
    /// The signed order as its maker sent it (JSON), for offers and bids
    /// placed through the API; stored with the entry.
    pub signed: Option<String>,
}

/// The shared, committed state of the book: the sequencer writes it (and
/// holds it while a batch commits), readers see only committed commands.
pub type SharedEngine = Arc<RwLock<Engine>>;

/// Jobs and hosts, fed by the sequencer after each commit.
pub type SharedJobs = Arc<std::sync::Mutex<Jobs>>;

impl Journal {
    /// Opens (creating if needed) the journal at `location`: a PostgreSQL URL
    /// (`postgres://user@host/db`), or the path of a SQLite file (optionally
    /// as `sqlite://path`).
    ///
    /// # Errors
    ///
    /// The database cannot be reached or opened, or its schema migrated.
    pub async fn open(location: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            let pool = PoolOptions::<Any>::new()
                .max_connections(4)
                .connect(location)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            return Self::start(pool.clone(), pool, true, location).await;
        }
        let path = location.strip_prefix("sqlite://").unwrap_or(location);
        // The journal: durable at commit (`synchronous = FULL`), readers never
        // block the writer (WAL), checkpointed beside the writer
        // (`Journal::checkpoint`) rather than inside a commit.
        let pool = sqlite(
            path,
            "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;",
        )
        .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        // The views can be rebuilt from the journal: a power cut may lose
        // their last transactions, never their consistency. Each projection
        // rewrites most pages of their random-keyed indexes; checkpointing
        // after 64 MiB of WAL rather than SQLite's 4 MiB copies each page
        // into the file once for several transactions, not once for each.
        let views = sqlite(
            &format!("{path}-views.db"),
            "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 16384;",
        )
        .await?;
        sqlx::migrate!("./migrations/sqlite-views")
            .run(&views)
            .await?;
        Self::start(pool, views, false, path).await
    }

    /// Starts the projector of the derived tables.
    async fn start(pool: Pool, views: Pool, postgres: bool, location: &str) -> Result<Self> {
        let recorded = project::recorded(&views).await?;
        // Room for what commits while the projector writes a transaction
        // (a few hundred batches a second under load), so that a projection
        // does not hold up the sequencer.
        let (project, rx) = mpsc::channel(1024);
        let projected = Arc::new(watch::Sender::new(recorded));
        let hurry = Arc::new(project::Hurry::default());
        tokio::spawn(project::run(
            views.clone(),
            postgres,
            rx,
            projected.clone(),
            hurry.clone(),
        ));
        let writer = Writer::default();
        let checkpoint = Checkpoint::default();
        let (work, work_rx) = mpsc::channel(1024);
        tokio::spawn(
            work::WorkWriter {
                pool: pool.clone(),
                writer: writer.clone(),
                postgres,
                checkpoint: checkpoint.clone(),
            }
            .run(work_rx),
        );
        Ok(Self {
            hurry,
            writer,
            checkpoint,
            work,
            project,
            committed: Arc::new(AtomicI64::new(recorded)),
            projected,
            pool,
            views,
            postgres,
            location: location.into(),
        })
    }

    /// Waits (up to 5 s) until the derived tables hold every entry committed
    /// so far, so that a reader sees what was acknowledged before it asked.
    pub(crate) async fn caught_up(&self) {
        let want = self.committed.load(Ordering::Acquire);
        let mut rx = self.projected.subscribe();
        if *rx.borrow() < want {
            self.hurry.wanted.fetch_max(want, Ordering::AcqRel);
            self.hurry.notify.notify_one();
        }
        if tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|p| *p >= want))
            .await
            .is_err()
        {
            tracing::warn!(target: "market::journal", want, have = *rx.borrow(),
                "the deals and orders tables lag the journal; answering from what they hold");
        }
    }

    /// Appends a batch in one transaction (group commit): the commands, with
    /// the signed orders they came from. Returns once the transaction is
    /// durable; the deals and orders tables follow (see [`project`]).
    ///
    /// # Errors
    ///
    /// The database refused the transaction; nothing of the batch is stored.
    pub async fn append(&self, batch: Committed) -> Result<()> {
        let mut writer = self.writer.lock().await;
        let conn = WriterConn::get(&mut writer, &self.pool).await?;
        let first = match self.append_on(conn, &batch).await {
            Ok(first) => {
                conn.next_seq = Some(first + batch.len() as i64);
                first
            }
            Err(e) => {
                // The connection may be broken: the next append takes a fresh one.
                *writer = None;
                return Err(e);
            }
        };
        drop(writer);
        if !self.postgres {
            self.checkpoint.start(&self.pool, &self.writer);
        }
        let last = first + batch.len() as i64 - 1;
        self.committed.fetch_max(last, Ordering::AcqRel);
        // Bounded: a projector that falls far behind slows the sequencer.
        self.project
            .send((first, batch))
            .await
            .map_err(|_| JournalError::Stopped)
    }

    /// Writes the batch's journal rows; returns the first one's sequence number.
    async fn append_on(&self, writer: &mut WriterConn, batch: &[Entry]) -> Result<i64> {
        // One writer (the journal's lock): sequence numbers are ours to give.
        let first: i64 = match writer.next_seq {
            Some(next) => next,
            None => sqlx::query("SELECT COALESCE(MAX(seq), 0) + 1 FROM journal")
                .fetch_one(&mut *writer.conn)
                .await?
                .get(0),
        };
        let mut rows = Vec::with_capacity(batch.len() * 4);
        for (n, entry) in batch.iter().enumerate() {
            let seq = first + n as i64;
            let json = serde_json::to_string(&entry.command)
                .map_err(|error| JournalError::Entry { seq, error })?;
            rows.extend([
                Val::I(seq),
                Val::I(entry.at as i64),
                Val::S(json),
                entry.signed.clone().map_or(Val::Null, Val::S),
            ]);
        }
        const HEAD: &str = "INSERT INTO journal (seq, at, command, signed)";
        if batch.len() <= ROWS_PER_STATEMENT {
            // One statement is its own transaction: one round trip to the
            // database (SQLite's thread) instead of three.
            insert(&mut writer.conn, self.postgres, HEAD, 4, &mut rows, "").await?;
        } else {
            let mut tx = begin_write(&mut writer.conn, self.postgres).await?;
            insert(&mut tx, self.postgres, HEAD, 4, &mut rows, "").await?;
            tx.commit().await?;
        }
        Ok(first)
    }

    /// Rebuilds the engine from the journal; returns it and the number of entries replayed.
    ///
    /// # Errors
    ///
    /// The database failed, or an entry does not parse.
    pub async fn replay(&self, config: EngineConfig) -> Result<(Engine, u64)> {
        self.replay_into(config, None).await
    }

    /// [`Journal::replay`], feeding every entry to `jobs` too.
    ///
    /// # Errors
    ///
    /// As [`Journal::replay`].
    pub async fn replay_into(
        &self,
        config: EngineConfig,
        mut jobs: Option<&mut Jobs>,
    ) -> Result<(Engine, u64)> {
        let projected = project::recorded(&self.views).await?;
        let rows = sqlx::query("SELECT seq, at, command, signed FROM journal ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        let mut engine = Engine::new(config);
        let mut events = Vec::new();
        // Entries the derived tables miss (the process stopped before their
        // projection committed), in runs of consecutive sequence numbers.
        let mut tail: Vec<(i64, Vec<Entry>)> = Vec::new();
        let mut last = 0;
        for row in &rows {
            let seq: i64 = row.get(0);
            let at: i64 = row.get(1);
            let text: String = row.get(2);
            let command: Command =
                serde_json::from_str(&text).map_err(|error| JournalError::Entry { seq, error })?;
            events.clear();
            if seq > projected || jobs.is_some() {
                engine.apply_into(command.clone(), at as Time, &mut events);
                let entry = Entry {
                    command,
                    at: at as Time,
                    events: events.clone(),
                    signed: row.get(3),
                };
                if let Some(jobs) = jobs.as_deref_mut() {
                    jobs.apply_entry(&entry);
                }
                if seq <= projected {
                    last = seq;
                    continue;
                }
                match tail.last_mut() {
                    Some((first, run)) if *first + run.len() as i64 == seq => run.push(entry),
                    _ => tail.push((seq, vec![entry])),
                }
            } else {
                engine.apply_into(command, at as Time, &mut events);
            }
            last = seq;
        }
        if !tail.is_empty() {
            let units: Vec<project::Unit> =
                tail.into_iter().map(|(f, e)| (f, Arc::new(e))).collect();
            let mut conn = self.views.acquire().await?;
            let mut rows = project::Rows::default();
            let done = project::write(&mut conn, self.postgres, &units, &mut rows).await?;
            self.projected.send_replace(done);
        }
        self.committed.fetch_max(last, Ordering::AcqRel);
        Ok((engine, rows.len() as u64))
    }

    /// The ids of every stored deal, in journal order.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn deal_ids(&self) -> Result<Vec<String>> {
        self.caught_up().await;
        let rows = sqlx::query("SELECT id FROM deals ORDER BY seq, ord")
            .fetch_all(&self.views)
            .await?;
        Ok(rows.iter().map(|r| queries::hash_hex(r, 0)).collect())
    }
}

/// A pool on the SQLite file at `path` (created if missing) in WAL mode, with
/// a 64 MiB page cache (the indexes' hot pages stay in memory), statement
/// journals in memory, and `pragmas`.
async fn sqlite(path: &str, pragmas: &'static str) -> Result<Pool> {
    Ok(PoolOptions::<Any>::new()
        .max_connections(4)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA cache_size = -65536; \
                     PRAGMA temp_store = MEMORY;",
                )
                .await?;
                conn.execute(pragmas).await?;
                Ok(())
            })
        })
        .connect(&format!("sqlite://{path}?mode=rwc"))
        .await?)
}

type Ack = oneshot::Sender<Result<Vec<Event>, String>>;

/// A command to sequence, with the signed order it came from (if any).
type Submission = (Command, Option<String>, Ack);

/// Committed entries, in order, as the sequencer publishes them.
pub type Committed = Arc<Vec<Entry>>;

/// Orders commands, applies them to the engine and acknowledges each only
/// after its journal entry is committed; commands that arrive while a commit
/// is in flight go into the next one. A refused command (all its events are
/// `Rejected`) is answered at once and not journaled: it changes nothing.
/// Once a second, a `Tick` lapses what is due, journaled when it did.
#[derive(Debug, Clone)]
pub struct Sequencer {
    tx: mpsc::Sender<Submission>,
    engine: SharedEngine,
    jobs: SharedJobs,
    job_changes: broadcast::Sender<Vec<alloy_primitives::B256>>,
    committed: broadcast::Sender<Committed>,
    entries: Arc<AtomicU64>,
    /// Closed when the sequencer task ends.
    done: watch::Receiver<()>,
}

/// The most commands committed together.
const MAX_BATCH: usize = 1024;

/// The version of the matching rules; a journal written under other rules or
/// settings is refused rather than replayed into a different book.
const ENGINE_VERSION: u32 = 1;

impl Sequencer {
    /// Replays `journal` into a new engine and starts sequencing on the
    /// current tokio runtime.
    ///
    /// # Errors
    ///
    /// The journal cannot be replayed, or was written with other engine
    /// settings (replaying it would give another book).
    pub async fn start(journal: Journal, config: EngineConfig) -> Result<Self> {
        journal.check_settings(&config).await?;
        let mut jobs = Jobs::default();
        let (engine, replayed) = journal.replay_into(config.clone(), Some(&mut jobs)).await?;
        journal.replay_work(&mut jobs).await?;
        let jobs = Arc::new(std::sync::Mutex::new(jobs));
        let (job_changes, _) = broadcast::channel(1024);
        let last = journal.last_time().await?;
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let engine = Arc::new(RwLock::new(engine));
        let (committed, _) = broadcast::channel(1024);
        let entries = Arc::new(AtomicU64::new(replayed));
        let (finished, done) = watch::channel(());
        let shared = Shared {
            jobs: jobs.clone(),
            job_changes: job_changes.clone(),
            engine: engine.clone(),
            committed: committed.clone(),
            entries: entries.clone(),
            _finished: finished,
        };
        tokio::spawn(run(journal, shared, config, last, rx));
        Ok(Self {
            tx,
            engine,
            jobs,
            job_changes,
            committed,
            entries,
            done,
        })
    }

    /// The book as of the last commit: the sequencer holds it for writing
    /// while it applies and commits a batch, so a reader never sees a
    /// command that is not durable.
    pub fn engine(&self) -> &SharedEngine {
        &self.engine
    }

    /// Jobs and hosts as of the last commit.
    pub fn jobs(&self) -> &SharedJobs {
        &self.jobs
    }

    /// Where the ids of changed jobs are published (after each commit, and
    /// by whoever applies hosts' reports).
    pub fn job_changes(&self) -> &broadcast::Sender<Vec<alloy_primitives::B256>> {
        &self.job_changes
    }

    /// Resolves once the sequencer has stopped: every handle was dropped
    /// and the last batch was committed (or failed).
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + use<> {
        let mut done = self.done.clone();
        async move { while done.changed().await.is_ok() {} }
    }

    /// How many entries the journal holds (those replayed at start and
    /// those committed since).
    pub fn committed_entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    /// Every batch committed from now on, in order (a receiver that falls
    /// more than 1,024 batches behind loses the oldest and is told so).
    pub fn subscribe(&self) -> broadcast::Receiver<Committed> {
        self.committed.subscribe()
    }

    /// Submits a command; returns what it did once it is durable.
    ///
    /// # Errors
    ///
    /// The journal could not store it (it was not applied), or the sequencer stopped.
    pub async fn submit(&self, command: Command) -> Result<Vec<Event>, String> {
        self.submit_signed(command, None).await
    }

    /// [`Sequencer::submit`] for an order placed by its maker: `signed` (the
    /// signed order's JSON) is stored with the journal entry.
    ///
    /// # Errors
    ///
    /// As [`Sequencer::submit`].
    pub async fn submit_signed(
        &self,
        command: Command,
        signed: Option<String>,
    ) -> Result<Vec<Event>, String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send((command, signed, ack))
            .await
            .map_err(|_| JournalError::Stopped.to_string())?;
        done.await.map_err(|_| JournalError::Stopped.to_string())?
    }
}

impl Journal {
    /// Records the engine settings on first use; refuses different ones later.
    async fn check_settings(&self, config: &EngineConfig) -> Result<()> {
        let want = format!(
            "engine {ENGINE_VERSION}, queue timeout {} ms",
            config.queue_timeout
        );
        let have: Option<String> = sqlx::query("SELECT value FROM meta WHERE key = 'engine'")
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.get(0));
        match have {
            None => {
                sqlx::query("INSERT INTO meta (key, value) VALUES ('engine', $1)")
                    .bind(&want)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
            Some(have) if have == want => Ok(()),
            Some(have) => Err(JournalError::Settings { have, want }),
        }
    }

    /// The latest time in the journal (0 when empty).
    async fn last_time(&self) -> Result<Time> {
        let at: Option<i64> = sqlx::query("SELECT MAX(at) FROM journal")
            .fetch_one(&self.pool)
            .await?
            .get(0);
        Ok(at.unwrap_or(0).max(0) as Time)
    }
}

fn now_ms() -> Time {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Time)
}

fn only_rejected(events: &[Event]) -> bool {
    events.iter().all(|e| matches!(e, Event::Rejected { .. }))
}

/// What the sequencer task publishes to.
struct Shared {
    engine: SharedEngine,
    jobs: SharedJobs,
    job_changes: broadcast::Sender<Vec<alloy_primitives::B256>>,
    committed: broadcast::Sender<Committed>,
    entries: Arc<AtomicU64>,
    /// Dropped when the task ends.
    _finished: watch::Sender<()>,
}

async fn run(
    journal: Journal,
    shared: Shared,
    config: EngineConfig,
    mut last: Time,
    mut rx: mpsc::Receiver<Submission>,
) {
    let mut pending = Vec::with_capacity(MAX_BATCH);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            n = rx.recv_many(&mut pending, MAX_BATCH) => if n == 0 { return },
            _ = tick.tick() => {}
        }
        if pending.is_empty() {
            // A quiet second: lapse what is due, so the book shows no stale orders.
            let (ack, unheard) = oneshot::channel();
            drop(unheard);
            pending.push((Command::Tick, None, ack));
        }
        // Readers wait for the commit: they never see what is not durable.
        let mut engine = shared.engine.write().await;
        let mut batch = Vec::with_capacity(pending.len());
        let mut acks = Vec::with_capacity(pending.len());
        for (command, signed, ack) in pending.drain(..) {
            // Time never goes back in the journal, whatever the clock does.
            let at = now_ms().max(last);
            last = at;
            let events = engine.apply(command.clone(), at);
            if only_rejected(&events) {
                let _ = ack.send(Ok(events));
                continue;
            }
            batch.push(Entry {
                command,
                at,
                events,
                signed,
            });
            acks.push(ack);
        }
        if batch.is_empty() {
            drop(engine);
            continue;
        }
        let batch = Arc::new(batch);
        match journal.append(batch.clone()).await {
            Ok(()) => {
                drop(engine);
                let changed;
                {
                    // Before the answers: a host told of a deal finds it.
                    let mut jobs = shared.jobs.lock().unwrap_or_else(|e| e.into_inner());
                    for entry in batch.iter() {
                        jobs.apply_entry(entry);
                    }
                    changed = jobs.take_changed();
                }
                for (ack, entry) in acks.into_iter().zip(batch.iter()) {
                    let _ = ack.send(Ok(entry.events.clone()));
                }
                shared
                    .entries
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                // Nobody listening is fine. Jobs change after the trades that made them.
                let _ = shared.committed.send(batch);
                if !changed.is_empty() {
                    let _ = shared.job_changes.send(changed);
                }
            }
            Err(e) => {
                // Not durable, so not applied: go back to what the journal holds.
                tracing::error!(target: "market::journal", error = %e, "commit failed; rebuilding the book from the journal");
                let msg = format!("not stored: {e}");
                for ack in acks {
                    let _ = ack.send(Err(msg.clone()));
                }
                *engine = rebuild(&journal, &config).await;
            }
        }
    }
}

/// Replays the journal, retrying (with backoff, up to 30 s apart) until the
/// database answers: the market waits rather than serving a book it cannot back.
async fn rebuild(journal: &Journal, config: &EngineConfig) -> Engine {
    let mut wait = std::time::Duration::from_millis(100);
    loop {
        match journal.replay(config.clone()).await {
            Ok((engine, _)) => return engine,
            Err(e) => {
                tracing::error!(target: "market::journal", error = %e, retry_in = ?wait, "cannot rebuild the book");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(30));
            }
        }
    }
}

mod project;
mod queries;
mod sql;
use sql::{ROWS_PER_STATEMENT, Val, insert};
mod wal;
use wal::Checkpoint;
mod work;
pub use queries::{DealQuery, DealRow, JournalLock, OrderRow};
pub use work::Work;

#[cfg(test)]
mod tests;
