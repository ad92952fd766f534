//! Every error the API answers with, and the one place that maps errors to
//! HTTP statuses and to the JSON body `{"error": {"code", "message"}}`.
//!
//! Messages say what to fix. Database and other internal errors are logged
//! and answered with a generic message: their text never reaches a client.

use std::time::Duration;

use http::StatusCode;
use netmind_protocol::Error as ProtocolError;

use crate::blob::BlobError;
use crate::engine::Reject;
use crate::journal::JournalError;
use crate::orders::OrderError;

/// What went wrong with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// The body or a parameter does not parse (400).
    Malformed,
    /// It parses but breaks a rule (400).
    Invalid,
    /// The order's expiry, deadline or the cancel's expiry has passed (400).
    Expired,
    /// A class the market does not trade (400 in a body, 404 in a path).
    UnknownClass,
    /// The signature is not the named maker's (401).
    BadSignature,
    /// Signed by someone other than who may do this (403).
    NotMaker,
    /// No such resource (404).
    NotFound,
    /// The method is not served on this path (405).
    MethodNotAllowed,
    /// The order was placed before: a replay or a duplicate (409).
    Duplicate,
    /// The body is larger than the limit (413).
    TooLarge,
    /// Too many requests from one address or client (429).
    RateLimited,
    /// The market cannot serve the request now (503).
    Unavailable,
    /// A fault on the market's side (500).
    Internal,
}

impl Kind {
    /// The HTTP status and the stable error code of a kind.
    pub fn status_and_code(self) -> (StatusCode, &'static str) {
        match self {
            Self::Malformed => (StatusCode::BAD_REQUEST, "malformed"),
            Self::Invalid => (StatusCode::BAD_REQUEST, "invalid"),
            Self::Expired => (StatusCode::BAD_REQUEST, "expired"),
            Self::UnknownClass => (StatusCode::BAD_REQUEST, "unknown_class"),
            Self::BadSignature => (StatusCode::UNAUTHORIZED, "bad_signature"),
            Self::NotMaker => (StatusCode::FORBIDDEN, "not_maker"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Duplicate => (StatusCode::CONFLICT, "duplicate"),
            Self::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// An error answer: a kind, a message for the client, and how long to wait
/// before retrying (rate limits).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What went wrong.
    pub kind: Kind,
    /// What to fix, for the client.
    pub message: String,
    /// `Retry-After` for rate limits.
    pub retry_after: Option<Duration>,
    /// A path (e.g. `GET /v1/book/{class}`) answers 404 for unknown classes.
    in_path: bool,
}

impl ApiError {
    /// An error of `kind` with `message`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
            in_path: false,
        }
    }

    /// 400, the body or a parameter does not parse.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(Kind::Malformed, message)
    }

    /// 400, a rule is broken.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Kind::Invalid, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, message)
    }

    /// 429, retry after `wait`.
    pub fn rate_limited(message: impl Into<String>, wait: Duration) -> Self {
        Self {
            retry_after: Some(wait),
            ..Self::new(Kind::RateLimited, message)
        }
    }

    /// A class named in the path rather than in a body (answered with 404).
    pub fn in_path(mut self) -> Self {
        self.in_path = true;
        self
    }

    /// A fault on our side: `detail` is logged, never sent.
    pub fn internal(what: &str, detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(target: "market::api", error = %detail, "{what}");
        Self::new(
            Kind::Internal,
            format!("the market failed to {what}; nothing was changed, retry later"),
        )
    }

    /// The HTTP status and error code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self.kind {
            Kind::UnknownClass if self.in_path => (StatusCode::NOT_FOUND, "unknown_class"),
            kind => kind.status_and_code(),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let (_, code) = self.status_and_code();
        serde_json::json!({ "error": { "code": code, "message": self.message } })
    }
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::Signature(ProtocolError::OrderSignature(detail)) => Self::new(
                Kind::BadSignature,
                format!(
                    "invalid order signature: {detail}; sign the order's EIP-712 hash with the \
                     maker's key under this market's domain (GET /v1/info)"
                ),
            ),
            OrderError::Signature(other) => Self::new(Kind::BadSignature, other.to_string()),
            e @ OrderError::Price { .. } => Self::invalid(e.to_string()),
            OrderError::Empty(what) => Self::invalid(what),
        }
    }
}

/// A refusal by the engine for order or cancel `id`.
pub fn rejected(id: &impl std::fmt::Display, reason: &Reject) -> ApiError {
    match reason {
        Reject::Duplicate => ApiError::new(
            Kind::Duplicate,
            format!(
                "order {id} was already placed (a replay of a signed order is refused); \
                 to place another order, sign one with a new nonce"
            ),
        ),
        Reject::Expired => ApiError::new(
            Kind::Expired,
            format!(
                "order {id} has expired (its expiry or deadline is not after the market's time); \
                 sign it again with a later one"
            ),
        ),
        Reject::NoSlots | Reject::NoReplicas => ApiError::invalid(format!("order {id}: {reason}")),
        Reject::UnknownOrder => ApiError::not_found(format!(
            "no open order has id {id}: it was filled, cancelled or lapsed, or never placed"
        )),
        Reject::NotMaker => ApiError::new(
            Kind::NotMaker,
            format!("order {id} was not made by the cancel's signer: only its maker may cancel it"),
        ),
    }
}

impl From<JournalError> for ApiError {
    fn from(e: JournalError) -> Self {
        Self::internal("read its journal", &e)
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::TooLarge { limit } => Self::new(
                Kind::TooLarge,
                format!("the blob is larger than this market's limit of {limit} bytes"),
            ),
            e @ BlobError::Mismatch { .. } => Self::invalid(e.to_string()),
            e @ BlobError::BadName(_) => Self::malformed(e.to_string()),
            BlobError::Io(e) => Self::internal("store the blob", &e),
        }
    }
}
