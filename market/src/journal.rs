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

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::pool::PoolOptions;
use sqlx::{Any, AnyPool as Pool, Executor, Row};
use tokio::sync::{mpsc, oneshot};

use crate::engine::{Command, Engine, EngineConfig, Event, Time};

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
}

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
            return Ok(Self { pool });
        }
        let path = location.strip_prefix("sqlite://").unwrap_or(location);
        let pool = PoolOptions::<Any>::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // Durable at commit, and readers never block the writer.
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
                        .await?;
                    Ok(())
                })
            })
            .connect(&format!("sqlite://{path}?mode=rwc"))
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Appends a batch in one transaction (group commit): the commands, and
    /// the deals they made. Returns once the transaction is durable.
    ///
    /// # Errors
    ///
    /// The database refused the transaction; nothing of the batch is stored.
    pub async fn append(&self, batch: &[Entry]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for entry in batch {
            let json = serde_json::to_string(&entry.command)
                .map_err(|error| JournalError::Entry { seq: -1, error })?;
            let seq: i64 =
                sqlx::query("INSERT INTO journal (at, command) VALUES ($1, $2) RETURNING seq")
                    .bind(entry.at as i64)
                    .bind(json)
                    .fetch_one(&mut *tx)
                    .await?
                    .get(0);
            let deals = entry.events.iter().filter_map(|e| match e {
                Event::Deal(d) => Some(d),
                _ => None,
            });
            for (ord, d) in deals.enumerate() {
                sqlx::query(
                    "INSERT INTO deals (id, seq, bid, offer, owner, host, class, price, seconds, replica, at, ord) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(d.id.to_string())
                .bind(seq)
                .bind(d.bid.to_string())
                .bind(d.offer.to_string())
                .bind(d.owner.to_string())
                .bind(d.host.to_string())
                .bind(d.class.as_ref())
                .bind(d.price.to_string())
                .bind(d.seconds as i64)
                .bind(i64::from(d.replica))
                .bind(d.time as i64)
                .bind(ord as i64)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Rebuilds the engine from the journal; returns it and the number of entries replayed.
    ///
    /// # Errors
    ///
    /// The database failed, or an entry does not parse.
    pub async fn replay(&self, config: EngineConfig) -> Result<(Engine, u64)> {
        let rows = sqlx::query("SELECT seq, at, command FROM journal ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        let mut engine = Engine::new(config);
        let mut events = Vec::new();
        for row in &rows {
            let seq: i64 = row.get(0);
            let at: i64 = row.get(1);
            let text: String = row.get(2);
            let command: Command =
                serde_json::from_str(&text).map_err(|error| JournalError::Entry { seq, error })?;
            events.clear();
            engine.apply_into(command, at as Time, &mut events);
        }
        Ok((engine, rows.len() as u64))
    }

    /// The ids of every stored deal, in journal order.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn deal_ids(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM deals ORDER BY seq, ord")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

type Ack = oneshot::Sender<Result<Vec<Event>, String>>;

/// Orders commands, applies them to the engine and acknowledges each only
/// after its journal entry is committed; commands that arrive while a commit
/// is in flight go into the next one. A refused command (all its events are
/// `Rejected`) is answered at once and not journaled: it changes nothing.
/// Once a second, a `Tick` lapses what is due, journaled when it did.
#[derive(Debug, Clone)]
pub struct Sequencer {
    tx: mpsc::Sender<(Command, Ack)>,
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
        let (engine, _) = journal.replay(config.clone()).await?;
        let last = journal.last_time().await?;
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(journal, engine, config, last, rx));
        Ok(Self { tx })
    }

    /// Submits a command; returns what it did once it is durable.
    ///
    /// # Errors
    ///
    /// The journal could not store it (it was not applied), or the sequencer stopped.
    pub async fn submit(&self, command: Command) -> Result<Vec<Event>, String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send((command, ack))
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

async fn run(
    journal: Journal,
    mut engine: Engine,
    config: EngineConfig,
    mut last: Time,
    mut rx: mpsc::Receiver<(Command, Ack)>,
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
            pending.push((Command::Tick, ack));
        }
        let mut batch = Vec::with_capacity(pending.len());
        let mut acks = Vec::with_capacity(pending.len());
        for (command, ack) in pending.drain(..) {
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
            });
            acks.push(ack);
        }
        if batch.is_empty() {
            continue;
        }
        match journal.append(&batch).await {
            Ok(()) => {
                for (ack, entry) in acks.into_iter().zip(batch) {
                    let _ = ack.send(Ok(entry.events));
                }
            }
            Err(e) => {
                // Not durable, so not applied: go back to what the journal holds.
                tracing::error!(target: "market::journal", error = %e, "commit failed; rebuilding the book from the journal");
                let msg = format!("not stored: {e}");
                for ack in acks {
                    let _ = ack.send(Err(msg.clone()));
                }
                engine = rebuild(&journal, &config).await;
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

#[cfg(test)]
mod tests;
