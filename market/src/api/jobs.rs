//! Jobs and hosts (docs/design/jobs-api.md): `GET /v1/jobs`,
//! `GET /v1/jobs/{id}`, `GET /v1/hosts`, and what hosts sign about their
//! work: `POST /v1/deals/{id}/start`, `POST /v1/receipts`.

use alloy_primitives::{Address, B256};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use netmind_protocol::orders::{Order, Signed};
use netmind_protocol::work::{Receipt, Release, Start};
use tracing::Instrument;

use super::State;
use super::error::{ApiError, Kind};
use super::orders::{now_ms, order_id};
use super::wire::{self, Body};
use crate::blob::BlobId;
use crate::jobs::{Job, JobState, WorkError};
use crate::journal::Work;

/// A job as the API shows it: per-replica outputs stay hidden until the job
/// is decided, so no one copies a result before it is verified.
pub(super) fn view(job: &Job) -> serde_json::Value {
    let mut v = serde_json::to_value(job).unwrap_or_default();
    if !job.state.finished()
        && let Some(deals) = v.get_mut("deals").and_then(|d| d.as_array_mut())
    {
        for d in deals {
            if let Some(o) = d.as_object_mut() {
                o.remove("output");
            }
        }
    }
    v
}

pub(super) fn list(state: &State, uri: &http::Uri) -> Result<Response<Body>, ApiError> {
    let q = wire::query(uri);
    let owner = match q.get("owner") {
        Some(o) => Some(o.parse::<Address>().map_err(|_| {
            ApiError::malformed(format!(
                "`owner` must be an address (0x and 40 hex digits), got `{}`",
                o.chars().take(60).collect::<String>()
            ))
        })?),
        None => None,
    };
    const STATES: [JobState; 8] = [
        JobState::Queued,
        JobState::Matched,
        JobState::Running,
        JobState::Verifying,
        JobState::Done,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Expired,
    ];
    let wanted = q.get("state").map(String::as_str);
    if let Some(s) = wanted
        && !STATES.iter().any(|k| k.name() == s)
    {
        let names: Vec<&str> = STATES.iter().map(|k| k.name()).collect();
        return Err(ApiError::malformed(format!(
            "unknown job state `{}`: one of {}",
            s.chars().take(40).collect::<String>(),
            names.join(", ")
        )));
    }
    let limit = wire::param_u64(&q, "limit", 100)?.clamp(1, 1000) as usize;
    let jobs = state
        .sequencer()
        .jobs()
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let list: Vec<serde_json::Value> = jobs
        .list(owner, wanted, limit)
        .into_iter()
        .map(view)
        .collect();
    Ok(wire::json(
        StatusCode::OK,
        &serde_json::json!({ "jobs": list }),
    ))
}

pub(super) fn get(state: &State, id: &str) -> Result<Response<Body>, ApiError> {
    let id = order_id(id).map_err(ApiError::in_path)?;
    let jobs = state
        .sequencer()
        .jobs()
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    match jobs.job(&id) {
        Some(job) => Ok(wire::json(StatusCode::OK, &view(job))),
        None => Err(ApiError::not_found(format!(
            "no job {id}: a job's id is its job order's id (what `netmind job submit` printed)"
        ))),
    }
}

pub(super) fn hosts(state: &State) -> Response<Body> {
    let jobs = state
        .sequencer()
        .jobs()
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    wire::json(
        StatusCode::OK,
        &serde_json::json!({ "hosts": jobs.hosts(now_ms()) }),
    )
}

pub(super) fn work_error(e: &WorkError) -> ApiError {
    let kind = match e {
        WorkError::UnknownDeal(_) | WorkError::UnknownJob(_) => Kind::NotFound,
        WorkError::NotYours { .. } | WorkError::NotOwner { .. } => Kind::NotMaker,
        WorkError::Closed { .. } | WorkError::Finished { .. } => Kind::Duplicate,
    };
    ApiError::new(kind, e.to_string())
}

pub(super) fn signed_by_host<T: Order>(state: &State, signed: &Signed<T>) -> Result<(), ApiError> {
    crate::orders::verify(signed, &state.domain)
        .map(|_| ())
        .map_err(|e| {
            ApiError::new(
                Kind::BadSignature,
                format!(
                    "invalid {} signature: {e}; sign its EIP-712 hash with the host's key under \
                 this market's domain (GET /v1/info)",
                    T::KIND
                ),
            )
        })
}

