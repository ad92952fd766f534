//! A client of the market's HTTP API (plain HTTP/1.1 on `hyper-util`),
//! used by the `netmind` CLI, the integration tests and the benchmark.
//!
//! Answers are JSON values; an error answer becomes [`ClientError::Api`]
//! with the market's status, code and message. When telemetry is on, every
//! request carries the current span's W3C trace context (`traceparent`).

use std::time::Duration;

use alloy_sol_types::Eip712Domain;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use netmind_protocol::orders::{Cancel, JobOrder, Offer, Signed};
use serde::Serialize;
use serde_json::Value;

use crate::blob::BlobId;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The market answered with an error.
    #[error("the market refused ({status}, {code}): {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The error code.
        code: String,
        /// What to fix.
        message: String,
    },
    /// The market could not be reached.
    #[error("cannot reach the market at {url}: {detail}")]
    Transport {
        /// The URL.
        url: String,
        /// Why.
        detail: String,
    },
    /// The answer is not what the API describes.
    #[error("unexpected answer from {url}: {detail}")]
    Answer {
        /// The URL.
        url: String,
        /// Why.
        detail: String,
    },
    /// The market URL does not parse.
    #[error("`{0}` is not a market URL: use http://HOST:PORT")]
    BadUrl(String),
}

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A raw answer: status, headers, body.
pub type Answer = (StatusCode, HeaderMap, Bytes);

