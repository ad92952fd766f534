//! Subscriptions only over WebSocket.
//!
//! jsonrpsee answers a subscription call over plain HTTP with a bare -32603
//! "Internal error". Clients expect geth's answer, -32601 "notifications not
//! supported", so two middlewares give it:
//!
//! 1. [`MarkPlainHttpLayer`] (HTTP middleware) tags each request that is not a
//!    WebSocket upgrade with [`PlainHttp`]; jsonrpsee copies the HTTP request's
//!    extensions into every JSON-RPC request read from it;
//! 2. [`NoHttpSubscriptions`] (RPC middleware) answers `eth_subscribe` and
//!    `eth_unsubscribe` calls that carry the tag, alone or inside a batch.

use std::future::Future;
use std::task::{Context, Poll};

use jsonrpsee::core::middleware::{Batch, BatchEntry, BatchEntryErr, Notification, RpcServiceT};
use jsonrpsee::server::{HttpRequest, MethodResponse};
use jsonrpsee::types::{ErrorObjectOwned, Request};

/// The subscription methods (only served over WebSocket).
pub const SUBSCRIPTION_METHODS: [&str; 2] = ["eth_subscribe", "eth_unsubscribe"];

/// Extension of requests that came over plain HTTP (not a WebSocket).
#[derive(Debug, Clone, Copy)]
pub struct PlainHttp;

/// The error for a subscription call over HTTP (geth's code and message).
pub fn notifications_unsupported() -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32601, "notifications not supported", None::<()>)
}

/// Tags plain HTTP requests with [`PlainHttp`].
#[derive(Debug, Clone, Copy)]
pub struct MarkPlainHttpLayer;

impl<S> tower::Layer<S> for MarkPlainHttpLayer {
    type Service = MarkPlainHttp<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MarkPlainHttp(inner)
    }
}

/// The service of [`MarkPlainHttpLayer`].
#[derive(Debug, Clone)]
pub struct MarkPlainHttp<S>(S);

impl<S, B> tower::Service<HttpRequest<B>> for MarkPlainHttp<S>
where
    S: tower::Service<HttpRequest<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut req: HttpRequest<B>) -> Self::Future {
        if !jsonrpsee::server::ws::is_upgrade_request(&req) {
            req.extensions_mut().insert(PlainHttp);
        }
        self.0.call(req)
    }
}

/// Answers subscription calls that came over plain HTTP with
/// [`notifications_unsupported`]; passes everything else on.
#[derive(Debug, Clone)]
pub struct NoHttpSubscriptions<S>(S);

impl<S> NoHttpSubscriptions<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self(inner)
    }
}

fn refused(req: &Request<'_>) -> bool {
    req.extensions().get::<PlainHttp>().is_some()
        && SUBSCRIPTION_METHODS.contains(&req.method_name())
}

impl<S> RpcServiceT for NoHttpSubscriptions<S>
where
    S: RpcServiceT<MethodResponse = MethodResponse> + Clone + Send + Sync + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        let inner = self.0.clone();
        async move {
            if refused(&req) {
                return MethodResponse::error(req.id, notifications_unsupported());
            }
            inner.call(req).await
        }
    }

    fn batch<'a>(
        &self,
        mut batch: Batch<'a>,
    ) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        for entry in batch.iter_mut() {
            let id = match entry {
                Ok(BatchEntry::Call(req)) if refused(req) => req.id.clone(),
                _ => continue,
            };
            *entry = Err(BatchEntryErr::new(id, notifications_unsupported()));
        }
        self.0.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.0.notification(n)
    }
}
