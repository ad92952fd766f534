//! Bodies in and out: size-limited reads, JSON parsing that names the field
//! at fault, JSON and error responses, query strings.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::{ApiError, Kind};

/// A response body: whole, or streamed (blobs, events).
pub type Body = BoxBody<Bytes, io::Error>;

/// A whole body.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// `status` with `value` as JSON.
pub(crate) fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(full(bytes));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The error's status and `{"error": {"code", "message"}}`.
pub(crate) fn error(e: &ApiError) -> Response<Body> {
    let (status, _) = e.status_and_code();
    let mut r = json(status, &e.body());
    if let Some(wait) = e.retry_after {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

/// Reads a whole body of at most `limit` bytes; refuses a larger declared
/// length before reading anything.
pub(crate) async fn read_body(
    req: http::Request<Incoming>,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            Kind::TooLarge,
            format!("the request body is larger than this market's limit of {limit} bytes"),
        )
    };
    if declared_length(req.headers()).is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(ApiError::malformed(format!(
            "the request body could not be read: {e}"
        ))),
    }
}

/// The `Content-Length` a request declares, if any.
pub(crate) fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Parses JSON, naming the field at fault: e.g. `order.slots: invalid value:
/// integer -1, expected u32 at line 1 column 80`.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ApiError> {
    // The fast path; only a body that fails is parsed again to name the field.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path == "." {
            String::new()
        } else {
            format!("field `{path}`: ")
        };
        ApiError::malformed(format!(
            "the body is not a valid {what}: {at}{inner}; see /openapi.json for its schema"
        ))
    })
}

/// The query string's parameters (percent-decoded; later keys win).
pub(crate) fn query(uri: &http::Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

pub(super) fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A numeric query parameter, `default` when absent.
pub(crate) fn param_u64(
    q: &HashMap<String, String>,
    name: &str,
    default: u64,
) -> Result<u64, ApiError> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            ApiError::malformed(format!(
                "query parameter `{name}` must be a non-negative integer, got `{}`",
                v.chars().take(40).collect::<String>()
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_decoded() {
        let uri: http::Uri = "/x?a=1&class=gpu%2D24g&b=&c=%zz&d=%4".parse().unwrap();
        let q = query(&uri);
        assert_eq!(q["a"], "1");
        assert_eq!(q["class"], "gpu-24g");
        assert_eq!(q["b"], "");
        assert_eq!(q["c"], "%zz");
        assert_eq!(q["d"], "%4");
    }
}
