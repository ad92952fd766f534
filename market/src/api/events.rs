//! `GET /v1/events`: a server-sent-event stream of committed book changes
//! and trades, in journal order.
//!
//! Events: `book` (`{"type": "rested" | "filled" | "cancelled" | "expired", ...}`)
//! and `trade` (a deal). A client too slow to keep up gets a `lagged` event
//! naming how many batches it missed, then the stream goes on. A comment
//! line every 15 s keeps idle connections open.
//!
//! `job` (a job, as `GET /v1/jobs/{id}` shows it) each time one changes, and
//! `host` (a host, as in `GET /v1/hosts`) for the hosts of its replicas.
//!
//! `?host=ADDRESS` is a host daemon's stream: only the trades that give
//! that host a deal, each with the deal's job (`job`, as `GET /v1/jobs/{id}`
//! shows it, so the host need not read it back), and `job` events for the
//! jobs it holds a replica of once they are over (done, failed, cancelled or
//! expired); no `book` or `host` events.
//!
//! `?class=NAME` (repeated, or `a,b`) follows only those classes: their
//! trades and the book changes of their orders. Cancels and expiries do not
//! name a class, so such a stream keeps the ids of its classes' orders: those
//! open when it starts (read from the book as it subscribes) and those that
//! rest later, each until it closes or its own expiry or deadline passes.

use std::collections::{HashMap, HashSet};
use std::io;
use std::time::Duration;

use alloy_primitives::Address;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response, Uri};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::error::{ApiError, Kind};
use super::orders::DealView;
use super::wire::{self, Body};
use super::{State, StreamGuard};
use crate::engine::{Command, Engine, Event, OrderId, Side, Time};
use crate::journal::Entry;

type Chunk = Result<Frame<Bytes>, io::Error>;

pub(super) async fn stream(state: &State, uri: &Uri) -> Result<Response<Body>, ApiError> {
    let classes = classes(state, uri)?;
    let host = host(uri)?;
    let guard = StreamGuard::open(state).ok_or_else(|| {
        ApiError::new(
            Kind::Unavailable,
            format!(
                "this market already serves {} event streams; retry later",
                state.config.max_event_streams
            ),
        )
    })?;
    let (mut committed, mut follow) = {
        // Subscribing while the book is read: every batch applied after this
        // book is one the stream receives.
        let engine = state.sequencer.engine().read().await;
        let committed = state.sequencer.subscribe();
        let follow = classes.map(|c| Follow::new(c, &engine));
        (committed, follow)
    };
    let engine = state.sequencer.engine().clone();
    let mut job_changes = state.sequencer.job_changes().subscribe();
    let jobs = state.sequencer.jobs().clone();
    let only: Option<HashSet<String>> = follow.as_ref().map(|f| f.classes.clone());
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
            let mut lagged = false;
            let text = tokio::select! {
                r = committed.recv() => match r {
                    Ok(batch) => match host {
                        Some(host) => render_for_host(&batch, host, &jobs, only.as_ref()),
                        None => render(&batch, follow.as_mut()),
                    },
                    Err(RecvError::Lagged(n)) => {
                        lagged = true;
                        format!("event: lagged\ndata: {}\n\n", json!({ "missed_batches": n }))
                    }
                    Err(RecvError::Closed) => return,
                },
                r = job_changes.recv() => match r {
                    Ok(ids) => render_jobs(&jobs, &ids, only.as_ref(), host),
                    Err(RecvError::Lagged(_)) => String::new(),
                    Err(RecvError::Closed) => return,
                },
                _ = heartbeat.tick() => ": keep-alive\n\n".into(),
                () = tx.closed() => return,
                _ = closing.wait_for(|c| *c) => return,
            };
            // What rested in the missed batches is in the book now.
            if let Some(f) = follow.as_mut().filter(|_| lagged) {
                f.add_open(&*engine.read().await);
            }
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

/// `job` events for the jobs `ids` (of the followed classes), then `host`
/// events for the hosts of their replicas; for a host's stream, only the
/// jobs it holds a replica of once they are over (so it stops what it still
/// runs for them), and no `host` events.
fn render_jobs(
    jobs: &crate::journal::SharedJobs,
    ids: &[OrderId],
    only: Option<&HashSet<String>>,
    for_host: Option<Address>,
) -> String {
    use std::fmt::Write as _;
    let jobs = jobs.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = String::new();
    let mut hosts = HashSet::new();
    for id in ids {
        let Some(job) = jobs.job(id) else { continue };
        if only.is_some_and(|c| !c.contains(&job.class))
            || for_host
                .is_some_and(|h| !job.state.finished() || !job.deals.iter().any(|d| d.host == h))
        {
            continue;
        }
        hosts.extend(job.deals.iter().map(|d| d.host));
        let _ = write!(out, "event: job\ndata: {}\n\n", super::jobs::view(job));
    }
    if !hosts.is_empty() && for_host.is_none() {
        for h in jobs.hosts(super::orders::now_ms()) {
            if hosts.contains(&h.address) {
                let _ = write!(out, "event: host\ndata: {}\n\n", json!(h));
            }
        }
    }
    out
}

/// The SSE text of a committed batch for a host's stream: the trades that
/// give `host` a deal (of the followed classes), each with its job.
fn render_for_host(
    batch: &[Entry],
    host: Address,
    jobs: &crate::journal::SharedJobs,
    only: Option<&HashSet<String>>,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut jobs_now = None;
    for entry in batch {
        for e in &entry.events {
            let Event::Deal(d) = e else { continue };
            if d.host != host || only.is_some_and(|c| !c.contains(&*d.class)) {
                continue;
            }
            let jobs =
                jobs_now.get_or_insert_with(|| jobs.lock().unwrap_or_else(|e| e.into_inner()));
            let mut data = json!(DealView::from(d));
            if let Some(job) = jobs.job(&d.bid) {
                data["job"] = super::jobs::view(job);
            }
            let _ = write!(out, "event: trade\ndata: {data}\n\n");
        }
    }
    out
}

/// The host `?host=` names, if any.
fn host(uri: &Uri) -> Result<Option<Address>, ApiError> {
    let mut named = None;
    for pair in uri.query().unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if wire::decode(key) != "host" {
            continue;
        }
        if named.is_some() {
            return Err(ApiError::malformed(
                "query parameter `host` is given twice; a stream follows one host",
            ));
        }
        let value = wire::decode(value);
        named = Some(value.parse::<Address>().map_err(|e| {
            ApiError::malformed(format!(
                "query parameter `host` is not an address ({e}): give the host's 0x-prefixed \
                 20-byte address"
            ))
        })?);
    }
    Ok(named)
}