/// Stores `work` and applies it; answers the job as it now is.
async fn record(
    state: &State,
    work: Work,
    check: impl Fn(&mut crate::jobs::Jobs) -> Result<(), WorkError>,
) -> Result<Response<Body>, ApiError> {
    {
        let mut jobs = state
            .sequencer()
            .jobs()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        check(&mut jobs).map_err(|e| work_error(&e))?;
    }
    let at = now_ms();
    state
        .journal()
        .append_work(&work, at)
        .await
        .map_err(|e| ApiError::internal("store the host's report", &e))?;
    let mut jobs = state
        .sequencer()
        .jobs()
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // Checked above; a concurrent report for the same deal may have won.
    work.apply(&mut jobs, at).map_err(|e| work_error(&e))?;
    let _ = state.sequencer().job_changes().send(jobs.take_changed());
    // Readers following a deal's log learn that it may be complete.
    state.logs.wake();
    let deal = match &work {
        Work::Start(s) => s.order.deal,
        Work::Receipt(r) => r.order.deal,
        Work::Lapse { deal, .. } => *deal,
        Work::Release { signed, .. } => signed.order.deal,
        Work::Extra { job, .. } | Work::Cancel { job, .. } => *job,
    };
    let job = jobs
        .job_of_deal(&deal)
        .or_else(|| jobs.job(&deal))
        .map(view)
        .unwrap_or_default();
    Ok(wire::json(StatusCode::OK, &job))
}

/// The body of a host's `POST /v1/deals/{id}/...`: parsed, for the deal
/// in the path, and signed by the host it names.
pub(super) async fn signed_for_deal<T: Order + serde::de::DeserializeOwned>(
    state: &State,
    deal: &str,
    req: Request<Incoming>,
    deal_of: fn(&T) -> B256,
) -> Result<Signed<T>, ApiError> {
    let deal = order_id(deal).map_err(ApiError::in_path)?;
    let bytes = wire::read_body(req, state.config.max_body).await?;
    let signed: Signed<T> = wire::parse_json(&bytes, &format!("signed {}", T::KIND))?;
    if deal_of(&signed.order) != deal {
        return Err(ApiError::invalid(format!(
            "the {} names deal {} but was posted for deal {deal}",
            T::KIND,
            deal_of(&signed.order)
        )));
    }
    signed_by_host(state, &signed)?;
    Ok(signed)
}

pub(super) async fn start(
    state: &State,
    deal: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let signed: Signed<Start> = signed_for_deal(state, deal, req, |o: &Start| o.deal).await?;
    let start = signed.order.clone();
    record(state, Work::Start(signed), move |jobs| {
        jobs.check_start(&start)
    })
    .await
}

/// `POST /v1/deals/{id}/release`: the host hands a deal back unfinished
/// (its owner needs the machine); the replica goes to another host at once,
/// as after a lapse.
pub(super) async fn release(
    state: &State,
    deal: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let signed: Signed<Release> = signed_for_deal(state, deal, req, |o: &Release| o.deal).await?;
    let (job, retry) = state
        .sequencer()
        .jobs()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .release_bid(&signed.order, now_ms())
        .map_err(|e| work_error(&e))?;
    let order = signed.order.clone();
    let answer = record(
        state,
        Work::Release {
            signed,
            job,
            retry: retry.id,
        },
        move |jobs| jobs.release(&order),
    )
    .await?;
    if let Err(e) = state
        .sequencer()
        .submit(crate::engine::Command::Bid(retry))
        .await
    {
        tracing::error!(target: "market::jobs", error = %e, "cannot place a released replica again");
    }
    Ok(answer)
}

pub(super) async fn receipt(
    state: &State,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let bytes = wire::read_body(req, state.config.max_body).await?;
    let signed: Signed<Receipt> = wire::parse_json(&bytes, "signed receipt")?;
    signed_by_host(state, &signed)?;
    let r = signed.order.clone();
    if r.output != B256::ZERO {
        let stored = state
            .blobs
            .size(&BlobId(r.output.0))
            .map_err(|e| ApiError::internal("read the blob store", &e))?;
        if stored.is_none() {
            return Err(ApiError::invalid(format!(
                "the receipt names output {} but no blob has that id: upload the output \
                 (PUT /v1/blobs/{{sha256}}) before the receipt",
                r.output
            )));
        }
    }
    let (deal, host) = (r.deal, r.host);
    // The receipt is counted and the job decided by majority (docs/TELEMETRY.md).
    let span = tracing::info_span!(
        target: "market::jobs",
        "market.verify",
        deal = %deal,
        host = %host,
        job_id = tracing::field::Empty,
        state = tracing::field::Empty
    );
    let answer = record(state, Work::Receipt(signed), move |jobs| {
        jobs.check_receipt(&r)
    })
    .instrument(span.clone())
    .await;
    // Replicas without a majority go to one more host now, not at the next tick.
    place_extras(state, now_ms()).await;
    if !span.is_disabled() {
        let jobs = state
            .sequencer()
            .jobs()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(job) = jobs.job_of_deal(&deal) {
            span.record("job_id", tracing::field::display(job.id));
            span.record("state", job.state.name());
        }
    }
    answer
}

