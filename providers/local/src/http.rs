//! The local HTTP server: every request goes through the app's router.
//! Connections are served by hyper directly (not `axum::serve`) for what a
//! server facing a network needs and axum does not expose: a deadline for
//! the request headers.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use cloudfn_core::{
    Error, HttpRequest, HttpResponse,
    provider::{ContextBuilder, HttpRouter, Services},
};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as _, Incoming};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub(crate) struct HttpState {
    pub router: HttpRouter,
    pub services: Services,
    /// The largest body any function accepts; each function checks its own.
    pub max_body_bytes: usize,
}

/// Accepts connections until `stop`, then lets each finish the request it
/// is on. A client that has not sent a request's whole header within
/// `header_read_timeout` is disconnected, so idle or trickling connections
/// cannot pile up.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<HttpState>,
    header_read_timeout: Duration,
    stop: CancellationToken,
) {
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
        let state = state.clone();
        let service = hyper::service::service_fn(move |request| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(handle(state, request).await) }
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

/// The address to listen on from `PORT` (3000 when unset or empty) on the
/// loopback interface.
pub(crate) fn address_from(port: Option<&str>) -> Result<SocketAddr, Error> {
    let port = match port.filter(|p| !p.is_empty()) {
        None => 3000,
        Some(port) => port.parse::<u16>().map_err(|_| {
            Error::invalid(format!(
                "PORT is {port:?}, which is no port number (0 to 65535)"
            ))
        })?,
    };
    Ok(SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)))
}

pub(crate) async fn handle(
    state: Arc<HttpState>,
    request: http::Request<Incoming>,
) -> http::Response<Full<Bytes>> {
    let response = match read_request(request, state.max_body_bytes).await {
        Ok(request) => {
            // W3C traceparent is `version-traceid-parentid-flags`.
            let trace_id = request
                .header("traceparent")
                .and_then(|t| t.split('-').nth(1))
                .map(str::to_owned);
            state
                .router
                .handle(request, |function| {
                    let ctx = ContextBuilder::new(function, &state.services);
                    match trace_id {
                        Some(trace_id) => ctx.trace_id(trace_id),
                        None => ctx,
                    }
                    .build()
                })
                .await
        }
        Err(error) => HttpResponse::from_error(&error),
    };
    response.into_http().map(Full::new)
}

async fn read_request(
    request: http::Request<Incoming>,
    limit: usize,
) -> Result<HttpRequest, Error> {
    // A declared length over the limit is refused before any of the body
    // is read, rather than after taking in `limit` bytes of it.
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
