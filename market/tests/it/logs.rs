//! Deals' logs through the API: only the deal's host appends, pieces are
//! idempotent and gap-free, waiting readers wake on new text and on the
//! deal's end, a replicated job's logs are held until it is decided, and
//! logs survive a restart.

use std::time::{Duration, Instant};

use alloy_primitives::B256;
use alloy_signer_local::PrivateKeySigner;
use http::{Method, StatusCode};
use netmind_protocol::work::{Log, Start};
use serde_json::Value;

use super::jobs::{matched, receipt, upload};
use super::*;

fn piece(key: &PrivateKeySigner, deal: B256, offset: u64, text: &str) -> Log {
    Log {
        host: key.address(),
        deal,
        offset,
        text: text.into(),
    }
}

pub(super) async fn append(
    m: &TestMarket,
    key: &PrivateKeySigner,
    deal: B256,
    offset: u64,
    text: &str,
) -> (StatusCode, Value) {
    m.post(
        &format!("/v1/deals/{deal}/logs"),
        &sign(piece(key, deal, offset, text), key),
    )
    .await
}

async fn start(m: &TestMarket, key: &PrivateKeySigner, deal: B256) {
    let start = Start {
        host: key.address(),
        deal,
        at: now_ms(),
    };
    let (s, body) = m
        .post(&format!("/v1/deals/{deal}/start"), &sign(start, key))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_deals_host_appends_its_log_readers_follow_it_and_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestMarket::start(config(&dir.path().join("m"), None)).await;
    let hosts: Vec<_> = (0..2).map(|_| PrivateKeySigner::random()).collect();
    let (_, deals) = matched(&m, &hosts, 1).await;
    let (deal, key) = deals[0].clone();
    let other = hosts.iter().find(|h| h.address() != key.address()).unwrap();
    start(&m, &key, deal).await;

    // A reader waiting at the end wakes as soon as the host sends text.
    let t = Instant::now();
    let waiting = format!("/v1/deals/{deal}/logs?from=0&wait=20000");
    let ((s, read), (w, written)) = tokio::join!(m.get(&waiting), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        append(&m, &key, deal, 0, "hello ").await
    });
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(
        (w, &written["len"]),
        (StatusCode::OK, &Value::from(6)),
        "{written}"
    );
    assert_eq!(s, StatusCode::OK, "{read}");
    assert_eq!(read["text"], "hello ", "{read}");
    assert_eq!(
        (&read["next"], &read["complete"], &read["held"]),
        (&Value::from(6), &Value::from(false), &Value::from(false))
    );

    assert_eq!(append(&m, &key, deal, 6, "wörld\n").await.1["len"], 13);
    // A resend (its answer was lost) changes nothing.
    assert_eq!(append(&m, &key, deal, 6, "wörld\n").await.1["len"], 13);
    // A piece past the end would leave a gap.
    assert_error(
        &append(&m, &key, deal, 40, "late").await,
        StatusCode::CONFLICT,
        "duplicate",
        &["send from byte 13"],
    );
    // Another host, a forged signature, the wrong deal in the path, an
    // unknown deal, garbage and an oversize body are refused.
    assert_error(
        &append(&m, other, deal, 13, "not mine").await,
        StatusCode::FORBIDDEN,
        "not_maker",
        &[],
    );
    let forged = forge(piece(&key, deal, 13, "forged"), other);
    assert_error(
        &m.post(&format!("/v1/deals/{deal}/logs"), &forged).await,
        StatusCode::UNAUTHORIZED,
        "bad_signature",
        &["log"],
    );
    let elsewhere = B256::repeat_byte(9);
    assert_error(
        &m.post(
            &format!("/v1/deals/{elsewhere}/logs"),
            &sign(piece(&key, deal, 13, "x"), &key),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid",
        &["posted for deal"],
    );
    assert_error(
        &append(&m, &key, elsewhere, 0, "x").await,
        StatusCode::NOT_FOUND,
        "not_found",
        &[],
    );
    assert_error(
        &m.get(&format!("/v1/deals/{elsewhere}/logs")).await,
        StatusCode::NOT_FOUND,
        "not_found",
        &["no deal"],
    );
    assert_error(
        &m.raw(
            Method::POST,
            &format!("/v1/deals/{deal}/logs"),
            b"{\"order\": 7",
        )
        .await,
        StatusCode::BAD_REQUEST,
        "malformed",
        &[],
    );
    let huge = "x".repeat(100 * 1024);
    assert_eq!(
        append(&m, &key, deal, 13, &huge).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_error(
        &m.get(&format!("/v1/deals/{deal}/logs?from=abc")).await,
        StatusCode::BAD_REQUEST,
        "malformed",
        &["from"],
    );
    let (_, all) = m.get(&format!("/v1/deals/{deal}/logs")).await;
    assert_eq!(all["text"], "hello wörld\n", "{all}");
    let (_, tail) = m.get(&format!("/v1/deals/{deal}/logs?from=6")).await;
    assert_eq!(tail["text"], "wörld\n", "{tail}");

    // The receipt closes the log: a waiting reader learns it at once, and
    // later pieces are refused.
    let out = upload(&m, b"log test output").await;
    let t = Instant::now();
    let waiting = format!("/v1/deals/{deal}/logs?from=13&wait=20000");
    let ((_, last), (r, _)) = tokio::join!(m.get(&waiting), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        m.post("/v1/receipts", &sign(receipt(&key, deal, out), &key))
            .await
    });
    assert_eq!(r, StatusCode::OK);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(
        (&last["text"], &last["complete"]),
        (&Value::from(""), &Value::from(true)),
        "{last}"
    );
    assert_error(
        &append(&m, &key, deal, 13, "after").await,
        StatusCode::CONFLICT,
        "duplicate",
        &[],
    );

    // Logs outlive a restart.
    let config = m.stop().await;
    let m = TestMarket::start(config).await;
    let (_, all) = m.get(&format!("/v1/deals/{deal}/logs")).await;
    assert_eq!(
        (&all["text"], &all["complete"]),
        (&Value::from("hello wörld\n"), &Value::from(true)),
        "{all}"
    );
    m.stop().await;
}

