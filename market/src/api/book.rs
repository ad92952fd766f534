//! Reads: `/v1/info`, `/v1/classes`, `/v1/book/{class}`, `/v1/market/{class}`,
//! `/v1/trades/{class}`, `/v1/deals`, `/v1/bids/{id}/explain`.
//!
//! The book and market data come from the engine as of the last commit; deals
//! and trades from the journal's deals table.

use http::{Response, StatusCode, Uri};
use serde_json::{Value, json};

use super::State;
use super::error::ApiError;
use super::orders::{now_ms, order_id};
use super::wire::{self, Body};
use crate::engine::{BASE_INTERVAL, Level};
use crate::journal::DealQuery;

/// The most items a list returns.
const MAX_LIMIT: u64 = 1000;

fn limit(q: &std::collections::HashMap<String, String>, default: u64) -> Result<u32, ApiError> {
    let n = wire::param_u64(q, "limit", default)?;
    if n == 0 || n > MAX_LIMIT {
        return Err(ApiError::malformed(format!(
            "query parameter `limit` must be between 1 and {MAX_LIMIT}, got {n}"
        )));
    }
    Ok(n as u32)
}

fn levels(ls: &[Level]) -> Vec<Value> {
    ls.iter()
        .map(|l| json!({ "price": l.price.to_string(), "quantity": l.quantity }))
        .collect()
}

pub(super) async fn info(state: &State) -> Response<Body> {
    let c = &state.config;
    wire::json(
        StatusCode::OK,
        &json!({
            "domain": { "name": "NetMind Market", "version": "1", "chainId": c.chain_id },
            "classes": c.classes,
            "limits": {
                "max_body_bytes": c.max_body,
                "max_blob_bytes": c.max_blob,
                "orders_per_address": c.address_rate,
                "requests_per_ip": c.ip_rate,
            },
            "journal_entries": state.sequencer.committed_entries(),
            "time": now_ms(),
        }),
    )
}

pub(super) async fn classes(state: &State) -> Response<Body> {
    let engine = state.sequencer.engine().read().await;
    let out: Vec<Value> = state
        .config
        .classes
        .iter()
        .map(|c| {
            let (ask, bid) = engine.best(c);
            let data = engine.data(c);
            json!({
                "class": c,
                "best_ask": ask.map(|p| p.to_string()),
                "best_bid": bid.map(|p| p.to_string()),
                "last_price": data.and_then(|d| d.last_price).map(|p| p.to_string()),
                "deals": data.map_or(0, |d| d.deals),
            })
        })
        .collect();
    wire::json(StatusCode::OK, &out)
}

pub(super) async fn book(
    state: &State,
    class: &str,
    uri: &Uri,
) -> Result<Response<Body>, ApiError> {
    state.known_class(class).map_err(ApiError::in_path)?;
    let q = wire::query(uri);
    let n = limit(&q, 100)? as usize;
    let (offers, bids) = state.sequencer.engine().read().await.book(class);
    let offers: Vec<Value> = offers
        .iter()
        .take(n)
        .map(|(o, free)| {
            json!({
                "id": o.id, "host": o.host, "price": o.price.to_string(), "free_slots": free,
                "slots": o.slots, "expiry": o.expiry, "capabilities": o.caps,
            })
        })
        .collect();
    let bids: Vec<Value> = bids
        .iter()
        .take(n)
        .map(|(b, waiting)| {
            json!({
                "id": b.id, "owner": b.owner, "max_price": b.max_price.to_string(),
                "waiting_replicas": waiting, "replicas": b.replicas, "max_seconds": b.max_seconds,
                "deadline": b.deadline, "requirements": b.req,
            })
        })
        .collect();
    Ok(wire::json(
        StatusCode::OK,
        &json!({ "class": class, "offers": offers, "bids": bids }),
    ))
}

