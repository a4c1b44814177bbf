//! cloudfn-server: the HTTP server that the local runtime and the Azure and
//! GCP adapters share.
//!
//! Connections are served by hyper directly (not `axum::serve`) for what a
//! server facing a network needs and axum does not expose: a deadline for
//! the request headers. Requests are read within a body limit, a declared
//! length over it refused before any of the body is read.
//!
//! ```no_run
//! use std::time::Duration;
//! use cloudfn_core::HttpResponse;
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn run() -> Result<(), cloudfn_core::Error> {
//! let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
//! let stop = CancellationToken::new();
//! cloudfn_server::serve(listener, Duration::from_secs(30), stop, |request| async move {
//!     let answer = match cloudfn_server::read_request(request, 1024).await {
//!         Ok(request) => HttpResponse::text(200, request.path),
//!         Err(error) => HttpResponse::from_error(&error),
//!     };
//!     answer.into_http()
//! })
//! .await;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

#[cfg(feature = "dev")]
pub mod dev;

use std::{convert::Infallible, future::Future, sync::Arc, time::Duration};

use bytes::Bytes;
use cloudfn_core::{
    Error, HttpRequest, HttpResponse,
    provider::{ContextBuilder, HttpRouter, Services},
};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use hyper::body::Incoming as Body;

/// Accepts connections until `stop`, then lets each finish the request it
/// is on. A client that has not sent a request's whole header within
/// `header_read_timeout` is disconnected, so idle or trickling connections
/// cannot pile up. `handle` answers each request.
pub async fn serve<H, F>(
    listener: TcpListener,
    header_read_timeout: Duration,
    stop: CancellationToken,
    handle: H,
) where
    H: Fn(http::Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = http::Response<Bytes>> + Send + 'static,
{
    let handle = Arc::new(handle);
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, or the peer gave up already: the
                // listener itself is fine, and a pause keeps the loop from
                // spinning until descriptors are free again.
                tracing::warn!(error = %e, "could not accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handle = handle.clone();
        let service = hyper::service::service_fn(move |request| {
            // Boxed once here: an invocation's future runs to kilobytes,
            // and hyper moves the service's future as it sets it up.
            let answer = Box::pin(handle(request));
            async move { Ok::<_, Infallible>(answer.await.map(Full::new)) }
        });
        let connection = graceful.watch(http1.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
    graceful.shutdown().await;
}

/// Makes ring the process's TLS crypto provider, once. The cloud clients'
/// HTTP stacks (reqwest, hyper-rustls, tonic) use rustls with no provider
/// of their own — ring is the AWS clients' too, so one provider serves the
/// whole process — and each needs one before it is built. The adapters'
/// clients call it, and `cloudfn::run` first thing; call it before
/// building a reqwest client of your own outside `cloudfn::run`.
#[cfg(feature = "tls")]
pub fn install_tls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Refused only when the process installed a provider already.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Reads `request` whole into an [`HttpRequest`], refusing a body over
/// `limit` bytes as [`cloudfn_core::ErrorKind::TooLarge`] (a declared
/// length over it before any of the body is read).
pub async fn read_request<B>(request: http::Request<B>, limit: usize) -> Result<HttpRequest, Error>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let declared = request.body().size_hint().lower();
    if declared > limit as u64 {
        return Err(Error::too_large(format!(
            "request body of {declared} bytes exceeds the limit of {limit} bytes"
        )));
    }
    let (parts, body) = request.into_parts();
    let body = Limited::new(body, limit).collect().await.map_err(|e| {
        if e.is::<http_body_util::LengthLimitError>() {
            Error::too_large(format!("request body exceeds the limit of {limit} bytes"))
        } else {
            Error::bad_input(format!("request body could not be read: {e}"))
        }
    })?;
    Ok(HttpRequest::from_parts(parts, body.to_bytes()))
}

/// A port number from environment variable `variable` (its value `value`),
/// `default` when unset or empty. A value that is no port number is an error
/// naming the variable, never a silent default.
pub fn port_from(variable: &str, value: Option<&str>, default: u16) -> Result<u16, Error> {
    match value.filter(|p| !p.is_empty()) {
        None => Ok(default),
        Some(port) => port.parse::<u16>().map_err(|_| {
            Error::invalid(format!(
                "{variable} is {port:?}, which is no port number (0 to 65535)"
            ))
        }),
    }
}

/// Waits for Ctrl-C or SIGTERM: what every platform sends a process it
/// stops (Azure's host, Cloud Run, a terminal).
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The trace id of W3C `traceparent` (`version-traceid-parentid-flags`),
/// else of Google's `X-Cloud-Trace-Context`.
///
/// ```
/// use cloudfn_core::HttpRequest;
///
/// let mut request = HttpRequest::new(http::Method::GET, "/");
/// request.headers.insert("x-cloud-trace-context", "105445aa7843bc8bf206b12000100000/1;o=1".parse().unwrap());
/// assert_eq!(cloudfn_server::trace_id_of(&request).as_deref(), Some("105445aa7843bc8bf206b12000100000"));
/// ```
pub fn trace_id_of(request: &HttpRequest) -> Option<String> {
    // Google's own header, `TRACE_ID/SPAN_ID;o=1`, which its load
    // balancers and Pub/Sub send beside (or instead of) `traceparent`.
    let google = || {
        request
            .header("x-cloud-trace-context")?
            .split(['/', ';'])
            .next()
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
    };
    request
        .header(cloudfn_core::propagation::TRACEPARENT)
        .and_then(cloudfn_core::propagation::trace_of_traceparent)
        .or_else(google)
}

/// An app's HTTP functions behind its router, as a server answers them.
pub struct Routed {
    /// The app's routes.
    pub router: HttpRouter,
    /// What the functions' contexts reach.
    pub services: Services,
    /// The largest body any function accepts; each function checks its own.
    pub max_body_bytes: usize,
}

impl Routed {
    /// Reads `request` and answers it through the router: 404 and 405 for
    /// what no function serves, 413 for a body over every function's limit,
    /// else the function's response. The context carries the trace id of
    /// `traceparent`.
    pub async fn handle<B>(&self, request: http::Request<B>) -> http::Response<Bytes>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let response = match read_request(request, self.max_body_bytes).await {
            Ok(request) => self.route(request).await,
            Err(error) => HttpResponse::from_error(&error),
        };
        response.into_http()
    }

    /// Answers a request already read.
    pub async fn route(&self, request: HttpRequest) -> HttpResponse {
        let trace_id = trace_id_of(&request);
        self.router
            .handle(request, |function| {
                ContextBuilder::new(function, &self.services)
                    .trace_id(trace_id)
                    .build()
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_the_variable_or_the_default() {
        assert_eq!(port_from("PORT", None, 3000).unwrap(), 3000);
        assert_eq!(port_from("PORT", Some(""), 8080).unwrap(), 8080);
        assert_eq!(port_from("PORT", Some("7071"), 3000).unwrap(), 7071);
        let error = port_from("FUNCTIONS_CUSTOMHANDLER_PORT", Some("http"), 3000).unwrap_err();
        assert!(
            error.message().contains("FUNCTIONS_CUSTOMHANDLER_PORT")
                && error.message().contains("\"http\""),
            "{error}"
        );
    }
}
