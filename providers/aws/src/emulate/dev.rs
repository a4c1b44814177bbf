//! A whole app on this machine the way Lambda runs it: each function's real
//! bootstrap binary behind its own Runtime API, an HTTP API that turns
//! requests into API Gateway v2 events, and event source mappings that feed
//! SQS queues (at any endpoint: LocalStack) to the functions in batches,
//! deleting what succeeded and leaving `batchItemFailures` for the queue's
//! own redrive.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use axum::body::Body;
use cloudfn_core::{
    AppSpec, Error, FunctionSpec, HttpRequest, HttpResponse, Trigger, conventions,
    provider::{Route, Routes, Ticker, unrouted},
};
use http_body_util::BodyExt;
use serde_json::json;

use super::{Outcome, RuntimeApiServer};
use crate::{
    client::sdk_error,
    events::{http as http_events, queue as queue_events},
    names::{queue_url_variable, sqs_name, store_table_variable, topic_arn_variable},
};

/// What to run and where the AWS services are.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// The app's spec.
    pub spec: AppSpec,
    /// The bootstrap binary (built with the `aws` feature).
    pub binary: PathBuf,
    /// Where SQS and SNS answer (LocalStack's URL).
    pub endpoint_url: String,
    /// Where DynamoDB answers (moto's URL), for an app with stores.
    pub dynamodb_endpoint_url: Option<String>,
    /// The region to use.
    pub region: String,
    /// The HTTP API's port; 0 picks a free one.
    pub http_port: u16,
    /// The app's prefix for every queue and topic name, as a stack name
    /// would be (`<prefix>-<name>`; none when empty).
    pub prefix: String,
    /// More environment for the bootstrap processes.
    pub env: Vec<(String, String)>,
}

impl DevOptions {
    /// Options with region `us-east-1`, a free port and no prefix.
    pub fn new(spec: AppSpec, binary: PathBuf, endpoint_url: impl Into<String>) -> Self {
        Self {
            spec,
            binary,
            endpoint_url: endpoint_url.into(),
            dynamodb_endpoint_url: None,
            region: "us-east-1".into(),
            http_port: 0,
            prefix: String::new(),
            env: Vec::new(),
        }
    }
}

/// The running emulation; stop it with [`DevStack::stop`].
pub struct DevStack {
    http_addr: SocketAddr,
    queue_urls: BTreeMap<String, String>,
    topic_arns: BTreeMap<String, String>,
    tables: BTreeMap<String, String>,
    children: Vec<tokio::process::Child>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
    prefix: String,
    /// Every function's Runtime API, alive as long as the stack.
    functions: Vec<Arc<Function>>,
}

struct Function {
    spec: FunctionSpec,
    server: RuntimeApiServer,
}

/// The app's queues at the endpoint, by neutral name.
#[derive(Default)]
struct Queues {
    urls: BTreeMap<String, String>,
    arns: BTreeMap<String, String>,
}

