//! Jobs through the API: hosts' signed starts and receipts, replicated
//! verification, results released only once agreed, lying and forged
//! reports refused, and job states rebuilt after a restart.

use alloy_primitives::B256;
use alloy_signer_local::PrivateKeySigner;
use bytes::Bytes;
use http::StatusCode;
use netmind_protocol::work::{Receipt, Start};
use serde_json::Value;

use super::*;

pub(crate) fn receipt(host: &PrivateKeySigner, deal: B256, output: B256) -> Receipt {
    Receipt {
        host: host.address(),
        deal,
        output,
        status: "exited".into(),
        exitCode: 0,
        runtimeMs: 7,
        fuel: 0,
        gpuTimeMs: 0,
        gpuDispatches: 0,
        gpuHash: B256::ZERO,
    }
}

/// Posts three hosts' offers and a job for `replicas`; returns the job and
/// each deal with the key of the host that holds it.
pub(crate) async fn matched(
    m: &TestMarket,
    hosts: &[PrivateKeySigner],
    replicas: u32,
) -> (B256, Vec<(B256, PrivateKeySigner)>) {
    matched_by(m, hosts, replicas, &PrivateKeySigner::random()).await
}

/// As [`matched`], for a job of `owner`.
async fn matched_by(
    m: &TestMarket,
    hosts: &[PrivateKeySigner],
    replicas: u32,
    owner: &PrivateKeySigner,
) -> (B256, Vec<(B256, PrivateKeySigner)>) {
    for h in hosts {
        let (s, body) = m
            .post("/v1/offers", &sign(offer(h, "gpu-24g", 100, 1), h))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
    }
    let (s, placed) = m
        .post(
            "/v1/bids",
            &sign(job(owner, "gpu-24g", 150, replicas), owner),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{placed}");
    let id: B256 = placed["id"].as_str().unwrap().parse().unwrap();
    let (s, j) = m.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(j["state"], "matched");
    let deals = j["deals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let host: alloy_primitives::Address = d["host"].as_str().unwrap().parse().unwrap();
            let key = hosts.iter().find(|k| k.address() == host).unwrap().clone();
            (d["id"].as_str().unwrap().parse().unwrap(), key)
        })
        .collect();
    (id, deals)
}

pub(crate) async fn upload(m: &TestMarket, bytes: &'static [u8]) -> B256 {
    let (id, _) = m.client.put_blob(Bytes::from_static(bytes)).await.unwrap();
    B256::from(id.0)
}

#[tokio::test]
async fn two_of_three_replicas_agree_the_liar_is_rejected_and_the_result_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    for config in configs(dir.path()).await {
        let m = TestMarket::start(config).await;
        let hosts: Vec<_> = (0..3).map(|_| PrivateKeySigner::random()).collect();
        let (id, deals) = matched(&m, &hosts, 3).await;
        assert_eq!(deals.len(), 3);
        let good = upload(&m, b"the right answer").await;
        let bad = upload(&m, b"a lie").await;

        let (deal, key) = &deals[0];
        let start = sign(
            Start {
                host: key.address(),
                deal: *deal,
                at: now_ms(),
            },
            key,
        );
        let (s, j) = m.post(&format!("/v1/deals/{deal}/start"), &start).await;
        assert_eq!(
            (s, j["state"].as_str()),
            (StatusCode::OK, Some("running")),
            "{j}"
        );

        let (s, j) = m
            .post("/v1/receipts", &sign(receipt(key, *deal, bad), key))
            .await;
        assert_eq!(
            (s, j["state"].as_str()),
            (StatusCode::OK, Some("verifying")),
            "{j}"
        );
        // Nothing of a replica's output shows before the job is decided.
        assert!(
            j["deals"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d.get("output").is_none()),
            "{j}"
        );
        assert!(j.get("result").is_none());
        for (deal, key) in &deals[1..] {
            let (s, j) = m
                .post("/v1/receipts", &sign(receipt(key, *deal, good), key))
                .await;
            assert_eq!(s, StatusCode::OK, "{j}");
        }
        let check = |j: &Value| {
            assert_eq!(j["state"], "done", "{j}");
            assert_eq!(j["result"]["output"], good.to_string());
            assert_eq!(j["result"]["hosts"].as_array().unwrap().len(), 2);
            let states: Vec<&str> = j["deals"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["state"].as_str().unwrap())
                .collect();
            assert_eq!(
                states.iter().filter(|s| **s == "accepted").count(),
                2,
                "{j}"
            );
            assert_eq!(
                states.iter().filter(|s| **s == "rejected").count(),
                1,
                "{j}"
            );
        };
        let (_, j) = m.get(&format!("/v1/jobs/{id}")).await;
        check(&j);
        let (_, list) = m.get("/v1/jobs?state=done").await;
        assert_eq!(list["jobs"].as_array().unwrap().len(), 1);
        let (_, hosts_view) = m.get("/v1/hosts").await;
        assert_eq!(
            hosts_view["hosts"].as_array().unwrap().len(),
            3,
            "{hosts_view}"
        );

        // A restart rebuilds the job from the journal and the stored reports.
        let config = m.stop().await;
        let m = TestMarket::start(config).await;
        let (_, j) = m.get(&format!("/v1/jobs/{id}")).await;
        check(&j);
        m.stop().await;
    }
}

