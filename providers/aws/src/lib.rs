//! cloudfn-aws: cloudfn on AWS Lambda.
//!
//! - [`serve`] runs the Lambda Runtime API loop of the `provided.al2023`
//!   custom runtime for the function `_HANDLER` names.
//! - [`events`] maps every common Lambda event (API Gateway v1/v2, Function
//!   URLs, ALB, SQS, SNS, EventBridge, S3) to neutral events and back.
//! - [`client`] has `QueueClient` on SQS, `TopicClient` on SNS and a Lambda
//!   invoker, configured from the environment.

/// The AWS SDK crates cloudfn-aws is built on, for code that goes beyond
/// the neutral clients (the same versions, so no second copy is compiled).
pub mod sdk {
    pub use aws_config as config;
    pub use aws_sdk_lambda as lambda;
    pub use aws_sdk_sns as sns;
    pub use aws_sdk_sqs as sqs;
}

pub mod client;
pub mod deploy;
pub mod emulate;
pub mod events;
pub mod runtime;

use std::sync::Arc;

use std::time::Duration;

use cloudfn_core::{App, Capabilities, Error, provider::Services};

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

/// The services of a Lambda process (SQS and SNS clients configured from
/// the environment, and `app`'s state), and the SQS client itself for the
/// runtime's own use (backoff, dead letters).
pub fn services(app: &App) -> (Services, Arc<client::SqsQueueClient>) {
    let config = Arc::new(client::LazyConfig::default());
    let sqs = Arc::new(client::SqsQueueClient::lazy(config.clone()));
    let sns = Arc::new(client::SnsTopicClient::lazy(config));
    (app.services(PROVIDER, sqs.clone(), sns), sqs)
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
    let function = match app
        .validate_for(&CAPABILITIES)
        .and_then(|()| app.select(function, "_HANDLER"))
    {
        Ok(function) => function.clone(),
        Err(error) => {
            tracing::error!(error = %error, "function cannot start");
            if let Err(e) = api.init_error(&error).await {
                tracing::error!(error = %e, "could not report the init error");
            }
            return Err(error);
        }
    };
    let (services, sqs) = services(&app);
    tracing::info!(function = %function.name(), "serving on the Lambda Runtime API");
    let dispatcher = events::Dispatcher::new(function, services, Some(sqs));
    runtime::run_loop(api, &dispatcher).await
}
