//! One deal: start, fetch and verify, run in the sandbox, upload, receipt.
//!
//! Each deal is a `host.deal` span in its job's trace (the market hands the
//! trace context over in the job's `traceparent`), with `host.download`,
//! `host.run`, `host.upload` and `host.receipt` under it (docs/TELEMETRY.md).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use alloy_primitives::B256;
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use netmind_host::{JobLimits, LimitKind, RunOptions, Runtime, SandboxConfig, Termination};
use netmind_market::blob::BlobId;
use netmind_protocol::orders::Signed;
use netmind_protocol::work::{Receipt, Start};
use netmind_protocol::{Bundle, BundleLimits};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};
use serde_json::Value;
use tracing::Instrument;
use tracing::field::Empty;

use super::{Daemon, retry};
use crate::offer::ms_from_now;

/// Most bytes an input archive may unpack to.
const MAX_INPUT: u64 = 4 << 30;

/// Serves one deal made with this host: its job as the trade event brought
/// it, else read from the market.
pub(super) async fn serve_deal(
    d: &Arc<Daemon>,
    deal: B256,
    bid: B256,
    job: Option<Value>,
) -> Result<()> {
    let job = match job {
        Some(job) => job,
        None => {
            let path = format!("/v1/jobs/{bid}");
            retry("read the job", || d.client.get(&path)).await?
        }
    };
    let state = job["state"].as_str().unwrap_or_default();
    let mine = job["deals"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| x["id"].as_str() == Some(&deal.to_string()));
    let deal_state = mine.and_then(|x| x["state"].as_str()).unwrap_or_default();
    if !matches!(state, "matched" | "running" | "verifying")
        || !matches!(deal_state, "assigned" | "running")
    {
        // Decided, cancelled, or already reported (a restart): nothing to do.
        return Ok(());
    }
    let span = tracing::info_span!(
        target: "host::daemon",
        "host.deal",
        job_id = %bid,
        deal = %deal,
        status = Empty
    );
    if let Some(tp) = job["traceparent"].as_str() {
        netmind_market::telemetry::continue_traceparent(&span, tp);
    }
    work(d, deal, &job).instrument(span).await
}

/// The host's instruments (docs/TELEMETRY.md).
struct Metrics {
    /// Replicas run, by receipt `status`.
    jobs: Counter<u64>,
    /// Their wall time, by receipt `status`.
    duration: Histogram<f64>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let meter = opentelemetry::global::meter("netmind-host");
    Metrics {
        jobs: meter
            .u64_counter("netmind.host.jobs")
            .with_description("Replicas this host ran and reported, by receipt status")
            .with_unit("{job}")
            .build(),
        duration: meter
            .f64_histogram("netmind.host.job.duration")
            .with_description("Wall time of the replicas this host ran")
            .with_unit("s")
            .with_boundaries(vec![
                0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
            ])
            .build(),
    }
});