impl DevStack {
    /// Creates the app's queues (with redrive policies) and topics (with a
    /// queue per subscriber) at the endpoint, starts one bootstrap per
    /// function, the HTTP API and the event source mappings.
    pub async fn start(options: DevOptions) -> Result<Self, Error> {
        let config = crate::client::sdk_loader()
            .endpoint_url(&options.endpoint_url)
            .region(aws_config::Region::new(options.region.clone()))
            .test_credentials()
            .load()
            .await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let sns = aws_sdk_sns::Client::new(&config);
        let queues = create_queues(&sqs, &options).await?;
        let topic_arns = create_topics(&sns, &options, &queues).await?;
        let tables = match (
            &options.dynamodb_endpoint_url,
            options.spec.stores.is_empty(),
        ) {
            (_, true) => BTreeMap::new(),
            (Some(url), false) => {
                let dynamodb = crate::client::ClientBuilder::from_env()
                    .endpoint_url(url)
                    .region(&options.region)
                    .test_credentials()
                    .dynamodb();
                super::tables::create_tables(dynamodb.sdk().await, &options.spec, &options.prefix)
                    .await?
            }
            (None, false) => {
                return Err(Error::invalid(
                    "the app uses stores, but DevOptions names no DynamoDB endpoint",
                ));
            }
        };
        let mut stack = Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            queue_urls: queues.urls.clone(),
            topic_arns,
            tables,
            children: Vec::new(),
            tasks: Vec::new(),
            sqs,
            sns,
            prefix: options.prefix.clone(),
            functions: Vec::new(),
        };
        let functions = stack.start_functions(&options).await?;
        stack.start_triggers(&functions, &queues, &options.region)?;
        stack.functions = functions.values().cloned().collect();
        stack.serve_http(options.http_port, functions).await?;
        Ok(stack)
    }

    /// One bootstrap process per function, each behind its own Runtime API.
    async fn start_functions(
        &mut self,
        options: &DevOptions,
    ) -> Result<HashMap<String, Arc<Function>>, Error> {
        let mut functions = HashMap::new();
        for function in &options.spec.functions {
            let server = RuntimeApiServer::start(&function.name).await?;
            let child = self.spawn_bootstrap(options, &function.name, &server.address())?;
            self.children.push(child);
            let function = Function {
                spec: function.clone(),
                server,
            };
            functions.insert(function.spec.name.clone(), Arc::new(function));
        }
        Ok(functions)
    }

    /// What fires the functions besides HTTP: an EventBridge schedule per
    /// schedule function, an SQS event source mapping per consumer.
    fn start_triggers(
        &mut self,
        functions: &HashMap<String, Arc<Function>>,
        queues: &Queues,
        region: &str,
    ) -> Result<(), Error> {
        for function in functions.values() {
            if let Trigger::Schedule { cron } = &function.spec.trigger {
                let ticker = Ticker::new(cron.parse()?);
                self.tasks
                    .push(tokio::spawn(fire_schedule(function.clone(), ticker)));
            }
            if let Some(queue) = &function.spec.consumes {
                let mapping = EventSourceMapping {
                    sqs: self.sqs.clone(),
                    url: queues.urls[queue].clone(),
                    arn: queues.arns[queue].clone(),
                    region: region.to_owned(),
                    function: function.clone(),
                };
                self.tasks.push(tokio::spawn(mapping.run()));
            }
        }
        Ok(())
    }

    fn spawn_bootstrap(
        &self,
        options: &DevOptions,
        function: &str,
        runtime_api: &str,
    ) -> Result<tokio::process::Child, Error> {
        let mut command = tokio::process::Command::new(&options.binary);
        command
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("_HANDLER", function)
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_REGION", &options.region)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_ENDPOINT_URL", &options.endpoint_url)
            .env_remove("CLOUDFN_PRINT_SPEC")
            .kill_on_drop(true);
        for (name, url) in &self.queue_urls {
            command.env(queue_url_variable(name), url);
        }
        for (name, arn) in &self.topic_arns {
            command.env(topic_arn_variable(name), arn);
        }
        for (name, table) in &self.tables {
            command.env(store_table_variable(name), table);
        }
        if let Some(url) = &options.dynamodb_endpoint_url {
            command.env("AWS_ENDPOINT_URL_DYNAMODB", url);
        }
        command.envs(options.env.iter().map(|(k, v)| (k, v)));
        command.spawn().map_err(|e| {
            Error::unavailable(format!("cannot start {}: {e}", options.binary.display()))
        })
    }

    /// Serves the HTTP API (API Gateway v2 events) and, beside it, Lambda's
    /// Invoke API, so `LambdaInvoker` and the AWS CLI reach the functions.
    async fn serve_http(
        &mut self,
        port: u16,
        functions: HashMap<String, Arc<Function>>,
    ) -> Result<(), Error> {
        let routes = Routes::new(functions.values().filter_map(|f| match &f.spec.trigger {
            Trigger::Http { method, route } => {
                Some((f.spec.name.as_str(), *method, route.as_str(), f.clone()))
            }
            _ => None,
        }))?;
        let routes = Arc::new(routes);
        let by_name = Arc::new(functions);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| Error::unavailable(format!("cannot listen on port {port}: {e}")))?;
        self.http_addr = listener
            .local_addr()
            .map_err(|e| Error::internal(format!("listener address: {e}")))?;
        let app = axum::Router::new()
            .route(
                "/2015-03-31/functions/{name}/invocations",
                axum::routing::post(move |path, headers, body| {
                    invoke_api(by_name.clone(), path, headers, body)
                }),
            )
            .fallback(move |request: http::Request<Body>| {
                let routes = routes.clone();
                async move {
                    api_gateway(&routes, request)
                        .await
                        .into_http()
                        .map(Body::from)
                }
            });
        self.tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "emulated HTTP API failed");
            }
        }));
        Ok(())
    }

    /// The emulated HTTP API's base URL.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// The URL of queue `name`, by its neutral name
    /// ([`conventions::subscription_queue`] for a subscriber's queue).
    pub fn queue_url(&self, name: &str) -> Option<&str> {
        self.queue_urls.get(name).map(String::as_str)
    }

    /// The ARN of topic `name`.
    pub fn topic_arn(&self, name: &str) -> Option<&str> {
        self.topic_arns.get(name).map(String::as_str)
    }

    /// The SQS client the emulation uses.
    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }

    /// Subscribes a new queue `<prefix>-<name>` to the app's topic `topic`
    /// with raw delivery, as another service would watch it; returns the
    /// queue's URL.
    pub async fn watch(&self, topic: &str, name: &str) -> Result<String, Error> {
        let topic_arn = self
            .topic_arn(topic)
            .ok_or_else(|| Error::not_found(format!("the app has no topic `{topic}`")))?;
        let physical = conventions::physical_name(&self.prefix, name);
        let url = self
            .sqs
            .create_queue()
            .queue_name(&physical)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("creating queue `{physical}`"), e))?
            .queue_url
            .unwrap_or_default();
        self.sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn(&self.sqs, &url).await?)
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .map_err(|e| sdk_error(&format!("subscribing `{physical}` to `{topic}`"), e))?;
        Ok(url)
    }

    /// Stops the bootstraps, the HTTP API and the event source mappings.
    pub async fn stop(mut self) {
        for child in &mut self.children {
            let _ = child.kill().await;
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The ARN of the queue at `url`.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, Error> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sdk_error(&format!("reading queue {url}"), e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| Error::not_found(format!("queue {url} has no ARN")))
}

/// Creates every queue of the spec, dead-letter queues first (the others
/// name them in their redrive policies).
async fn create_queues(sqs: &aws_sdk_sqs::Client, options: &DevOptions) -> Result<Queues, Error> {
    let spec = &options.spec;
    let mut queues = Queues::default();
    let ordered = spec
        .queues
        .iter()
        .filter(|q| q.is_dead_letter)
        .chain(spec.queues.iter().filter(|q| !q.is_dead_letter));
    for queue in ordered {
        let physical =
            conventions::physical_name(&options.prefix, &sqs_name(&queue.name, queue.fifo));
        let mut create = sqs.create_queue().queue_name(&physical);
        if let Some(visibility) = queue.visibility_timeout {
            create = create.attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility.as_secs().to_string(),
            );
        }
        if queue.fifo {
            create = create.attributes(QueueAttributeName::FifoQueue, "true");
        }
        if let (Some(dlq), Some(count)) = (&queue.dead_letter, queue.max_receive_count)
            && let Some(arn) = queues.arns.get(dlq)
        {
            let policy = json!({ "deadLetterTargetArn": arn, "maxReceiveCount": count });
            create = create.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let url = create
            .send()
            .await
            .map_err(|e| sdk_error(&format!("creating queue `{physical}`"), e))?
            .queue_url
            .unwrap_or_default();
        let arn = queue_arn(sqs, &url).await?;
        queues.urls.insert(queue.name.clone(), url);
        queues.arns.insert(queue.name.clone(), arn);
    }
    Ok(queues)
}

/// Creates every topic and subscribes each subscriber's queue to it, with
/// raw delivery as the SAM template does; returns the topics' ARNs.
async fn create_topics(
    sns: &aws_sdk_sns::Client,
    options: &DevOptions,
    queues: &Queues,
) -> Result<BTreeMap<String, String>, Error> {
    let mut arns = BTreeMap::new();
    for topic in &options.spec.topics {
        let arn = sns
            .create_topic()
            .name(conventions::physical_name(&options.prefix, &topic.name))
            .send()
            .await
            .map_err(|e| sdk_error(&format!("creating topic `{}`", topic.name), e))?
            .topic_arn
            .unwrap_or_default();
        arns.insert(topic.name.clone(), arn);
    }
    for queue in &options.spec.queues {
        let Some(topic) = &queue.subscribes_to else {
            continue;
        };
        sns.subscribe()
            .topic_arn(&arns[topic])
            .protocol("sqs")
            .endpoint(&queues.arns[&queue.name])
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .map_err(|e| sdk_error(&format!("subscribing `{}` to `{topic}`", queue.name), e))?;
    }
    Ok(arns)
}

/// What an EventBridge schedule rule does: a `Scheduled Event` at each time
/// the cron expression names.
async fn fire_schedule(function: Arc<Function>, mut ticker: Ticker) {
    while let Some(tick) = ticker.tick().await {
        let mut event = EventBridgeEvent::<serde_json::Value>::default();
        event.version = Some("0".to_owned());
        event.id = Some(uuid::Uuid::new_v4().to_string());
        event.detail_type = "Scheduled Event".to_owned();
        event.source = "aws.events".to_owned();
        event.account = Some("000000000000".to_owned());
        event.time = Some(tick.scheduled_time);
        event.region = Some("us-east-1".to_owned());
        event.resources = Some(vec![format!(
            "arn:aws:events:us-east-1:000000000000:rule/{}",
            function.spec.name
        )]);
        event.detail = serde_json::Value::Object(Default::default());
        let invoked = match serde_json::to_vec(&event) {
            Ok(payload) => {
                function
                    .server
                    .invoke(payload, function.spec.policy.timeout)
                    .await
            }
            Err(e) => Err(Error::internal(format!("scheduled event: {e}"))),
        };
        if let Err(e) = invoked {
            tracing::warn!(function = %function.spec.name, error = %e, "scheduled invocation failed");
        }
    }
}

/// What API Gateway does for one request: route it, send the function an
/// HTTP API v2 event, and turn its answer into the response.
async fn api_gateway(routes: &Routes<Arc<Function>>, request: http::Request<Body>) -> HttpResponse {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return HttpResponse::from_error(&Error::bad_input(format!("body: {e}"))),
    };
    let mut request = HttpRequest::from_parts(parts, body);
    let route = routes.route(&request.method, &request.path);
    if let Some(response) = unrouted(&route, &request.method, &request.path) {
        return response;
    }
    let Route::Matched {
        target: function,
        params,
    } = route
    else {
        unreachable!("unrouted answers every other case")
    };
    request.path_params = params;
    let route_key = match &function.spec.trigger {
        Trigger::Http { method, route } => format!("{method} {route}"),
        _ => "$default".to_owned(),
    };
    let event = http_events::v2_event(&request, &route_key, &uuid::Uuid::new_v4().to_string());
    let answer = match serde_json::to_vec(&event) {
        Ok(payload) => {
            function
                .server
                .invoke(payload, function.spec.policy.timeout)
                .await
        }
        Err(e) => Err(Error::internal(format!("HTTP API event: {e}"))),
    };
    let answer = answer
        .and_then(|outcome| outcome.json())
        .and_then(http_events::decode_v2_response);
    match answer {
        Ok(response) => response,
        // API Gateway answers a failed integration with 500 / 503 / 504 and no detail.
        Err(e) if e.kind() == cloudfn_core::ErrorKind::Timeout => {
            HttpResponse::json(504, &json!({"message": "Endpoint request timed out"}))
        }
        Err(e) => {
            tracing::warn!(function = %function.spec.name, error = %e, "integration failed");
            HttpResponse::json(500, &json!({"message": "Internal Server Error"}))
        }
    }
}

