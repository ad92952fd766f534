//! `GET /v1/events`: a server-sent-event stream of committed book changes
//! and trades, in journal order.
//!
//! Events: `book` (`{"type": "rested" | "filled" | "cancelled" | "expired", ...}`)
//! and `trade` (a deal). A client too slow to keep up gets a `lagged` event
//! naming how many batches it missed, then the stream goes on. A comment
//! line every 15 s keeps idle connections open.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::error::{ApiError, Kind};
use super::orders::DealView;
use super::wire::Body;
use super::{State, StreamGuard};
use crate::engine::{Command, Event, Side};
use crate::journal::Entry;

type Chunk = Result<Frame<Bytes>, io::Error>;

pub(super) fn stream(state: &State) -> Result<Response<Body>, ApiError> {
    let guard = StreamGuard::open(state).ok_or_else(|| {
        ApiError::new(
            Kind::Unavailable,
            format!(
                "this market already serves {} event streams; retry later",
                state.config.max_event_streams
            ),
        )
    })?;
    let mut committed = state.sequencer.subscribe();
    let mut closing = state.closing.subscribe();
    let (tx, rx) = mpsc::channel::<Chunk>(64);
    tokio::spawn(async move {
        let _guard = guard;
        let send = |text: String| {
            let tx = tx.clone();
            async move { tx.send(Ok(Frame::data(Bytes::from(text)))).await.is_ok() }
        };
        if !send(": netmind market events\n\n".into()).await {
            return;
        }
        let mut heartbeat = tokio::time::interval(Duration::from_secs(15));
        heartbeat.tick().await;
        loop {
            let text = tokio::select! {
                r = committed.recv() => match r {
                    Ok(batch) => render(&batch),
                    Err(RecvError::Lagged(n)) => {
                        format!("event: lagged\ndata: {}\n\n", json!({ "missed_batches": n }))
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = heartbeat.tick() => ": keep-alive\n\n".into(),
                () = tx.closed() => return,
                _ = closing.wait_for(|c| *c) => return,
            };
            if !text.is_empty() && !send(text).await {
                return;
            }
        }
    });
    let body = StreamBody::new(ReceiverStream::new(rx)).boxed();
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}

fn side(s: Side) -> &'static str {
    match s {
        Side::Offer => "offer",
        Side::Bid => "bid",
    }
}

/// The SSE text of a committed batch.
fn render(batch: &[Entry]) -> String {
    let mut out = String::new();
    for entry in batch {
        for e in &entry.events {
            let (event, data) = match e {
                Event::Deal(d) => ("trade", json!(DealView::from(d))),
                Event::Rested { id, side: s } => {
                    let deals = entry
                        .events
                        .iter()
                        .filter(|e| matches!(e, Event::Deal(d) if d.bid == *id || d.offer == *id))
                        .count() as u32;
                    let (class, price, size) = match &entry.command {
                        Command::Offer(o) => (o.class.as_str(), o.price, o.slots),
                        Command::Bid(b) => (b.class.as_str(), b.max_price, b.replicas),
                        _ => ("", 0, 0),
                    };
                    (
                        "book",
                        json!({
                            "type": "rested", "id": id, "side": side(*s), "class": class,
                            "price": price.to_string(), "quantity": size.saturating_sub(deals),
                            "at": entry.at,
                        }),
                    )
                }
                Event::Filled { id } => (
                    "book",
                    json!({ "type": "filled", "id": id, "at": entry.at }),
                ),
                Event::Cancelled { id } => (
                    "book",
                    json!({ "type": "cancelled", "id": id, "at": entry.at }),
                ),
                Event::Expired { id, side: s } => (
                    "book",
                    json!({ "type": "expired", "id": id, "side": side(*s), "at": entry.at }),
                ),
                Event::Rejected { .. } => continue,
            };
            out.push_str(&format!("event: {event}\ndata: {data}\n\n"));
        }
    }
    out
}