#[tokio::test]
async fn forged_foreign_unknown_duplicate_and_unbacked_reports_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestMarket::start(config(&dir.path().join("m"), None)).await;
    let hosts: Vec<_> = (0..2).map(|_| PrivateKeySigner::random()).collect();
    let (id, deals) = matched(&m, &hosts, 1).await;
    let (deal, holder) = &deals[0];
    let other = hosts
        .iter()
        .find(|k| k.address() != holder.address())
        .unwrap();
    let out = upload(&m, b"output").await;
    let before = m.get(&format!("/v1/jobs/{id}")).await.1;

    // Signed by someone else than the host it names.
    let forged = forge(receipt(holder, *deal, out), other);
    assert_error(
        &m.post("/v1/receipts", &forged).await,
        StatusCode::UNAUTHORIZED,
        "bad_signature",
        &["receipt", "signed by"],
    );
    // A host reporting for a deal another host holds.
    let foreign = sign(receipt(other, *deal, out), other);
    assert_error(
        &m.post("/v1/receipts", &foreign).await,
        StatusCode::FORBIDDEN,
        "not_maker",
        &["held by host"],
    );
    // A deal no one made.
    let unknown = sign(receipt(holder, B256::repeat_byte(3), out), holder);
    assert_error(
        &m.post("/v1/receipts", &unknown).await,
        StatusCode::NOT_FOUND,
        "not_found",
        &["no deal"],
    );
    // An output that was never uploaded.
    let unbacked = sign(receipt(holder, *deal, B256::repeat_byte(4)), holder);
    assert_error(
        &m.post("/v1/receipts", &unbacked).await,
        StatusCode::BAD_REQUEST,
        "invalid",
        &["upload the output"],
    );
    // A start posted for another deal than it names.
    let start = sign(
        Start {
            host: holder.address(),
            deal: *deal,
            at: now_ms(),
        },
        holder,
    );
    let other_deal = B256::repeat_byte(5);
    assert_error(
        &m.post(&format!("/v1/deals/{other_deal}/start"), &start)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid",
        &["posted for deal"],
    );
    // Garbage.
    assert_error(
        &m.raw(http::Method::POST, "/v1/receipts", b"{not json")
            .await,
        StatusCode::BAD_REQUEST,
        "malformed",
        &["signed receipt"],
    );
    assert_eq!(
        m.get(&format!("/v1/jobs/{id}")).await.1,
        before,
        "refusals change nothing"
    );

    let (s, j) = m
        .post("/v1/receipts", &sign(receipt(holder, *deal, out), holder))
        .await;
    assert_eq!(
        (s, j["state"].as_str()),
        (StatusCode::OK, Some("done")),
        "{j}"
    );
    // Once decided, a second receipt (another output) is refused.
    let again = sign(receipt(holder, *deal, B256::ZERO), holder);
    assert_error(
        &m.post("/v1/receipts", &again).await,
        StatusCode::CONFLICT,
        "duplicate",
        &["nothing more"],
    );
    assert_eq!(
        m.get(&format!("/v1/jobs/{id}")).await.1["result"]["output"],
        out.to_string()
    );
    assert_error(
        &m.get("/v1/jobs/0x1234").await,
        StatusCode::BAD_REQUEST,
        "malformed",
        &["order id"],
    );
    assert_error(
        &m.get("/v1/jobs?state=sleeping").await,
        StatusCode::BAD_REQUEST,
        "malformed",
        &["unknown job state"],
    );
    m.stop().await;
}

