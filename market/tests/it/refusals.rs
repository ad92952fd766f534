//! Every bad input is refused with the right status and a message that says
//! what to fix, and changes nothing (journal, books, deals).

use alloy_primitives::U256;
use alloy_signer_local::PrivateKeySigner;
use http::{Method, StatusCode};
use netmind_market::api::Rate;
use netmind_protocol::orders::{Signed, domain};
use serde_json::json;

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_replayed_expired_and_wrong_domain_orders_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for config in configs(dir.path()).await {
        let m = TestMarket::start(config).await;
        let (host, owner, thief) = (
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
        );
        let good = sign(offer(&host, "gpu-24g", 10, 1), &host);
        let (s, _) = m.post("/v1/offers", &good).await;
        assert_eq!(s, StatusCode::CREATED);
        let before = m.snapshot().await;

        // Forged: altered after signing (a cheaper price).
        let mut altered = sign(offer(&host, "gpu-24g", 10, 1), &host);
        altered.order.price = U256::from(1u64);
        let got = m.post("/v1/offers", &altered).await;
        assert_error(
            &got,
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            &[
                "invalid order signature",
                "altered after signing",
                "GET /v1/info",
            ],
        );
        // Forged: someone else's key names the host as maker.
        let got = m
            .post("/v1/offers", &forge(offer(&host, "gpu-24g", 10, 1), &thief))
            .await;
        assert_error(
            &got,
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            &[&thief.address().to_string()],
        );
        // A bid signed by a thief for the owner.
        let mut bid = sign(job(&thief, "gpu-24g", 20, 1), &thief);
        bid.order.owner = owner.address();
        let got = m.post("/v1/bids", &bid).await;
        assert_error(
            &got,
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            &["signed by"],
        );
        // Wrong domain: signed for another chain id.
        let other_chain = Signed::sign(offer(&host, "gpu-24g", 10, 1), &host, &domain(1)).unwrap();
        let got = m.post("/v1/offers", &other_chain).await;
        assert_error(
            &got,
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            &["another chain id"],
        );
        // A garbage signature.
        let mut garbage = serde_json::to_value(&good).unwrap();
        garbage["signature"]["r"] = json!("0x0");
        let got = m.post("/v1/offers", &garbage).await;
        assert_error(
            &got,
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            &["does not recover"],
        );
        // A signature that is not one: malformed.
        garbage["signature"] = json!(format!("0x{}", "00".repeat(65)));
        let got = m.post("/v1/offers", &garbage).await;
        assert_error(
            &got,
            StatusCode::BAD_REQUEST,
            "malformed",
            &["field `signature`"],
        );

        // Replayed: the same signed order again.
        let got = m.post("/v1/offers", &good).await;
        assert_error(
            &got,
            StatusCode::CONFLICT,
            "duplicate",
            &["already placed", "replay", "new nonce"],
        );
        // Expired: an offer past its expiry, a bid past its deadline.
        let mut old = offer(&host, "gpu-24g", 10, 1);
        old.expiry = now_ms() - 1_000;
        let got = m.post("/v1/offers", &sign(old, &host)).await;
        assert_error(
            &got,
            StatusCode::BAD_REQUEST,
            "expired",
            &["expiry", "has passed", "later"],
        );
        let mut late = job(&owner, "gpu-24g", 20, 1);
        late.deadline = 1;
        let got = m.post("/v1/bids", &sign(late, &owner)).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "expired", &["deadline"]);

        assert_eq!(m.snapshot().await, before, "nothing changed");
        m.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversize_and_out_of_range_bodies_are_refused_naming_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), None);
    config.api.max_body = 4096;
    let m = TestMarket::start(config).await;
    let host = PrivateKeySigner::random();
    let before = m.snapshot().await;

    // Not JSON at all.
    let got = m.raw(Method::POST, "/v1/offers", b"{not json").await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "malformed",
        &["not a valid signed offer", "/openapi.json"],
    );
    // A missing field.
    let mut v = serde_json::to_value(sign(offer(&host, "gpu-24g", 10, 1), &host)).unwrap();
    v["order"].as_object_mut().unwrap().remove("slots");
    let got = m.post("/v1/offers", &v).await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "malformed",
        &["missing field `slots`"],
    );
    // Negative and overflowing quantities and prices, each naming its field.
    let base = serde_json::to_value(sign(offer(&host, "gpu-24g", 10, 1), &host)).unwrap();
    for (field, value, words) in [
        ("slots", json!(-1), vec!["order.slots", "-1"]),
        (
            "slots",
            json!(4_294_967_296u64),
            vec!["order.slots", "4294967296"],
        ),
        ("cores", json!(1.5), vec!["order.cores"]),
        ("price", json!("-5"), vec!["order.price"]),
        ("price", json!(-5), vec!["order.price"]),
        (
            "price",
            json!(format!("0x1{}", "0".repeat(64))),
            vec!["order.price"],
        ),
        ("expiry", json!("soon"), vec!["order.expiry"]),
    ] {
        let mut v = base.clone();
        v["order"][field] = value.clone();
        let got = m.post("/v1/offers", &v).await;
        let mut want = vec!["field `"];
        want.extend(words);
        assert_error(&got, StatusCode::BAD_REQUEST, "malformed", &want);
    }
    // A price that fits U256 but not the market (over u128): a signed order,
    // refused for its value, not its signature.
    let mut dear = offer(&host, "gpu-24g", 0, 1);
    dear.price = U256::MAX;
    let got = m.post("/v1/offers", &sign(dear, &host)).await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid",
        &["price", "above the market's maximum"],
    );
    // Zero slots, zero replicas, zero seconds.
    let got = m
        .post("/v1/offers", &sign(offer(&host, "gpu-24g", 10, 0), &host))
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid",
        &["at least one slot"],
    );
    let got = m
        .post("/v1/bids", &sign(job(&host, "gpu-24g", 10, 0), &host))
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid",
        &["at least one replica"],
    );
    let mut instant = job(&host, "gpu-24g", 10, 1);
    instant.maxSeconds = 0;
    let got = m.post("/v1/bids", &sign(instant, &host)).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid", &["maxSeconds"]);

    // Oversize: declared and streamed.
    let huge = vec![b' '; 5000];
    let got = m.raw(Method::POST, "/v1/offers", &huge).await;
    assert_error(
        &got,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        &["4096 bytes"],
    );
    let mut big = offer(&host, "gpu-24g", 10, 1);
    big.encodings = vec!["x".repeat(100); 50];
    let got = m.post("/v1/offers", &sign(big, &host)).await;
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "too_large", &["limit"]);

    // Unknown classes: 400 in a body, 404 in a path, naming the known ones.
    let got = m
        .post("/v1/offers", &sign(offer(&host, "quantum", 10, 1), &host))
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "unknown_class",
        &["unknown class `quantum`", "gpu-24g"],
    );
    let got = m
        .post("/v1/bids", &sign(job(&host, "quantum", 10, 1), &host))
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "unknown_class", &["quantum"]);
    for path in [
        "/v1/book/quantum",
        "/v1/market/quantum",
        "/v1/trades/quantum",
    ] {
        let got = m.get(path).await;
        assert_error(
            &got,
            StatusCode::NOT_FOUND,
            "unknown_class",
            &["quantum", "cpu"],
        );
    }

    // Bad ids and parameters; unknown routes and methods.
    let got = m.get("/v1/orders/0x1234").await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "malformed",
        &["not an order id"],
    );
    let got = m.get(&format!("/v1/orders/0x{}", "ab".repeat(32))).await;
    assert_error(
        &got,
        StatusCode::NOT_FOUND,
        "not_found",
        &["was ever placed"],
    );
    let got = m
        .get(&format!("/v1/bids/0x{}/explain", "ab".repeat(32)))
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", &["not waiting"]);
    let got = m.get("/v1/deals?limit=0").await;
    assert_error(&got, StatusCode::BAD_REQUEST, "malformed", &["limit"]);
    let got = m.get("/v1/deals?owner=bob").await;
    assert_error(&got, StatusCode::BAD_REQUEST, "malformed", &["owner"]);
    let got = m.get("/v1/deals?bid=0x1234").await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "malformed",
        &["bid", "64 hex digits"],
    );
    let got = m.get(&format!("/v1/deals?host=0x{}", "g".repeat(40))).await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "malformed",
        &["host", "40 hex digits"],
    );
    let got = m.get("/v1/market/cpu?interval=5").await;
    assert_error(&got, StatusCode::BAD_REQUEST, "malformed", &["interval"]);
    let got = m.get("/v1/nothing").await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", &["/openapi.json"]);
    let got = m.raw(Method::DELETE, "/v1/offers", b"").await;
    assert_error(
        &got,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &["use POST"],
    );

    assert_eq!(m.snapshot().await, before, "nothing changed");
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_address_or_one_client_is_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), None);
    config.api.address_rate = Rate {
        per_second: 1.0,
        burst: 5.0,
    };
    let m = TestMarket::start(config).await;
    let (flooder, other) = (PrivateKeySigner::random(), PrivateKeySigner::random());
    let mut accepted = 0;
    let mut limited = None;
    for _ in 0..20 {
        let got = m
            .post("/v1/offers", &sign(offer(&flooder, "cpu", 10, 1), &flooder))
            .await;
        match got.0 {
            StatusCode::CREATED => accepted += 1,
            _ => {
                limited = Some(got);
                break;
            }
        }
    }
    assert_eq!(accepted, 5, "the burst");
    let got = limited.expect("refused");
    assert_error(
        &got,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        &[&flooder.address().to_string(), "retry in"],
    );
    let before = m.snapshot().await;
    let (_, book) = m.get("/v1/book/cpu").await;
    assert_eq!(
        book["offers"].as_array().unwrap().len(),
        5,
        "the refused offer is not in the book"
    );
    // The Retry-After header is set.
    let (status, headers, _) = m
        .client
        .request(
            Method::POST,
            "/v1/offers",
            Some(
                serde_json::to_vec(&sign(offer(&flooder, "cpu", 10, 1), &flooder))
                    .unwrap()
                    .into(),
            ),
            "application/json",
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key(http::header::RETRY_AFTER));
    assert_eq!(m.snapshot().await, before, "nothing changed");
    // Another address is not affected.
    let (s, _) = m
        .post("/v1/offers", &sign(offer(&other, "cpu", 10, 1), &other))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    m.stop().await;

    // Per client IP, on every route.
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::config(dir.path(), None);
    config.api.ip_rate = Rate {
        per_second: 1.0,
        burst: 3.0,
    };
    let m = TestMarket::start(config).await;
    let statuses: Vec<StatusCode> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(m.get("/v1/classes").await.0);
        }
        v
    };
    assert_eq!(&statuses[..3], &[StatusCode::OK; 3]);
    let got = m.get("/v1/classes").await;
    assert_error(
        &got,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        &["127.0.0.1"],
    );
    m.stop().await;
}
