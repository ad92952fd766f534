//! The blob store over HTTP.

use bytes::Bytes;
use http::{Method, StatusCode};
use netmind_market::blob::BlobId;
use serde_json::Value;

use crate::*;

async fn put(m: &TestMarket, name: &str, bytes: &[u8]) -> (StatusCode, Value) {
    let (s, _, body) = m
        .client
        .request(
            Method::PUT,
            &format!("/v1/blobs/{name}"),
            Some(Bytes::copy_from_slice(bytes)),
            "application/octet-stream",
        )
        .await
        .unwrap();
    (s, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn stored_files(dir: &std::path::Path) -> usize {
    walk(&dir.join("blobs"))
}

fn walk(p: &std::path::Path) -> usize {
    std::fs::read_dir(p).map_or(0, |rd| {
        rd.map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_are_stored_under_their_hash_and_served_back() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestMarket::start(config(dir.path(), None)).await;
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let (id, created) = m.client.put_blob(bytes.clone().into()).await.unwrap();
    assert!(created);
    assert_eq!(id, BlobId::of(&bytes));
    // Again: already there, 200, not stored twice.
    let (s, body) = put(&m, &id.to_string(), &bytes).await;
    assert_eq!((s, &body["created"]), (StatusCode::OK, &Value::Bool(false)));
    assert_eq!(stored_files(dir.path()), 1);
    // GET returns the bytes, HEAD the size.
    let back = m.client.get_blob(&id).await.unwrap().unwrap();
    assert_eq!(back.as_ref(), bytes.as_slice());
    let (s, headers, body) = m
        .client
        .request(Method::HEAD, &format!("/v1/blobs/{id}"), None, "")
        .await
        .unwrap();
    assert_eq!(s, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(headers[http::header::CONTENT_LENGTH], "300000");
    // Absent: 404 on GET and HEAD.
    let absent = BlobId::of(b"absent");
    assert_eq!(m.client.get_blob(&absent).await.unwrap(), None);
    let got = m.get(&format!("/v1/blobs/{absent}")).await;
    assert_error(
        &got,
        StatusCode::NOT_FOUND,
        "not_found",
        &["no blob", "PUT /v1/blobs/"],
    );
    let (s, _, _) = m
        .client
        .request(Method::HEAD, &format!("/v1/blobs/{absent}"), None, "")
        .await
        .unwrap();
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A large blob sent again, several times at once: each sender gets its
    // answer (the market reads what is already being sent rather than
    // closing the connection under a writer), and it is stored once.
    let big: Bytes = (0..16u32 << 20).map(|i| (i % 253) as u8).collect();
    let big_id = BlobId::of(&big);
    let name = big_id.to_string();
    let (a, b, c) = tokio::join!(
        put(&m, &name, &big),
        put(&m, &name, &big),
        put(&m, &name, &big)
    );
    let answers = [a, b, c];
    assert!(answers.iter().all(|(s, _)| s.is_success()), "{answers:?}");
    let (s, body) = put(&m, &big_id.to_string(), &big).await;
    assert_eq!((s, &body["created"]), (StatusCode::OK, &Value::Bool(false)));
    assert_eq!(
        m.client.put_blob(big.clone()).await.unwrap(),
        (big_id, false)
    );
    assert_eq!(stored_files(dir.path()), 2);
    // A restarted market still has it.
    let config = m.stop().await;
    let m = TestMarket::start(config).await;
    assert_eq!(
        m.client.get_blob(&id).await.unwrap().unwrap().len(),
        300_000
    );
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mismatching_oversize_and_misnamed_blobs_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), None);
    config.api.max_blob = 1000;
    let m = TestMarket::start(config).await;

    // Bytes that do not hash to their name.
    let name = BlobId::of(b"the real bytes");
    let got = put(&m, &name.to_string(), b"other bytes").await;
    let actual = BlobId::of(b"other bytes").to_string();
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid",
        &[&actual, &name.to_string(), "hash of its bytes"],
    );
    assert_eq!(m.client.get_blob(&name).await.unwrap(), None);
    // Too large.
    let big = vec![7u8; 1001];
    let got = put(&m, &BlobId::of(&big).to_string(), &big).await;
    assert_error(
        &got,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        &["1000 bytes"],
    );
    // Not a SHA-256 name.
    for bad in ["abc", "zz".repeat(32).as_str()] {
        let got = put(&m, bad, b"x").await;
        assert_error(
            &got,
            StatusCode::BAD_REQUEST,
            "malformed",
            &["64 hex digits"],
        );
        let got = m.get(&format!("/v1/blobs/{bad}")).await;
        assert_eq!(got.0, StatusCode::BAD_REQUEST);
    }
    let got = m.raw(Method::POST, &format!("/v1/blobs/{name}"), b"").await;
    assert_error(
        &got,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &["PUT"],
    );
    assert_eq!(
        stored_files(dir.path()),
        0,
        "nothing stored, no temp file left"
    );

    // Exactly at the limit is fine.
    let fits = vec![9u8; 1000];
    let (id, created) = m.client.put_blob(fits.into()).await.unwrap();
    assert!(created);
    assert_eq!(stored_files(dir.path()), 1);
    assert!(m.client.get_blob(&id).await.unwrap().is_some());
    m.stop().await;
}
