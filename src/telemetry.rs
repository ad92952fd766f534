//! Logs, and OpenTelemetry traces and metrics, for the `netmind` commands
//! (docs/TELEMETRY.md).
//!
//! Logs always go to stderr (`--log` / `NETMIND_LOG`, `--log-json`). The
//! market, host, devnet and job commands also export traces (batched) and
//! metrics (a periodic reader) over OTLP/HTTP (protobuf) when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or a signal's own endpoint variable) is
//! set, with the standard `OTEL_*` settings; without it the subscriber is
//! exactly the plain log one. What is buffered is exported when the
//! [`Telemetry`] guard drops (the end of the command, or after SIGTERM) or
//! on [`shutdown`].

mod http;

use std::sync::Mutex;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithHttpConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Which spans go to OpenTelemetry unless `NETMIND_OTEL_FILTER` says:
/// NetMind's lifecycle spans, and the market's per-request spans.
const DEFAULT_OTEL_FILTER: &str = "info,market::api=debug";

/// The providers that export, kept for [`shutdown`].
#[derive(Debug)]
struct Providers {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

static ACTIVE: Mutex<Option<Providers>> = Mutex::new(None);

/// Exports what is buffered when dropped.
#[must_use = "dropping the guard shuts the exporters down"]
#[derive(Debug)]
pub(crate) struct Telemetry(());

impl Drop for Telemetry {
    fn drop(&mut self) {
        shutdown();
    }
}

/// Installs the subscriber: the stderr log layer filtered by `filter`, and,
/// for a `service` (`netmind-market`, `netmind-host`, `netmind-cli`) when an
/// OTLP endpoint is configured, the OpenTelemetry layer and exporters.
pub(crate) fn init(filter: &str, json: bool, service: Option<&'static str>) -> Telemetry {
    let log_filter = || EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("warn"));
    let providers = service.filter(|_| configured()).and_then(|s| {
        providers(s)
            .inspect_err(|e| eprintln!("warning: OpenTelemetry is off: {e}"))
            .ok()
    });
    let Some(providers) = providers else {
        let builder = tracing_subscriber::fmt()
            .with_env_filter(log_filter())
            .with_writer(std::io::stderr);
        if json {
            builder.json().init();
        } else {
            builder.init();
        }
        return Telemetry(());
    };
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = if json {
        logs.json().boxed()
    } else {
        logs.boxed()
    };
    let otel_filter = std::env::var("NETMIND_OTEL_FILTER")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_OTEL_FILTER));
    let spans = providers.tracer.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("netmind"))
            .with_threads(false)
            .with_filter(otel_filter)
    });
    tracing_subscriber::registry()
        .with(logs.with_filter(log_filter()))
        .with(spans)
        .init();
    if let Some(meter) = &providers.meter {
        opentelemetry::global::set_meter_provider(meter.clone());
    }
    if providers.tracer.is_some() {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
    }
    netmind_market::telemetry::enable();
    *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(providers);
    Telemetry(())
}

/// Exports what is buffered and stops the exporters (again: nothing).
pub(crate) fn shutdown() {
    let Some(p) = ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    if let Some(t) = p.tracer
        && let Err(e) = t.shutdown()
    {
        eprintln!("warning: cannot export the last spans: {e}");
    }
    if let Some(m) = p.meter
        && let Err(e) = m.shutdown()
    {
        eprintln!("warning: cannot export the last metrics: {e}");
    }
}

fn set(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty())
}

/// `OTEL_TRACES_EXPORTER=none` and the like turn one signal off.
fn off(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v.trim().eq_ignore_ascii_case("none"))
}

fn traces_configured() -> bool {
    (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        && !off("OTEL_TRACES_EXPORTER")
}

fn metrics_configured() -> bool {
    (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
        && !off("OTEL_METRICS_EXPORTER")
}

/// Whether an endpoint is set and the SDK is not disabled.
fn configured() -> bool {
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled && (traces_configured() || metrics_configured())
}

/// The exporters for `service`, as the `OTEL_*` environment configures them.
fn providers(service: &'static str) -> Result<Providers, String> {
    let mut resource = Resource::builder();
    if !set("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name(service);
    }
    let resource = resource.build();
    let timeout = std::env::var("OTEL_EXPORTER_OTLP_TIMEOUT")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis);
    let client =
        http::OtlpHttp::start(timeout).map_err(|e| format!("cannot start its client: {e}"))?;
    let tracer = if traces_configured() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client.clone())
            .build()
            .map_err(|e| format!("cannot build the span exporter: {e}"))?;
        Some(
            SdkTracerProvider::builder()
                .with_resource(resource.clone())
                .with_batch_exporter(exporter)
                .build(),
        )
    } else {
        None
    };
    let meter = if metrics_configured() {
        let exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_http_client(client)
            .build()
            .map_err(|e| format!("cannot build the metric exporter: {e}"))?;
        Some(
            SdkMeterProvider::builder()
                .with_resource(resource)
                .with_periodic_exporter(exporter)
                .build(),
        )
    } else {
        None
    };
    Ok(Providers { tracer, meter })
}
