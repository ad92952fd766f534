use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command as Process, Stdio};

use alloy_primitives::{Address, B256};

use super::*;
use crate::engine::{Bid, Capabilities, Offer, Requirements};

fn id(n: u64) -> B256 {
    B256::left_padding_from(&n.to_be_bytes())
}

fn offer(n: u64) -> Command {
    Command::Offer(Offer {
        id: id(n),
        host: Address::repeat_byte((n % 200) as u8 + 1),
        class: "gpu".into(),
        caps: Capabilities {
            gpu_model: Some("gpu".into()),
            vram: 24 << 30,
            ..Capabilities::default()
        },
        price: 10 + u128::from(n % 7),
        slots: 1,
        expiry: u64::MAX,
    })
}

fn bid(n: u64) -> Command {
    Command::Bid(Bid {
        id: id(n),
        owner: Address::repeat_byte(250),
        class: "gpu".into(),
        req: Requirements {
            gpu: true,
            ..Requirements::default()
        },
        max_price: 14,
        max_seconds: 60,
        replicas: 1,
        deadline: u64::MAX,
    })
}

fn deal_ids(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Deal(d) => Some(d.id.to_string()),
            _ => None,
        })
        .collect()
}

/// Where the tests keep journals: a SQLite file in `dir`, and a fresh
/// PostgreSQL database when `NETMIND_TEST_POSTGRES` names a server (as
/// `scripts/test.sh` does; required when `NETMIND_REQUIRE_POSTGRES` is set).
async fn locations(dir: &Path) -> Vec<String> {
    let mut out = vec![dir.join("market.db").display().to_string()];
    match std::env::var("NETMIND_TEST_POSTGRES") {
        Ok(admin) => {
            use sqlx::Connection;
            sqlx::any::install_default_drivers();
            let name = format!("netmind_test_{}", rand_suffix());
            let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
            let create = format!("CREATE DATABASE {name}");
            // The name is ours (pid and clock digits), not input.
            sqlx::raw_sql(sqlx::AssertSqlSafe(create))
                .execute(&mut conn)
                .await
                .unwrap();
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            out.push(format!("{base}/{name}"));
        }
        Err(_) => assert!(
            std::env::var_os("NETMIND_REQUIRE_POSTGRES").is_none(),
            "NETMIND_REQUIRE_POSTGRES is set but NETMIND_TEST_POSTGRES is not"
        ),
    }
    out
}

fn rand_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}_{nanos}", std::process::id())
}

/// Replays the journal and returns the deal ids the engine makes, in order.
async fn replayed_deals(journal: &Journal) -> Vec<String> {
    let rows = sqlx::query("SELECT at, command FROM journal ORDER BY seq")
        .fetch_all(&journal.pool)
        .await
        .unwrap();
    let mut engine = Engine::default();
    let mut out = Vec::new();
    for row in rows {
        let at: i64 = row.get(0);
        let text: String = row.get(1);
        out.extend(deal_ids(
            &engine.apply(serde_json::from_str(&text).unwrap(), at as Time),
        ));
    }
    out
}

