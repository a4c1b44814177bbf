//! The Lambda Runtime API loop of the `provided.al2023` custom runtime:
//! `next` → dispatch → `response` or `error`, and `init/error` when the
//! function cannot start.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cloudfn_core::Error;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::json;

use crate::dispatch::{Dispatcher, Invocation};

const API_VERSION: &str = "2018-06-01";

/// A client of the Lambda Runtime API at `AWS_LAMBDA_RUNTIME_API`.
#[derive(Clone)]
pub struct RuntimeApi {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

/// One invocation handed out by `next`. Its `Debug` leaves the event out:
/// events carry request headers, bodies and message contents.
pub struct NextInvocation {
    /// Its ids, deadline and trace.
    pub invocation: Invocation,
    /// The event, as JSON bytes.
    pub payload: Bytes,
}

impl std::fmt::Debug for NextInvocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NextInvocation")
            .field("invocation", &self.invocation)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .finish()
    }
}

impl RuntimeApi {
    /// A client of the Runtime API at `host:port`.
    pub fn new(address: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            base: format!("http://{address}/{API_VERSION}/runtime"),
        }
    }

    /// The client for the address Lambda sets in `AWS_LAMBDA_RUNTIME_API`.
    pub fn from_env() -> Result<Self, Error> {
        std::env::var("AWS_LAMBDA_RUNTIME_API")
            .map(|address| Self::new(&address))
            .map_err(|_| {
                Error::invalid(
                    "AWS_LAMBDA_RUNTIME_API is not set: this process is not running on Lambda",
                )
            })
    }

    async fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Bytes,
        error_type: Option<&str>,
    ) -> Result<http::Response<Bytes>, Error> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}/{path}", self.base));
        if let Some(error_type) = error_type {
            request = request.header("Lambda-Runtime-Function-Error-Type", error_type);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| Error::internal(format!("Runtime API request: {e}")))?;
        let response = self.client.request(request).await.map_err(|e| {
            Error::unavailable(format!("Runtime API at {} unreachable: {e}", self.base))
        })?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| Error::unavailable(format!("Runtime API body: {e}")))?
            .to_bytes();
        Ok(http::Response::from_parts(parts, body))
    }

    /// Waits for the next invocation.
    pub async fn next(&self) -> Result<NextInvocation, Error> {
        let response = self
            .call(http::Method::GET, "invocation/next", Bytes::new(), None)
            .await?;
        if !response.status().is_success() {
            return Err(Error::unavailable(format!(
                "Runtime API next answered {}",
                response.status()
            )));
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let request_id = header("Lambda-Runtime-Aws-Request-Id").ok_or_else(|| {
            Error::internal("Runtime API next gave no Lambda-Runtime-Aws-Request-Id")
        })?;
        let deadline = header("Lambda-Runtime-Deadline-Ms")
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(instant_of_epoch_ms);
        Ok(NextInvocation {
            invocation: Invocation {
                request_id,
                deadline,
                trace_id: header("Lambda-Runtime-Trace-Id"),
            },
            payload: response.into_body(),
        })
    }

    /// Reports a successful invocation.
    pub async fn respond(&self, request_id: &str, body: Bytes) -> Result<(), Error> {
        let response = self
            .call(
                http::Method::POST,
                &format!("invocation/{request_id}/response"),
                body,
                None,
            )
            .await?;
        match response.status().as_u16() {
            202 => Ok(()),
            413 => Err(Error::too_large(
                "the response is larger than Lambda allows",
            )),
            status => Err(Error::unavailable(format!(
                "Runtime API refused the response: {status}"
            ))),
        }
    }

    /// Reports a failed invocation.
    pub async fn fail(&self, request_id: &str, error: &Error) -> Result<(), Error> {
        self.call(
            http::Method::POST,
            &format!("invocation/{request_id}/error"),
            error_body(error),
            Some(&error_type(error)),
        )
        .await
        .map(|_| ())
    }

    /// Reports that the function could not start.
    pub async fn init_error(&self, error: &Error) -> Result<(), Error> {
        self.call(
            http::Method::POST,
            "init/error",
            error_body(error),
            Some(&error_type(error)),
        )
        .await
        .map(|_| ())
    }
}

fn error_type(error: &Error) -> String {
    format!("cloudfn.{}", error.kind())
}

fn error_body(error: &Error) -> Bytes {
    let mut body = json!({ "errorMessage": error.message(), "errorType": error_type(error) });
    if let Some(field) = error.field() {
        body["field"] = json!(field);
    }
    Bytes::from(body.to_string())
}

/// Lambda gives the deadline as wall-clock milliseconds; the context wants an `Instant`.
fn instant_of_epoch_ms(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// The function this process serves: `_HANDLER` names it (the SAM template
/// sets `Handler` to the function's name), else `AWS_LAMBDA_FUNCTION_NAME`.
pub fn handler_name() -> Option<String> {
    ["_HANDLER", "AWS_LAMBDA_FUNCTION_NAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

/// Serves invocations until the Runtime API goes away. A failing or
/// panicking handler fails its own invocation; the loop goes on.
pub async fn run_loop(api: &RuntimeApi, dispatcher: &Dispatcher) -> Result<(), Error> {
    let function = dispatcher.function();
    loop {
        let next = api.next().await?;
        let request_id = next.invocation.request_id.clone();
        let trace_id = next.invocation.trace_id.clone();
        let outcome =
            crate::trace::scope(trace_id, dispatcher.handle(&next.payload, &next.invocation)).await;
        let reported = match outcome {
            Ok(answer) => match api.respond(&request_id, answer).await {
                Err(e) if e.kind() == cloudfn_core::ErrorKind::TooLarge => {
                    api.fail(&request_id, &e).await
                }
                other => other,
            },
            Err(error) => {
                tracing::warn!(function = %function.name(), request_id, error = %error, "invocation failed");
                api.fail(&request_id, &error).await
            }
        };
        if let Err(e) = reported {
            tracing::error!(request_id, error = %e, "could not report the invocation's outcome");
        }
    }
}
