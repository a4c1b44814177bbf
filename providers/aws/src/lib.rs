//! cloudfn-aws: cloudfn on AWS Lambda.
//!
//! - [`serve`] runs the Lambda Runtime API loop of the `provided.al2023`
//!   custom runtime for the function `_HANDLER` names.
//! - [`events`] maps every common Lambda event (API Gateway v1/v2, Function
//!   URLs, ALB, SQS, SNS, EventBridge, S3) to neutral events and back.
//! - `client` (features `sqs`, `sns`, `lambda`) has `QueueClient` on SQS,
//!   `TopicClient` on SNS and a Lambda invoker, configured from the
//!   environment.
//! - `deploy` (feature `deploy`) renders the SAM template and zips the
//!   bootstrap; `emulate` (feature `emulate`) runs Lambda's side of the
//!   protocol on this machine.
//!
//! A bootstrap carries only what it runs: without client features it links
//! no AWS SDK at all, and the deployment and emulation code never reaches it.

#![forbid(unsafe_code)]

/// The AWS SDK crates cloudfn-aws is built on, for code that goes beyond
/// the neutral clients (the same versions, so no second copy is compiled).
#[cfg(feature = "sdk")]
pub mod sdk {
    #[cfg(feature = "credential-chain")]
    pub use aws_config as config;
    #[cfg(feature = "dynamodb")]
    pub use aws_sdk_dynamodb as dynamodb;
    #[cfg(feature = "lambda")]
    pub use aws_sdk_lambda as lambda;
    #[cfg(feature = "sns")]
    pub use aws_sdk_sns as sns;
    #[cfg(feature = "sqs")]
    pub use aws_sdk_sqs as sqs;
    pub use aws_types as types;
}

#[cfg(feature = "sdk")]
pub mod client;
#[cfg(feature = "deploy")]
pub mod deploy;
pub mod dispatch;
#[cfg(feature = "emulate")]
pub mod emulate;
pub mod events;
pub mod names;
pub mod runtime;
mod trace;

use std::sync::Arc;

use std::time::Duration;

use cloudfn_core::{
    App, AppSpec, Capabilities, Error, FunctionSpec, conventions,
    provider::{QueueClient, Services, StoreClient, TopicClient},
    workflow::WorkflowClient,
};

/// The provider name handlers see in `Context::provider`.
pub const PROVIDER: &str = "aws";

/// What Lambda and its event sources can do, checked when a bootstrap
/// starts and when the SAM template is rendered.
pub const CAPABILITIES: Capabilities = Capabilities {
    provider: PROVIDER,
    fifo_queues: true,
    // SQS event source mappings: 10,000 per batch, 10 from a FIFO queue.
    max_batch_size: 10_000,
    max_fifo_batch_size: 10,
    // Asynchronous invocations are retried at most twice.
    max_event_attempts: Some(3),
    storage_triggers: true,
    // Lambda's synchronous payload limit.
    max_body_bytes: 6 * 1024 * 1024,
    // Lambda's 900 s, less the 2 s the runtime keeps to report.
    max_timeout: Duration::from_secs(898),
    // An SQS event source's MaximumConcurrency.
    queue_concurrency: 2..=1000,
};

/// Checks `spec` against what AWS can do ([`CAPABILITIES`]) and refuses
/// names that would meet on AWS ([`names::check_collisions`]): what a
/// bootstrap checks when it starts and the SAM rendering before it renders.
pub fn validate(spec: &AppSpec) -> Result<(), Error> {
    spec.validate_for(&CAPABILITIES)?;
    names::check_collisions(spec)
}

