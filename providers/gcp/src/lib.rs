//! cloudfn-gcp: cloudfn on Google Cloud Run functions (Cloud Functions 2nd
//! gen), where a Rust function deploys as a container.
//!
//! - [`serve`] is the functions-framework contract: it listens on
//!   `0.0.0.0:$PORT` and serves the one function `FUNCTION_TARGET` names
//!   ([`runtime`]). An HTTP function answers on its own route; a queue,
//!   topic, storage or schedule function takes every request at any path:
//!   Pub/Sub push envelopes, CloudEvents from Eventarc (binary and
//!   structured), legacy background events and Cloud Scheduler's calls
//!   ([`events`]).
//! - A delivery's outcome is the function's retry policy: success acks
//!   (204), a retryable failure nacks (500) for Pub/Sub to redeliver after
//!   the subscription's backoff, and what fails for good goes to the
//!   function's dead-letter topic before it is acked ([`dispatch`]).
//! - [`client`] has Pub/Sub for queues and topics, on Google's official
//!   client, and Firestore for stores ([`names`] maps neutral names to
//!   topics and collections).
//! - Logs are one JSON object per line on stdout, as Cloud Logging reads
//!   them, with the invocation's trace ([`logs`]).

#![forbid(unsafe_code)]

pub mod client;
#[cfg(feature = "deploy")]
pub mod deploy;
pub mod dispatch;
#[cfg(feature = "emulate")]
pub mod emulate;
pub mod events;
pub mod logs;
pub mod names;
pub mod runtime;

use std::{sync::Arc, time::Duration};