pub(super) async fn market(
    state: &State,
    class: &str,
    uri: &Uri,
) -> Result<Response<Body>, ApiError> {
    state.known_class(class).map_err(ApiError::in_path)?;
    let q = wire::query(uri);
    let interval = wire::param_u64(&q, "interval", 60_000)?;
    if !(BASE_INTERVAL..=7 * 24 * 3_600_000).contains(&interval) {
        return Err(ApiError::malformed(format!(
            "query parameter `interval` must be between {BASE_INTERVAL} ms and one week, got {interval}"
        )));
    }
    let to = wire::param_u64(&q, "to", u64::MAX)?;
    let from = wire::param_u64(&q, "from", 0)?;
    let engine = state.sequencer.engine().read().await;
    let (ask, bid) = engine.best(class);
    let (asks, bids) = engine.depth(class);
    let data = engine.data(class);
    let candles: Vec<Value> = data
        .map(|d| d.candles(interval, from, to))
        .unwrap_or_default()
        .iter()
        .map(|c| {
            json!({
                "start": c.start, "open": c.open.to_string(), "high": c.high.to_string(),
                "low": c.low.to_string(), "close": c.close.to_string(), "deals": c.deals,
            })
        })
        .collect();
    Ok(wire::json(
        StatusCode::OK,
        &json!({
            "class": class,
            "best_ask": ask.map(|p| p.to_string()),
            "best_bid": bid.map(|p| p.to_string()),
            "last_price": data.and_then(|d| d.last_price).map(|p| p.to_string()),
            "deals": data.map_or(0, |d| d.deals),
            "notional": data.map_or(0, |d| d.notional).to_string(),
            "depth": { "asks": levels(&asks), "bids": levels(&bids) },
            "interval": interval,
            "candles": candles,
        }),
    ))
}

pub(super) async fn trades(
    state: &State,
    class: &str,
    uri: &Uri,
) -> Result<Response<Body>, ApiError> {
    state.known_class(class).map_err(ApiError::in_path)?;
    let q = wire::query(uri);
    let rows = state
        .journal
        .deals(&DealQuery {
            class: Some(class.to_owned()),
            limit: limit(&q, 100)?,
            ..DealQuery::default()
        })
        .await?;
    let out: Vec<Value> = rows
        .iter()
        .map(|d| json!({ "deal": d.id, "price": d.price, "seconds": d.seconds, "at": d.at }))
        .collect();
    Ok(wire::json(StatusCode::OK, &out))
}

/// A `0x`-hex query parameter of `N` bytes (an id or an address), if given.
fn hex_param<const N: usize>(
    q: &std::collections::HashMap<String, String>,
    name: &str,
) -> Result<Option<alloy_primitives::FixedBytes<N>>, ApiError> {
    let Some(v) = q.get(name) else {
        return Ok(None);
    };
    let digits = v.strip_prefix("0x").unwrap_or(v);
    let mut bytes = [0u8; N];
    match alloy_primitives::hex::decode_to_slice(digits, &mut bytes) {
        Ok(()) => Ok(Some(bytes.into())),
        Err(_) => Err(ApiError::malformed(format!(
            "query parameter `{name}` must be 0x and {} hex digits",
            2 * N
        ))),
    }
}

pub(super) async fn deals(state: &State, uri: &Uri) -> Result<Response<Body>, ApiError> {
    let q = wire::query(uri);
    let class = match q.get("class") {
        Some(c) => {
            state.known_class(c)?;
            Some(c.clone())
        }
        None => None,
    };
    let before = match q.get("before") {
        Some(_) => Some(wire::param_u64(&q, "before", 0)?.min(i64::MAX as u64) as i64),
        None => None,
    };
    let query = DealQuery {
        bid: hex_param::<32>(&q, "bid")?,
        offer: hex_param::<32>(&q, "offer")?,
        owner: hex_param::<20>(&q, "owner")?.map(alloy_primitives::Address::from),
        host: hex_param::<20>(&q, "host")?.map(alloy_primitives::Address::from),
        class,
        before_seq: before,
        limit: limit(&q, 100)?,
    };
    let rows = state.journal.deals(&query).await?;
    Ok(wire::json(StatusCode::OK, &rows))
}

pub(super) async fn explain(state: &State, id: &str) -> Result<Response<Body>, ApiError> {
    let id = order_id(id)?;
    let explanation = state.sequencer.engine().read().await.explain(&id);
    match explanation {
        Some(e) => Ok(wire::json(StatusCode::OK, &e)),
        None => Err(ApiError::not_found(format!(
            "bid {id} is not waiting in the book (it was filled, cancelled or lapsed, or never \
             placed): only open bids are explained; see GET /v1/orders/{id}"
        ))),
    }
}
