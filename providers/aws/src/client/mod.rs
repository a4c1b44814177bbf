//! `QueueClient` on SQS, `TopicClient` on SNS, and Lambda invocation, all
//! configured from the environment the way `aws-config` does it
//! (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL` for LocalStack).

#[cfg(feature = "dynamodb")]
mod dynamodb;
#[cfg(feature = "lambda")]
mod lambda;
#[cfg(feature = "sfn")]
mod sfn;
#[cfg(feature = "sns")]
mod sns;
#[cfg(feature = "sqs")]
mod sqs;
mod traced;

#[cfg(feature = "dynamodb")]
pub use dynamodb::{DynamoDbStoreClient, TTL_ATTRIBUTE};
#[cfg(feature = "lambda")]
pub use lambda::LambdaInvoker;
#[cfg(feature = "sfn")]
pub use sfn::StepFunctionsClient;
#[cfg(feature = "sns")]
pub use sns::SnsTopicClient;
#[cfg(feature = "sqs")]
pub use sqs::SqsQueueClient;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use cloudfn_core::Error;

/// The HTTPS client every SDK client shares: rustls with ring (smaller and
/// quicker to build than the SDK's default aws-lc), sending the invocation's
/// X-Ray trace ([`traced`]).
fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    static HTTPS: std::sync::OnceLock<aws_smithy_runtime_api::client::http::SharedHttpClient> =
        std::sync::OnceLock::new();
    HTTPS
        .get_or_init(|| {
            use aws_smithy_http_client::tls;
            traced::Traced::around(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(
                        tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https(),
            )
        })
        .clone()
}

/// The time limits of every SDK call: a connection that hangs or a service
/// that stops answering fails the call (retryably) instead of holding an
/// invocation until Lambda kills it, batch and all. `longest` is the most
/// one attempt of the client's slowest call may take.
fn timeouts(longest: std::time::Duration) -> aws_smithy_types::timeout::TimeoutConfig {
    aws_smithy_types::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(2))
        .read_timeout(longest)
        .operation_attempt_timeout(longest)
        // The SDK's standard retries: three attempts.
        .operation_timeout(longest * 3)
        .build()
}

/// The longest one SQS or SNS call should take: they answer in
/// milliseconds, and cloudfn never long-polls for more than a few seconds.
const MESSAGING_CALL: std::time::Duration = std::time::Duration::from_secs(10);

/// The loader of SDK configuration with the SDK's whole credential chain
/// (feature `credential-chain`), on cloudfn's HTTPS client.
///
/// ```no_run
/// # async fn demo() {
/// let config = cloudfn_aws::client::sdk_loader()
///     .endpoint_url("http://127.0.0.1:4566")
///     .load()
///     .await;
/// let sqs = cloudfn_aws::sdk::sqs::Client::new(&config);
/// # }
/// ```
#[cfg(feature = "credential-chain")]
pub fn sdk_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(timeouts(MESSAGING_CALL))
}

/// The configuration Lambda's environment gives: region, credentials
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, which
/// Lambda always sets) and `AWS_ENDPOINT_URL`. Without the credential chain
/// (profiles, STS, instance metadata) a bootstrap is megabytes smaller.
#[cfg_attr(feature = "credential-chain", allow(dead_code))]
fn from_environment(settings: &Settings) -> aws_types::SdkConfig {
    use aws_credential_types::{Credentials, provider::SharedCredentialsProvider};
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let credentials = if settings.test_credentials {
        Some(Credentials::new("test", "test", None, None, "cloudfn-test"))
    } else if let (Some(id), Some(secret)) =
        (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
    {
        Some(Credentials::new(
            id,
            secret,
            var("AWS_SESSION_TOKEN"),
            None,
            "environment",
        ))
    } else {
        tracing::warn!(
            "no AWS credentials in the environment; build with cloudfn's `aws-credential-chain` feature to read profiles or instance metadata"
        );
        None
    };
    let region = settings
        .region
        .clone()
        .or_else(|| var("AWS_REGION"))
        .or_else(|| var("AWS_DEFAULT_REGION"));
    let mut config = aws_types::SdkConfig::builder()
        .behavior_version(
            aws_smithy_runtime_api::client::behavior_version::BehaviorVersion::latest(),
        )
        .http_client(https_client())
        .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
        .time_source(aws_smithy_async::time::SystemTimeSource::new())
        .retry_config(aws_smithy_types::retry::RetryConfig::standard())
        .timeout_config(timeouts(MESSAGING_CALL))
        .region(region.map(aws_types::region::Region::new));
    if let Some(credentials) = credentials {
        config = config.credentials_provider(SharedCredentialsProvider::new(credentials));
    }
    if let Some(url) = settings
        .endpoint_url
        .clone()
        .or_else(|| var("AWS_ENDPOINT_URL"))
    {
        config = config.endpoint_url(url);
    }
    config.build()
}

/// Builds cloudfn's AWS clients. Every client one builder makes shares one
/// SDK configuration, loaded from the environment (`AWS_REGION`, the
/// credential chain, `AWS_ENDPOINT_URL`) the first time a client is used, so
/// a function that never sends pays nothing for it at cold start. Settings
/// given here win over the environment.
///
/// ```no_run
/// # #[cfg(feature = "sqs")]
/// # async fn demo() -> Result<(), cloudfn_core::Error> {
/// use cloudfn_core::{OutgoingMessage, provider::QueueClient};
///
/// let sqs = cloudfn_aws::client::ClientBuilder::from_env()
///     .endpoint_url("http://127.0.0.1:4566")
///     .region("us-east-1")
///     .sqs();
/// sqs.send("orders", OutgoingMessage::new("{}")).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClientBuilder {
    config: std::sync::Arc<LazyConfig>,
}