fn side(s: Side) -> &'static str {
    match s {
        Side::Offer => "offer",
        Side::Bid => "bid",
    }
}

/// The classes `?class=` names (repeated or comma-separated), each one the
/// market trades; `None` when there is no `class` parameter (every class).
fn classes(state: &State, uri: &Uri) -> Result<Option<HashSet<String>>, ApiError> {
    let mut named = None::<HashSet<String>>;
    for pair in uri.query().unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if wire::decode(key) != "class" {
            continue;
        }
        let set = named.get_or_insert_default();
        for class in wire::decode(value).split(',').filter(|c| !c.is_empty()) {
            state.known_class(class).map_err(ApiError::in_path)?;
            set.insert(class.to_owned());
        }
    }
    if named.as_ref().is_some_and(HashSet::is_empty) {
        return Err(ApiError::malformed(format!(
            "query parameter `class` names no class; name one or more of {}, or leave it out for every class",
            state.config.classes.join(", ")
        )));
    }
    Ok(named)
}

/// What a stream that follows some classes knows: the classes, and the open
/// orders of those classes (a cancel or an expiry names only the order).
#[derive(Debug)]
struct Follow {
    classes: HashSet<String>,
    /// Order id → its expiry or deadline, after which it is closed whatever
    /// the stream heard (an offer whose slots are all taken closes silently).
    open: HashMap<OrderId, Time>,
    /// The size of `open` after it was last pruned.
    pruned: usize,
}

impl Follow {
    fn new(classes: HashSet<String>, engine: &Engine) -> Self {
        let mut f = Self {
            classes,
            open: HashMap::new(),
            pruned: 0,
        };
        f.add_open(engine);
        f
    }

    /// Adds the open orders of the followed classes in `engine`.
    fn add_open(&mut self, engine: &Engine) {
        for class in &self.classes {
            let (offers, bids) = engine.book(class);
            self.open
                .extend(offers.iter().map(|(o, _)| (o.id, o.expiry)));
            self.open
                .extend(bids.iter().map(|(b, _)| (b.id, b.deadline)));
        }
    }

    /// Forgets orders past their expiry or deadline once `now` is applied
    /// (the engine lapses each by then), when the map has doubled.
    fn prune(&mut self, now: Time) {
        if self.open.len() > 2 * self.pruned.max(512) {
            self.open.retain(|_, until| *until > now);
            self.pruned = self.open.len();
        }
    }
}

/// The SSE text of a committed batch; with `follow`, only what concerns its classes.
fn render(batch: &[Entry], mut follow: Option<&mut Follow>) -> String {
    let mut out = String::new();
    for entry in batch {
        // The order the command placed, if any: rested and filled events are of its class.
        let (class, price, size, until) = match &entry.command {
            Command::Offer(o) => (o.class.as_str(), o.price, o.slots, o.expiry),
            Command::Bid(b) => (b.class.as_str(), b.max_price, b.replicas, b.deadline),
            _ => ("", 0, 0, 0),
        };
        for e in &entry.events {
            if let Some(f) = follow.as_deref_mut() {
                let shown = match e {
                    Event::Deal(d) => f.classes.contains(&*d.class),
                    Event::Rested { id, .. } => {
                        let ours = f.classes.contains(class);
                        if ours {
                            f.open.insert(*id, until);
                        }
                        ours
                    }
                    Event::Filled { id } => {
                        f.open.remove(id);
                        f.classes.contains(class)
                    }
                    Event::Cancelled { id } | Event::Expired { id, .. } => {
                        f.open.remove(id).is_some()
                    }
                    Event::Rejected { .. } => false,
                };
                if !shown {
                    continue;
                }
            }
            let (event, data) = match e {
                Event::Deal(d) => ("trade", json!(DealView::from(d))),
                Event::Rested { id, side: s } => {
                    let deals = entry
                        .events
                        .iter()
                        .filter(|e| matches!(e, Event::Deal(d) if d.bid == *id || d.offer == *id))
                        .count() as u32;
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
        if let Some(f) = follow.as_deref_mut() {
            f.prune(entry.at);
        }
    }
    out
}