/// Lambda's Invoke API (`POST /2015-03-31/functions/{name}/invocations`):
/// `RequestResponse` answers the function's result (with
/// `X-Amz-Function-Error` when it failed), `Event` queues it and answers 202.
async fn invoke_api(
    functions: Arc<HashMap<String, Arc<Function>>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    headers: http::HeaderMap,
    payload: axum::body::Bytes,
) -> http::Response<Body> {
    // FunctionName may be a name, a partial ARN or a full ARN.
    let name = name.rsplit(':').next().unwrap_or(&name).to_owned();
    let Some(function) = functions.get(&name).cloned() else {
        return http::Response::builder()
            .status(404)
            .header("x-amzn-ErrorType", "ResourceNotFoundException")
            .body(Body::from(
                json!({"Type": "User", "message": format!("Function not found: {name}")})
                    .to_string(),
            ))
            .unwrap_or_default();
    };
    let timeout = function.spec.policy.timeout;
    let kind = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    if kind == "Event" {
        tokio::spawn(async move {
            if let Err(e) = function.server.invoke(payload, timeout).await {
                tracing::warn!(function = %function.spec.name, error = %e, "async invocation failed");
            }
        });
        return http::Response::builder()
            .status(202)
            .body(Body::empty())
            .unwrap_or_default();
    }
    let (body, error) = match function.server.invoke(payload, timeout).await {
        Ok(Outcome::Response(body)) => (body, None),
        Ok(Outcome::Error { body, .. }) => (body.to_string().into(), Some("Unhandled")),
        Err(e) => (
            json!({"errorMessage": e.message(), "errorType": "Sandbox.Timedout"})
                .to_string()
                .into(),
            Some("Unhandled"),
        ),
    };
    let mut response = http::Response::builder()
        .status(200)
        .header("x-amz-executed-version", "$LATEST");
    if let Some(error) = error {
        response = response.header("x-amz-function-error", error);
    }
    response.body(Body::from(body)).unwrap_or_default()
}

