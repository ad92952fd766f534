//! The OTLP exporter's HTTP client: `hyper` (plain HTTP/1.1, no TLS) on a
//! thread of its own with a current-thread Tokio runtime.
//!
//! The SDK's batch span processor and periodic metric reader export from
//! their own threads with a plain executor, where a Tokio-based client
//! cannot run; they hand requests to this thread through a channel instead.
//! The thread ends when the last handle (held by the exporters) is dropped.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use tokio::sync::{mpsc, oneshot};

type Reply = oneshot::Sender<Result<Response<Bytes>, HttpError>>;

/// A handle to the client thread.
#[derive(Debug, Clone)]
pub(super) struct OtlpHttp {
    calls: mpsc::UnboundedSender<(Request<Bytes>, Reply)>,
}

impl OtlpHttp {
    /// Starts the client thread; each request gives up after `timeout`.
    pub(super) fn start(timeout: Duration) -> std::io::Result<Self> {
        let (calls, mut incoming) = mpsc::unbounded_channel::<(Request<Bytes>, Reply)>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("otlp-http".into())
            .spawn(move || {
                rt.block_on(async move {
                    let mut connector = HttpConnector::new();
                    connector.set_nodelay(true);
                    connector.set_connect_timeout(Some(timeout));
                    let client: Client<_, Full<Bytes>> =
                        Client::builder(TokioExecutor::new()).build(connector);
                    while let Some((request, reply)) = incoming.recv().await {
                        let client = client.clone();
                        tokio::spawn(async move {
                            let answer = tokio::time::timeout(timeout, send(&client, request))
                                .await
                                .unwrap_or_else(|_| Err("the OTLP request timed out".into()));
                            let _ = reply.send(answer);
                        });
                    }
                });
            })?;
        Ok(Self { calls })
    }
}

async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    request: Request<Bytes>,
) -> Result<Response<Bytes>, HttpError> {
    let answer = client.request(request.map(Full::new)).await?;
    let (parts, body) = answer.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, body))
}

#[async_trait::async_trait]
impl HttpClient for OtlpHttp {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (reply, answer) = oneshot::channel();
        self.calls
            .send((request, reply))
            .map_err(|_| "the OTLP client thread stopped")?;
        answer.await.map_err(|_| "the OTLP client thread stopped")?
    }
}
