//! Durable state: the journal of accepted commands in SQLite (`sqlx`, WAL,
//! `synchronous = FULL`), the deals derived from it, and the sequencer that
//! acknowledges a command only after its journal entry is committed.
//!
//! The book is a pure function of the journal ([`crate::engine`]), so a
//! restart replays the journal and gets the same book; a crash at any moment
//! loses only commands that were never acknowledged. Deals are keyed by their
//! deterministic id, so none is ever written twice.

use std::path::Path;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool as Pool, SqliteSynchronous,
};
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
    /// Opens (creating if needed) the journal at `path`.
    ///
    /// # Errors
    ///
    /// The file cannot be opened or its schema migrated.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let pool = Pool::connect_with(options).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
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
                sqlx::query("INSERT INTO journal (at, command) VALUES (?, ?) RETURNING seq")
                    .bind(entry.at as i64)
                    .bind(json)
                    .fetch_one(&mut *tx)
                    .await?
                    .get(0);
            for event in &entry.events {
                let Event::Deal(d) = event else { continue };
                sqlx::query(
                    "INSERT INTO deals (id, seq, bid, offer, owner, host, class, price, seconds, replica, at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        let rows = sqlx::query("SELECT id FROM deals ORDER BY seq, rowid")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

type Ack = oneshot::Sender<Result<Vec<Event>, String>>;

/// Orders commands, applies them to the engine and acknowledges each only
/// after its journal entry is committed; commands that arrive while a commit
/// is in flight go into the next one.
#[derive(Debug, Clone)]
pub struct Sequencer {
    tx: mpsc::Sender<(Command, Ack)>,
}

/// The most commands committed together.
const MAX_BATCH: usize = 1024;

impl Sequencer {
    /// Replays `journal` into a new engine and starts sequencing on the
    /// current tokio runtime.
    ///
    /// # Errors
    ///
    /// The journal cannot be replayed.
    pub async fn start(journal: Journal, config: EngineConfig) -> Result<Self> {
        let (engine, _) = journal.replay(config.clone()).await?;
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(journal, engine, config, rx));
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

fn now_ms() -> Time {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Time)
}

async fn run(
    journal: Journal,
    mut engine: Engine,
    config: EngineConfig,
    mut rx: mpsc::Receiver<(Command, Ack)>,
) {
    let mut pending = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut pending, MAX_BATCH).await > 0 {
        let mut batch = Vec::with_capacity(pending.len());
        let mut acks = Vec::with_capacity(pending.len());
        for (command, ack) in pending.drain(..) {
            let at = now_ms();
            let events = engine.apply(command.clone(), at);
            batch.push(Entry {
                command,
                at,
                events,
            });
            acks.push(ack);
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
                match journal.replay(config.clone()).await {
                    Ok((rebuilt, _)) => engine = rebuilt,
                    Err(e) => {
                        tracing::error!(target: "market::journal", error = %e, "cannot rebuild the book; stopping");
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
