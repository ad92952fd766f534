//! Reads of the derived tables (deals, signed orders) for the API, and the
//! lock that keeps a second market from sequencing the same journal.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;

use alloy_primitives::{Address, B256, hex};
use sqlx::{AnyConnection, Connection, Row};

use super::{Journal, JournalError, Result};

/// A stored deal, as the API shows it (prices as decimal strings, so no
/// client loses precision).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DealRow {
    /// The deal id.
    pub id: String,
    /// The journal entry that made it.
    pub seq: i64,
    /// The bid.
    pub bid: String,
    /// The offer.
    pub offer: String,
    /// The job owner.
    pub owner: String,
    /// The host.
    pub host: String,
    /// The class.
    pub class: String,
    /// Price per second, NMT base units (decimal).
    pub price: String,
    /// The bid's maximum run time, seconds.
    pub seconds: i64,
    /// Which replica of the bid (0-based).
    pub replica: i64,
    /// When it was made, ms since the Unix epoch.
    pub at: i64,
}

/// Which deals to list: every filter given must hold; newest first.
#[derive(Debug, Clone, Default)]
pub struct DealQuery {
    /// Deals of this bid.
    pub bid: Option<B256>,
    /// Deals of this offer.
    pub offer: Option<B256>,
    /// Deals of this job owner.
    pub owner: Option<Address>,
    /// Deals of this host.
    pub host: Option<Address>,
    /// Deals in this class.
    pub class: Option<String>,
    /// Only deals made by journal entries before this one (for paging).
    pub before_seq: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// A signed order as stored with the entry that placed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    /// `offer` or `bid`.
    pub kind: String,
    /// The maker.
    pub maker: String,
    /// The class.
    pub class: String,
    /// When it was accepted, ms since the Unix epoch.
    pub at: i64,
    /// The signed order's JSON.
    pub signed: String,
}

/// Held while a market sequences a journal: an exclusive lock on a file
/// beside a SQLite journal, or a PostgreSQL session advisory lock on a
/// connection kept open. Dropping it releases the lock.
#[derive(Debug)]
pub enum JournalLock {
    /// `<journal file>.lock`, locked exclusively.
    File(File, PathBuf),
    /// The connection holding `pg_advisory_lock`.
    Postgres(Box<AnyConnection>),
}

/// The advisory lock key on PostgreSQL: "netmind" in ASCII.
const PG_LOCK_KEY: i64 = 0x006e_6574_6d69_6e64;

/// How long [`Journal::lock`] retries a PostgreSQL advisory lock held by
/// another session (a market that has just stopped releases it only when
/// the server sees its connection close).
const PG_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// A 32-byte id stored as its bytes, as `0x…` hex.
pub(super) fn hash_hex(r: &sqlx::any::AnyRow, column: usize) -> String {
    let bytes: Vec<u8> = r.get(column);
    B256::try_from(bytes.as_slice())
        .map_or_else(|_| hex::encode_prefixed(&bytes), |h| h.to_string())
}

/// An address stored as its 20 bytes, checksummed (EIP-55) as `Address`
/// displays it.
fn address_hex(r: &sqlx::any::AnyRow, column: usize) -> String {
    let bytes: Vec<u8> = r.get(column);
    Address::try_from(bytes.as_slice())
        .map_or_else(|_| hex::encode_prefixed(&bytes), |a| a.to_string())
}

fn deal_row(r: &sqlx::any::AnyRow) -> DealRow {
    DealRow {
        id: hash_hex(r, 0),
        seq: r.get(1),
        bid: hash_hex(r, 2),
        offer: hash_hex(r, 3),
        owner: address_hex(r, 4),
        host: address_hex(r, 5),
        class: r.get(6),
        price: r.get(7),
        seconds: r.get(8),
        replica: r.get(9),
        at: r.get(10),
    }
}