/// What a [`ClientBuilder`] overrides, and the configuration once loaded.
#[derive(Debug, Default)]
struct LazyConfig {
    settings: Settings,
    loaded: tokio::sync::OnceCell<aws_types::SdkConfig>,
}

#[derive(Debug, Clone, Default)]
struct Settings {
    endpoint_url: Option<String>,
    region: Option<String>,
    test_credentials: bool,
}

impl LazyConfig {
    async fn get(&self) -> &aws_types::SdkConfig {
        self.loaded.get_or_init(|| load(&self.settings)).await
    }
}

#[cfg(not(feature = "credential-chain"))]
async fn load(settings: &Settings) -> aws_types::SdkConfig {
    from_environment(settings)
}

#[cfg(feature = "credential-chain")]
async fn load(settings: &Settings) -> aws_types::SdkConfig {
    let mut loader = sdk_loader();
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = &settings.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if settings.test_credentials {
        loader = loader.test_credentials();
    }
    loader.load().await
}

impl ClientBuilder {
    /// Everything from the environment, as Lambda sets it.
    pub fn from_env() -> Self {
        Self::default()
    }

    fn with(self, change: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = self.config.settings.clone();
        change(&mut settings);
        Self {
            config: std::sync::Arc::new(LazyConfig {
                settings,
                loaded: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// Sends every request to `url` (LocalStack, an emulator).
    pub fn endpoint_url(self, url: impl Into<String>) -> Self {
        self.with(|s| s.endpoint_url = Some(url.into()))
    }

    /// The region.
    pub fn region(self, region: impl Into<String>) -> Self {
        self.with(|s| s.region = Some(region.into()))
    }

    /// Fixed dummy credentials, for emulators that check none.
    pub fn test_credentials(self) -> Self {
        self.with(|s| s.test_credentials = true)
    }

    /// The SQS client ([`cloudfn_core::provider::QueueClient`]).
    #[cfg(feature = "sqs")]
    pub fn sqs(&self) -> SqsQueueClient {
        SqsQueueClient::with_config(self.config.clone())
    }

    /// The SNS client ([`cloudfn_core::provider::TopicClient`]).
    #[cfg(feature = "sns")]
    pub fn sns(&self) -> SnsTopicClient {
        SnsTopicClient::with_config(self.config.clone())
    }

    /// The Step Functions client ([`cloudfn_core::workflow::WorkflowClient`]).
    #[cfg(feature = "sfn")]
    pub fn sfn(&self) -> StepFunctionsClient {
        StepFunctionsClient::with_config(self.config.clone())
    }

    /// The DynamoDB client ([`cloudfn_core::provider::StoreClient`]).
    #[cfg(feature = "dynamodb")]
    pub fn dynamodb(&self) -> DynamoDbStoreClient {
        DynamoDbStoreClient::with_config(self.config.clone())
    }

    /// The Lambda invoker.
    #[cfg(feature = "lambda")]
    pub fn lambda(&self) -> LambdaInvoker {
        LambdaInvoker::with_config(self.config.clone())
    }
}

/// An SDK client, built from the shared configuration on first use.
#[derive(Debug)]
pub(crate) struct LazyClient<C> {
    client: tokio::sync::OnceCell<C>,
    config: std::sync::Arc<LazyConfig>,
}

impl<C> LazyClient<C> {
    fn new(config: std::sync::Arc<LazyConfig>) -> Self {
        Self {
            client: tokio::sync::OnceCell::new(),
            config,
        }
    }

    pub(crate) async fn get(&self, make: fn(&aws_types::SdkConfig) -> C) -> &C {
        self.client
            .get_or_init(|| async { make(self.config.get().await) })
            .await
    }
}

/// Neutral names resolved to URLs or ARNs: from the variable the deployment
/// sets (`names::queue_url_variable` and the like), else looked up once, and
/// cached.
#[cfg(any(feature = "sqs", feature = "sns", feature = "sfn"))]
#[derive(Debug, Default)]
pub(crate) struct Resolved(std::sync::Mutex<std::collections::HashMap<String, String>>);

#[cfg(any(feature = "sqs", feature = "sns", feature = "sfn"))]
impl Resolved {
    pub(crate) async fn resolve<F>(
        &self,
        variable: fn(&str) -> String,
        name: &str,
        lookup: impl FnOnce() -> F,
    ) -> Result<String, Error>
    where
        F: std::future::Future<Output = Result<String, Error>>,
    {
        if let Some(found) = self.0.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
            return Ok(found.clone());
        }
        let found = match std::env::var(variable(name)) {
            Ok(found) => found,
            Err(_) => lookup().await?,
        };
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), found.clone());
        Ok(found)
    }
}

/// Maps an SDK error into the neutral error: throttling stays retryable,
/// missing resources are `not_found`, refusals `forbidden`, transport
/// failures `unavailable`.
pub(crate) fn sdk_error<E, R>(what: &str, error: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = error.code().unwrap_or_default().to_owned();
    let message = format!(
        "{what}: {}",
        error
            .message()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{error}"))
    );
    let kind = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            cloudfn_core::ErrorKind::Unavailable
        }
        SdkError::ConstructionFailure(_) => cloudfn_core::ErrorKind::Invalid,
        _ if code.contains("Throttl")
            || code.contains("RequestLimitExceeded")
            || code == "TooManyRequestsException" =>
        {
            cloudfn_core::ErrorKind::Throttled
        }
        _ if code.contains("NonExistent")
            || code.contains("NotFound")
            || code.contains("DoesNotExist") =>
        {
            cloudfn_core::ErrorKind::NotFound
        }
        _ if code.contains("AccessDenied")
            || code.contains("AuthorizationError")
            || code == "UnrecognizedClientException" =>
        {
            cloudfn_core::ErrorKind::Forbidden
        }
        _ if code.contains("Invalid")
            || code.contains("Validation")
            || code.contains("TooLong") =>
        {
            cloudfn_core::ErrorKind::Invalid
        }
        _ => cloudfn_core::ErrorKind::Unavailable,
    };
    let message = if code.is_empty() {
        message
    } else {
        format!("{message} ({code})")
    };
    Error::new(kind, message).with_source(error.into_source().map_or_else(
        |_| std::io::Error::other("unknown SDK error"),
        std::io::Error::other,
    ))
}