#[tokio::test]
async fn replicas_without_a_majority_go_to_one_more_host_whose_answer_decides() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestMarket::start(config(&dir.path().join("m"), None)).await;
    let hosts: Vec<_> = (0..3).map(|_| PrivateKeySigner::random()).collect();
    let (id, deals) = matched(&m, &hosts[..2], 2).await;
    // Only now does the third host offer: the extra replica must find it.
    let (s, body) = m
        .post(
            "/v1/offers",
            &sign(offer(&hosts[2], "gpu-24g", 100, 1), &hosts[2]),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let one = upload(&m, b"one answer").await;
    let other = upload(&m, b"another answer").await;
    let (deal, key) = &deals[0];
    m.post("/v1/receipts", &sign(receipt(key, *deal, one), key))
        .await;
    let (deal, key) = &deals[1];
    let (s, j) = m
        .post("/v1/receipts", &sign(receipt(key, *deal, other), key))
        .await;
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(
        j["state"], "verifying",
        "1 against 1: not failed, one more host"
    );
    assert!(j.get("result").is_none(), "{j}");
    // The extra replica is placed at once, on the host the job has not used.
    let (_, j) = m.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(j["extra_replicas"], 1, "{j}");
    let third = &j["deals"][2];
    assert_eq!(third["state"], "assigned", "{j}");
    assert_eq!(
        third["host"],
        hosts[2].address().to_string().to_lowercase(),
        "{j}"
    );
    let third: B256 = third["id"].as_str().unwrap().parse().unwrap();
    let (s, j) = m
        .post(
            "/v1/receipts",
            &sign(receipt(&hosts[2], third, other), &hosts[2]),
        )
        .await;
    assert_eq!(
        (s, j["state"].as_str()),
        (StatusCode::OK, Some("done")),
        "{j}"
    );
    assert_eq!(j["result"]["output"], other.to_string());
    assert_eq!(j["deals"][0]["state"], "rejected", "{j}");
    // A restart replays the extra replica from the work log.
    let before = m.get(&format!("/v1/jobs/{id}")).await.1;
    let config = m.stop().await;
    let m = TestMarket::start(config).await;
    let after = m.get(&format!("/v1/jobs/{id}")).await.1;
    assert_eq!(before, after);
    m.stop().await;
}

