//! OpenTelemetry in the market and its client (docs/TELEMETRY.md): W3C
//! trace context carried over HTTP, and the market's metrics.
//!
//! A binary that installs an OpenTelemetry layer and exporter calls
//! [`enable`]; until then every function here returns at once, so a market
//! without an OTLP endpoint pays nothing beyond `tracing` itself. Context is
//! injected and extracted through the global text-map propagator (the binary
//! sets W3C trace context), and metrics go to the global meter provider.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use opentelemetry::KeyValue;
use opentelemetry::metrics::Counter;
use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns propagation and metrics on (called once the binary has installed
/// its exporters and the W3C propagator).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether [`enable`] was called.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

struct Headers<'a>(&'a mut HeaderMap);

impl Injector for Headers<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

struct ReadHeaders<'a>(&'a HeaderMap);

impl Extractor for ReadHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Adds `traceparent` (and `tracestate`) for the current span to `headers`.
pub fn inject(headers: &mut HeaderMap) {
    if !enabled() {
        return;
    }
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut Headers(headers))
    });
}

/// Makes `span` (not yet entered) a child of the trace context in `headers`,
/// when they carry one.
pub fn continue_from(span: &tracing::Span, headers: &HeaderMap) {
    if !enabled() || !headers.contains_key("traceparent") {
        return;
    }
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&ReadHeaders(headers)));
    let _ = span.set_parent(cx);
}

/// The W3C `traceparent` naming `span`, to hand its context to another
/// process in a message rather than a header.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if !enabled() {
        return None;
    }
    let cx = span.context();
    let mut carrier: HashMap<String, String> = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    carrier.remove("traceparent")
}

/// Makes `span` (not yet entered) a child of the span a
/// [`traceparent`] names.
pub fn continue_traceparent(span: &tracing::Span, traceparent: &str) {
    if !enabled() {
        return;
    }
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    let _ = span.set_parent(cx);
}

/// The market's instruments (created on first use, after [`enable`]).
pub(crate) struct Metrics {
    /// Offers and bids accepted into the book, by `kind`.
    pub(crate) orders: Counter<u64>,
    /// Deals made, by `class`.
    pub(crate) deals: Counter<u64>,
    /// Jobs that reached a final state, by `state`.
    pub(crate) jobs: Counter<u64>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let meter = opentelemetry::global::meter("netmind-market");
    Metrics {
        orders: meter
            .u64_counter("netmind.market.orders")
            .with_description("Offers and bids accepted into the book")
            .with_unit("{order}")
            .build(),
        deals: meter
            .u64_counter("netmind.market.deals")
            .with_description("Deals made (one per replica placed on a host)")
            .with_unit("{deal}")
            .build(),
        jobs: meter
            .u64_counter("netmind.market.jobs")
            .with_description("Jobs that reached a final state (done, failed, cancelled, expired)")
            .with_unit("{job}")
            .build(),
    }
});

/// The instruments, when metrics are on.
pub(crate) fn metrics() -> Option<&'static Metrics> {
    enabled().then(|| &*METRICS)
}

/// Counts an accepted order and the deals it made.
pub(crate) fn count_order(kind: &'static str, class: &str, deals: usize) {
    if let Some(m) = metrics() {
        m.orders.add(1, &[KeyValue::new("kind", kind)]);
        if deals > 0 {
            m.deals
                .add(deals as u64, &[KeyValue::new("class", class.to_owned())]);
        }
    }
}

/// Counts jobs as they reach a final state (`netmind.market.jobs`), from
/// the sequencer's change feed, while the market runs.
pub(crate) async fn count_finished_jobs(
    state: std::sync::Weak<crate::api::State>,
    mut changes: tokio::sync::broadcast::Receiver<Vec<alloy_primitives::B256>>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let Some(m) = metrics() else {
        return;
    };
    let mut counted = std::collections::HashSet::new();
    loop {
        let ids = match changes.recv().await {
            Ok(ids) => ids,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        let Some(state) = state.upgrade() else {
            return;
        };
        let jobs = state
            .sequencer()
            .jobs()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for id in ids {
            if let Some(job) = jobs.job(&id)
                && job.state.finished()
                && counted.insert(id)
            {
                m.jobs.add(1, &[KeyValue::new("state", job.state.name())]);
            }
        }
        // A finished job changes no more; forget old ids now and then.
        if counted.len() > crate::jobs::KEEP_FINISHED {
            counted.clear();
        }
    }
}