#[cfg(all(test, feature = "sqs"))]
mod tests {
    use super::*;

    /// Every call has time limits, so a service that stops answering fails
    /// the call instead of holding the invocation past Lambda's deadline.
    #[tokio::test]
    async fn every_client_has_time_limits() {
        let limits = |t: &aws_smithy_types::timeout::TimeoutConfig| {
            (
                t.connect_timeout(),
                t.operation_attempt_timeout(),
                t.operation_timeout(),
            )
        };
        let lean = from_environment(&Settings::default());
        let (connect, attempt, operation) = limits(lean.timeout_config().unwrap());
        assert!(connect.is_some() && attempt.is_some() && operation.is_some());
        assert!(attempt.unwrap() <= MESSAGING_CALL);

        let clients = ClientBuilder::from_env()
            .endpoint_url("http://127.0.0.1:9")
            .region("us-east-1")
            .test_credentials();
        let sqs = clients.sqs();
        let (_, attempt, operation) = limits(sqs.sdk().await.config().timeout_config().unwrap());
        assert_eq!(attempt, Some(MESSAGING_CALL));
        assert!(operation.is_some());
        #[cfg(feature = "lambda")]
        {
            let lambda = clients.lambda();
            let config = lambda
                .sdk()
                .await
                .config()
                .timeout_config()
                .unwrap()
                .clone();
            let (_, attempt, _) = limits(&config);
            assert!(
                attempt.unwrap() > std::time::Duration::from_secs(900),
                "a synchronous invocation may run Lambda's whole 15 minutes"
            );
        }
    }

    /// What a lean bootstrap (no credential chain) runs on: a client
    /// configured from the environment alone reaches SQS.
    #[tokio::test]
    async fn the_environment_alone_configures_a_working_client() {
        let Some(url) = std::env::var("CLOUDFN_TEST_LOCALSTACK_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            assert_ne!(
                std::env::var("TEST_INTEGRATION").as_deref(),
                Ok("1"),
                "TEST_INTEGRATION=1 but CLOUDFN_TEST_LOCALSTACK_URL is unset"
            );
            eprintln!("SKIPPED: LocalStack is not running (scripts/test starts it)");
            return;
        };
        let config = from_environment(&Settings {
            endpoint_url: Some(url),
            region: Some("us-east-1".into()),
            test_credentials: true,
        });
        let sqs = aws_sdk_sqs::Client::new(&config);
        let name = format!("env-{}", uuid::Uuid::new_v4().simple());
        let queue = sqs.create_queue().queue_name(&name).send().await.unwrap();
        let queue = queue.queue_url.unwrap();
        sqs.send_message()
            .queue_url(&queue)
            .message_body("hello")
            .send()
            .await
            .unwrap();
        let got = sqs
            .receive_message()
            .queue_url(&queue)
            .wait_time_seconds(2)
            .send()
            .await
            .unwrap();
        assert_eq!(got.messages.unwrap()[0].body.as_deref(), Some("hello"));
    }
}