/// The services of a Lambda process: the SQS, SNS and DynamoDB clients
/// this build has (configured from the environment on first use) and
/// `app`'s state; and what settles failed deliveries on SQS (backoff, dead
/// letters).
pub fn services(app: &App) -> (Services, Option<Arc<dyn dispatch::QueueSettler>>) {
    #[cfg(feature = "sdk")]
    let clients = client::ClientBuilder::from_env();
    #[cfg(feature = "sqs")]
    let (queues, settler): (
        Arc<dyn QueueClient>,
        Option<Arc<dyn dispatch::QueueSettler>>,
    ) = {
        let sqs = Arc::new(clients.sqs());
        (sqs.clone(), Some(sqs))
    };
    #[cfg(not(feature = "sqs"))]
    let (queues, settler): (
        Arc<dyn QueueClient>,
        Option<Arc<dyn dispatch::QueueSettler>>,
    ) = (Arc::new(Unbuilt("sqs")), None);
    #[cfg(feature = "sns")]
    let topics: Arc<dyn TopicClient> = Arc::new(clients.sns());
    #[cfg(not(feature = "sns"))]
    let topics: Arc<dyn TopicClient> = Arc::new(Unbuilt("sns"));
    #[cfg(feature = "dynamodb")]
    let stores: Arc<dyn StoreClient> = Arc::new(clients.dynamodb());
    #[cfg(not(feature = "dynamodb"))]
    let stores: Arc<dyn StoreClient> = Arc::new(Unbuilt("dynamodb"));
    #[cfg(feature = "sfn")]
    let workflows: Arc<dyn WorkflowClient> = Arc::new(clients.sfn());
    #[cfg(not(feature = "sfn"))]
    let workflows: Arc<dyn WorkflowClient> = Arc::new(Unbuilt("sfn"));
    let services = app
        .services(PROVIDER, queues, topics, stores)
        .with_workflows(workflows);
    (services, settler)
}

/// Stands in for a client this build left out; [`check_build`] refuses an
/// app that would need it, so it is reached only from outside any function.
#[cfg(not(all(
    feature = "sqs",
    feature = "sns",
    feature = "dynamodb",
    feature = "sfn"
)))]
struct Unbuilt(&'static str);

#[cfg(not(all(
    feature = "sqs",
    feature = "sns",
    feature = "dynamodb",
    feature = "sfn"
)))]
impl Unbuilt {
    fn refuse(&self, what: &str) -> Error {
        Error::invalid(format!(
            "cannot reach {what}: this bootstrap was built without cloudfn's `aws-{}` feature",
            self.0
        ))
    }
}

#[cfg(not(feature = "sfn"))]
#[async_trait::async_trait]
impl WorkflowClient for Unbuilt {
    async fn start(
        &self,
        workflow: &str,
        _: serde_json::Value,
        _: Option<String>,
    ) -> Result<String, Error> {
        Err(self.refuse(&format!("workflow `{workflow}`")))
    }
}

#[cfg(not(feature = "dynamodb"))]
#[async_trait::async_trait]
impl StoreClient for Unbuilt {
    async fn get(
        &self,
        store: &str,
        _: &str,
    ) -> Result<Option<cloudfn_core::store::Record>, Error> {
        Err(self.refuse(&format!("store `{store}`")))
    }
    async fn put(
        &self,
        store: &str,
        _: &str,
        _: cloudfn_core::store::Write,
    ) -> Result<bool, Error> {
        Err(self.refuse(&format!("store `{store}`")))
    }
    async fn delete(
        &self,
        store: &str,
        _: &str,
        _: cloudfn_core::store::Condition,
    ) -> Result<bool, Error> {
        Err(self.refuse(&format!("store `{store}`")))
    }
}

#[cfg(not(feature = "sqs"))]
#[async_trait::async_trait]
impl QueueClient for Unbuilt {
    async fn send(&self, queue: &str, _: cloudfn_core::OutgoingMessage) -> Result<String, Error> {
        Err(self.refuse(&format!("queue `{queue}`")))
    }
}

#[cfg(not(feature = "sns"))]
#[async_trait::async_trait]
impl TopicClient for Unbuilt {
    async fn publish(
        &self,
        topic: &str,
        _: cloudfn_core::OutgoingMessage,
    ) -> Result<String, Error> {
        Err(self.refuse(&format!("topic `{topic}`")))
    }
}

/// The client features `function` needs on Lambda: `sqs` to consume a
/// queue (backoff and dead letters), to dead-letter a schedule or storage
/// event that fails for good, or to send to a queue; `sns` to publish;
/// `dynamodb` to use a store (idempotency included).
/// `cargo cloudfn package` turns on what an app's functions need, and no
/// more.
pub fn needed_features(function: &FunctionSpec) -> Vec<&'static str> {
    let mut features = Vec::new();
    let dead_letters =
        conventions::failure_queue(&function.name, &function.trigger, &function.policy).is_some();
    if dead_letters || !function.sends_to.is_empty() {
        features.push("sqs");
    }
    if !function.publishes_to.is_empty() {
        features.push("sns");
    }
    if !function.stores.is_empty() {
        features.push("dynamodb");
    }
    if !function.starts.is_empty() {
        features.push("sfn");
    }
    features
}