/// Starts the deal, runs it and reports it (inside its `host.deal` span).
async fn work(d: &Arc<Daemon>, deal: B256, job: &Value) -> Result<()> {
    let start = Start {
        host: d.signer.address(),
        deal,
        at: ms_from_now(Duration::ZERO),
    };
    let signed = Signed::sign(start, &d.signer, &d.domain)?;
    d.client
        .post(&format!("/v1/deals/{deal}/start"), &signed)
        .await
        .context("the market refused the start")?;

    let bundle_id = parse_id(&job["bundle"], "bundle")?;
    let input_id = parse_id(&job["input"], "input")?;
    let download = tracing::info_span!(
        target: "host::daemon",
        "host.download",
        bundle = %bundle_id,
        input = %input_id,
        bytes = Empty
    );
    let (bundle_bytes, input) = async {
        let bundle = unpacked(d, bundle_id).await?;
        let input = if input_id == B256::ZERO {
            None
        } else {
            Some(fetch(d, "inputs", input_id).await?)
        };
        let bytes = bundle.size + input.as_ref().map_or(0, Bytes::len);
        tracing::Span::current().record("bytes", bytes);
        anyhow::Ok((bundle, input))
    }
    .instrument(download)
    .await?;
    let replicas = job["replicas"].as_u64().unwrap_or(1);
    let max_seconds = job["max_seconds"].as_u64().unwrap_or(60);
    let work_dir = d.work_dirs.take().context("cannot make a work directory")?;
    let d2 = d.clone();
    let dir = work_dir.path().to_path_buf();
    let run = tracing::info_span!(
        target: "host::daemon",
        "host.run",
        deterministic = replicas > 1,
        max_seconds,
        status = Empty,
        exit = Empty,
        runtime_ms = Empty
    );
    let in_run = run.clone();
    let shipper = super::logs::Shipper::start(d, deal);
    let observer = shipper.observer();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    d.running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(deal, stop.clone());
    let outcome = tokio::task::spawn_blocking(move || {
        let _run = in_run.enter();
        execute(
            &d2,
            &bundle_bytes,
            input.as_deref(),
            &dir,
            replicas > 1,
            max_seconds,
            Watch { stop, observer },
        )
    })
    .await
    .context("the run panicked");
    d.running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&deal);
    let outcome = outcome?;
    if let Ok((report, _)) = &outcome
        && report.termination == Termination::Cancelled
    {
        drop(shipper);
        run.record("status", "cancelled");
        if d.handing_back.load(std::sync::atomic::Ordering::Relaxed) {
            super::owner::hand_back(d, deal).await;
        } else {
            eprintln!("deal {deal}: stopped: its job was cancelled or decided without it");
        }
        return Ok(());
    }
    // The whole log is at the market before the receipt.
    shipper.finish().await;
    let receipt = match outcome {
        Ok((report, archive)) => {
            let upload =
                tracing::info_span!(target: "host::daemon", "host.upload", bytes = archive.len());
            let (output, _) = retry("upload the output", || d.client.put_blob(archive.clone()))
                .instrument(upload)
                .await?;
            let (status, exit) = status(&report.termination);
            Receipt {
                host: d.signer.address(),
                deal,
                output: B256::from(output.0),
                status: status.into(),
                exitCode: exit,
                runtimeMs: report.wall_time.as_millis() as u64,
                fuel: report.fuel_consumed.unwrap_or(0),
                gpuTimeMs: report.gpu.time.as_millis() as u64,
                gpuDispatches: report.gpu.dispatches,
                gpuHash: report
                    .gpu
                    .hash_chain
                    .as_deref()
                    .and_then(|h| h.parse().ok())
                    .unwrap_or_default(),
            }
        }
        Err(e) => {
            eprintln!("deal {deal}: cannot run the job: {e:#}");
            Receipt {
                host: d.signer.address(),
                deal,
                output: B256::ZERO,
                status: "host-error".into(),
                exitCode: 0,
                runtimeMs: 0,
                fuel: 0,
                gpuTimeMs: 0,
                gpuDispatches: 0,
                gpuHash: B256::ZERO,
            }
        }
    };
    let r = &receipt;
    run.record("status", r.status.as_str());
    run.record("exit", r.exitCode);
    run.record("runtime_ms", r.runtimeMs);
    drop(run);
    tracing::Span::current().record("status", r.status.as_str());
    let status = [KeyValue::new("status", r.status.clone())];
    METRICS.jobs.add(1, &status);
    METRICS
        .duration
        .record(r.runtimeMs as f64 / 1000.0, &status);
    let signed = Signed::sign(receipt, &d.signer, &d.domain)?;
    let answer = retry("send the receipt", || {
        d.client.post("/v1/receipts", &signed)
    })
    .instrument(tracing::info_span!(target: "host::daemon", "host.receipt"))
    .await?;
    eprintln!(
        "deal {deal}: {} (job {})",
        signed.order.status,
        answer["state"].as_str().unwrap_or_default()
    );
    Ok(())
}

fn parse_id(v: &serde_json::Value, what: &str) -> Result<B256> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("the job has no {what} id"))
}

/// A bundle, unpacked: from memory (checked against its id when it was
/// put there), else fetched, checked and unpacked (up to [`KEEP_COMPILED`]
/// bundles stay in memory).
async fn unpacked(d: &Arc<Daemon>, id: B256) -> Result<Arc<UnpackedBundle>> {
    if let Some(b) = d.bundles.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
        return Ok(b.clone());
    }
    let bytes = fetch(d, "bundles", id).await?;
    let size = bytes.len();
    let bundle = tokio::task::spawn_blocking(move || {
        Bundle::unpack(&bytes, &BundleLimits::default()).context("the bundle is not valid")
    })
    .await
    .context("unpacking panicked")??;
    let b = Arc::new(UnpackedBundle { bundle, size, id });
    let mut bundles = d.bundles.lock().unwrap_or_else(|e| e.into_inner());
    if bundles.len() >= KEEP_COMPILED {
        bundles.clear();
    }
    bundles.insert(id, b.clone());
    Ok(b)
}

/// A bundle as it runs, and its packed size.
pub(crate) struct UnpackedBundle {
    pub(crate) bundle: Bundle,
    pub(crate) size: usize,
    pub(crate) id: B256,
}

/// A blob from the cache under `data/kind`, else from the market; checked
/// against its name either way.
async fn fetch(d: &Daemon, kind: &str, id: B256) -> Result<Bytes> {
    let path = d.data.join(kind).join(id.to_string());
    if let Ok(bytes) = std::fs::read(&path)
        && BlobId::of(&bytes).0 == id.0
    {
        return Ok(Bytes::from(bytes));
    }
    let name = BlobId(id.0);
    let blob = retry("download a blob", || d.client.get_blob(&name)).await?;
    let Some(bytes) = blob else {
        bail!("the market has no {kind} blob {id}");
    };
    std::fs::create_dir_all(path.parent().expect("under data"))?;
    std::fs::write(&path, &bytes).with_context(|| format!("cannot cache {}", path.display()))?;
    Ok(bytes)
}