#[tokio::test]
async fn acknowledged_commands_survive_a_restart_and_rebuild_the_same_book() {
    let dir = tempfile::tempdir().unwrap();
    for location in locations(dir.path()).await {
        let journal = Journal::open(&location).await.unwrap();
        let seq = Sequencer::start(journal.clone(), EngineConfig::default())
            .await
            .unwrap();
        let mut acked_deals = Vec::new();
        for n in 0..3 {
            seq.submit(offer(n)).await.unwrap();
        }
        for n in 10..12 {
            acked_deals.extend(deal_ids(&seq.submit(bid(n)).await.unwrap()));
        }
        // A duplicate is refused at once and not journaled: it changes nothing.
        let again = seq.submit(offer(0)).await.unwrap();
        assert!(matches!(again[..], [Event::Rejected { .. }]));
        drop(seq);
        drop(journal);

        let journal = Journal::open(&location).await.unwrap();
        let (engine, count) = journal.replay(EngineConfig::default()).await.unwrap();
        assert_eq!(count, 5, "{location}");
        assert_eq!(acked_deals.len(), 2);
        assert_eq!(journal.deal_ids().await.unwrap(), acked_deals);
        let (offers, bids) = engine.book("gpu");
        assert_eq!((offers.len(), bids.len()), (1, 0));
        // Replaying under other settings would give another book: refused.
        let other = EngineConfig {
            queue_timeout: 1,
            ..EngineConfig::default()
        };
        let e = Sequencer::start(journal.clone(), other)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("replaying it would give another book"), "{e}");
        Sequencer::start(journal, EngineConfig::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn derived_tables_are_rebuilt_from_the_journal_and_read_your_writes() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("market.db").display().to_string();
    let journal = Journal::open(&location).await.unwrap();
    let seq = Sequencer::start(journal.clone(), EngineConfig::default())
        .await
        .unwrap();
    let mut acked = Vec::new();
    for n in 0..20 {
        acked.extend(deal_ids(&seq.submit(offer(n)).await.unwrap()));
        // What was acknowledged is readable at once.
        let signed = format!("{{\"bid\":{n}}}");
        let events = seq.submit_signed(bid(100 + n), Some(signed)).await.unwrap();
        acked.extend(deal_ids(&events));
        assert_eq!(journal.deal_ids().await.unwrap(), acked);
        let row = journal.order(&id(100 + n)).await.unwrap();
        assert_eq!(row.unwrap().signed, format!("{{\"bid\":{n}}}"));
    }
    assert!(acked.len() >= 10, "{acked:?}");
    drop(seq);
    drop(journal);
    // The views file is derived: lose it, and a restart rebuilds it.
    let views = format!("{location}-views.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{views}{suffix}"));
    }
    let journal = Journal::open(&location).await.unwrap();
    assert!(journal.deal_ids().await.unwrap().is_empty());
    journal.replay(EngineConfig::default()).await.unwrap();
    assert_eq!(journal.deal_ids().await.unwrap(), acked);
    let row = journal.order(&id(105)).await.unwrap().unwrap();
    assert_eq!(
        (row.kind.as_str(), row.signed.as_str()),
        ("bid", "{\"bid\":5}")
    );
    drop(journal);

    // A views file from before ids were stored as bytes (its migrations 1
    // and 2 only, rows as text, everything projected): migration 3 empties
    // it and the journal is projected into it again.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{views}{suffix}"));
    }
    let old = tempfile::tempdir().unwrap();
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite-views");
    for name in ["0001_views.sql", "0002_orders_without_signed.sql"] {
        std::fs::copy(migrations.join(name), old.path().join(name)).unwrap();
    }
    let pool = sqlite(&views, "PRAGMA synchronous = NORMAL;")
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(old.path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO deals (id, seq, bid, offer, owner, host, class, price, seconds, replica, at, ord) \
         VALUES ('0xold', 1, '0xb', '0xo', '0xw', '0xh', 'gpu', '10', 60, 0, 1, 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO meta (key, value) VALUES ('projected', '1000')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let journal = Journal::open(&location).await.unwrap();
    journal.replay(EngineConfig::default()).await.unwrap();
    assert_eq!(journal.deal_ids().await.unwrap(), acked);
    let row = journal.order(&id(107)).await.unwrap().unwrap();
    assert_eq!(row.maker, Address::repeat_byte(250).to_string());
}

#[tokio::test]
async fn concurrent_submissions_are_committed_in_groups_and_all_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    for location in locations(dir.path()).await {
        let journal = Journal::open(&location).await.unwrap();
        let seq = Sequencer::start(journal.clone(), EngineConfig::default())
            .await
            .unwrap();
        let mut batches = seq.subscribe();
        // More than fit one statement: the largest batches are written in a
        // transaction of two statements, the rest as one statement each.
        let tasks: Vec<_> = (0..2_400u64)
            .map(|n| {
                let seq = seq.clone();
                let cmd = if n.is_multiple_of(2) {
                    offer(n)
                } else {
                    bid(n)
                };
                tokio::spawn(async move { seq.submit(cmd).await })
            })
            .collect();
        let mut deals = Vec::new();
        for t in tasks {
            deals.extend(deal_ids(&t.await.unwrap().unwrap()));
        }
        let mut sizes = Vec::new();
        while let Ok(batch) = batches.try_recv() {
            sizes.push(batch.len());
        }
        assert_eq!(sizes.iter().sum::<usize>(), 2_400, "{location}");
        assert!(sizes.iter().any(|&n| n > ROWS_PER_STATEMENT), "{sizes:?}");
        assert!(sizes.iter().any(|&n| n <= ROWS_PER_STATEMENT), "{sizes:?}");
        let stored = journal.deal_ids().await.unwrap();
        assert_eq!(stored.len(), deals.len(), "{location}");
        assert_eq!(
            stored.iter().collect::<HashSet<_>>(),
            deals.iter().collect::<HashSet<_>>()
        );
        assert_eq!(
            replayed_deals(&journal).await,
            stored,
            "the deals table is what the journal replays to"
        );
    }
}

/// The child of the crash test: submits orders forever, printing each acknowledged id.
#[tokio::test]
#[ignore = "run by kill_9_loses_no_acknowledged_order_and_duplicates_no_deal"]
async fn crash_writer() {
    let Some(path) = std::env::var_os("NETMIND_JOURNAL_CRASH_DB") else {
        return;
    };
    let journal = Journal::open(&path.to_string_lossy()).await.unwrap();
    let seq = Sequencer::start(journal, EngineConfig::default())
        .await
        .unwrap();
    let mut n: u64 = std::env::var("NETMIND_JOURNAL_CRASH_START")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    loop {
        // A few submitters at once, so that commits carry several commands.
        let batch: Vec<_> = (0..8)
            .map(|_| {
                n += 1;
                let cmd = if n.is_multiple_of(2) {
                    offer(n)
                } else {
                    bid(n)
                };
                let seq = seq.clone();
                tokio::spawn(async move { (n, seq.submit(cmd).await) })
            })
            .collect();
        for t in batch {
            let (n, result) = t.await.unwrap();
            result.unwrap();
            println!("ACK {n}");
        }
    }
}

