//! One worker's connection for the request scenarios, spoken with hyper's connection API directly.
//!
//! Why not reqwest here: the load generator shares the two cores with the server it measures, so every
//! instruction it spends is one the server does not get. Each reqwest request crosses from the worker's
//! task to a pooled connection task and back, re-parses its URL and keeps pool bookkeeping; here an
//! HTTP/1.1 connection is driven inside the worker's own task (no hand-off), and a request is prepared
//! once and only cloned per send. Measured at the same 17k introspections/s: 246 instead of 309 CPU ticks
//! of the generator over 6 s (the throughput limit of that run was the closed loop's timer sleep, see
//! `driver`). HTTP/2 needs its connection task (hyper multiplexes streams there). `https` targets and the
//! login scenario (cookies, redirects) still use reqwest.

use std::pin::Pin;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// A request prepared for [`PlainConnection::send`]: its target, headers and body built once.
#[derive(Debug)]
pub(super) struct PlainRequest {
    /// `host:port` to connect to.
    address: String,
    /// Origin form (`/path?query`) for HTTP/1.1, absolute for HTTP/2 (its `:scheme` and `:authority`).
    origin_form: Uri,
    absolute: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl PlainRequest {
    /// A POST of `body` to `url`, which must be `http://`; `authorization` is sent when given.
    pub fn post(
        url: &url::Url,
        authorization: Option<HeaderValue>,
        content_type: &'static str,
        body: &str,
    ) -> anyhow::Result<Self> {
        if url.scheme() != "http" {
            bail!("{url}: only http:// is driven over a plain connection");
        }
        let host = url.host_str().context("the URL has no host")?;
        let port = url.port_or_known_default().context("the URL has no port")?;
        // The Host header names the port only when the URL does.
        let host_header = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let origin = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(&host_header).context("the URL's host is not a header value")?);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(authorization) = authorization {
            headers.insert(AUTHORIZATION, authorization);
        }
        Ok(Self {
            address: format!("{host}:{port}"),
            origin_form: origin.parse().context("the URL's path is not a request target")?,
            absolute: url.as_str().parse().context("the URL is not a request URI")?,
            headers,
            body: Bytes::copy_from_slice(body.as_bytes()),
        })
    }

    fn build(&self, http2: bool) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = if http2 { self.absolute.clone() } else { self.origin_form.clone() };
        *request.headers_mut() = self.headers.clone();
        if http2 {
            // HTTP/2 carries the authority in `:authority`; a Host header beside it is redundant.
            request.headers_mut().remove(HOST);
        }
        request
    }
}

type Io = TokioIo<TcpStream>;

/// An open connection.
enum Link {
    /// The connection future is polled by [`PlainConnection::send`] itself, beside the exchange.
    Http1 {
        sender: http1::SendRequest<Full<Bytes>>,
        connection: Pin<Box<http1::Connection<Io, Full<Bytes>>>>,
    },
    Http2 {
        sender: http2::SendRequest<Full<Bytes>>,
        driver: JoinHandle<()>,
    },
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Link::Http2 { driver, .. } = self {
            driver.abort();
        }
    }
}

/// One keep-alive connection, opened on first use and again after any failure.
pub(super) struct PlainConnection {
    http2: bool,
    link: Option<(String, Link)>,
}

impl PlainConnection {
    pub fn new(http2: bool) -> Self {
        Self { http2, link: None }
    }

    /// Sends `request` and reads the whole answer; true for a 2xx. A transport failure closes the
    /// connection (the next send opens another) and counts as false.
    pub async fn send(&mut self, request: &PlainRequest) -> bool {
        let reusable = matches!(&self.link, Some((address, _)) if *address == request.address);
        if !reusable {
            self.link = None;
            match open(&request.address, self.http2).await {
                Ok(link) => self.link = Some((request.address.clone(), link)),
                Err(_) => return false,
            }
        }
        let Some((_, link)) = self.link.as_mut() else { return false };
        let answered = match link {
            Link::Http1 { sender, connection } => {
                let exchange = async {
                    sender.ready().await?;
                    answer(sender.send_request(request.build(false))).await
                };
                tokio::select! {
                    biased;
                    answered = exchange => answered.ok(),
                    // The connection ended (closed by the server, or failed) before the answer was read.
                    _ = connection.as_mut() => None,
                }
            }
            Link::Http2 { sender, .. } => {
                let exchange = async {
                    sender.ready().await?;
                    answer(sender.send_request(request.build(true))).await
                };
                exchange.await.ok()
            }
        };
        answered.unwrap_or_else(|| {
            self.link = None;
            false
        })
    }
}

/// Whether the answer was a 2xx, once its body has been read whole (so the connection can be reused).
async fn answer(response: impl Future<Output = hyper::Result<Response<Incoming>>>) -> hyper::Result<bool> {
    let response = response.await?;
    let success = response.status().is_success();
    response.into_body().collect().await?;
    Ok(success)
}

async fn open(address: &str, http2: bool) -> anyhow::Result<Link> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let io = TokioIo::new(stream);
    if http2 {
        let (sender, connection) = http2::handshake(TokioExecutor::new(), io).await?;
        let driver = tokio::spawn(async move {
            // Its end is seen by the sender: the next request fails and the worker reconnects.
            let _ = connection.await;
        });
        Ok(Link::Http2 { sender, driver })
    } else {
        let (sender, connection) = http1::handshake(io).await?;
        Ok(Link::Http1 { sender, connection: Box::pin(connection) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_prepared_in_both_forms() {
        let url = url::Url::parse("http://127.0.0.1:8080/t/acme/oauth2/token?x=1").unwrap();
        let request =
            PlainRequest::post(&url, Some(HeaderValue::from_static("Basic eA==")), "text/plain", "a=b").unwrap();
        assert_eq!(request.address, "127.0.0.1:8080");
        let one = request.build(false);
        assert_eq!(one.uri(), "/t/acme/oauth2/token?x=1");
        assert_eq!(one.headers()[HOST], "127.0.0.1:8080");
        assert_eq!(one.headers()[AUTHORIZATION], "Basic eA==");
        assert_eq!(one.method(), Method::POST);
        let two = request.build(true);
        assert_eq!(two.uri(), "http://127.0.0.1:8080/t/acme/oauth2/token?x=1");
        assert!(two.headers().get(HOST).is_none());
    }

    #[test]
    fn only_plain_http_is_prepared() {
        let url = url::Url::parse("https://example.com/token").unwrap();
        assert!(PlainRequest::post(&url, None, "text/plain", "").is_err());
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_failed_request() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = url::Url::parse(&format!("http://{}/x", listener.local_addr().unwrap())).unwrap();
        drop(listener);
        let request = PlainRequest::post(&url, None, "text/plain", "").unwrap();
        let mut connection = PlainConnection::new(false);
        assert!(!connection.send(&request).await);
        assert!(connection.link.is_none());
    }
}
