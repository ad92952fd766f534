//! The server-sent-event stream of book changes and trades.

use std::time::Duration;

use alloy_signer_local::PrivateKeySigner;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::*;

/// Reads the book and trade events from `body` until `done` holds for what
/// was read (or 10 s pass); `job` and `host` events are tested in jobs.rs.
async fn read_events(
    body: &mut hyper::body::Incoming,
    done: impl Fn(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    let mut text = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(&events) {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("events within 10 s")
            .expect("the stream stays open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.into();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = d.into();
                }
            }
            if !name.is_empty() && name != "job" && name != "host" {
                events.push((name, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn book_changes_and_trades_stream_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestMarket::start(config(dir.path(), None)).await;
    let http = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri: http::Uri = format!("{}/v1/events", m.client.base()).parse().unwrap();
    let resp = http.get(uri).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    // The opening comment: subscribed before anything is posted.
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(first.starts_with(b": "));

    let (host, owner) = (PrivateKeySigner::random(), PrivateKeySigner::random());
    let (_, o) = m
        .post("/v1/offers", &sign(offer(&host, "gpu-24g", 12, 2), &host))
        .await;
    let (_, b) = m
        .post("/v1/bids", &sign(job(&owner, "gpu-24g", 20, 1), &owner))
        .await;
    let (_, c) = m.post("/v1/cancels", &cancel(&host, id_of(&o))).await;
    assert_eq!(c["cancelled"], true);

    let events = read_events(&mut body, |e| {
        e.iter().any(|(_, v)| v["type"] == "cancelled")
    })
    .await;
    let kinds: Vec<(String, String)> = events
        .iter()
        .map(|(n, v)| (n.clone(), v["type"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("book".into(), "rested".into()),
            ("trade".into(), String::new()),
            ("book".into(), "filled".into()),
            ("book".into(), "cancelled".into()),
        ],
        "{events:?}"
    );
    let rested = &events[0].1;
    assert_eq!(
        (
            &rested["id"],
            &rested["class"],
            &rested["price"],
            &rested["quantity"]
        ),
        (&o["id"], &"gpu-24g".into(), &"12".into(), &2.into())
    );
    let trade = &events[1].1;
    assert_eq!(trade["bid"], b["id"]);
    assert_eq!(trade["id"], b["deals"][0]["id"]);
    assert_eq!(trade["price"], "12");

    // Stopping the market ends the stream.
    m.stop().await;
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(f) = body.frame().await {
            if f.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the stream ends when the market stops");
}

/// Opens `/v1/events` with `query`; returns the body after its opening comment.
async fn subscribe(m: &TestMarket, query: &str) -> hyper::body::Incoming {
    let http = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri: http::Uri = format!("{}/v1/events{query}", m.client.base())
        .parse()
        .unwrap();
    let resp = http.get(uri).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(first.starts_with(b": "));
    body
}

/// The ids an event names: its own, and a trade's bid and offer.
fn ids(v: &Value) -> Vec<String> {
    ["id", "bid", "offer"]
        .iter()
        .filter_map(|k| v[*k].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_class_filter_streams_that_class_only() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestMarket::start(config(dir.path(), None)).await;
    let (a, b) = ("gpu-24g", "gpu-48g");
    let (host, owner) = (PrivateKeySigner::random(), PrivateKeySigner::random());

    // Unknown classes are named, with the classes the market trades.
    assert_error(
        &m.get("/v1/events?class=gpu-24g,nope").await,
        StatusCode::NOT_FOUND,
        "unknown_class",
        &["`nope`", "gpu-24g", "gpu-48g"],
    );
    assert_error(
        &m.get("/v1/events?class=").await,
        StatusCode::BAD_REQUEST,
        "malformed",
        &["`class`"],
    );

    // Offers resting before the streams open: their cancels are still placed by class.
    let (_, a_early) = m
        .post("/v1/offers", &sign(offer(&host, a, 15, 1), &host))
        .await;
    let (_, b_early) = m
        .post("/v1/offers", &sign(offer(&host, b, 15, 1), &host))
        .await;
    let mut only_a = subscribe(&m, "?class=gpu-24g").await;
    // Repeated and comma-separated forms; `cpu` sees nothing here.
    let mut only_b = subscribe(&m, "?class=cpu&class=gpu-48g,cpu").await;

    // A and B interleaved, so that a leak would show up between A's events.
    let (_, a_offer) = m
        .post("/v1/offers", &sign(offer(&host, a, 12, 2), &host))
        .await;
    let (_, b_offer) = m
        .post("/v1/offers", &sign(offer(&host, b, 12, 2), &host))
        .await;
    let (_, a_bid) = m
        .post("/v1/bids", &sign(job(&owner, a, 20, 1), &owner))
        .await;
    let (_, b_bid) = m
        .post("/v1/bids", &sign(job(&owner, b, 20, 1), &owner))
        .await;
    assert_eq!(a_bid["deals"].as_array().unwrap().len(), 1, "{a_bid}");
    assert_eq!(b_bid["deals"].as_array().unwrap().len(), 1, "{b_bid}");
    for order in [&b_early, &a_early, &b_offer, &a_offer] {
        let (status, c) = m.post("/v1/cancels", &cancel(&host, id_of(order))).await;
        assert_eq!(status, StatusCode::OK, "{c}");
    }

    let last_of = |last: &Value| {
        let last = last["id"].clone();
        move |e: &[(String, Value)]| {
            e.iter()
                .any(|(_, v)| v["type"] == "cancelled" && v["id"] == last)
        }
    };
    let seen_a = read_events(&mut only_a, last_of(&a_offer)).await;
    let seen_b = read_events(&mut only_b, last_of(&b_offer)).await;
    for (seen, (early, offer, bid, class)) in [
        (&seen_a, (&a_early, &a_offer, &a_bid, a)),
        (&seen_b, (&b_early, &b_offer, &b_bid, b)),
    ] {
        let kinds: Vec<(&str, &str, Vec<String>)> = seen
            .iter()
            .map(|(n, v)| (n.as_str(), v["type"].as_str().unwrap_or(""), ids(v)))
            .collect();
        let id = |v: &Value| v["id"].as_str().unwrap().to_owned();
        assert_eq!(
            kinds,
            [
                ("book", "rested", vec![id(offer)]),
                ("trade", "", vec![id(&bid["deals"][0]), id(bid), id(offer)]),
                ("book", "filled", vec![id(bid)]),
                ("book", "cancelled", vec![id(early)]),
                ("book", "cancelled", vec![id(offer)]),
            ],
            "{class}: {seen:?}"
        );
        assert_eq!(seen[0].1["class"], class);
        assert_eq!(seen[1].1["class"], class);
    }
    m.stop().await;
}

#[tokio::test]
async fn a_host_stream_brings_its_trades_with_their_jobs_and_the_end_of_its_jobs() {
    use netmind_protocol::work::Start;

    let dir = tempfile::tempdir().unwrap();
    let m = TestMarket::start(config(&dir.path().join("m"), None)).await;
    let (s, j) = m.get("/v1/events?host=0x12").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{j}");
    assert!(
        j["error"]["message"].as_str().unwrap().contains("`host`"),
        "{j}"
    );
    let hosts: Vec<_> = (0..3).map(|_| PrivateKeySigner::random()).collect();
    let me = hosts[0].address();
    let mut mine = m.client.events(&format!("?host={me}")).await.unwrap();
    // A job with a replica on each of the three hosts.
    let (id, deals) = super::jobs::matched(&m, &hosts, 3).await;
    let (deal, key) = deals.iter().find(|(_, k)| k.address() == me).unwrap();
    let out = super::jobs::upload(&m, b"the output").await;
    let start = Start {
        host: me,
        deal: *deal,
        at: now_ms(),
    };
    let (s, j) = m
        .post(&format!("/v1/deals/{deal}/start"), &sign(start, key))
        .await;
    assert_eq!(s, StatusCode::OK, "{j}");
    // Two of three agree: the job is done.
    let other = deals.iter().find(|(_, k)| k.address() != me).unwrap();
    for (deal, key) in [(deal, key), (&other.0, &other.1)] {
        let receipt = super::jobs::receipt(key, *deal, out);
        assert_eq!(
            m.post("/v1/receipts", &sign(receipt, key)).await.0,
            StatusCode::OK
        );
    }
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.iter().any(|(n, _): &(String, Value)| n == "job") {
        let next = tokio::time::timeout_at(deadline, mine.next())
            .await
            .expect("the job's end in time");
        let (name, data) = next.unwrap().unwrap();
        seen.push((name, serde_json::from_str(&data).unwrap()));
    }
    // Its own trade only, with the job as it was matched; no book or host
    // events; of the job's changes only its end.
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["trade", "job"], "{seen:?}");
    let trade = &seen[0].1;
    assert_eq!(trade["id"], deal.to_string());
    assert_eq!(trade["host"], me.to_string().to_lowercase());
    assert_eq!(trade["job"]["id"], id.to_string());
    assert_eq!(trade["job"]["state"], "matched");
    assert_eq!(trade["job"]["replicas"], 3);
    assert!(trade["job"]["bundle"].is_string(), "{trade}");
    assert_eq!(seen[1].1["id"], id.to_string());
    assert_eq!(seen[1].1["state"], "done");
    m.stop().await;
}
