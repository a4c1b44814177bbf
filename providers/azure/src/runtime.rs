//! The custom-handler server: the Functions host starts this process with
//! `FUNCTIONS_CUSTOMHANDLER_PORT`, and POSTs each invocation of function
//! `f` to `/f` on `127.0.0.1` at that port. One process serves every
//! function of the app.
//!
//! Apps whose functions are all HTTP are deployed with
//! `enableForwardingHttpRequest` ([`crate::forwards_http`]): the host then
//! forwards each request as the client sent it, and the app's router
//! answers it, as on the local runtime.

use std::{collections::HashMap, sync::Arc};

use bytes::Bytes;
use cloudfn_core::{App, Error, HttpResponse, provider::Services};
use cloudfn_server::Routed;
use http::{Method, StatusCode, header::CONTENT_TYPE};

use crate::{
    dispatch::{Dispatcher, Requeue},
    events::{InvocationRequest, InvocationResponse},
    logs,
};

/// The header in which the host names the invocation.
const INVOCATION_ID: &str = "x-azure-functions-invocationid";

/// The most an invocation payload may hold beyond the largest body a
/// function accepts: the binding's JSON around it, escaped.
const PAYLOAD_OVERHEAD: usize = 1024 * 1024;

/// Answers the host's requests for every function of one app.
pub struct CustomHandler {
    functions: HashMap<String, Dispatcher>,
    /// The app's HTTP functions, when the host forwards their requests.
    forwarded: Option<Routed>,
    max_payload: usize,
}

impl CustomHandler {
    /// The handler of `app`, whose functions reach `services`, and settle
    /// failed queue deliveries through `requeue`.
    pub fn new(
        app: &App,
        services: Services,
        requeue: Option<Arc<dyn Requeue>>,
    ) -> Result<Self, Error> {
        let max_body_bytes = app
            .functions()
            .iter()
            .map(|f| f.policy().max_body_bytes)
            .max()
            .unwrap_or(0);
        let forwarded = if crate::forwards_http(&app.spec()) {
            Some(Routed {
                router: app.router()?,
                services: services.clone(),
                max_body_bytes,
            })
        } else {
            None
        };
        let functions = app
            .functions()
            .iter()
            .map(|f| {
                let dispatcher = Dispatcher::new(f.clone(), services.clone(), requeue.clone())?;
                Ok((f.name().to_owned(), dispatcher))
            })
            .collect::<Result<_, Error>>()?;
        Ok(Self {
            functions,
            forwarded,
            max_payload: max_body_bytes
                .saturating_mul(2)
                .saturating_add(PAYLOAD_OVERHEAD),
        })
    }

    /// Answers one request of the host.
    pub async fn answer<B>(&self, request: http::Request<B>) -> http::Response<Bytes>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if let Some(routed) = &self.forwarded {
            return routed.handle(request).await;
        }
        let name = request.uri().path().trim_start_matches('/').to_owned();
        let Some(dispatcher) = self.functions.get(&name) else {
            if request.uri().path() == "/" {
                // The host's and the platform's probes of whether we are up.
                return HttpResponse::new(200).into_http();
            }
            let known: Vec<&String> = self.functions.keys().collect();
            let error = Error::not_found(format!(
                "no function `{name}` here: the host invokes POST /<function>, one of {known:?}"
            ));
            return HttpResponse::from_error(&error).into_http();
        };
        if request.method() != Method::POST {
            let error = Error::new(
                cloudfn_core::ErrorKind::MethodNotAllowed,
                "the host invokes a function with POST",
            );
            return HttpResponse::from_error(&error)
                .with_header("allow", "POST")
                .into_http();
        }
        let invocation_id = request
            .headers()
            .get(INVOCATION_ID)
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
        let payload = match cloudfn_server::read_request(request, self.max_payload).await {
            Ok(request) => request.body,
            Err(error) => {
                return reply(
                    StatusCode::from_u16(error.kind().http_status())
                        .unwrap_or(StatusCode::BAD_REQUEST),
                    error_response(&error),
                );
            }
        };
        // Boxed: the invocation's future is the largest part of this one,
        // which hyper moves while setting it up.
        let (outcome, lines) = Box::pin(logs::capture(async {
            let request = InvocationRequest::from_slice(&payload)?;
            dispatcher.handle(&request, &invocation_id).await
        }))
        .await;
        match outcome {
            Ok(mut answer) => {
                answer.body.logs = lines;
                reply(
                    StatusCode::from_u16(answer.status)
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    answer.body,
                )
            }
            Err(error) => {
                tracing::warn!(function = %name, invocation_id, error = %error, "the invocation payload cannot be read");
                let mut body = error_response(&error);
                body.logs.splice(0..0, lines);
                reply(StatusCode::BAD_REQUEST, body)
            }
        }
    }
}

/// The answer for a payload that cannot be read: its error in `Logs`, so
/// the host's log of the invocation says what was wrong.
fn error_response(error: &Error) -> InvocationResponse {
    InvocationResponse {
        logs: vec![format!("ERROR {error}")],
        ..InvocationResponse::default()
    }
}

fn reply(status: StatusCode, body: InvocationResponse) -> http::Response<Bytes> {
    let body = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = http::Response::new(Bytes::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
