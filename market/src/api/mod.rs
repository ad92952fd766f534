//! The market's HTTP API on `hyper` 1 (HTTP/1.1, keep-alive).
//!
//! How a request is served:
//! 1. the client's IP takes a token from its bucket (429 when empty);
//! 2. the route is found from the method and path (404, 405);
//! 3. a body is read up to the limit (413) and parsed, naming the field at
//!    fault (400);
//! 4. a signed order or cancel is checked (EIP-712 signature under this
//!    market's domain: 401; expiry: 400; class: 400), then its maker's
//!    address takes a token (429);
//! 5. it goes through the journal's sequencer and is answered only after its
//!    entry is committed (201/200), or with the engine's refusal (409 for a
//!    duplicate or replay, 400, 403, 404), which changes nothing.
//!
//! Every error is a JSON `{"error": {"code", "message"}}` made in [`error`],
//! the one module that maps errors to statuses. The routes are described at
//! `GET /openapi.json` ([`openapi`]).

mod blobs;
mod book;
mod dashboard;
pub mod error;
mod events;
mod jobs;
pub(crate) use jobs::keep_leases;
mod limits;
mod logs;
pub mod openapi;
mod orders;
mod wire;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use alloy_primitives::Address;
use alloy_sol_types::Eip712Domain;
use http::{Method, Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::blob::BlobStore;
use crate::journal::{Journal, Sequencer};
use crate::logs::LogStore;

pub use error::{ApiError, Kind};
pub use limits::Rate;
pub use wire::Body;

/// The chain id orders are signed for unless configured: the NetMind devnet's.
pub const DEFAULT_CHAIN_ID: u64 = 2_026_112;

/// API settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// The chain id in the EIP-712 domain orders must be signed under.
    pub chain_id: u64,
    /// The resource classes this market trades; orders naming another are refused.
    pub classes: Vec<String>,
    /// Largest JSON request body, bytes.
    pub max_body: usize,
    /// Largest blob, bytes.
    pub max_blob: u64,
    /// Orders and cancels per maker address.
    pub address_rate: Rate,
    /// Requests per client IP (every route).
    pub ip_rate: Rate,
    /// Server-sent-event streams open at once.
    pub max_event_streams: usize,
    /// How long a host has to start a deal it was assigned, ms; then the
    /// deal lapses and its replica goes to another host.
    pub lease_start_ms: u64,
    /// How long past the bid's `maxSeconds` a started deal may take to
    /// report, ms; then it lapses the same way.
    pub lease_grace_ms: u64,
    /// The most of a deal's log the market keeps, bytes; the rest is cut.
    pub max_log: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            chain_id: DEFAULT_CHAIN_ID,
            classes: [
                "cpu", "gpu-8g", "gpu-12g", "gpu-16g", "gpu-24g", "gpu-48g", "gpu-80g",
            ]
            .map(String::from)
            .to_vec(),
            max_body: 64 * 1024,
            max_blob: 256 * 1024 * 1024,
            address_rate: Rate {
                per_second: 50.0,
                burst: 100.0,
            },
            ip_rate: Rate {
                per_second: 5_000.0,
                burst: 10_000.0,
            },
            max_event_streams: 1024,
            lease_start_ms: crate::jobs::START_WITHIN,
            lease_grace_ms: crate::jobs::REPORT_GRACE,
            max_log: 1024 * 1024,
        }
    }
}

/// What every request handler shares.
#[derive(Debug)]
pub struct State {
    config: ApiConfig,
    domain: Eip712Domain,
    journal: Journal,
    sequencer: Sequencer,
    blobs: Arc<dyn BlobStore>,
    logs: LogStore,
    by_address: limits::Limiter<Address>,
    by_ip: limits::Limiter<IpAddr>,
    streams: Arc<AtomicUsize>,
    /// Set when the server shuts down: event streams end.
    closing: tokio::sync::watch::Sender<bool>,
}

impl State {
    /// The state of a market whose `sequencer` runs on `journal`.
    pub fn new(
        config: ApiConfig,
        journal: Journal,
        sequencer: Sequencer,
        blobs: Arc<dyn BlobStore>,
        logs: LogStore,
    ) -> Self {
        Self {
            domain: netmind_protocol::orders::domain(config.chain_id),
            by_address: limits::Limiter::new(config.address_rate),
            by_ip: limits::Limiter::new(config.ip_rate),
            config,
            journal,
            sequencer,
            blobs,
            logs,
            streams: Arc::default(),
            closing: tokio::sync::watch::Sender::new(false),
        }
    }

