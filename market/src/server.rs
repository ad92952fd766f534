//! A whole market: the journal (and its lock), the sequencer, the blob
//! store and the HTTP API, started together and stopped in order.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::api::{self, ApiConfig, State};
use crate::blob::DiskStore;
use crate::engine::EngineConfig;
use crate::error::{Error, Result};
use crate::journal::{Journal, JournalLock, Sequencer};
use crate::logs::LogStore;

/// Where a market keeps its state, and how it runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketConfig {
    /// The data directory: the SQLite journal (`market.db`) unless `db`
    /// says otherwise, and the blobs (`blobs/`). In a config file it may be
    /// left out: `netmind market serve --data` gives it.
    #[serde(default)]
    pub data: PathBuf,
    /// The journal: a `postgres://` URL, or a SQLite file path; `None` for
    /// `<data>/market.db`.
    #[serde(default)]
    pub db: Option<String>,
    /// Queue timeout for bids, ms.
    #[serde(default = "default_queue_timeout")]
    pub queue_timeout_ms: u64,
    /// The API.
    #[serde(default)]
    pub api: ApiConfig,
}

fn default_queue_timeout() -> u64 {
    EngineConfig::default().queue_timeout
}

impl MarketConfig {
    /// Defaults, with state under `data`.
    pub fn new(data: impl Into<PathBuf>) -> Self {
        Self {
            data: data.into(),
            db: None,
            queue_timeout_ms: default_queue_timeout(),
            api: ApiConfig::default(),
        }
    }
}

/// A market that has opened its journal (holding its lock) and replayed it.
#[derive(Debug)]
pub struct Market {
    state: Arc<State>,
    lock: JournalLock,
}

impl Market {
    /// Opens the journal, takes its lock (so no other market sequences it),
    /// replays it into the book and opens the blob store.
    ///
    /// # Errors
    ///
    /// The data directory, database or blob store cannot be opened, another
    /// market holds the journal, or it was written with other settings.
    pub async fn open(config: MarketConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.data).map_err(|source| Error::Io {
            what: format!("cannot create data directory {}", config.data.display()),
            source,
        })?;
        let location = config
            .db
            .clone()
            .unwrap_or_else(|| config.data.join("market.db").display().to_string());
        let journal = Journal::open(&location).await?;
        let lock = journal.lock().await?;
        let engine = EngineConfig {
            queue_timeout: config.queue_timeout_ms,
            ..EngineConfig::default()
        };
        let sequencer = Sequencer::start(journal.clone(), engine).await?;
        let blobs_dir = config.data.join("blobs");
        let blobs = DiskStore::open(&blobs_dir).map_err(|source| Error::Io {
            what: format!("cannot open blob store {}", blobs_dir.display()),
            source,
        })?;
        let logs_dir = config.data.join("logs");
        let logs = LogStore::open(&logs_dir, config.api.max_log).map_err(|source| Error::Io {
            what: format!("cannot open the deals' logs {}", logs_dir.display()),
            source,
        })?;
        let state = State::new(config.api, journal, sequencer, Arc::new(blobs), logs);
        Ok(Self {
            state: Arc::new(state),
            lock,
        })
    }

    /// The shared state handlers use.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Serves on `listener` until `shutdown` resolves, then lets requests in
    /// flight finish, stops the sequencer after its last commit, and releases
    /// the journal's lock.
    ///
    /// # Errors
    ///
    /// The listener failed.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        let Self { state, lock } = self;
        let stopped = state.sequencer().stopped();
        let leases = tokio::spawn(api::keep_leases(Arc::downgrade(&state)));
        let counting = tokio::spawn(crate::telemetry::count_finished_jobs(
            Arc::downgrade(&state),
            state.sequencer().job_changes().subscribe(),
        ));
        let served = api::serve(listener, state, shutdown).await;
        // Every handle to the sequencer is gone now: it ends after its last commit.
        if tokio::time::timeout(Duration::from_secs(30), stopped)
            .await
            .is_err()
        {
            tracing::warn!(target: "market::server", "the sequencer did not stop within 30 s");
        }
        leases.abort();
        counting.abort();
        drop(lock);
        served.map_err(|source| Error::Io {
            what: "the listener failed".into(),
            source,
        })
    }
}
