//! The derived tables (`orders`, `deals`) projected from the journal.
//!
//! An order is acknowledged once its journal row is committed; the rows
//! derived from it follow in larger transactions: the projector gathers
//! entries for up to [`GATHER`] (or [`MAX_ENTRIES`] of them), so that the
//! random-keyed indexes of those tables cost a page write per page touched
//! in that time, not per order. A reader that needs the tables
//! ([`super::Journal::caught_up`]) cuts the wait short. `meta.projected` records the last entry projected, in the
//! same transaction as the rows; [`super::Journal::replay`] projects what
//! follows it after a crash. Readers of the derived tables first wait until
//! every entry committed before their request is projected
//! ([`super::Journal::caught_up`]), so a client reads its own writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Row};
use tokio::sync::{Notify, mpsc, watch};

use super::{Committed, Result, Val, insert};
use crate::engine::{Command, Event};

/// Consecutive committed entries, the first with sequence number `.0`.
pub(super) type Unit = (i64, Committed);

/// The most entries projected in one transaction.
const MAX_ENTRIES: usize = 16_384;

/// How long the projector gathers entries before it writes them, unless a
/// reader is waiting or [`MAX_ENTRIES`] are queued.
const GATHER: Duration = Duration::from_secs(1);

/// The indexed key of a 32-byte id in the derived tables: its first 8 bytes
/// (big-endian, as a signed integer). Lookups compare the whole id after.
pub(super) fn key(id: &alloy_primitives::B256) -> i64 {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&id[..8]);
    i64::from_be_bytes(prefix)
}

/// The last projected entry, as recorded.
pub(super) async fn recorded(pool: &AnyPool) -> Result<i64> {
    let value: Option<String> = sqlx::query("SELECT value FROM meta WHERE key = 'projected'")
        .fetch_optional(pool)
        .await?
        .map(|r| r.get(0));
    Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// How readers hurry the projector.
#[derive(Debug, Default)]
pub(super) struct Hurry {
    /// The last entry a reader waits for.
    pub(super) wanted: AtomicI64,
    /// Rung when `wanted` grows.
    pub(super) notify: Notify,
}

/// The values of a projection's rows, kept from one projection to the next
/// so that their buffers (megabytes for a second's orders) are reused
/// rather than taken from the system and zeroed again each time.
#[derive(Default)]
pub(super) struct Rows {
    deals: Vec<Val>,
    orders: Vec<Val>,
}

/// Writes the rows derived from `units` and records the last one projected,
/// in one transaction. Rows already there are left alone.
pub(super) async fn write(
    conn: &mut AnyConnection,
    postgres: bool,
    units: &[Unit],
    rows: &mut Rows,
) -> Result<i64> {
    let Rows { deals, orders } = rows;
    deals.clear();
    orders.clear();
    let mut last = 0;

    for (first, entries) in units {
        for (n, entry) in entries.iter().enumerate() {
            let seq = first + n as i64;
            last = seq;
            let made = entry.events.iter().filter_map(|e| match e {
                Event::Deal(d) => Some(d),
                _ => None,
            });
            for (ord, d) in made.enumerate() {
                deals.extend([
                    Val::B(d.id.to_vec()),
                    Val::I(seq),
                    Val::B(d.bid.to_vec()),
                    Val::B(d.offer.to_vec()),
                    Val::B(d.owner.to_vec()),
                    Val::B(d.host.to_vec()),
                    Val::S(d.class.to_string()),
                    Val::S(d.price.to_string()),
                    Val::I(d.seconds as i64),
                    Val::I(i64::from(d.replica)),
                    Val::I(d.time as i64),
                    Val::I(ord as i64),
                    Val::I(key(&d.bid)),
                    Val::I(key(&d.offer)),
                ]);
            }
            // The signed order itself stays in the journal (`Journal::order`).
            if entry.signed.is_some() {
                let (id, kind, maker, class) = match &entry.command {
                    Command::Offer(o) => (o.id, "offer", o.host, &o.class),
                    Command::Bid(b) => (b.id, "bid", b.owner, &b.class),
                    _ => continue,
                };
                orders.extend([
                    Val::B(id.to_vec()),
                    Val::I(seq),
                    Val::S(kind.into()),
                    Val::B(maker.to_vec()),
                    Val::S(class.clone()),
                    Val::I(entry.at as i64),
                    Val::I(key(&id)),
                ]);
            }
        }
    }
    // Rows already there (projected before a crash) are skipped. SQLite's
    // `OR IGNORE` (rather than `ON CONFLICT DO NOTHING`, which leaves other
    // constraints to abort the statement) lets it write without a statement
    // journal, a copy of every page the statement touches.
    let (verb, deals_tail, orders_tail) = if postgres {
        (
            "INSERT INTO",
            " ON CONFLICT (seq, ord) DO NOTHING",
            " ON CONFLICT (seq) DO NOTHING",
        )
    } else {
        ("INSERT OR IGNORE INTO", "", "")
    };
    let mut tx = super::begin_write(conn, postgres).await?;
    insert(
        &mut tx,
        postgres,
        &format!(
            "{verb} deals (id, seq, bid, offer, owner, host, class, price, seconds, replica, at, ord, bid_key, offer_key)"
        ),
        14,
        deals,
        deals_tail,
    )
    .await?;
    insert(
        &mut tx,
        postgres,
        &format!("{verb} orders (id, seq, kind, maker, class, at, id_key)"),
        7,
        orders,
        orders_tail,
    )
    .await?;
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES ('projected', $1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(last.to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(last)
}

/// Projects what the journal commits, in order, until every sender is gone.
/// A failed transaction is retried (with backoff, up to 10 s apart): the
/// entries are durable in the journal, so only readers wait.
pub(super) async fn run(
    pool: AnyPool,
    postgres: bool,
    mut rx: mpsc::Receiver<Unit>,
    projected: Arc<watch::Sender<i64>>,
    hurry: Arc<Hurry>,
) {
    let mut units = Vec::new();
    let mut rows = Rows::default();
    let mut conn: Option<PoolConnection<Any>> = None;
    let mut done = *projected.borrow();
    loop {
        if rx.recv_many(&mut units, 1024).await == 0 {
            return;
        }
        // Everything that arrives in the next `GATHER`, up to a bound, goes
        // into one transaction; a waiting reader, or the last sender
        // leaving, ends the gathering early.
        let mut size: usize = units.iter().map(|(_, e)| e.len()).sum();
        let deadline = tokio::time::Instant::now() + GATHER;
        while size < MAX_ENTRIES && hurry.wanted.load(Ordering::Acquire) <= done {
            tokio::select! {
                biased;
                () = hurry.notify.notified() => break,
                unit = rx.recv() => match unit {
                    Some(unit) => {
                        size += unit.1.len();
                        units.push(unit);
                    }
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        // Whatever else is queued rides along.
        while let Ok(unit) = rx.try_recv() {
            units.push(unit);
        }
        let mut wait = Duration::from_millis(50);
        loop {
            // One connection while it works, so its page cache stays warm.
            let result = match &mut conn {
                Some(c) => write(c, postgres, &units, &mut rows).await,
                slot => match pool.acquire().await {
                    Ok(c) => write(slot.insert(c), postgres, &units, &mut rows).await,
                    Err(e) => Err(e.into()),
                },
            };
            if result.is_err() {
                conn = None;
            }
            match result {
                Ok(last) => {
                    done = last;
                    projected.send_replace(last);
                    break;
                }
                Err(error) => {
                    tracing::error!(target: "market::journal", %error, retry_in = ?wait,
                        "cannot write the deals and orders tables; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
        units.clear();
    }
}
