//! Lambda's side of the Runtime API, served locally: hand events to a
//! bootstrap (in this process or a real binary) and collect what it answers.
//! The tests use it, and so does `cargo cloudfn dev --cloud aws`.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use cloudfn_core::Error;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// How a bootstrap answered one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It posted a response.
    Response(Bytes),
    /// It posted an error.
    Error {
        /// `Lambda-Runtime-Function-Error-Type`.
        error_type: Option<String>,
        /// The error document (`errorMessage`, `errorType`).
        body: Value,
    },
}

impl Outcome {
    /// The response as JSON, or an error naming what the function reported.
    pub fn json(&self) -> Result<Value, Error> {
        match self {
            Self::Response(bytes) => serde_json::from_slice(bytes)
                .map_err(|e| Error::internal(format!("response is not JSON: {e}"))),
            Self::Error { body, .. } => Err(Error::internal(format!("function error: {body}"))),
        }
    }
}

struct Pending {
    request_id: String,
    payload: Bytes,
    timeout: Duration,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<Value>>,
    function_arn: String,
    /// Turns true once a bootstrap has asked for its first invocation.
    polled: tokio::sync::watch::Sender<bool>,
}

/// A Runtime API server for one function, on a loopback port.
pub struct RuntimeApiServer {
    addr: SocketAddr,
    sender: mpsc::Sender<Pending>,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApiServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApiServer {
    /// Starts a server for function `function_name` on a free loopback port.
    pub async fn start(function_name: &str) -> Result<Self, Error> {
        let (sender, receiver) = mpsc::channel(1024);
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(receiver),
            waiting: Mutex::default(),
            init_error: Mutex::default(),
            polled: tokio::sync::watch::Sender::new(false),
            function_arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{function_name}"),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| Error::unavailable(format!("cannot listen for the Runtime API: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::internal(format!("listener address: {e}")))?;
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "Runtime API server failed");
            }
        });
        Ok(Self {
            addr,
            sender,
            shared,
            server,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API` for the bootstrap.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Hands `payload` to the bootstrap with a deadline `timeout` from now
    /// and waits for its answer; a bootstrap that has not answered a second
    /// after the deadline is a timeout error, as on Lambda.
    pub async fn invoke(
        &self,
        payload: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Outcome, Error> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.shared
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(request_id.clone(), tx);
        let pending = Pending {
            request_id: request_id.clone(),
            payload: payload.into(),
            timeout,
        };
        self.sender
            .send(pending)
            .await
            .map_err(|_| Error::unavailable("the Runtime API server stopped"))?;
        match tokio::time::timeout(timeout + Duration::from_secs(1), rx).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err(Error::internal("invocation dropped")),
            Err(_) => {
                self.shared
                    .waiting
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&request_id);
                Err(Error::timeout(format!(
                    "the function did not answer within {timeout:?}"
                )))
            }
        }
    }

    /// Waits until a bootstrap has asked for its first invocation: the end
    /// of its cold start.
    pub async fn ready(&self) {
        let mut polled = self.shared.polled.subscribe();
        let _ = polled.wait_for(|polled| *polled).await;
    }

    /// The error document the bootstrap posted to `init/error`, if it did.
    pub fn init_error(&self) -> Option<Value> {
        self.shared
            .init_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    shared.polled.send_replace(true);
    let Some(pending) = shared.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(pending.timeout)
        .as_millis()
        .to_string();
    let trace = format!(
        "Root=1-{:08x}-{};Parent={};Sampled=1",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
        &uuid::Uuid::new_v4().simple().to_string()[..24],
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    let headers = [
        ("Lambda-Runtime-Aws-Request-Id", pending.request_id),
        ("Lambda-Runtime-Deadline-Ms", deadline_ms),
        (
            "Lambda-Runtime-Invoked-Function-Arn",
            shared.function_arn.clone(),
        ),
        ("Lambda-Runtime-Trace-Id", trace),
        ("Content-Type", "application/json".to_owned()),
    ];
    let mut response = pending.payload.into_response();
    for (name, value) in headers {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn settle(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    let sender = shared
        .waiting
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(id);
    match sender {
        Some(sender) => {
            let _ = sender.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    settle(&shared, &id, Outcome::Response(body))
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let outcome = Outcome::Error {
        error_type: error_type(&headers),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    settle(&shared, &id, outcome)
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    *shared.init_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(body);
    StatusCode::ACCEPTED
}

fn error_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get("Lambda-Runtime-Function-Error-Type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
