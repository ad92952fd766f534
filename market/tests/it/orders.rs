//! Placing, matching and cancelling orders over HTTP; restart; the journal lock.

use alloy_signer_local::PrivateKeySigner;
use http::StatusCode;
use netmind_market::server::Market;

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_and_a_bid_make_a_deal_seen_in_deals_orders_and_the_book_and_a_restart_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    for config in configs(dir.path()).await {
        let m = TestMarket::start(config).await;
        let (host, host2, owner) = (
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
        );
        let (s, placed) = m
            .post("/v1/offers", &sign(offer(&host, "gpu-24g", 10, 2), &host))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{placed}");
        assert_eq!(
            (placed["status"].as_str(), placed["remaining"].as_u64()),
            (Some("open"), Some(2))
        );
        let offer_id = id_of(&placed);
        let (s, dear) = m
            .post("/v1/offers", &sign(offer(&host2, "gpu-24g", 30, 1), &host2))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{dear}");

        // A bid for two replicas at most 20: one matches (distinct hosts, the
        // cheap host only once), one waits.
        let (s, bid) = m
            .post("/v1/bids", &sign(job(&owner, "gpu-24g", 20, 2), &owner))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{bid}");
        assert_eq!(bid["status"], "open", "{bid}");
        assert_eq!(bid["remaining"], 1);
        let deals = bid["deals"].as_array().unwrap();
        assert_eq!(deals.len(), 1);
        assert_eq!(deals[0]["price"], "10", "at the offer's price");
        assert_eq!(addr(&deals[0]["host"]), host.address());
        let bid_id = id_of(&bid);

        // The deal is in /v1/deals, by bid and by owner, and in the order's status.
        let (s, listed) = m.get(&format!("/v1/deals?bid={bid_id}")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
        assert_eq!(listed[0]["id"], deals[0]["id"]);
        let (_, by_owner) = m.get(&format!("/v1/deals?owner={}", owner.address())).await;
        assert_eq!(by_owner.as_array().unwrap().len(), 1, "{by_owner}");
        // By offer, and by host written in lowercase (addresses in any case).
        let (_, by_offer) = m.get(&format!("/v1/deals?offer={offer_id}")).await;
        assert_eq!(by_offer.as_array().unwrap().len(), 1, "{by_offer}");
        assert_eq!(by_offer[0]["id"], deals[0]["id"]);
        let lower = host.address().to_string().to_lowercase();
        let (_, by_host) = m.get(&format!("/v1/deals?host={lower}")).await;
        assert_eq!(by_host[0]["id"], deals[0]["id"], "{by_host}");
        assert_eq!(addr(&by_host[0]["host"]), host.address());
        assert_eq!(by_host[0]["offer"], offer_id.to_string());
        let (_, offer_status) = m.get(&format!("/v1/orders/{offer_id}")).await;
        assert_eq!(
            offer_status["deals"][0]["id"], deals[0]["id"],
            "{offer_status}"
        );
        assert_eq!(addr(&offer_status["maker"]), host.address());
        let (s, status) = m.get(&format!("/v1/orders/{bid_id}")).await;
        assert_eq!(s, StatusCode::OK, "{status}");
        assert_eq!(
            (status["status"].as_str(), status["remaining"].as_u64()),
            (Some("open"), Some(1))
        );
        assert_eq!(status["deals"].as_array().unwrap().len(), 1);
        assert_eq!(status["signed"]["order"]["maxPrice"], "0x14");
        let (_, trades) = m.get("/v1/trades/gpu-24g").await;
        assert_eq!(trades[0]["price"], "10", "{trades}");

        // The book: the cheap offer has one slot left, the dear one rests, the bid waits.
        let (_, book) = m.get("/v1/book/gpu-24g").await;
        assert_eq!(book["offers"][0]["id"], offer_id.to_string());
        assert_eq!(book["offers"][0]["free_slots"], 1);
        assert_eq!(book["offers"].as_array().unwrap().len(), 2);
        assert_eq!(book["bids"][0]["waiting_replicas"], 1);

        // Restart: the book and the deals are intact.
        let before = m.snapshot().await;
        let config = m.stop().await;
        let m = TestMarket::start(config).await;
        assert_eq!(m.snapshot().await, before);
        // ... and the market goes on: the waiting replica takes the dear offer once the bid allows it.
        let (s, cheaper) = m
            .post(
                "/v1/offers",
                &forge(offer(&PrivateKeySigner::random(), "gpu-24g", 15, 1), &host2),
            )
            .await;
        assert_eq!(
            s,
            StatusCode::UNAUTHORIZED,
            "signed by another key: {cheaper}"
        );
        let host3 = PrivateKeySigner::random();
        let (s, third) = m
            .post("/v1/offers", &sign(offer(&host3, "gpu-24g", 15, 1), &host3))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{third}");
        assert_eq!(
            third["status"], "filled",
            "the waiting replica took it: {third}"
        );
        let (_, status) = m.get(&format!("/v1/orders/{bid_id}")).await;
        assert_eq!(status["status"], "closed");
        assert_eq!(status["deals"].as_array().unwrap().len(), 2);
        m.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_maker_cancels_with_a_valid_signature_and_a_cancel_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    for config in configs(dir.path()).await {
        let m = TestMarket::start(config).await;
        let (host, other) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let (_, placed) = m
            .post("/v1/offers", &sign(offer(&host, "gpu-24g", 10, 1), &host))
            .await;
        let id = id_of(&placed);
        let before = m.snapshot().await;

        // Someone else's valid signature: 403, nothing changes.
        let got = m.post("/v1/cancels", &cancel(&other, id)).await;
        assert_error(
            &got,
            StatusCode::FORBIDDEN,
            "not_maker",
            &["only its maker"],
        );
        // A cancel claiming the maker but signed by another key: 401.
        let mut forged = cancel(&other, id);
        forged.order.maker = host.address();
        let got = m.post("/v1/cancels", &forged).await;
        assert_error(
            &got,
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            &["invalid cancel signature"],
        );
        // An expired cancel: 400.
        let mut old = cancel(&host, id).order;
        old.expiry = now_ms() - 1;
        let got = m.post("/v1/cancels", &sign(old, &host)).await;
        assert_error(
            &got,
            StatusCode::BAD_REQUEST,
            "expired",
            &["expiry", "later"],
        );
        assert_eq!(m.snapshot().await, before);

        // The maker: 200, the offer leaves the book, the journal grows by one.
        let (s, body) = m.post("/v1/cancels", &cancel(&host, id)).await;
        assert_eq!(
            (s, body["cancelled"].as_bool()),
            (StatusCode::OK, Some(true)),
            "{body}"
        );
        let (_, book) = m.get("/v1/book/gpu-24g").await;
        assert!(book["offers"].as_array().unwrap().is_empty(), "{book}");
        let after = m.snapshot().await;
        assert_eq!(
            after["entries"].as_u64(),
            before["entries"].as_u64().map(|n| n + 1)
        );
        // Again: the order is no longer open.
        let got = m.post("/v1/cancels", &cancel(&host, id)).await;
        assert_error(
            &got,
            StatusCode::NOT_FOUND,
            "not_found",
            &["no open order", &id.to_string()],
        );
        assert_eq!(m.snapshot().await, after);
        m.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_market_cannot_sequence_the_same_journal() {
    let dir = tempfile::tempdir().unwrap();
    for config in configs(dir.path()).await {
        let m = TestMarket::start(config.clone()).await;
        let e = Market::open(config.clone()).await.unwrap_err().to_string();
        assert!(e.contains("another market is sequencing this"), "{e}");
        let config = m.stop().await;
        // Released on stop.
        let m = TestMarket::start(config).await;
        m.stop().await;
    }
}