    /// The sequencer orders go through.
    pub fn sequencer(&self) -> &Sequencer {
        &self.sequencer
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    fn known_class(&self, class: &str) -> Result<(), ApiError> {
        if self.config.classes.iter().any(|c| c == class) {
            return Ok(());
        }
        let shown: String = class.chars().take(64).collect();
        Err(ApiError::new(
            Kind::UnknownClass,
            format!(
                "unknown class `{shown}`: this market trades {}",
                self.config.classes.join(", ")
            ),
        ))
    }
}

/// Serves the API on `listener` until `shutdown` resolves; open connections
/// then finish their current request.
///
/// # Errors
///
/// Accepting connections failed.
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, then go on.
                    tracing::warn!(target: "market::api", error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let service = service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, std::convert::Infallible>(handle(&state, peer, req).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    state.closing.send_replace(true);
    drop(state);
    if tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(target: "market::api", "connections still open 10 s after shutdown");
    }
    Ok(())
}

async fn handle(state: &State, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    // `market.request` in OpenTelemetry: a child of the caller's span when
    // it sent W3C trace context (docs/TELEMETRY.md).
    let span = tracing::debug_span!(
        target: "market::api",
        "request",
        otel.name = "market.request",
        otel.kind = "server",
        method = %req.method(),
        path = %req.uri().path()
    );
    crate::telemetry::continue_from(&span, req.headers());
    let result = match state.by_ip.take(&peer.ip()) {
        Err(wait) => Err(ApiError::rate_limited(
            format!(
                "too many requests from {}: at most {} a second (bursts of {}); retry later",
                peer.ip(),
                state.config.ip_rate.per_second,
                state.config.ip_rate.burst
            ),
            wait,
        )),
        Ok(()) => route(state, req).instrument(span).await,
    };
    result.unwrap_or_else(|e| wire::error(&e))
}

async fn route(state: &State, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_owned();
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let method = req.method().clone();
    let allow = |methods: &str| {
        ApiError::new(
            Kind::MethodNotAllowed,
            format!("{method} is not served on {path}; use {methods}"),
        )
    };
    match parts.as_slice() {
        [] => match method {
            Method::GET => Ok(dashboard::index(req.headers())),
            _ => Err(allow("GET")),
        },
        ["dashboard", file] => match method {
            Method::GET => dashboard::file(file, req.headers()),
            _ => Err(allow("GET")),
        },
        ["openapi.json"] => match method {
            Method::GET => Ok(wire::json(http::StatusCode::OK, &openapi::document())),
            _ => Err(allow("GET")),
        },
        ["v1", "info"] => match method {
            Method::GET => Ok(book::info(state).await),
            _ => Err(allow("GET")),
        },
        ["v1", "offers"] => match method {
            Method::POST => orders::post_offer(state, req).await,
            _ => Err(allow("POST")),
        },
        ["v1", "bids"] => match method {
            Method::POST => orders::post_bid(state, req).await,
            _ => Err(allow("POST")),
        },
        ["v1", "cancels"] => match method {
            Method::POST => orders::post_cancel(state, req).await,
            _ => Err(allow("POST")),
        },
        ["v1", "orders", id] => match method {
            Method::GET => orders::get_order(state, id).await,
            _ => Err(allow("GET")),
        },
        ["v1", "bids", id, "explain"] => match method {
            Method::GET => book::explain(state, id).await,
            _ => Err(allow("GET")),
        },
        ["v1", "classes"] => match method {
            Method::GET => Ok(book::classes(state).await),
            _ => Err(allow("GET")),
        },
        ["v1", "book", class] => match method {
            Method::GET => book::book(state, class, req.uri()).await,
            _ => Err(allow("GET")),
        },
        ["v1", "market", class] => match method {
            Method::GET => book::market(state, class, req.uri()).await,
            _ => Err(allow("GET")),
        },
        ["v1", "trades", class] => match method {
            Method::GET => book::trades(state, class, req.uri()).await,
            _ => Err(allow("GET")),
        },
        ["v1", "deals"] => match method {
            Method::GET => book::deals(state, req.uri()).await,
            _ => Err(allow("GET")),
        },
        ["v1", "jobs"] => match method {
            Method::GET => jobs::list(state, req.uri()),
            _ => Err(allow("GET")),
        },
        ["v1", "jobs", id] => match method {
            Method::GET => jobs::get(state, id),
            _ => Err(allow("GET")),
        },
        ["v1", "hosts"] => match method {
            Method::GET => Ok(jobs::hosts(state)),
            _ => Err(allow("GET")),
        },
        ["v1", "deals", id, "start"] => match method {
            Method::POST => jobs::start(state, id, req).await,
            _ => Err(allow("POST")),
        },
        ["v1", "deals", id, "release"] => match method {
            Method::POST => jobs::release(state, id, req).await,
            _ => Err(allow("POST")),
        },
        ["v1", "deals", id, "logs"] => match method {
            Method::GET => logs::read(state, id, req.uri()).await,
            Method::POST => logs::append(state, id, req).await,
            _ => Err(allow("GET or POST")),
        },
        ["v1", "receipts"] => match method {
            Method::POST => jobs::receipt(state, req).await,
            _ => Err(allow("POST")),
        },
        ["v1", "events"] => match method {
            Method::GET => events::stream(state, req.uri()).await,
            _ => Err(allow("GET")),
        },
        ["v1", "blobs", name] => match method {
            Method::PUT => blobs::put(state, name, req).await,
            Method::GET => blobs::get(state, name, false).await,
            Method::HEAD => blobs::get(state, name, true).await,
            _ => Err(allow("GET, HEAD or PUT")),
        },
        _ => Err(ApiError::not_found(format!(
            "no route {method} {path}; the routes are listed at GET /openapi.json"
        ))),
    }
}

/// One open event stream, counted until dropped.
#[derive(Debug)]
struct StreamGuard(Arc<AtomicUsize>);

impl StreamGuard {
    /// Counts a new stream; `None` when the limit is reached.
    fn open(state: &State) -> Option<Self> {
        let n = state.streams.fetch_add(1, Ordering::Relaxed);
        if n >= state.config.max_event_streams {
            state.streams.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(Self(state.streams.clone()))
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
