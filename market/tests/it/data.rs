//! Market data, the explainer, `/v1/info` and the OpenAPI document.

use alloy_primitives::U256;
use alloy_signer_local::PrivateKeySigner;
use http::{Method, StatusCode};
use serde_json::Value;

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_data_shows_depth_best_prices_last_price_volume_and_candles() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestMarket::start(config(dir.path(), None)).await;
    let owner = PrivateKeySigner::random();
    for (price, slots) in [(10, 2), (10, 1), (14, 3)] {
        let host = PrivateKeySigner::random();
        let (s, _) = m
            .post(
                "/v1/offers",
                &sign(offer(&host, "gpu-24g", price, slots), &host),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let (_, b) = m
        .post("/v1/bids", &sign(job(&owner, "gpu-24g", 12, 2), &owner))
        .await;
    assert_eq!(b["deals"].as_array().unwrap().len(), 2, "{b}");
    let (_, waiting) = m
        .post("/v1/bids", &sign(job(&owner, "gpu-24g", 9, 1), &owner))
        .await;
    assert_eq!(waiting["status"], "open");

    let (s, d) = m.get("/v1/market/gpu-24g?interval=60000").await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["best_ask"], "10");
    assert_eq!(d["best_bid"], "9");
    assert_eq!(d["last_price"], "10");
    assert_eq!(d["deals"], 2);
    assert_eq!(d["notional"], (2 * 10 * 600).to_string(), "price × seconds");
    assert_eq!(
        d["depth"]["asks"],
        serde_json::json!([{"price": "10", "quantity": 1}, {"price": "14", "quantity": 3}])
    );
    assert_eq!(
        d["depth"]["bids"],
        serde_json::json!([{"price": "9", "quantity": 1}])
    );
    let candles = d["candles"].as_array().unwrap();
    assert_eq!(candles.len(), 1, "{d}");
    assert_eq!(
        (
            &candles[0]["open"],
            &candles[0]["close"],
            &candles[0]["deals"]
        ),
        (&"10".into(), &"10".into(), &2.into())
    );
    let (_, classes) = m.get("/v1/classes").await;
    let gpu = classes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == "gpu-24g")
        .unwrap();
    assert_eq!((&gpu["best_ask"], &gpu["deals"]), (&"10".into(), &2.into()));
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_says_which_constraints_eliminated_which_offers_and_the_price_that_would_match() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestMarket::start(config(dir.path(), None)).await;
    let owner = PrivateKeySigner::random();
    let (small, dear) = (PrivateKeySigner::random(), PrivateKeySigner::random());
    let mut little = offer(&small, "gpu-24g", 5, 1);
    little.vram = 8 << 30;
    m.post("/v1/offers", &sign(little, &small)).await;
    let (_, dear_offer) = m
        .post("/v1/offers", &sign(offer(&dear, "gpu-24g", 50, 1), &dear))
        .await;
    let (_, b) = m
        .post("/v1/bids", &sign(job(&owner, "gpu-24g", 20, 1), &owner))
        .await;
    assert_eq!(b["status"], "open");
    let (s, e) = m
        .get(&format!("/v1/bids/{}/explain", b["id"].as_str().unwrap()))
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["waiting_replicas"], 1);
    assert!(e["matching"].as_array().unwrap().is_empty());
    let reasons: Vec<&str> = e["by_reason"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"not enough GPU memory"), "{e}");
    assert!(reasons.contains(&"price above the bid's maximum"), "{e}");
    assert_eq!(e["nearest"][0]["id"], dear_offer["id"]);
    assert_eq!(e["match_price"], 50, "it would match at 50");
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_names_the_domain_to_sign_under() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestMarket::start(config(dir.path(), None)).await;
    let domain = m.client.domain().await.unwrap();
    assert_eq!(domain, dom());
    assert_eq!(
        domain.chain_id,
        Some(U256::from(netmind_market::api::DEFAULT_CHAIN_ID))
    );
    m.stop().await;
}

/// Resolves every `$ref` of the document, and checks each operation has
/// responses and each path parameter is declared.
fn check_document(doc: &Value) {
    assert_eq!(doc["openapi"], "3.0.3");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").expect(r);
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling {r}"
        );
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{method} {path}");
            for (code, r) in responses {
                assert!(code.len() == 3 && code.parse::<u16>().is_ok(), "{code}");
                assert!(r["description"].is_string(), "{method} {path} {code}");
            }
            let declared: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            for segment in path.split('/') {
                if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    assert!(
                        declared.contains(&name),
                        "{method} {path} lacks parameter {name}"
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_described_in_a_valid_openapi_document() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestMarket::start(config(dir.path(), None)).await;
    let (s, doc) = m.get("/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    check_document(&doc);
    // Each described operation is routed (answers something other than
    // "no route"), and each route the server has is described.
    let sample = |p: &str| {
        p.replace("{class}", "cpu")
            .replace("{id}", &format!("0x{}", "ab".repeat(32)))
            .replace("{sha256}", &"ab".repeat(32))
            .replace("{file}", "app.js")
    };
    let paths = doc["paths"].as_object().unwrap();
    let mut described = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            described.push((method.to_uppercase(), path.clone()));
            if path == "/v1/events" {
                continue; // a stream: checked in events.rs
            }
            let m_ = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, _, body) = m
                .client
                .request(
                    m_,
                    &sample(path),
                    Some(bytes::Bytes::new()),
                    "application/json",
                )
                .await
                .unwrap();
            let body = String::from_utf8_lossy(&body);
            assert!(
                status != StatusCode::NOT_FOUND || !body.contains("no route"),
                "{method} {path} is not routed"
            );
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        }
    }
    for route in [
        ("GET", "/"),
        ("GET", "/dashboard/{file}"),
        ("GET", "/openapi.json"),
        ("GET", "/v1/info"),
        ("POST", "/v1/offers"),
        ("POST", "/v1/bids"),
        ("POST", "/v1/cancels"),
        ("GET", "/v1/orders/{id}"),
        ("GET", "/v1/bids/{id}/explain"),
        ("GET", "/v1/classes"),
        ("GET", "/v1/book/{class}"),
        ("GET", "/v1/market/{class}"),
        ("GET", "/v1/trades/{class}"),
        ("GET", "/v1/deals"),
        ("GET", "/v1/events"),
        ("GET", "/v1/jobs"),
        ("GET", "/v1/jobs/{id}"),
        ("GET", "/v1/hosts"),
        ("POST", "/v1/deals/{id}/start"),
        ("POST", "/v1/deals/{id}/release"),
        ("GET", "/v1/deals/{id}/logs"),
        ("POST", "/v1/deals/{id}/logs"),
        ("POST", "/v1/receipts"),
        ("PUT", "/v1/blobs/{sha256}"),
        ("GET", "/v1/blobs/{sha256}"),
        ("HEAD", "/v1/blobs/{sha256}"),
    ] {
        assert!(
            described.contains(&(route.0.to_owned(), route.1.to_owned())),
            "{route:?} is not described"
        );
    }
    assert_eq!(
        described.len(),
        26,
        "a described route the test does not know"
    );
    m.stop().await;
}
