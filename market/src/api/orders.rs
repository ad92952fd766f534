//! `POST /v1/offers`, `POST /v1/bids`, `POST /v1/cancels`, `GET /v1/orders/{id}`.

use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use netmind_protocol::orders::{Cancel, JobOrder, Offer as SignedOffer, Order, Signed};
use serde::Serialize;
use tracing::Instrument;

use super::State;
use super::error::{self, ApiError, Kind};
use super::wire::{self, Body};
use crate::engine::{Command, Deal, Event, Time};
use crate::journal::DealQuery;

/// A deal as the API shows it: ids and addresses as hex, the price as a
/// decimal string (NMT base units per second).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DealView {
    id: B256,
    bid: B256,
    offer: B256,
    owner: Address,
    host: Address,
    class: String,
    price: String,
    seconds: u64,
    replica: u32,
    at: Time,
}

impl From<&Deal> for DealView {
    fn from(d: &Deal) -> Self {
        Self {
            id: d.id,
            bid: d.bid,
            offer: d.offer,
            owner: d.owner,
            host: d.host,
            class: d.class.to_string(),
            price: d.price.to_string(),
            seconds: d.seconds,
            replica: d.replica,
            at: d.time,
        }
    }
}

/// What placing an order did.
#[derive(Debug, Serialize)]
struct Placed {
    id: B256,
    kind: &'static str,
    class: String,
    /// `open` (what is left rests in the book) or `filled`.
    status: &'static str,
    /// Free slots (offer) or waiting replicas (bid) left in the book.
    remaining: u32,
    deals: Vec<DealView>,
}

pub(crate) fn now_ms() -> Time {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Time)
}

/// Reads and parses a signed message of type `T`.
async fn signed_body<T: Order + serde::de::DeserializeOwned>(
    state: &State,
    req: Request<Incoming>,
    what: &str,
) -> Result<Signed<T>, ApiError> {
    let bytes = wire::read_body(req, state.config.max_body).await?;
    wire::parse_json(&bytes, what)
}

fn check_expiry(kind: &str, field: &str, at: Time) -> Result<(), ApiError> {
    let now = now_ms();
    if at <= now {
        return Err(ApiError::new(
            Kind::Expired,
            format!(
                "this {kind}'s {field} ({at} ms since the Unix epoch) has passed (now {now}); \
                 sign it again with a later {field}"
            ),
        ));
    }
    Ok(())
}

fn take_token(state: &State, maker: Address) -> Result<(), ApiError> {
    state.by_address.take(&maker).map_err(|wait| {
        let r = state.config.address_rate;
        ApiError::rate_limited(
            format!(
                "too many orders and cancels from {maker}: at most {} a second (bursts of {}); \
                 retry in {} ms",
                r.per_second,
                r.burst,
                wait.as_millis().max(1)
            ),
            wait,
        )
    })
}

/// Sends a command through the sequencer; answers once it is committed.
async fn sequence(
    state: &State,
    command: Command,
    signed: Option<String>,
) -> Result<Vec<Event>, ApiError> {
    state
        .sequencer
        .submit_signed(command, signed)
        .await
        .map_err(|detail| ApiError::internal("store the order in its journal", &detail))
}

fn placed(
    id: B256,
    kind: &'static str,
    class: String,
    size: u32,
    events: &[Event],
) -> Result<Response<Body>, ApiError> {
    let mut deals = Vec::new();
    let mut open = false;
    for e in events {
        match e {
            Event::Rejected { id: rid, reason } if *rid == id => {
                return Err(error::rejected(&id, reason));
            }
            Event::Deal(d) if d.bid == id || d.offer == id => deals.push(DealView::from(d)),
            Event::Rested { id: rid, .. } if *rid == id => open = true,
            _ => {}
        }
    }
    crate::telemetry::count_order(kind, &class, deals.len());
    let remaining = if open {
        size.saturating_sub(deals.len() as u32)
    } else {
        0
    };
    let body = Placed {
        id,
        kind,
        class,
        status: if open { "open" } else { "filled" },
        remaining,
        deals,
    };
    Ok(wire::json(StatusCode::CREATED, &body))
}

pub(super) async fn post_offer(
    state: &State,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let signed: Signed<SignedOffer> = signed_body(state, req, "signed offer").await?;
    state.known_class(&signed.order.class)?;
    let offer = crate::orders::offer(&signed, &state.domain)?;
    take_token(state, offer.host)?;
    check_expiry("offer", "expiry", offer.expiry)?;
    let (id, class, slots) = (offer.id, offer.class.clone(), offer.slots);
    let json = serde_json::to_string(&signed).ok();
    let order = tracing::info_span!(
        target: "market::orders",
        "market.order",
        order_id = %id,
        kind = "offer",
        %class
    );
    let events = matched(&order, id, sequence(state, Command::Offer(offer), json)).await?;
    if crate::telemetry::enabled() {
        trace_matches_into_jobs(state, id, &events);
    }
    placed(id, "offer", class, slots, &events)
}

/// Sequences an order (`sequenced`) under a `market.match` span, child of
/// its `market.order` span, that records how many deals it made.
async fn matched(
    order: &tracing::Span,
    id: B256,
    sequenced: impl std::future::Future<Output = Result<Vec<Event>, ApiError>>,
) -> Result<Vec<Event>, ApiError> {
    let span = tracing::info_span!(
        target: "market::orders",
        parent: order,
        "market.match",
        order_id = %id,
        deals = tracing::field::Empty
    );
    let events = sequenced.instrument(span.clone()).await?;
    let deals = events
        .iter()
        .filter(|e| matches!(e, Event::Deal(_)))
        .count();
    span.record("deals", deals);
    Ok(events)
}