/// Lapses the deals whose lease ran out at `now` and places their replicas
/// again (see [`crate::jobs::START_WITHIN`]); returns how many lapsed.
pub(crate) async fn lapse_due(state: &State, now: crate::engine::Time) -> usize {
    let due = state
        .sequencer()
        .jobs()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .due_leases(
            now,
            state.config.lease_start_ms,
            state.config.lease_grace_ms,
        );
    let mut done = 0;
    for l in due {
        let work = Work::Lapse {
            job: l.job,
            deal: l.deal,
            host: l.host,
            retry: l.retry.id,
        };
        if let Err(e) = state.journal().append_work(&work, now).await {
            tracing::error!(target: "market::jobs", error = %e, "cannot store a lapse; retrying later");
            break;
        }
        {
            let mut jobs = state
                .sequencer()
                .jobs()
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if work.apply(&mut jobs, now).is_err() {
                continue;
            }
            let _ = state.sequencer().job_changes().send(jobs.take_changed());
        }
        state.logs.wake();
        tracing::info!(target: "market::jobs", deal = %l.deal, host = %l.host, "lease ran out; placing the replica again");
        if let Err(e) = state
            .sequencer()
            .submit(crate::engine::Command::Bid(l.retry))
            .await
        {
            tracing::error!(target: "market::jobs", error = %e, "cannot place a lapsed replica again");
        }
        done += 1;
    }
    done
}

/// A signed cancel (already verified) of a job that has deals: the bid is
/// no longer (only) in the book, so the engine alone cannot cancel it. The
/// cancel is stored in the work log, the job and its unreported replicas
/// become `cancelled` (hosts following the event stream stop them), and
/// what is left of the bid and of the bids placed for it leaves the book.
/// `None` when `id` is no such job: the caller cancels an order.
pub(super) async fn cancel_job(
    state: &State,
    id: B256,
    by: alloy_primitives::Address,
) -> Result<Option<Response<Body>>, ApiError> {
    let placed = {
        let jobs = state
            .sequencer()
            .jobs()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match jobs.job(&id) {
            Some(job) if job.id == id && !job.deals.is_empty() => jobs.placed_for(&id),
            _ => return Ok(None),
        }
    };
    let answer = record(state, Work::Cancel { job: id, by }, |jobs| {
        jobs.check_cancel(&id, by)
    })
    .await?;
    for bid in std::iter::once(id).chain(placed) {
        // Already matched in full, or gone: nothing of it rests in the book.
        let _ = state
            .sequencer()
            .submit(crate::engine::Command::Cancel { id: bid, by })
            .await;
    }
    Ok(Some(answer))
}

/// Places one more replica of each job whose replicas all reported without
/// a majority (see [`crate::jobs::Jobs::due_extras`]); returns how many.
pub(crate) async fn place_extras(state: &State, now: crate::engine::Time) -> usize {
    let due = state
        .sequencer()
        .jobs()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .due_extras(now);
    let mut done = 0;
    for x in due {
        let work = Work::Extra {
            job: x.job,
            retry: x.retry.id,
        };
        if let Err(e) = state.journal().append_work(&work, now).await {
            tracing::error!(target: "market::jobs", error = %e, "cannot store an extra replica; retrying later");
            break;
        }
        {
            let mut jobs = state
                .sequencer()
                .jobs()
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            // Another caller placed it first.
            if work.apply(&mut jobs, now).is_err() {
                continue;
            }
            let _ = state.sequencer().job_changes().send(jobs.take_changed());
        }
        tracing::info!(target: "market::jobs", job = %x.job, "no majority yet; placing one more replica");
        if let Err(e) = state
            .sequencer()
            .submit(crate::engine::Command::Bid(x.retry))
            .await
        {
            tracing::error!(target: "market::jobs", error = %e, "cannot place an extra replica");
        }
        done += 1;
    }
    done
}

/// Checks leases once a second while the state is alive.
pub(crate) async fn keep_leases(state: std::sync::Weak<State>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        let Some(state) = state.upgrade() else {
            return;
        };
        lapse_due(&state, now_ms()).await;
        place_extras(&state, now_ms()).await;
    }
}