/// Lambda's SQS event source mapping for one function.
struct EventSourceMapping {
    sqs: aws_sdk_sqs::Client,
    url: String,
    arn: String,
    region: String,
    function: Arc<Function>,
}

impl EventSourceMapping {
    async fn run(self) {
        let batch = self.function.spec.policy.batch_size.clamp(1, 10) as i32;
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(batch)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await;
            let messages = match received {
                Ok(out) => out.messages.unwrap_or_default(),
                Err(e) => {
                    tracing::warn!(queue = %self.url, error = %sdk_error("receiving", e), "event source mapping could not poll");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if !messages.is_empty() {
                self.deliver(messages).await;
            }
        }
    }

    async fn deliver(&self, messages: Vec<aws_sdk_sqs::types::Message>) {
        struct Owned {
            id: String,
            receipt: String,
            body: String,
            attributes: HashMap<String, String>,
            message_attributes: BTreeMap<String, (String, String)>,
        }
        let owned: Vec<Owned> = messages
            .into_iter()
            .map(|m| Owned {
                id: m.message_id.unwrap_or_default(),
                receipt: m.receipt_handle.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
                attributes: m
                    .attributes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v))
                    .collect(),
                message_attributes: m
                    .message_attributes
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(k, v)| v.string_value.map(|s| (k, (v.data_type, s))))
                    .collect(),
            })
            .collect();
        let records: Vec<queue_events::RecordParts<'_>> = owned
            .iter()
            .map(|m| queue_events::RecordParts {
                message_id: &m.id,
                receipt_handle: &m.receipt,
                body: &m.body,
                attributes: &m.attributes,
                message_attributes: &m.message_attributes,
                queue_arn: &self.arn,
                region: &self.region,
            })
            .collect();
        let all: Vec<String> = owned.iter().map(|m| m.id.clone()).collect();
        let outcome = match serde_json::to_vec(&queue_events::event(&records)) {
            Ok(payload) => {
                self.function
                    .server
                    .invoke(payload, self.function.spec.policy.timeout)
                    .await
            }
            Err(e) => Err(Error::internal(format!("SQS event: {e}"))),
        };
        let failed = match outcome {
            Ok(Outcome::Response(body)) => queue_events::failed_ids(&body, &all),
            Ok(outcome) => {
                tracing::warn!(function = %self.function.spec.name, ?outcome, "batch failed; every message returns to the queue");
                all.clone()
            }
            Err(e) => {
                tracing::warn!(function = %self.function.spec.name, error = %e, "batch failed; every message returns to the queue");
                all.clone()
            }
        };
        let entries: Vec<DeleteMessageBatchRequestEntry> = owned
            .iter()
            .enumerate()
            .filter(|(_, m)| !failed.contains(&m.id))
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&m.receipt)
                    .build()
                    .ok()
            })
            .collect();
        if entries.is_empty() {
            return;
        }
        if let Err(e) = self
            .sqs
            .delete_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            tracing::warn!(queue = %self.url, error = %sdk_error("deleting", e), "processed messages will be redelivered");
        }
    }
}