/// An offer matched bids that were waiting: records a `market.match` span
/// in each such job's trace too.
fn trace_matches_into_jobs(state: &State, offer: B256, events: &[Event]) {
    let jobs = state
        .sequencer
        .jobs()
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    for e in events {
        if let Event::Deal(d) = e
            && let Some(tp) = jobs.job(&d.bid).and_then(|j| j.traceparent.as_deref())
        {
            let span = tracing::info_span!(
                target: "market::orders",
                parent: None,
                "market.match",
                order_id = %d.bid,
                deal = %d.id,
                offer = %offer,
                deals = 1
            );
            crate::telemetry::continue_traceparent(&span, tp);
        }
    }
}

pub(super) async fn post_bid(
    state: &State,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let signed: Signed<JobOrder> = signed_body(state, req, "signed job order").await?;
    state.known_class(&signed.order.class)?;
    let bid = crate::orders::bid(&signed, &state.domain)?;
    take_token(state, bid.owner)?;
    check_expiry("job order", "deadline", bid.deadline)?;
    if bid.max_seconds == 0 {
        return Err(ApiError::invalid(
            "a job order must allow at least one second (maxSeconds)",
        ));
    }
    let (id, class, replicas) = (bid.id, bid.class.clone(), bid.replicas);
    let json = serde_json::to_string(&signed).ok();
    let order = tracing::info_span!(
        target: "market::orders",
        "market.order",
        order_id = %id,
        kind = "bid",
        %class,
        replicas
    );
    // The job keeps this span's context, so its hosts join the submitter's trace.
    let traceparent = crate::telemetry::traceparent(&order);
    if let Some(tp) = &traceparent {
        let mut jobs = state
            .sequencer
            .jobs()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        jobs.expect_trace(id, tp.clone());
    }
    let events = matched(&order, id, sequence(state, Command::Bid(bid), json)).await;
    if traceparent.is_some() {
        let mut jobs = state
            .sequencer
            .jobs()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        jobs.forget_trace(&id);
    }
    placed(id, "bid", class, replicas, &events?)
}

pub(super) async fn post_cancel(
    state: &State,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let signed: Signed<Cancel> = signed_body(state, req, "signed cancel").await?;
    crate::orders::verify(&signed, &state.domain).map_err(|e| {
        ApiError::new(
            Kind::BadSignature,
            format!(
                "invalid cancel signature: {e}; sign the cancel's EIP-712 hash with the \
                 order maker's key under this market's domain (GET /v1/info)"
            ),
        )
    })?;
    let c = &signed.order;
    take_token(state, c.maker)?;
    check_expiry("cancel", "expiry", c.expiry)?;
    // A job under way is cancelled as a job (its replicas stop too).
    if let Some(answer) = super::jobs::cancel_job(state, c.order, c.maker).await? {
        return Ok(answer);
    }
    let events = sequence(
        state,
        Command::Cancel {
            id: c.order,
            by: c.maker,
        },
        None,
    )
    .await?;
    for e in &events {
        match e {
            Event::Rejected { reason, .. } => return Err(error::rejected(&c.order, reason)),
            Event::Cancelled { id } if *id == c.order => {
                return Ok(wire::json(
                    StatusCode::OK,
                    &serde_json::json!({ "id": c.order, "cancelled": true }),
                ));
            }
            _ => {}
        }
    }
    // The order lapsed in the same instant: it is no longer open.
    Err(error::rejected(
        &c.order,
        &crate::engine::Reject::UnknownOrder,
    ))
}

/// Parses an order id from a path.
pub(crate) fn order_id(s: &str) -> Result<B256, ApiError> {
    s.parse().map_err(|_| {
        ApiError::malformed(format!(
            "`{}` is not an order id: expected 0x and 64 hex digits (the order's EIP-712 hash)",
            s.chars().take(80).collect::<String>()
        ))
    })
}

pub(super) async fn get_order(state: &State, id: &str) -> Result<Response<Body>, ApiError> {
    let id = order_id(id)?;
    let Some(row) = state.journal.order(&id).await? else {
        return Err(ApiError::not_found(format!(
            "no order {id} was ever placed on this market; check the id (it is the order's EIP-712 hash)"
        )));
    };
    let open = state.sequencer.engine().read().await.open_order(&id);
    let signed: serde_json::Value = serde_json::from_str(&row.signed)
        .map_err(|e| ApiError::internal("read a stored order", &e))?;
    let mut q = DealQuery {
        limit: 1000,
        ..DealQuery::default()
    };
    if row.kind == "bid" {
        q.bid = Some(id);
    } else {
        q.offer = Some(id);
    }
    let mut deals = state.journal.deals(&q).await?;
    deals.reverse();
    let body = serde_json::json!({
        "id": id,
        "kind": row.kind,
        "maker": row.maker,
        "class": row.class,
        "placed_at": row.at,
        "status": if open.is_some() { "open" } else { "closed" },
        "remaining": open.map_or(0, |(_, n)| n),
        "signed": signed,
        "deals": deals,
    });
    Ok(wire::json(StatusCode::OK, &body))
}
