//! cloudfn-azure: cloudfn on Azure Functions, as a custom handler.
//!
//! - [`serve`] answers the Functions host on `FUNCTIONS_CUSTOMHANDLER_PORT`
//!   for every function of the app ([`runtime`]): HTTP (wrapped, or
//!   forwarded as sent for all-HTTP apps), Storage queues, Service Bus
//!   topics, timers and blob changes ([`events`]).
//! - Failed queue deliveries follow the function's retry policy: a retry
//!   is re-enqueued after its backoff, a delivery that fails for good goes
//!   to the function's dead-letter queue ([`dispatch`]).
//! - [`client`] has the Storage clients on azure_core: accounts from
//!   `AzureWebJobsStorage` and SharedKey signing.
//! - Handler `tracing` events of an invocation go back to the host in its
//!   `Logs` ([`logs`]).
//! - Workflows run in the function app, on cloudfn's durable orchestrator
//!   with its progress in Table Storage, driven through a Storage queue
//!   ([`workflows`]).

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
pub mod workflows;

use std::{sync::Arc, time::Duration};

use cloudfn_core::{
    App, AppSpec, Capabilities, Error, Trigger,
    messaging::NoMessaging,
    provider::{QueueClient, Services, StoreClient, TopicClient},
    store::NoStore,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The provider name handlers see in `Context::provider`.
pub const PROVIDER: &str = "azure";

/// The variable in which the Functions host gives the handler its port.
pub const PORT_VARIABLE: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";

/// What Azure Functions and Storage queues can do, checked when the
/// handler starts and when the function app is rendered.
pub const CAPABILITIES: Capabilities = Capabilities {
    provider: PROVIDER,
    // Storage queues keep no order.
    fifo_queues: false,
    // The host fetches up to 32 messages at once (`batchSize`) and runs
    // each in its own invocation.
    max_batch_size: 32,
    max_fifo_batch_size: 32,
    // Timers and blob changes are retried in the invocation, by the
    // function's own policy.
    max_event_attempts: None,
    storage_triggers: true,
    // The host's request size limit.
    max_body_bytes: 100 * 1024 * 1024,
    // The Consumption plan's longest `functionTimeout`.
    max_timeout: Duration::from_secs(600),
    // Not per function on Azure: [`validate`] refuses a consumer's limit.
    queue_concurrency: 1..=32,
};

/// Checks `spec`, as the function app runs it ([`workflows::hosted_spec`]),
/// against what Azure can do ([`CAPABILITIES`]) and refuses names Azure
/// cannot take ([`names::check`]).
pub fn validate(spec: &AppSpec) -> Result<(), Error> {
    let spec = &workflows::hosted_spec(spec)?;
    spec.validate_for(&CAPABILITIES)?;
    if let Some(f) = spec
        .functions
        .iter()
        .find(|f| matches!(f.policy.access, cloudfn_core::Access::Jwt { .. }))
    {
        return Err(jwt_unsupported(&f.name));
    }
    // The host's queue concurrency (`batchSize`, `newBatchThreshold`) is
    // per instance and the same for every function of the app: a limit
    // rendered nowhere would be a silent cap of nothing.
    if let Some(f) = spec.functions.iter().find(|f| {
        f.policy.max_concurrency.is_some()
            && matches!(f.trigger, Trigger::Queue { .. } | Trigger::Topic { .. })
    }) {
        return Err(Error::invalid(format!(
            "function `{}` limits its concurrency, which Azure Functions cannot do per function (the host's queue concurrency is per instance and app-wide): drop `.max_concurrency(..)` for Azure",
            f.name
        )));
    }
    names::check(spec)
}

/// Tokens would have to be checked in the handler, which cloudfn does not
/// do yet; the host itself knows only function keys.
fn jwt_unsupported(function: &str) -> Error {
    Error::invalid(format!(
        "function `{function}` accepts JSON Web Tokens, which cloudfn does not check on Azure yet: declare it public (and put App Service authentication in front) or private (function keys)"
    ))
}

/// Whether the host forwards `spec`'s HTTP requests as they are
/// (`enableForwardingHttpRequest`): when every function is HTTP. The host
/// forwards only functions with one HTTP trigger and one HTTP output, and
/// sends the others' invocations to `/<function>`, where a forwarded
/// request for a route of the same path could not be told apart.
pub fn forwards_http(spec: &AppSpec) -> bool {
    !spec.functions.is_empty()
        && spec
            .functions
            .iter()
            .all(|f| matches!(f.trigger, Trigger::Http { .. }))
}

/// The services of a function app: `app`'s state and the clients this
/// build has, configured from the app settings; and what settles failed
/// queue deliveries.
///
/// Without `AzureWebJobsStorage` (or with one that does not read) there is
/// no queue or store client, and what would use one fails saying so; the
/// host could not run queue triggers either. Without `CLOUDFN_SERVICE_BUS`
/// publishing fails saying it is unset.
pub fn services(app: &App) -> (Services, Option<Arc<dyn dispatch::Requeue>>) {
    let storage = client::StorageAccount::from_env()
        .inspect_err(|error| {
            tracing::warn!(error = %error, "no Storage account: queues and stores are unreachable");
        })
        .ok();
    let requeue = storage
        .as_ref()
        .map(|account| Arc::new(client::StorageQueues::new(account)));
    let queues: Arc<dyn QueueClient> = match &requeue {
        Some(queues) => queues.clone(),
        None => Arc::new(NoMessaging),
    };
    let stores: Arc<dyn StoreClient> = match &storage {
        Some(account) => Arc::new(client::TableStore::new(account)),
        None => Arc::new(NoStore),
    };
    let topics: Arc<dyn TopicClient> = match client::ServiceBus::from_env() {
        Ok(Some(bus)) => Arc::new(bus),
        Ok(None) => Arc::new(NoMessaging),
        Err(error) => {
            tracing::warn!(error = %error, "the Service Bus connection does not read: topics are unreachable");
            Arc::new(NoMessaging)
        }
    };
    let requeue = requeue.map(|queues| queues as Arc<dyn dispatch::Requeue>);
    (app.services(PROVIDER, queues, topics, stores), requeue)
}

/// Serves `app` to the Functions host on `127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT`
/// until SIGTERM.
pub async fn serve(app: App) -> Result<(), Error> {
    let port = std::env::var(PORT_VARIABLE).map_err(|_| {
        Error::invalid(format!(
            "{PORT_VARIABLE} is not set: this process is not running under the Functions host"
        ))
    })?;
    let port = cloudfn_server::port_from(PORT_VARIABLE, Some(&port), 0)?;
    // The host dials 127.0.0.1 (IPv4) only.
    let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
        Error::unavailable(format!("cannot listen on 127.0.0.1:{port}: {e}")).with_source(e)
    })?;
    let stop = CancellationToken::new();
    let stopping = stop.clone();
    tokio::spawn(async move {
        cloudfn_server::stop_signal().await;
        stopping.cancel();
    });
    serve_on(app, listener, stop).await
}

/// Serves `app` on `listener` until `stop`: what [`serve`] and tests run.
pub async fn serve_on(
    app: App,
    listener: TcpListener,
    stop: CancellationToken,
) -> Result<(), Error> {
    app.validate()?;
    validate(&app.spec())?;
    // Held until the end: the orchestrator's functions hold it weakly.
    let (app, hosted) = workflows::host(app);
    let (services, requeue) = services(&app);
    let services = match &hosted {
        Some(hosted) => hosted.install(&app, services),
        None => services,
    };
    let handler = Arc::new(runtime::CustomHandler::new(&app, services, requeue)?);
    tracing::info!(
        functions = app.functions().len(),
        "serving the Functions host"
    );
    cloudfn_server::serve(listener, Duration::from_secs(30), stop, move |request| {
        let handler = handler.clone();
        async move { handler.answer(request).await }
    })
    .await;
    Ok(())
}