/// What follows a run from outside: its stop flag and where its output goes.
struct Watch {
    stop: Arc<std::sync::atomic::AtomicBool>,
    observer: Arc<dyn netmind_host::RunObserver>,
}

/// Runs the bundle in the sandbox; returns the report and the output archive.
fn execute(
    d: &Daemon,
    unpacked: &UnpackedBundle,
    input: Option<&[u8]>,
    dir: &std::path::Path,
    deterministic: bool,
    max_seconds: u64,
    watch: Watch,
) -> Result<(netmind_host::RunReport, Bytes)> {
    let bundle = &unpacked.bundle;
    let mut limits = JobLimits::from_resources(&bundle.manifest.resources);
    limits.wall_time = limits
        .wall_time
        .min(Duration::from_secs(max_seconds.max(1)));
    d.gpu_args.apply(&mut limits.gpu);
    let input_dir = match input {
        Some(bytes) => {
            let dir = dir.join("input");
            crate::tarball::unpack(bytes, &dir, MAX_INPUT).context("the input archive")?;
            Some(dir)
        }
        None => None,
    };
    let assets_dir = if bundle.assets.is_empty() {
        None
    } else {
        let assets = dir.join("assets");
        for (rel, data) in &bundle.assets {
            let dest = assets.join(rel);
            std::fs::create_dir_all(dest.parent().expect("under assets"))?;
            std::fs::write(&dest, data)?;
        }
        Some(assets)
    };
    // Made empty by `WorkDirs::take`.
    let output_dir = dir.join("output");
    let loaded = compiled(
        d,
        deterministic,
        limits.fuel.is_some(),
        unpacked.id,
        &bundle.component,
    )?;
    let mut args = vec![bundle.manifest.job.name.clone()];
    args.extend(bundle.manifest.job.args.iter().cloned());
    let env = bundle
        .manifest
        .job
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let report = loaded.run(&RunOptions {
        args,
        env,
        stdin: None,
        input_dir,
        assets_dir,
        output_dir: output_dir.clone(),
        limits,
        seed: 0,
        observer: Some(watch.observer),
        cancel: Some(watch.stop),
        pause: Some(d.paused.clone()),
    })?;
    let archive = crate::tarball::pack(&output_dir)?;
    Ok((report, Bytes::from(archive)))
}

/// The sandbox for `(deterministic, fuel)` runs, built once, and the
/// component compiled for it, kept in memory (up to [`KEEP_COMPILED`]
/// components; on disk under `data/components` beyond that).
fn compiled(
    d: &Daemon,
    deterministic: bool,
    fuel: bool,
    bundle_id: B256,
    wasm: &[u8],
) -> Result<Arc<netmind_host::Job>> {
    let key = (deterministic, fuel);
    let runtime = {
        let mut runtimes = d.runtimes.lock().unwrap_or_else(|e| e.into_inner());
        match runtimes.get(&key) {
            Some(r) => r.clone(),
            None => {
                let r = Arc::new(Runtime::with_nn(
                    SandboxConfig {
                        deterministic,
                        fuel,
                        cache_dir: Some(d.data.join("components")),
                        pooled_jobs: d.settings.slots.max(1),
                        gpu: d.gpu.clone(),
                        ..SandboxConfig::default()
                    },
                    d.nn.clone(),
                )?);
                runtimes.insert(key, r.clone());
                r
            }
        }
    };
    let hash = bundle_id.0;
    if let Some(job) = d
        .components
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(key, hash))
    {
        return Ok(job.clone());
    }
    let job = Arc::new(runtime.load(wasm)?);
    let mut components = d.components.lock().unwrap_or_else(|e| e.into_inner());
    if components.len() >= KEEP_COMPILED {
        components.clear();
    }
    components.insert((key, hash), job.clone());
    Ok(job)
}

/// Components kept compiled in memory.
const KEEP_COMPILED: usize = 32;

/// The receipt's status and exit code for how a run ended.
fn status(t: &Termination) -> (&'static str, i32) {
    match t {
        Termination::Exited(c) => ("exited", *c),
        Termination::Trapped { .. } => ("trapped", 0),
        Termination::LimitExceeded(l) => (
            match l {
                LimitKind::WallTime(_) => "timeout",
                LimitKind::CpuTime(_) => "cpu-time",
                LimitKind::Memory(_) | LimitKind::Tables(_) | LimitKind::Stack(_) => "memory",
                LimitKind::Fuel(_) => "fuel",
                LimitKind::OutputBytes(_) | LimitKind::OutputFiles(_) => "output-limit",
                _ => "limit",
            },
            0,
        ),
        Termination::InvalidOutput(_) => ("invalid-output", 0),
        _ => ("host-error", 0),
    }
}