#[test]
fn kill_9_loses_no_acknowledged_order_and_duplicates_no_deal() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for path in rt.block_on(locations(dir.path())) {
        kill_9_rounds(&rt, &path);
    }
}

fn kill_9_rounds(rt: &tokio::runtime::Runtime, path: &str) {
    for round in 0..3 {
        let mut child = Process::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "journal::tests::crash_writer",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("NETMIND_JOURNAL_CRASH_DB", path)
            .env(
                "NETMIND_JOURNAL_CRASH_START",
                (1_000_000 * (round + 1)).to_string(),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut acked = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("ACK ") {
                acked.push(n.parse::<u64>().unwrap());
                if acked.len() == 200 * (round + 1) {
                    child.kill().unwrap(); // SIGKILL, mid-stream
                    break;
                }
            }
        }
        child.wait().unwrap();
        assert_eq!(
            acked.len(),
            200 * (round + 1),
            "round {round}: the writer stopped before it was killed"
        );
        rt.block_on(async {
            let journal = Journal::open(path).await.unwrap();
            let rows = sqlx::query("SELECT command FROM journal")
                .fetch_all(&journal.pool)
                .await
                .unwrap();
            let stored: HashSet<B256> = rows
                .iter()
                .map(|r| {
                    let text: String = r.get(0);
                    match serde_json::from_str::<Command>(&text).unwrap() {
                        Command::Offer(o) => o.id,
                        Command::Bid(b) => b.id,
                        other => panic!("{other:?}"),
                    }
                })
                .collect();
            for n in &acked {
                assert!(
                    stored.contains(&id(*n)),
                    "round {round}: acknowledged order {n} was lost"
                );
            }
            // A restart replays the journal, which projects what the
            // deals table missed when the writer died.
            journal.replay(EngineConfig::default()).await.unwrap();
            let deals = journal.deal_ids().await.unwrap();
            let unique: HashSet<&String> = deals.iter().collect();
            assert_eq!(unique.len(), deals.len(), "a deal was stored twice");
            assert_eq!(
                replayed_deals(&journal).await,
                deals,
                "deals match the journal"
            );
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_sent_together_are_all_stored_beside_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    for location in locations(dir.path()).await {
        let journal = Journal::open(&location).await.unwrap();
        let seq = Sequencer::start(journal.clone(), EngineConfig::default())
            .await
            .unwrap();
        // Journal appends and reports interleave on the one writer connection.
        let appends = tokio::spawn(async move {
            for n in 0..50 {
                seq.submit(offer(n)).await.unwrap();
            }
        });
        let mut tasks = Vec::new();
        for n in 0..300u64 {
            let journal = journal.clone();
            tasks.push(tokio::spawn(async move {
                let work = work::Work::Extra {
                    job: id(n),
                    retry: id(1_000 + n),
                };
                journal.append_work(&work, n).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        appends.await.unwrap();
        let rows = sqlx::query("SELECT at, deal FROM work ORDER BY seq")
            .fetch_all(&journal.pool)
            .await
            .unwrap();
        let stored: HashSet<i64> = rows.iter().map(|r| r.get::<i64, _>(0)).collect();
        assert_eq!(stored, (0..300).collect::<HashSet<i64>>(), "{location}");
        // Each row is the report it was given.
        for r in &rows {
            let at: i64 = r.get(0);
            assert_eq!(r.get::<String, _>(1), id(at as u64).to_string());
        }
        assert_eq!(journal.replay(EngineConfig::default()).await.unwrap().1, 50);
    }
}

#[tokio::test]
async fn the_wal_starts_over_while_a_writer_never_pauses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let journal = Journal::open(&path.to_string_lossy()).await.unwrap();
    // 24 MiB of entries, appended back to back (each append a commit), as
    // under a steady flow of orders: passive checkpoints alone never catch up.
    let signed = "x".repeat(4096);
    let mut largest = 0;
    for n in 0..1_500u64 {
        let batch = (0..4)
            .map(|k| Entry {
                command: offer(n * 4 + k),
                at: 1,
                events: Vec::new(),
                signed: Some(signed.clone()),
            })
            .collect();
        journal.append(Arc::new(batch)).await.unwrap();
        if n % 100 == 0 {
            let wal = std::fs::metadata(dir.path().join("wal.db-wal")).unwrap();
            largest = largest.max(wal.len());
        }
    }
    let wal = std::fs::metadata(dir.path().join("wal.db-wal")).unwrap();
    largest = largest.max(wal.len());
    // Without restarts the file holds every page written (~40 MB); with
    // them, what comes in one checkpoint interval or two (~10 MB here).
    assert!(
        largest < 20 << 20,
        "the WAL grew to {largest} bytes: it never started over"
    );
    // Nothing lost on the way: every entry replays.
    let (_, replayed) = journal.replay(EngineConfig::default()).await.unwrap();
    assert_eq!(replayed, 6_000);
}