#[tokio::test]
async fn a_replicated_jobs_logs_are_held_until_it_is_decided_and_a_flood_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir.path().join("m"), None);
    cfg.api.max_log = 4096;
    let m = TestMarket::start(cfg).await;
    let hosts: Vec<_> = (0..3).map(|_| PrivateKeySigner::random()).collect();
    let (id, deals) = matched(&m, &hosts, 2).await;
    for (deal, key) in &deals {
        start(&m, key, *deal).await;
        append(&m, key, *deal, 0, "the answer is 42\n").await;
        // Pieces past the cap are acknowledged, and the log says it was cut.
        let mut offset = 17;
        for _ in 0..5 {
            let (s, body) = append(&m, key, *deal, offset, &"y".repeat(1000)).await;
            assert_eq!(s, StatusCode::OK, "{body}");
            offset += 1000;
        }
        // Held back while the job is undecided, even when waiting.
        let (_, r) = m.get(&format!("/v1/deals/{deal}/logs?wait=100")).await;
        assert_eq!(
            (&r["held"], &r["text"]),
            (&Value::from(true), &Value::from("")),
            "{r}"
        );
    }
    let out = upload(&m, b"agreed").await;
    for (deal, key) in &deals {
        let (s, body) = m
            .post("/v1/receipts", &sign(receipt(key, *deal, out), key))
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    let (_, j) = m.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(j["state"], "done", "{j}");
    for (deal, _) in &deals {
        let (_, r) = m.get(&format!("/v1/deals/{deal}/logs")).await;
        let text = r["text"].as_str().unwrap();
        assert!(text.starts_with("the answer is 42\nyyy"), "{r}");
        assert!(text.ends_with(netmind_market::logs::CUT), "{r}");
        assert_eq!(text.len(), 4096 + netmind_market::logs::CUT.len());
        assert_eq!(
            (&r["held"], &r["complete"]),
            (&Value::from(false), &Value::from(true)),
            "{r}"
        );
    }
    m.stop().await;
}