impl Journal {
    /// Deals matching `q`, newest first.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn deals(&self, q: &DealQuery) -> Result<Vec<DealRow>> {
        self.caught_up().await;
        let mut sql = String::from(
            "SELECT id, seq, bid, offer, owner, host, class, price, seconds, replica, at FROM deals WHERE 1 = 1",
        );
        // Ids and addresses are stored as their bytes, classes as text.
        let mut binds: Vec<super::Val> = Vec::new();
        // Bids and offers are found by their indexed 8-byte prefix, then
        // compared whole.
        let key = |h: alloy_primitives::B256| super::Val::I(super::project::key(&h));
        let filters = [
            ("bid_key", q.bid.map(key)),
            ("bid", q.bid.map(|h| super::Val::B(h.to_vec()))),
            ("offer_key", q.offer.map(key)),
            ("offer", q.offer.map(|h| super::Val::B(h.to_vec()))),
            ("owner", q.owner.map(|a| super::Val::B(a.to_vec()))),
            ("host", q.host.map(|a| super::Val::B(a.to_vec()))),
            ("class", q.class.clone().map(super::Val::S)),
        ];
        for (column, value) in filters {
            if let Some(v) = value {
                binds.push(v);
                // Column names are ours; values are bound.
                sql.push_str(&format!(" AND {column} = ${}", binds.len()));
            }
        }
        if q.before_seq.is_some() {
            sql.push_str(&format!(" AND seq < ${}", binds.len() + 1));
        }
        sql.push_str(&format!(" ORDER BY seq DESC, ord DESC LIMIT {}", q.limit));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            query = b.bind(query);
        }
        if let Some(before) = q.before_seq {
            query = query.bind(before);
        }
        let rows = query.fetch_all(&self.views).await?;
        Ok(rows.iter().map(deal_row).collect())
    }

    /// The signed order with this id, if one was placed.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn order(&self, id: &B256) -> Result<Option<OrderRow>> {
        self.caught_up().await;
        let Some(row) = sqlx::query(
            "SELECT kind, maker, class, at, seq FROM orders WHERE id_key = $1 AND id = $2",
        )
        .bind(super::project::key(id))
        .bind(id.to_vec())
        .fetch_optional(&self.views)
        .await?
        else {
            return Ok(None);
        };
        // The signed order is kept once, in the journal entry that placed it.
        let seq: i64 = row.get(4);
        let signed: Option<String> = sqlx::query("SELECT signed FROM journal WHERE seq = $1")
            .bind(seq)
            .fetch_optional(&self.pool)
            .await?
            .and_then(|r| r.get(0));
        Ok(Some(OrderRow {
            kind: row.get(0),
            maker: address_hex(&row, 1),
            class: row.get(2),
            at: row.get(3),
            signed: signed.unwrap_or_default(),
        }))
    }

    /// Takes the journal's lock, so that no other market sequences it.
    ///
    /// # Errors
    ///
    /// [`JournalError::Locked`] when another process holds it (naming what
    /// to do), or the lock file or database cannot be reached.
    pub async fn lock(&self) -> Result<JournalLock> {
        let location = &*self.location;
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            let mut conn = AnyConnection::connect(location).await?;
            // A market that just stopped may still hold the lock until the
            // server notices its connection closed: try again for a moment
            // before calling it taken.
            let deadline = tokio::time::Instant::now() + PG_LOCK_WAIT;
            let got = loop {
                let got: bool = sqlx::query("SELECT pg_try_advisory_lock($1)")
                    .bind(PG_LOCK_KEY)
                    .fetch_one(&mut conn)
                    .await?
                    .get(0);
                if got || tokio::time::Instant::now() >= deadline {
                    break got;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            };
            if !got {
                return Err(JournalError::Locked(
                    "another market is sequencing this PostgreSQL journal (it holds the \
                     advisory lock); stop it first, or give this one another database"
                        .into(),
                ));
            }
            return Ok(JournalLock::Postgres(Box::new(conn)));
        }
        let path = PathBuf::from(format!("{location}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| {
                JournalError::Locked(format!("cannot open lock file {}: {e}", path.display()))
            })?;
        match file.try_lock() {
            Ok(()) => Ok(JournalLock::File(file, path)),
            Err(TryLockError::WouldBlock) => Err(JournalError::Locked(format!(
                "another market is sequencing this journal (it holds {}); stop it first, \
                 or give this one another --data directory",
                path.display()
            ))),
            Err(TryLockError::Error(e)) => Err(JournalError::Locked(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }

    /// Where the journal is: a PostgreSQL URL or a SQLite file path.
    pub fn location(&self) -> &str {
        &self.location
    }
}
