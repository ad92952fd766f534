//! OpenTelemetry end to end: a market and a host daemon (separate
//! processes on 127.0.0.1) and `netmind job submit --wait` export to an
//! OTLP/HTTP receiver run by this test. One job's spans from all three
//! services share one trace id, linked parent to child across processes
//! (W3C trace context over HTTP, and the job's `traceparent` to the host);
//! the market's and the host's metrics arrive too.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::{keystore, stderr, stdout};

/// A span as the receiver got it.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace: Vec<u8>,
    id: Vec<u8>,
    parent: Vec<u8>,
}

/// Everything the receiver got: spans, and `(service, metric name)`.
#[derive(Debug, Default)]
struct Received {
    spans: Vec<Span>,
    metrics: Vec<(String, String)>,
}

fn service(resource: Option<Resource>) -> String {
    resource
        .into_iter()
        .flat_map(|r| r.attributes)
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| kv.value?.value)
        .map(|v| match v {
            Any::StringValue(s) => s,
            other => format!("{other:?}"),
        })
        .unwrap_or_default()
}

fn record(got: &Mutex<Received>, path: &str, body: &[u8]) {
    let mut got = got.lock().unwrap();
    match path {
        "/v1/traces" => {
            let req = ExportTraceServiceRequest::decode(body).expect("OTLP traces protobuf");
            for rs in req.resource_spans {
                let service = service(rs.resource);
                for s in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                    got.spans.push(Span {
                        service: service.clone(),
                        name: s.name,
                        trace: s.trace_id,
                        id: s.span_id,
                        parent: s.parent_span_id,
                    });
                }
            }
        }
        "/v1/metrics" => {
            let req = ExportMetricsServiceRequest::decode(body).expect("OTLP metrics protobuf");
            for rm in req.resource_metrics {
                let service = service(rm.resource);
                for m in rm.scope_metrics.into_iter().flat_map(|s| s.metrics) {
                    got.metrics.push((service.clone(), m.name));
                }
            }
        }
        other => panic!("unexpected OTLP path {other}"),
    }
}

/// An OTLP/HTTP (protobuf) receiver on 127.0.0.1: its URL and what it got.
fn receiver(rt: &tokio::runtime::Runtime) -> (String, Arc<Mutex<Received>>) {
    let got = Arc::new(Mutex::new(Received::default()));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let all = got.clone();
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let got = all.clone();
            let service = hyper::service::service_fn(move |req: http::Request<_>| {
                let got = got.clone();
                async move {
                    let path = req.uri().path().to_owned();
                    let body: hyper::body::Incoming = req.into_body();
                    let body = body.collect().await?.to_bytes();
                    record(&got, &path, &body);
                    let mut answer = http::Response::new(Full::new(Bytes::new()));
                    answer.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/x-protobuf"),
                    );
                    Ok::<_, hyper::Error>(answer)
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    (url, got)
}

/// A `netmind` process exporting to `otlp`, stopped with SIGTERM when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn netmind(otlp: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_netmind"));
    c.args(args)
        .current_dir(repo())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)
        // Export soon: spans every 100 ms, metrics every 300 ms.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "300")
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("OTEL_TRACES_EXPORTER")
        .env_remove("OTEL_METRICS_EXPORTER")
        .env_remove("NETMIND_OTEL_FILTER")
        .env_remove("NETMIND_KEY_PASSWORD");
    c
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The one span named `name` from `service` in `trace`.
fn one<'a>(spans: &'a [Span], service: &str, name: &str, trace: &[u8]) -> &'a Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|s| s.service == service && s.name == name && s.trace == trace)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {name} from {service} in the job's trace: {spans:#?}"
    );
    found[0]
}

/// The market's request span that `child` (a market span) runs in, and
/// that request's parent: the span of the process that sent it.
fn request_of<'a>(spans: &'a [Span], child: &Span) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == "market.request" && s.id == child.parent && s.trace == child.trace)
        .unwrap_or_else(|| panic!("{} runs in a market.request: {spans:#?}", child.name))
}

