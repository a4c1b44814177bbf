//! The functions-framework server: one process serves the one function
//! `FUNCTION_TARGET` names, as a Cloud Run service.
//!
//! An HTTP function answers on its own neutral route (the shop's
//! `checkout` on `POST /orders`). Any other function takes every request
//! at any path — a push subscription, Eventarc and Cloud Scheduler post to
//! `/` unless told otherwise — reads it by its shape ([`crate::events`])
//! and answers with the outcome ([`crate::dispatch`]).

use std::sync::Arc;

use bytes::Bytes;
use cloudfn_core::{
    Error, Function, HttpRequest, HttpResponse, Trigger, provider::Services, workflow::StepCall,
};
use cloudfn_server::Routed;
use http::Method;

use crate::{
    dispatch::{Dispatcher, Outcome},
    events::{self, Expect},
};

/// The header in which Cloud Run functions name an execution.
const EXECUTION_ID: &str = "function-execution-id";

/// The most a push envelope or CloudEvent may hold: Pub/Sub's 10 MB
/// message, base64-encoded, and its envelope.
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Answers the requests of one function.
pub struct FunctionServer {
    function: Arc<Function>,
    serving: Serving,
}

enum Serving {
    Http(Routed),
    Events(Dispatcher),
}

impl FunctionServer {
    /// The server of `function`, whose invocations reach `services`.
    pub fn new(function: Arc<Function>, services: Services) -> Result<Self, Error> {
        let serving = match function.trigger() {
            Trigger::Http { .. } => Serving::Http(Routed {
                router: cloudfn_core::provider::HttpRouter::new(std::slice::from_ref(&function))?,
                services,
                max_body_bytes: function.policy().max_body_bytes,
            }),
            _ => Serving::Events(Dispatcher::new(function.clone(), services)),
        };
        Ok(Self { function, serving })
    }

    /// Answers one request.
    pub async fn answer<B>(&self, request: http::Request<B>) -> http::Response<Bytes>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let dispatcher = match &self.serving {
            Serving::Http(routed) => return routed.handle(request).await,
            Serving::Events(dispatcher) => dispatcher,
        };
        if request.method() != Method::POST {
            let error = Error::new(
                cloudfn_core::ErrorKind::MethodNotAllowed,
                format!(
                    "function `{}` takes events, which are POSTed",
                    self.function.name()
                ),
            );
            return HttpResponse::from_error(&error)
                .with_header("allow", "POST")
                .into_http();
        }
        let request = match cloudfn_server::read_request(request, MAX_EVENT_BYTES).await {
            Ok(request) => request,
            Err(error) => return HttpResponse::from_error(&error).into_http(),
        };
        self.event(dispatcher, request).await.into_http()
    }

    /// A step function's call, from Google Workflows' `http.post`: a
    /// [`StepCall`] in, the step's output out as JSON. A failure answers its
    /// kind's status with `{kind, message}`, which the workflow's
    /// `retry` and `except` read.
    async fn step(&self, dispatcher: &Dispatcher, request: HttpRequest) -> HttpResponse {
        let call = match request.json::<StepCall>() {
            Ok(call) => call,
            Err(error) => return HttpResponse::from_error(&error),
        };
        let invocation_id = request
            .header(EXECUTION_ID)
            .map_or_else(|| call.key(), str::to_owned);
        let trace_id = cloudfn_server::trace_id_of(&request);
        match dispatcher
            .step(call, &invocation_id, trace_id.as_deref())
            .await
        {
            Ok(output) => HttpResponse::json(200, &output),
            Err(error) => HttpResponse::from_invocation_error(&error, &invocation_id),
        }
    }

    /// An event function's request: read by its shape, run, settled.
    async fn event(&self, dispatcher: &Dispatcher, request: HttpRequest) -> HttpResponse {
        let expect = match self.function.trigger() {
            Trigger::Queue { queue, .. } => Expect::Message { source: queue },
            Trigger::Topic { topic } => Expect::Message { source: topic },
            Trigger::Storage { .. } => Expect::Storage,
            Trigger::Schedule { cron } => Expect::Schedule { cron },
            Trigger::Step => return self.step(dispatcher, request).await,
            // Served by its router: see `new`.
            Trigger::Http { .. } => {
                return HttpResponse::from_error(&Error::internal(
                    "an HTTP function has no events",
                ));
            }
        };
        let delivery = match events::decode(&request.headers, &request.body, expect) {
            Ok(delivery) => delivery,
            // Not what the platform sends: the sender's mistake. Pub/Sub
            // redelivers a 400 too, until its dead-letter policy takes it.
            Err(error) => {
                tracing::warn!(function = %self.function.name(), error = %error, "a request that is no event of this function");
                return HttpResponse::from_error(&error).with_header("x-google-status", "crash");
            }
        };
        let invocation_id = request
            .header(EXECUTION_ID)
            .map(str::to_owned)
            .unwrap_or_else(|| match &delivery {
                events::Delivery::Message(pushed) => pushed.message.id.clone(),
                _ => uuid::Uuid::new_v4().to_string(),
            });
        let trace_id = cloudfn_server::trace_id_of(&request);
        match dispatcher
            .handle(delivery, &invocation_id, trace_id.as_deref())
            .await
        {
            Outcome::Settled => HttpResponse::new(204),
            Outcome::Retry(error) | Outcome::Unsettled(error) => {
                // A 5xx of the error's kind: Pub/Sub nacks anything but 2xx.
                HttpResponse::from_invocation_error(&error, &invocation_id)
                    .with_header("x-google-status", "error")
            }
        }
    }
}