/// A market's API at a base URL such as `http://127.0.0.1:8080`.
#[derive(Debug, Clone)]
pub struct MarketClient {
    base: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl MarketClient {
    /// A client of the market at `base`.
    ///
    /// # Errors
    ///
    /// [`ClientError::BadUrl`] unless `base` is an `http://` URL.
    pub fn new(base: &str) -> Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        let ok = base
            .strip_prefix("http://")
            .is_some_and(|rest| !rest.is_empty())
            && base.parse::<http::Uri>().is_ok();
        if !ok {
            return Err(ClientError::BadUrl(base));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self { base, http })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request; returns whatever the market answered.
    ///
    /// # Errors
    ///
    /// [`ClientError::Transport`] when no answer came.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        content_type: &str,
    ) -> Result<Answer> {
        let url = format!("{}{path}", self.base);
        let transport = |detail: String| ClientError::Transport {
            url: url.clone(),
            detail,
        };
        // Idempotent requests are sent again once when the connection broke
        // before an answer (a pooled connection the server had just closed).
        let idempotent = matches!(method, Method::GET | Method::HEAD | Method::PUT);
        let body = body.unwrap_or_default();
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            let mut req = Request::builder().method(method.clone()).uri(&url);
            if !body.is_empty() || method == Method::PUT || method == Method::POST {
                req = req.header(http::header::CONTENT_TYPE, content_type);
            }
            let mut req = req
                .body(Full::new(body.clone()))
                .map_err(|e| transport(e.to_string()))?;
            crate::telemetry::inject(req.headers_mut());
            match self.http.request(req).await {
                Ok(resp) => break resp,
                Err(e) if idempotent && attempt < 3 => {
                    tracing::debug!(error = ?e, %url, "the connection broke; sending again");
                }
                Err(e) => return Err(transport(format!("{e:?}"))),
            }
        };
        let (parts, body) = resp.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(|e| transport(e.to_string()))?
            .to_bytes();
        Ok((parts.status, parts.headers, bytes))
    }

    /// A JSON request; a non-2xx answer becomes [`ClientError::Api`].
    async fn json(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Value> {
        let (status, _, bytes) = self
            .request(method, path, body.map(Bytes::from), "application/json")
            .await?;
        let url = format!("{}{path}", self.base);
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| ClientError::Answer {
            url: url.clone(),
            detail: format!("{status}, not JSON: {e}"),
        })?;
        if status.is_success() {
            return Ok(value);
        }
        let field = |k: &str| value["error"][k].as_str().unwrap_or_default().to_owned();
        Err(ClientError::Api {
            status: status.as_u16(),
            code: field("code"),
            message: field("message"),
        })
    }

    /// `POST path` with a JSON body; the answer as JSON.
    ///
    /// # Errors
    ///
    /// The market refused or could not be reached.
    pub async fn post(&self, path: &str, body: &impl Serialize) -> Result<Value> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Answer {
            url: path.into(),
            detail: e.to_string(),
        })?;
        self.json(Method::POST, path, Some(bytes)).await
    }

    /// `GET path` as JSON.
    ///
    /// # Errors
    ///
    /// The market refused or could not be reached.
    pub async fn get(&self, path: &str) -> Result<Value> {
        self.json(Method::GET, path, None).await
    }

    /// `GET /v1/info`.
    ///
    /// # Errors
    ///
    /// The market refused or could not be reached.
    pub async fn info(&self) -> Result<Value> {
        self.get("/v1/info").await
    }

    /// The EIP-712 domain the market wants orders signed under.
    ///
    /// # Errors
    ///
    /// The market refused, could not be reached, or did not say.
    pub async fn domain(&self) -> Result<Eip712Domain> {
        let info = self.info().await?;
        let chain = info["domain"]["chainId"]
            .as_u64()
            .ok_or_else(|| ClientError::Answer {
                url: format!("{}/v1/info", self.base),
                detail: "no domain.chainId".into(),
            })?;
        Ok(netmind_protocol::orders::domain(chain))
    }

    /// `POST /v1/offers`.
    ///
    /// # Errors
    ///
    /// The market refused or could not be reached.
    pub async fn post_offer(&self, offer: &Signed<Offer>) -> Result<Value> {
        self.post("/v1/offers", offer).await
    }

    /// `POST /v1/bids`.
    ///
    /// # Errors
    ///
    /// The market refused or could not be reached.
    pub async fn post_bid(&self, bid: &Signed<JobOrder>) -> Result<Value> {
        self.post("/v1/bids", bid).await
    }

    /// `POST /v1/cancels`.
    ///
    /// # Errors
    ///
    /// The market refused or could not be reached.
    pub async fn cancel(&self, cancel: &Signed<Cancel>) -> Result<Value> {
        self.post("/v1/cancels", cancel).await
    }

    /// `PUT /v1/blobs/{sha256}` of `bytes`; returns the id and whether it
    /// was new. Blobs over 64 KiB are first asked for with `HEAD` and not
    /// sent when the market has them.
    ///
    /// # Errors
    ///
    /// The market refused or could not be reached.
    pub async fn put_blob(&self, bytes: Bytes) -> Result<(BlobId, bool)> {
        let id = BlobId::of(&bytes);
        let path = format!("/v1/blobs/{id}");
        // A large blob the market already has is not sent again.
        if bytes.len() > 64 * 1024 {
            let (status, _, _) = self.request(Method::HEAD, &path, None, "").await?;
            if status == StatusCode::OK {
                return Ok((id, false));
            }
        }
        let (status, _, body) = self
            .request(Method::PUT, &path, Some(bytes), "application/octet-stream")
            .await?;
        if status.is_success() {
            return Ok((id, status == StatusCode::CREATED));
        }
        let value: Value = serde_json::from_slice(&body).unwrap_or_default();
        Err(ClientError::Api {
            status: status.as_u16(),
            code: value["error"]["code"].as_str().unwrap_or_default().into(),
            message: value["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .into(),
        })
    }

    /// `GET /v1/blobs/{sha256}`, checked against its name; `None` when the
    /// market does not have it.
    ///
    /// # Errors
    ///
    /// The market could not be reached, or sent bytes that do not hash to the name.
    pub async fn get_blob(&self, id: &BlobId) -> Result<Option<Bytes>> {
        let path = format!("/v1/blobs/{id}");
        let (status, _, body) = self.request(Method::GET, &path, None, "").await?;
        match status {
            StatusCode::OK if BlobId::of(&body) == *id => Ok(Some(body)),
            StatusCode::OK => Err(ClientError::Answer {
                url: format!("{}{path}", self.base),
                detail: "the bytes do not hash to the blob's name".into(),
            }),
            StatusCode::NOT_FOUND => Ok(None),
            other => Err(ClientError::Answer {
                url: format!("{}{path}", self.base),
                detail: format!("status {other}"),
            }),
        }
    }

    /// Follows `GET /v1/events` (server-sent events): each event's name and
    /// data, as they come, until the stream ends or breaks.
    ///
    /// # Errors
    ///
    /// The market could not be reached or refused the stream.
    pub async fn events(&self, query: &str) -> Result<EventStream> {
        let url = format!("{}/v1/events{query}", self.base);
        let transport = |detail: String| ClientError::Transport {
            url: url.clone(),
            detail,
        };
        let mut req = Request::get(&url)
            .header(http::header::ACCEPT, "text/event-stream")
            .body(Full::new(Bytes::new()))
            .map_err(|e| transport(e.to_string()))?;
        crate::telemetry::inject(req.headers_mut());
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| transport(format!("{e:?}")))?;
        if !resp.status().is_success() {
            return Err(transport(format!("status {}", resp.status())));
        }
        Ok(EventStream {
            body: resp.into_body(),
            buf: Vec::new(),
        })
    }
}

/// Server-sent events from [`MarketClient::events`].
#[derive(Debug)]
pub struct EventStream {
    body: hyper::body::Incoming,
    buf: Vec<u8>,
}

impl EventStream {
    /// The next event as `(name, data)`; `None` when the stream ended.
    ///
    /// # Errors
    ///
    /// The connection broke.
    pub async fn next(&mut self) -> Result<Option<(String, String)>> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let raw: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&raw);
                let (mut name, mut data) = (String::from("message"), String::new());
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if !data.is_empty() {
                            data.push('\n');
                        }
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if data.is_empty() {
                    // A comment (keep-alive) or an empty event.
                    continue;
                }
                return Ok(Some((name, data)));
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(ClientError::Transport {
                        url: "/v1/events".into(),
                        detail: e.to_string(),
                    });
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}