use cloudfn_core::{
    App, AppSpec, Capabilities, Error, Trigger,
    provider::{Services, StoreClient},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The provider name handlers see in `Context::provider`.
pub const PROVIDER: &str = "gcp";

/// The variable naming the function this process serves.
pub const TARGET_VARIABLE: &str = "FUNCTION_TARGET";

/// The variable with the port Cloud Run sends requests to.
pub const PORT_VARIABLE: &str = "PORT";

/// The variable with the function's signature type as the functions
/// framework takes it: `http`, `event` or `cloudevent`.
pub const SIGNATURE_VARIABLE: &str = "FUNCTION_SIGNATURE_TYPE";

/// The port when [`PORT_VARIABLE`] is unset, as the functions framework has it.
pub const DEFAULT_PORT: u16 = 8080;

/// What Cloud Run functions, Pub/Sub and Eventarc can do, checked when the
/// server starts and when the deployment is rendered.
pub const CAPABILITIES: Capabilities = Capabilities {
    provider: PROVIDER,
    // Pub/Sub ordering keys, on a subscription with message ordering.
    fifo_queues: true,
    // A push subscription delivers one message per request: a function's
    // batch size is a bound, met one message at a time (a pull receives at
    // most 1,000).
    max_batch_size: 1000,
    max_fifo_batch_size: 1000,
    // Eventarc and Cloud Scheduler redeliver by their own settings, not by
    // the function's policy: the server retries those in the invocation.
    max_event_attempts: None,
    storage_triggers: true,
    // Cloud Run's request size limit (HTTP/1).
    max_body_bytes: 32 * 1024 * 1024,
    // Cloud Run's longest request timeout.
    max_timeout: Duration::from_secs(3600),
    // `containerConcurrency`: at most 1000 requests at once per instance.
    queue_concurrency: 1..=1000,
};

/// Checks `spec` against what Google Cloud can do ([`CAPABILITIES`]).
pub fn validate(spec: &AppSpec) -> Result<(), Error> {
    spec.validate_for(&CAPABILITIES)
}

/// The services of a function: the app's state, Pub/Sub for its queues
/// and topics and Firestore for its stores, in the project
/// `GOOGLE_CLOUD_PROJECT` names (on the emulators `PUBSUB_EMULATOR_HOST`
/// and `FIRESTORE_EMULATOR_HOST` name, if set); Workflows, if a function
/// starts workflows ([`client::WorkflowExecutions`]). Each client is made when a
/// function first uses it, so a function starts without waiting on
/// certificates or credentials. Without a project, sending, publishing and
/// stores fail saying so.
pub fn services(app: &App) -> Services {
    if let Err(error) = names::project() {
        tracing::warn!(error = %error, "queues, topics and stores are unreachable");
    }
    let pubsub = Arc::new(client::OnFirstUse::new(|| {
        Box::pin(client::PubSub::from_env())
    }));
    let stores: Arc<dyn StoreClient> = Arc::new(client::OnFirstUse::new(|| {
        Box::pin(async { client::Firestore::from_env() })
    }));
    let services = app.services(PROVIDER, pubsub.clone(), pubsub, stores);
    if app.functions().iter().all(|f| f.starts().is_empty()) {
        return services;
    }
    let claims = services.store(cloudfn_core::workflow::EXECUTIONS_STORE);
    services.with_workflows(Arc::new(client::WorkflowExecutions::from_env(claims)))
}

/// Serves the function [`TARGET_VARIABLE`] names on `0.0.0.0:$PORT` until
/// SIGTERM, then lets requests in flight finish (Cloud Run allows 10 s).
pub async fn serve(app: App) -> Result<(), Error> {
    let port = cloudfn_server::port_from(
        PORT_VARIABLE,
        std::env::var(PORT_VARIABLE).ok().as_deref(),
        DEFAULT_PORT,
    )?;
    let listener = TcpListener::bind(("0.0.0.0", port)).await.map_err(|e| {
        Error::unavailable(format!("cannot listen on 0.0.0.0:{port}: {e}")).with_source(e)
    })?;
    let stop = CancellationToken::new();
    let stopping = stop.clone();
    tokio::spawn(async move {
        cloudfn_server::stop_signal().await;
        stopping.cancel();
    });
    let target = std::env::var(TARGET_VARIABLE).ok();
    if let Ok(signature) = std::env::var(SIGNATURE_VARIABLE) {
        let function = app.select(target.as_deref(), TARGET_VARIABLE)?;
        check_signature(function.name(), function.trigger(), &signature)?;
    }
    let services = services(&app);
    serve_on(app, target.as_deref(), services, listener, stop).await
}

/// Checks the signature type the deployment declared against the
/// function's trigger: an HTTP function is `http`; any other takes every
/// event shape (a request says by its shape which it is), so `event` and
/// `cloudevent` both fit it.
fn check_signature(function: &str, trigger: &Trigger, signature: &str) -> Result<(), Error> {
    let http = matches!(trigger, Trigger::Http { .. });
    match signature.trim() {
        "" => Ok(()),
        "http" if http => Ok(()),
        "event" | "cloudevent" if !http => Ok(()),
        "http" | "event" | "cloudevent" => Err(Error::invalid(format!(
            "{SIGNATURE_VARIABLE}={signature}, but function `{function}` is {}: deploy it with \
             signature type {}",
            if http {
                "an HTTP function"
            } else {
                "an event function"
            },
            if http {
                "`http`"
            } else {
                "`cloudevent` (or `event`)"
            },
        ))),
        other => Err(Error::invalid(format!(
            "{SIGNATURE_VARIABLE}={other} is none of `http`, `event` and `cloudevent`"
        ))),
    }
}

/// Serves function `target` of `app`, whose invocations reach `services`,
/// on `listener` until `stop`: what [`serve`] and tests run. An unknown or
/// missing target fails at once, listing the app's functions.
pub async fn serve_on(
    app: App,
    target: Option<&str>,
    services: Services,
    listener: TcpListener,
    stop: CancellationToken,
) -> Result<(), Error> {
    app.validate()?;
    validate(&app.spec())?;
    let function = app.select(target, TARGET_VARIABLE)?.clone();
    let server = Arc::new(runtime::FunctionServer::new(function.clone(), services)?);
    tracing::info!(function = %function.name(), "serving as a Cloud Run function");
    cloudfn_server::serve(listener, Duration::from_secs(30), stop, move |request| {
        let server = server.clone();
        async move { server.answer(request).await }
    })
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use cloudfn_core::Method;

    use super::*;

    #[test]
    fn the_signature_type_must_fit_the_trigger() {
        let http = Trigger::http(Method::Get, "/");
        let queue = Trigger::Queue {
            queue: "orders".into(),
            fifo: false,
        };
        assert!(check_signature("page", &http, "http").is_ok());
        assert!(check_signature("charge", &queue, "cloudevent").is_ok());
        assert!(check_signature("charge", &queue, "event").is_ok());
        let wrong = check_signature("charge", &queue, "http").unwrap_err();
        assert!(wrong.message().contains("`charge`"), "{wrong}");
        assert!(wrong.message().contains("cloudevent"), "{wrong}");
        assert!(check_signature("page", &http, "cloudevent").is_err());
        let unknown = check_signature("page", &http, "grpc").unwrap_err();
        assert!(unknown.message().contains("grpc"), "{unknown}");
    }
}