#[tokio::test]
async fn the_owner_cancels_a_running_job_its_replicas_stop_and_late_receipts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestMarket::start(config(&dir.path().join("m"), None)).await;
    let hosts: Vec<_> = (0..2).map(|_| PrivateKeySigner::random()).collect();
    let owner = PrivateKeySigner::random();
    let (id, deals) = matched_by(&m, &hosts, 2, &owner).await;
    let (deal, key) = &deals[0];
    let start = sign(
        Start {
            host: key.address(),
            deal: *deal,
            at: now_ms(),
        },
        key,
    );
    assert_eq!(
        m.post(&format!("/v1/deals/{deal}/start"), &start).await.0,
        StatusCode::OK
    );
    // Only its owner may cancel it.
    let stranger = PrivateKeySigner::random();
    assert_error(
        &m.post("/v1/cancels", &cancel(&stranger, id)).await,
        StatusCode::FORBIDDEN,
        "not_maker",
        &["only its owner may cancel it"],
    );
    let (s, j) = m.post("/v1/cancels", &cancel(&owner, id)).await;
    assert_eq!(
        (s, j["state"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{j}"
    );
    let states: Vec<&str> = j["deals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["cancelled", "cancelled"], "{j}");
    // A second cancel finds nothing to cancel.
    assert_error(
        &m.post("/v1/cancels", &cancel(&owner, id)).await,
        StatusCode::CONFLICT,
        "duplicate",
        &["already cancelled"],
    );
    // The host that ran it is not paid for a result after the cancel.
    let out = upload(&m, b"too late").await;
    assert_error(
        &m.post("/v1/receipts", &sign(receipt(key, *deal, out), key))
            .await,
        StatusCode::CONFLICT,
        "duplicate",
        &["Cancelled"],
    );
    // The cancel is in the work log: a restart keeps it.
    let config = m.stop().await;
    let m = TestMarket::start(config).await;
    let (_, j) = m.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(j["state"], "cancelled", "{j}");
    assert_eq!(j["deals"][0]["state"], "cancelled", "{j}");
    m.stop().await;
}

#[tokio::test]
async fn a_host_that_hands_a_deal_back_sees_it_go_to_another_host_at_once() {
    use netmind_protocol::work::Release;
    let dir = tempfile::tempdir().unwrap();
    let m = TestMarket::start(config(&dir.path().join("m"), None)).await;
    let hosts: Vec<_> = (0..2).map(|_| PrivateKeySigner::random()).collect();
    let (id, deals) = matched(&m, &hosts, 1).await;
    let (deal, key) = &deals[0];
    let release = |k: &PrivateKeySigner| {
        sign(
            Release {
                host: k.address(),
                deal: *deal,
                at: now_ms(),
            },
            k,
        )
    };
    // Only the holder may hand it back.
    let other = hosts.iter().find(|h| h.address() != key.address()).unwrap();
    assert_error(
        &m.post(&format!("/v1/deals/{deal}/release"), &release(other))
            .await,
        StatusCode::FORBIDDEN,
        "not_maker",
        &["is held by host"],
    );
    let (s, j) = m
        .post(&format!("/v1/deals/{deal}/release"), &release(key))
        .await;
    assert_eq!(s, StatusCode::OK, "{j}");
    let (_, j) = m.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(j["deals"][0]["state"], "lapsed", "{j}");
    assert_eq!(j["deals"][1]["state"], "assigned", "{j}");
    assert_eq!(
        j["deals"][1]["host"],
        other.address().to_string().to_lowercase(),
        "placed at once on the other host: {j}"
    );
    // Handing it back twice, or reporting it after, changes nothing.
    assert_eq!(
        m.post(&format!("/v1/deals/{deal}/release"), &release(key))
            .await
            .0,
        StatusCode::CONFLICT
    );
    let out = upload(&m, b"after the release").await;
    assert_eq!(
        m.post("/v1/receipts", &sign(receipt(key, *deal, out), key))
            .await
            .0,
        StatusCode::CONFLICT
    );
    let before = m.get(&format!("/v1/jobs/{id}")).await.1;
    let config = m.stop().await;
    let m = TestMarket::start(config).await;
    assert_eq!(m.get(&format!("/v1/jobs/{id}")).await.1, before);
    m.stop().await;
}

#[tokio::test]
async fn a_host_that_never_starts_loses_its_lease_and_another_host_finishes_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir.path().join("m"), None);
    cfg.api.lease_start_ms = 300;
    let m = TestMarket::start(cfg).await;
    let hosts: Vec<_> = (0..3).map(|_| PrivateKeySigner::random()).collect();
    let (id, deals) = matched(&m, &hosts, 1).await;
    let (dead_deal, dead) = &deals[0];
    // The lease keeper runs once a second: the deal lapses and the replica
    // is placed again, denying the host that let it lapse.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let j = loop {
        let (_, j) = m.get(&format!("/v1/jobs/{id}")).await;
        if j["deals"].as_array().unwrap().len() == 2 {
            break j;
        }
        assert!(std::time::Instant::now() < deadline, "no new deal: {j}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(j["deals"][0]["state"], "lapsed", "{j}");
    assert_eq!(j["deals"][1]["state"], "assigned", "{j}");
    let new_host: alloy_primitives::Address =
        j["deals"][1]["host"].as_str().unwrap().parse().unwrap();
    assert_ne!(new_host, dead.address(), "the replica went to another host");
    let new_deal: B256 = j["deals"][1]["id"].as_str().unwrap().parse().unwrap();
    let key = hosts.iter().find(|k| k.address() == new_host).unwrap();
    // The new deal's bid resolves to the job (hosts read it by the deal's bid).
    let (_, deals_of_host) = m.get(&format!("/v1/deals?host={new_host}")).await;
    let retry_bid = deals_of_host[0]["bid"].as_str().unwrap().to_owned();
    assert_eq!(
        m.get(&format!("/v1/jobs/{retry_bid}")).await.1["id"],
        id.to_string()
    );

    let out = upload(&m, b"done elsewhere").await;
    let start = sign(
        Start {
            host: new_host,
            deal: new_deal,
            at: now_ms(),
        },
        key,
    );
    assert_eq!(
        m.post(&format!("/v1/deals/{new_deal}/start"), &start)
            .await
            .0,
        StatusCode::OK
    );
    let (s, j) = m
        .post("/v1/receipts", &sign(receipt(key, new_deal, out), key))
        .await;
    assert_eq!(
        (s, j["state"].as_str()),
        (StatusCode::OK, Some("done")),
        "{j}"
    );
    // The host that let its lease lapse is not paid for a late result.
    let late = sign(receipt(dead, *dead_deal, out), dead);
    assert_error(
        &m.post("/v1/receipts", &late).await,
        StatusCode::CONFLICT,
        "duplicate",
        &["Lapsed"],
    );
    // After a restart, the job is the same: the lapse and the retry are replayed.
    let before = m.get(&format!("/v1/jobs/{id}")).await.1;
    let config = m.stop().await;
    let m = TestMarket::start(config).await;
    let after = m.get(&format!("/v1/jobs/{id}")).await.1;
    assert_eq!(before["deals"], after["deals"]);
    assert_eq!(after["state"], "done");
    m.stop().await;
}

#[tokio::test]
async fn the_event_stream_tells_of_each_job_change_and_the_hosts_involved() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestMarket::start(config(&dir.path().join("m"), None)).await;
    let mut events = m.client.events("").await.unwrap();
    let hosts: Vec<_> = (0..1).map(|_| PrivateKeySigner::random()).collect();
    let (id, deals) = matched(&m, &hosts, 1).await;
    let (deal, key) = &deals[0];
    let start = sign(
        Start {
            host: key.address(),
            deal: *deal,
            at: now_ms(),
        },
        key,
    );
    assert_eq!(
        m.post(&format!("/v1/deals/{deal}/start"), &start).await.0,
        StatusCode::OK
    );
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen
        .iter()
        .any(|(n, d): &(String, Value)| n == "job" && d["state"] == "running")
    {
        let next = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("a job event in time");
        let (name, data) = next.unwrap().unwrap();
        seen.push((name, serde_json::from_str(&data).unwrap()));
    }
    let jobs: Vec<_> = seen
        .iter()
        .filter(|(n, _)| n == "job")
        .map(|(_, d)| d["state"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["matched", "running"], "{seen:?}");
    assert!(
        seen.iter()
            .all(|(n, d)| n != "job" || d["id"] == id.to_string())
    );
    let host = seen
        .iter()
        .rev()
        .find(|(n, _)| n == "host")
        .expect("a host event");
    assert_eq!(host.1["address"], key.address().to_string().to_lowercase());
    assert_eq!(
        (host.1["status"].as_str(), host.1["running"].as_u64()),
        (Some("busy"), Some(1))
    );
    m.stop().await;
}
