//! Checkpoints of the SQLite journal's WAL, beside the writer rather than
//! inside its commits.
//!
//! A passive checkpoint copies the WAL's pages into the database without
//! holding up the writer; but the WAL starts over from its beginning only
//! when a write begins with every page copied, and a writer committing every
//! millisecond appends pages while each checkpoint runs, so the WAL would
//! grow for as long as orders keep coming (360 MB in 25 s of the HTTP bench,
//! each append to the growing file costing the file system more). Once the
//! WAL holds [`RESTART_FRAMES`] pages, a second checkpoint copies what came
//! during the first while holding the writer (a few milliseconds: only what
//! was appended meanwhile), so the next commit starts the WAL over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Row;

use super::{Pool, Writer};

/// How often a checkpoint may start (after a commit).
const EVERY: Duration = Duration::from_millis(200);

/// WAL pages (4 KiB each) past which a checkpoint finishes with the writer
/// held, so that the WAL starts over (32 MiB; 1 MiB in tests).
const RESTART_FRAMES: i64 = if cfg!(test) { 256 } else { 8192 };

/// When the WAL was last checkpointed, and whether a checkpoint runs now.
#[derive(Debug, Clone)]
pub(super) struct Checkpoint(Arc<std::sync::Mutex<(Instant, bool)>>);

impl Default for Checkpoint {
    fn default() -> Self {
        Self(Arc::new(std::sync::Mutex::new((Instant::now(), false))))
    }
}

impl Checkpoint {
    /// Starts a passive checkpoint on another connection of `pool` when none
    /// ran for [`EVERY`]; past [`RESTART_FRAMES`], finishes it holding `writer`.
    pub(super) fn start(&self, pool: &Pool, writer: &Writer) {
        {
            let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if state.1 || state.0.elapsed() < EVERY {
                return;
            }
            *state = (Instant::now(), true);
        }
        let (pool, writer, state) = (pool.clone(), writer.clone(), self.0.clone());
        tokio::spawn(async move {
            let mut checkpointed = passive(&pool).await;
            if matches!(checkpointed, Ok(frames) if frames >= RESTART_FRAMES) {
                let _held = writer.lock().await;
                checkpointed = passive(&pool).await;
            }
            if let Err(error) = checkpointed {
                tracing::warn!(target: "market::journal", %error, "WAL checkpoint failed");
            }
            *state.lock().unwrap_or_else(|e| e.into_inner()) = (Instant::now(), false);
        });
    }
}

/// A passive checkpoint; returns how many pages the WAL holds.
async fn passive(pool: &Pool) -> Result<i64, sqlx::Error> {
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    // (busy, pages in the WAL, pages copied)
    row.try_get(1)
}