/// Refuses, at start, a function this build cannot serve: one that needs an
/// SDK client left out of the build, named with the feature to turn on.
fn check_build(spec: &AppSpec, function: &str) -> Result<(), Error> {
    const BUILT: &[&str] = &[
        #[cfg(feature = "sqs")]
        "sqs",
        #[cfg(feature = "sns")]
        "sns",
        #[cfg(feature = "dynamodb")]
        "dynamodb",
        #[cfg(feature = "sfn")]
        "sfn",
    ];
    let built = |feature: &str| BUILT.contains(&feature);
    let Some(function) = spec.function(function) else {
        return Ok(());
    };
    match needed_features(function).into_iter().find(|f| !built(f)) {
        Some(missing) => Err(Error::invalid(format!(
            "function `{}` needs the {} client, which this bootstrap was built without: \
             turn on cloudfn's `aws-{missing}` feature (`cargo cloudfn package` does it from the app){}",
            function.name,
            missing.to_uppercase(),
            if missing == "dynamodb" {
                "; its stores (idempotency claims included) would otherwise be nowhere every instance sees"
            } else {
                ""
            }
        ))),
        None => Ok(()),
    }
}

/// Serves the function of `app` that `_HANDLER` (else
/// `AWS_LAMBDA_FUNCTION_NAME`) names, over the Lambda Runtime API at
/// `AWS_LAMBDA_RUNTIME_API`, until the Runtime API goes away.
pub async fn serve(app: App) -> Result<(), Error> {
    let api = runtime::RuntimeApi::from_env()?;
    serve_on(app, &api, runtime::handler_name().as_deref()).await
}

/// Serves function `function` of `app` over `api`. An app that does not
/// validate, or has no such function, is reported through `init/error`
/// before the error is returned.
pub async fn serve_on(
    app: App,
    api: &runtime::RuntimeApi,
    function: Option<&str>,
) -> Result<(), Error> {
    let ready = || {
        app.validate()?;
        let spec = app.spec();
        validate(&spec)?;
        let function = app.select(function, "_HANDLER")?;
        check_build(&spec, function.name())?;
        Ok::<_, Error>(function.clone())
    };
    let function = match ready() {
        Ok(function) => function,
        Err(error) => {
            tracing::error!(error = %error, "function cannot start");
            if let Err(e) = api.init_error(&error).await {
                tracing::error!(error = %e, "could not report the init error");
            }
            return Err(error);
        }
    };
    let (services, settler) = services(&app);
    tracing::info!(function = %function.name(), "serving on the Lambda Runtime API");
    let dispatcher = dispatch::Dispatcher::new(function, services, settler);
    runtime::run_loop(api, &dispatcher).await
}

#[cfg(all(
    test,
    not(feature = "sqs"),
    not(feature = "sns"),
    not(feature = "dynamodb")
))]
mod lean_build_tests {
    use cloudfn_core::{Context, Function, HttpRequest, HttpResponse, Message, Method};

    use super::*;

    async fn consume(_: Message<serde_json::Value>, _: Context) -> Result<(), Error> {
        Ok(())
    }

    async fn hello(_: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
        Ok(HttpResponse::new(200))
    }

    /// A bootstrap built without the SQS client refuses, at start, a
    /// function that would need it, naming the feature; one that needs no
    /// client starts.
    #[test]
    fn a_missing_client_is_named_at_start() {
        let app = App::new("lean")
            .function(Function::queue("work", "jobs", consume))
            .function(Function::http("hi", Method::Get, "/", hello).publishes_to("news"));
        let err = check_build(&app.spec(), "work").unwrap_err();
        assert!(err.message().contains("`aws-sqs`"), "{err}");
        let err = check_build(&app.spec(), "hi").unwrap_err();
        assert!(err.message().contains("`aws-sns`"), "{err}");
        let stateful = App::new("lean")
            .function(Function::http("hi", Method::Get, "/", hello).reads_store("orders"));
        let err = check_build(&stateful.spec(), "hi").unwrap_err();
        assert!(err.message().contains("`aws-dynamodb`"), "{err}");
        let plain = App::new("lean").function(Function::http("hi", Method::Get, "/", hello));
        check_build(&plain.spec(), "hi").unwrap();
    }
}
