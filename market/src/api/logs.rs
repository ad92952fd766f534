//! Deals' logs: `POST /v1/deals/{id}/logs` (the deal's host appends a
//! signed piece while the job runs) and `GET /v1/deals/{id}/logs` (anyone
//! reads it from an offset, optionally waiting for more: `netmind job logs
//! --follow`). A replicated job's logs are held back until the job is
//! decided, like its outputs, so a host cannot copy another's answer.

use std::time::Duration;

use alloy_primitives::B256;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use netmind_protocol::orders::Signed;
use netmind_protocol::work::Log;
use serde_json::json;

use super::State;
use super::error::{ApiError, Kind};
use super::orders::order_id;
use super::wire::{self, Body};
use crate::jobs::DealState;
use crate::logs::LogError;

/// The longest a reader may wait for more text, ms.
const MAX_WAIT_MS: u64 = 30_000;

/// The most text one read answers, bytes.
const MAX_READ: u64 = 256 * 1024;

/// `POST /v1/deals/{id}/logs`.
pub(super) async fn append(
    state: &State,
    deal: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let signed: Signed<Log> =
        super::jobs::signed_for_deal(state, deal, req, |o: &Log| o.deal).await?;
    let deal = signed.order.deal;
    state
        .sequencer()
        .jobs()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .check_open(deal, signed.order.host)
        .map_err(|e| super::jobs::work_error(&e))?;
    let log = &signed.order;
    let len = state
        .logs
        .append(&deal, log.offset, &log.text)
        .map_err(|e| match e {
            LogError::Gap { .. } | LogError::Misaligned { .. } => {
                ApiError::new(Kind::Duplicate, e.to_string())
            }
            LogError::Io(e) => ApiError::internal("store the log", &e),
        })?;
    Ok(wire::json(
        StatusCode::OK,
        &json!({ "deal": deal, "len": len, "cut": len > state.logs.cap() }),
    ))
}

/// What a reader learns of the deal besides its text.
struct DealView {
    job: B256,
    host: alloy_primitives::Address,
    state: DealState,
    /// No more text will come (the host reported, or the deal is over).
    closed: bool,
    /// The text is held back until the job is decided.
    held: bool,
}

fn deal_view(state: &State, deal: &B256) -> Result<DealView, ApiError> {
    let jobs = state
        .sequencer()
        .jobs()
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let job = jobs.job_of_deal(deal).ok_or_else(|| {
        ApiError::not_found(format!(
            "no deal {deal}: a job's deals are listed by GET /v1/jobs/{{id}}"
        ))
    })?;
    let d = job
        .deals
        .iter()
        .find(|d| d.id == *deal)
        .expect("the job of a deal has it");
    Ok(DealView {
        job: job.id,
        host: d.host,
        state: d.state,
        closed: job.state.finished() || !d.state.open(),
        held: job.replicas > 1 && !job.state.finished(),
    })
}

/// `GET /v1/deals/{id}/logs?from=N&wait=MS&max=BYTES`.
pub(super) async fn read(
    state: &State,
    deal: &str,
    uri: &http::Uri,
) -> Result<Response<Body>, ApiError> {
    let deal = order_id(deal).map_err(ApiError::in_path)?;
    let q = wire::query(uri);
    let from = wire::param_u64(&q, "from", 0)?;
    let wait = wire::param_u64(&q, "wait", 0)?.min(MAX_WAIT_MS);
    let max = wire::param_u64(&q, "max", MAX_READ)?.clamp(1, MAX_READ);
    let mut view = deal_view(state, &deal)?;
    if wait > 0 && !view.closed && !view.held {
        // Until text past `from` arrives or the deal closes.
        state
            .logs
            .wait_until(Duration::from_millis(wait), || {
                let grew = state.logs.len(&deal).map_or(true, |n| n > from);
                grew || deal_view(state, &deal).map_or(true, |v| v.closed)
            })
            .await;
        view = deal_view(state, &deal)?;
    }
    let (text, next, len) = if view.held {
        (String::new(), from, 0)
    } else {
        let s = state
            .logs
            .read(&deal, from, max as usize)
            .map_err(|e| ApiError::internal("read the log", &e))?;
        (s.text, s.next, s.len)
    };
    Ok(wire::json(
        StatusCode::OK,
        &json!({
            "deal": deal,
            "job": view.job,
            "host": view.host,
            "state": view.state,
            "from": from,
            "next": next,
            "len": len,
            "text": text,
            "held": view.held,
            // Everything there will be has been read.
            "complete": view.closed && !view.held && next >= len,
        }),
    ))
}
