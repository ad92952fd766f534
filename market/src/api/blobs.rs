//! `PUT`, `GET` and `HEAD /v1/blobs/{sha256}`: content-addressed blobs.
//!
//! An upload is hashed as it streams in and stored only when its bytes hash
//! to the name (400 otherwise) and fit the size limit (413 otherwise); what
//! is refused leaves nothing behind. Uploading a blob that is already stored
//! answers 200 without storing it again (after reading the upload to its end,
//! so the client's connection stays usable).

use std::io::{self, Read};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::State;
use super::error::{ApiError, Kind};
use super::wire::{self, Body};
use crate::blob::{BlobError, BlobId, Upload};

fn too_large(limit: u64) -> ApiError {
    BlobError::TooLarge { limit }.into()
}

pub(super) async fn put(
    state: &State,
    name: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let id = BlobId::parse(name)?;
    let limit = state.config.max_blob;
    if wire::declared_length(req.headers()).is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let store = state.blobs.clone();
    if let Some(size) = store
        .size(&id)
        .map_err(|e| ApiError::internal("read the blob store", &e))?
    {
        // Read to the end what the client is sending anyway: answering first
        // would close the connection under a client still writing, which
        // then sees a broken pipe instead of this answer.
        let mut body = req.into_body();
        let mut read = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            read += frame.data_ref().map_or(0, |d| d.len() as u64);
            if read > limit {
                return Err(too_large(limit));
            }
        }
        return Ok(wire::json(
            StatusCode::OK,
            &json!({ "id": id.to_string(), "size": size, "created": false }),
        ));
    }
    let mut up = Upload::new(&*store, id, limit)?;
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::malformed(format!("the upload was cut off before its end: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            up.write(&data)?;
        }
    }
    let size = tokio::task::spawn_blocking(move || up.finish())
        .await
        .map_err(|e| ApiError::internal("store the blob", &e))??;
    tracing::debug!(target: "market::blobs", blob = %id, size, "stored");
    Ok(wire::json(
        StatusCode::CREATED,
        &json!({ "id": id.to_string(), "size": size, "created": true }),
    ))
}

pub(super) async fn get(state: &State, name: &str, head: bool) -> Result<Response<Body>, ApiError> {
    let id = BlobId::parse(name)?;
    let store = state.blobs.clone();
    let opened = tokio::task::spawn_blocking(move || store.open(&id))
        .await
        .map_err(|e| ApiError::internal("read the blob store", &e))?
        .map_err(|e| ApiError::internal("read the blob store", &e))?;
    let Some((size, reader)) = opened else {
        return Err(ApiError::new(
            Kind::NotFound,
            format!("no blob {id} is stored here; upload it with PUT /v1/blobs/{id}"),
        ));
    };
    let body = if head {
        wire::full(Bytes::new())
    } else {
        let (tx, rx) = mpsc::channel(8);
        tokio::task::spawn_blocking(move || stream_file(reader, &tx));
        StreamBody::new(ReceiverStream::new(rx)).boxed()
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(size));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{id}\"")) {
        h.insert(ETAG, v);
    }
    Ok(r)
}

/// Sends a reader's bytes in 64 KiB frames until the end or until the
/// client goes away.
fn stream_file(
    mut reader: Box<dyn Read + Send>,
    tx: &mpsc::Sender<Result<Frame<Bytes>, io::Error>>,
) {
    loop {
        let mut buf = vec![0u8; 64 * 1024];
        match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                if tx.blocking_send(Ok(Frame::data(Bytes::from(buf)))).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
}