#[test]
fn a_jobs_spans_from_cli_market_and_host_arrive_as_one_trace_and_metrics_too() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (otlp, got) = receiver(&rt);
    let data = tempfile::tempdir().unwrap();

    let mut market = netmind(
        &otlp,
        &["market", "serve", "--listen", "127.0.0.1:0", "--data"],
    )
    .arg(data.path().join("market"))
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(market.stdout.take().unwrap()).lines();
    let market_proc = Proc(market);
    let url = lines.next().unwrap().unwrap().trim().to_owned();
    assert!(url.starts_with("http://"), "{url}");

    let host_keys = data.path().join("host");
    let owner_keys = data.path().join("owner");
    std::fs::create_dir_all(&host_keys).unwrap();
    std::fs::create_dir_all(&owner_keys).unwrap();
    let (host_ks, host_pw, _) = keystore(&host_keys);
    let (owner_ks, owner_pw, _) = keystore(&owner_keys);
    let host = netmind(
        &otlp,
        &["host", "run", "--no-idle", "--market", &url, "--keystore"],
    )
    .arg(&host_ks)
    .arg("--password-file")
    .arg(&host_pw)
    .arg("--data")
    .arg(data.path().join("host-data"))
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::inherit())
    .spawn()
    .unwrap();
    let host_proc = Proc(host);

    // The host's offer is in the book.
    let client = netmind_market::client::MarketClient::new(&url).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let hosts = rt.block_on(client.get("/v1/hosts")).unwrap();
        let free = hosts["hosts"]
            .as_array()
            .is_some_and(|h| h.iter().any(|h| h["slots_free"].as_u64().unwrap_or(0) > 0));
        if free {
            break;
        }
        assert!(Instant::now() < deadline, "the host came online: {hosts}");
        std::thread::sleep(Duration::from_millis(50));
    }

    let submitted = Instant::now();
    let o = netmind(
        &otlp,
        &[
            "job",
            "submit",
            "samples/hello",
            "--input",
            "samples/hello",
            "--max-price",
            "1000",
            "--wait",
            "--market",
            &url,
            "--keystore",
        ],
    )
    .arg(&owner_ks)
    .arg("--password-file")
    .arg(&owner_pw)
    .output()
    .unwrap();
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let job_id = stdout(&o).trim().to_owned();
    eprintln!("job {job_id} done in {:?}", submitted.elapsed());

    // Everything arrives within a few export intervals.
    let wanted_metrics = [
        ("netmind-market", "netmind.market.orders"),
        ("netmind-market", "netmind.market.deals"),
        ("netmind-market", "netmind.market.jobs"),
        ("netmind-host", "netmind.host.jobs"),
        ("netmind-host", "netmind.host.job.duration"),
    ];
    let wanted_spans = [
        ("netmind-cli", "job.submit"),
        ("netmind-market", "market.order"),
        ("netmind-market", "market.match"),
        ("netmind-market", "market.verify"),
        ("netmind-host", "host.deal"),
        ("netmind-host", "host.download"),
        ("netmind-host", "host.run"),
        ("netmind-host", "host.upload"),
        ("netmind-host", "host.receipt"),
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    let (spans, metrics) = loop {
        let (spans, metrics) = {
            let g = got.lock().unwrap();
            (g.spans.clone(), g.metrics.clone())
        };
        let all_spans = wanted_spans
            .iter()
            .all(|(svc, n)| spans.iter().any(|s| s.service == *svc && s.name == *n));
        let all_metrics = wanted_metrics
            .iter()
            .all(|(svc, n)| metrics.iter().any(|(s, m)| s == svc && m == n));
        if (all_spans && all_metrics) || Instant::now() > deadline {
            break (spans, metrics);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(host_proc);
    drop(market_proc);

    for (svc, n) in wanted_metrics {
        assert!(
            metrics.iter().any(|(s, m)| s == svc && m == n),
            "metric {n} from {svc}; got {metrics:?}"
        );
    }
    // One job, one trace: its root is the CLI's job.submit.
    let submits: Vec<&Span> = spans.iter().filter(|s| s.name == "job.submit").collect();
    assert_eq!(submits.len(), 1, "{spans:#?}");
    let submit = submits[0];
    assert_eq!(submit.service, "netmind-cli");
    assert!(
        submit.parent.is_empty(),
        "job.submit is the root: {submit:?}"
    );
    let trace = submit.trace.clone();
    assert_eq!(trace.len(), 16);
    for (svc, n) in wanted_spans {
        one(&spans, svc, n, &trace);
    }

    // CLI → market: the bid's request is a child of job.submit.
    let order = one(&spans, "netmind-market", "market.order", &trace);
    let post_bid = request_of(&spans, order);
    assert_eq!(post_bid.parent, submit.id, "POST /v1/bids under job.submit");
    let matched = one(&spans, "netmind-market", "market.match", &trace);
    assert_eq!(matched.parent, order.id);
    // Market → host: the deal continues from the job's market.order.
    let deal = one(&spans, "netmind-host", "host.deal", &trace);
    assert_eq!(deal.parent, order.id, "host.deal under market.order");
    for n in ["host.download", "host.run", "host.upload", "host.receipt"] {
        assert_eq!(
            one(&spans, "netmind-host", n, &trace).parent,
            deal.id,
            "{n}"
        );
    }
    // Host → market: the receipt's request is a child of host.receipt,
    // and the verdict (market.verify) runs in it.
    let verify = one(&spans, "netmind-market", "market.verify", &trace);
    let receipt = one(&spans, "netmind-host", "host.receipt", &trace);
    assert_eq!(request_of(&spans, verify).parent, receipt.id);
    // The blobs were fetched and uploaded within the trace as well.
    let download = one(&spans, "netmind-host", "host.download", &trace);
    assert!(
        spans
            .iter()
            .any(|s| s.name == "market.request" && s.parent == download.id),
        "the bundle download reached the market in the trace"
    );
}
