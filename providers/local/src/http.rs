//! The local HTTP server: every request goes through the app's router.

use std::sync::Arc;

use axum::body::Body;
use cloudfn_core::{
    Error, HttpRequest, HttpResponse,
    provider::{ContextBuilder, HttpRouter, Services},
};
use http_body_util::{BodyExt, Limited};

pub(crate) struct HttpState {
    pub router: HttpRouter,
    pub services: Services,
    /// The largest body any function accepts; each function checks its own.
    pub max_body_bytes: usize,
}

pub(crate) async fn handle(
    state: Arc<HttpState>,
    request: http::Request<Body>,
) -> http::Response<Body> {
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
    response.into_http().map(Body::from)
}

async fn read_request(request: http::Request<Body>, limit: usize) -> Result<HttpRequest, Error> {
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
