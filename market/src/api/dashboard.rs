//! The web dashboard: `GET /` (the page) and `GET /dashboard/{file}` (its
//! script and style sheet).
//!
//! Plain HTML, CSS and JavaScript modules from `market/dashboard/`, embedded in the
//! binary: nothing to build or fetch, and it works offline. The page reads
//! the public API (`/v1/classes`, `/v1/book`, `/v1/market`, `/v1/trades`,
//! `/v1/hosts`, `/v1/jobs`, `/v1/bids/{id}/explain`) and follows
//! `/v1/events`, polling when the stream is down.
//!
//! Every response carries a strong `ETag` (a hash of the file) and
//! `Cache-Control: no-cache`, so a browser revalidates with
//! `If-None-Match` and gets `304 Not Modified` until the market is upgraded.

use std::sync::OnceLock;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::wire::{self, Body};

/// One embedded file.
#[derive(Debug)]
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const INDEX: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    bytes: include_bytes!("../../dashboard/index.html"),
};

/// What `/dashboard/{file}` serves.
const FILES: [Asset; 3] = [
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../dashboard/app.js"),
    },
    Asset {
        name: "charts.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../dashboard/charts.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../dashboard/style.css"),
    },
];

/// The page may load only its own script, style and data.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `"` + 32 hex digits of the file's SHA-256 + `"`, computed once per file.
fn etag(asset: &Asset) -> &'static str {
    static TAGS: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        std::iter::once(&INDEX)
            .chain(FILES.iter())
            .map(|a| {
                let digest = Sha256::digest(a.bytes);
                (a.name, format!("\"{}\"", hex::encode(&digest[..16])))
            })
            .collect()
    });
    tags.iter()
        .find(|(n, _)| *n == asset.name)
        .map_or("\"\"", |(_, t)| t.as_str())
}

fn respond(asset: &Asset, request: &HeaderMap) -> Response<Body> {
    let tag = etag(asset);
    let fresh = request
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut r = if fresh {
        let mut r = Response::new(wire::full(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(wire::full(Bytes::from_static(asset.bytes)));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        r
    };
    let h = r.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(ETAG, v);
    }
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    if asset.name == INDEX.name {
        h.insert(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(CSP),
        );
        h.insert(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        );
    }
    r
}

/// `GET /`: the page.
pub(super) fn index(request: &HeaderMap) -> Response<Body> {
    respond(&INDEX, request)
}

/// `GET /dashboard/{file}`: the script or the style sheet; 404 for any other name.
pub(super) fn file(name: &str, request: &HeaderMap) -> Result<Response<Body>, ApiError> {
    match FILES.iter().find(|a| a.name == name) {
        Some(asset) => Ok(respond(asset, request)),
        None => {
            let shown: String = name.chars().take(64).collect();
            Err(ApiError::not_found(format!(
                "the dashboard has no file `{shown}`; it serves {}",
                FILES.map(|a| a.name).join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_loads_is_served() {
        let page = std::str::from_utf8(INDEX.bytes).unwrap();
        let app = std::str::from_utf8(FILES[0].bytes).unwrap();
        for (from, linked) in [
            (page, "\"/dashboard/app.js\""),
            (page, "\"/dashboard/style.css\""),
            (app, "\"./charts.js\""),
        ] {
            assert!(from.contains(linked), "{linked} is not loaded");
            let name = linked.trim_matches('"').rsplit('/').next().unwrap();
            assert!(FILES.iter().any(|a| a.name == name), "{name} is not served");
        }
        assert!(FILES.iter().all(|a| !a.bytes.is_empty()));
    }

    #[test]
    fn a_matching_etag_is_not_modified_and_unknown_files_are_404() {
        let first = file("app.js", &HeaderMap::new()).unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(
            first.headers()[CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let tag = first.headers()[ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(IF_NONE_MATCH, tag);
        let second = file("app.js", &again).unwrap();
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
        assert_ne!(etag(&FILES[0]), etag(&FILES[1]));
        let err = file("../Cargo.toml", &HeaderMap::new()).unwrap_err();
        assert_eq!(err.kind, super::super::Kind::NotFound);
        assert!(
            err.message.contains("app.js, charts.js, style.css"),
            "{}",
            err.message
        );
    }
}
