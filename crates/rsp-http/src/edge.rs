//! What every public request passes through on its way to its route, after the request-id and trace
//! layers: its [`RequestContext`], its metrics, and the headers every response carries.
//!
//! One service rather than a stack of axum `from_fn` and `map_response` middlewares: each of those clones
//! the rest of the stack into a box and boxes a future or two on every request, and with the context, the
//! metrics and the headers as three of them that was about a tenth of the allocations an introspection
//! request made (BENCHMARKS.md). This one boxes its future once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use rsp_core::context::RequestContext;
use tower::{Layer, Service};

use crate::context::trace_id_of;
use crate::metrics;

/// Wraps each route in an [`Edge`].
#[derive(Clone, Copy, Debug, Default)]
pub struct EdgeLayer;

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge { inner }
    }
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct Edge<S> {
    inner: S,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = metrics::method_label(request.method());
        let context = context_of(request.headers());
        let answer = context.scope(self.inner.call(request));
        Box::pin(async move {
            let mut response = answer.await?;
            secure_headers(response.headers_mut());
            let route = route.as_ref().map_or(metrics::UNMATCHED, MatchedPath::as_str);
            metrics::record(route, method, response.status().as_u16(), started);
            Ok(response)
        })
    }
}

/// The request id set by the layer above and the W3C trace id of an incoming `traceparent` header, so
/// events built while handling the request name both.
fn context_of(headers: &HeaderMap) -> std::sync::Arc<RequestContext> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let trace_id = header("traceparent").and_then(trace_id_of).map(str::to_owned);
    RequestContext::new(header("x-request-id").map(str::to_owned), trace_id)
}

/// RFC 6749 §5.1: responses carrying tokens or credentials must not be cached, so every response is marked
/// so unless its handler chose a cache policy (public discovery and JWKS documents). And no response is to
/// be sniffed into another content type.
fn secure_headers(headers: &mut HeaderMap) {
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}
