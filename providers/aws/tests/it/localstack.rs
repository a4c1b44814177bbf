//! The SQS/SNS clients and the event paths into a function, on LocalStack.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use cloudfn_aws::{
    client::ClientBuilder,
    dispatch::{Dispatcher, Invocation},
    events::queue as queue_events,
};
use cloudfn_core::{
    App, Context, Error, Function, Message, OutgoingMessage, RetryPolicy, ScheduledTick,
    messaging::dead_letter,
    provider::{QueueClient, TopicClient},
};
use serde_json::{Value, json};

use crate::support::{localstack, sdk_config, unique};

pub(crate) struct Aws {
    pub(crate) sqs: aws_sdk_sqs::Client,
    pub(crate) sns: aws_sdk_sns::Client,
    pub(crate) clients: ClientBuilder,
}

async fn aws() -> Option<Aws> {
    Some(Aws::new(&localstack()?).await)
}

impl Aws {
    /// The clients of LocalStack at `url`.
    pub(crate) async fn new(url: &str) -> Self {
        let config = sdk_config(url).await;
        Self {
            sqs: aws_sdk_sqs::Client::new(&config),
            sns: aws_sdk_sns::Client::new(&config),
            clients: ClientBuilder::from_env()
                .endpoint_url(url)
                .region("us-east-1")
                .test_credentials(),
        }
    }

    /// Creates queue `name` with `attributes`: its URL and ARN.
    pub(crate) async fn queue(
        &self,
        name: &str,
        attributes: &[(QueueAttributeName, String)],
    ) -> (String, String) {
        let mut create = self.sqs.create_queue().queue_name(name);
        for (k, v) in attributes {
            create = create.attributes(k.clone(), v);
        }
        let url = create.send().await.unwrap().queue_url.unwrap();
        let arn = cloudfn_aws::emulate::queue_arn(&self.sqs, &url)
            .await
            .unwrap();
        (url, arn)
    }

    /// Receives until `count` messages arrived (deleting them), or fails after 30 s.
    pub(crate) async fn receive(
        &self,
        url: &str,
        count: usize,
    ) -> Vec<aws_sdk_sqs::types::Message> {
        let got = self.take(url, count).await;
        for message in &got {
            self.sqs
                .delete_message()
                .queue_url(url)
                .receipt_handle(message.receipt_handle.clone().unwrap())
                .send()
                .await
                .unwrap();
        }
        got
    }

    /// Receives until `count` messages are in flight at once, without
    /// deleting them (as an event source mapping does), or fails after 30 s.
    async fn take(&self, url: &str, count: usize) -> Vec<aws_sdk_sqs::types::Message> {
        let give_up = Instant::now() + Duration::from_secs(30);
        let mut got = Vec::new();
        while got.len() < count {
            assert!(
                Instant::now() < give_up,
                "only {} of {count} messages arrived on {url}",
                got.len()
            );
            let out = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .unwrap();
            got.extend(out.messages.unwrap_or_default());
        }
        got
    }
}

/// A queue of orders, its messages invisible for a while once received, and
/// a dead-letter queue for them.
struct Queues {
    source: String,
    url: String,
    queue_arn: String,
    dlq: String,
    dlq_url: String,
}

impl Aws {
    async fn orders_and_dead_letters(&self, visibility_secs: u32) -> Queues {
        let dlq = unique("charge-dlq");
        let (dlq_url, _) = self.queue(&dlq, &[]).await;
        let source = unique("orders");
        let visibility = (
            QueueAttributeName::VisibilityTimeout,
            visibility_secs.to_string(),
        );
        let (url, queue_arn) = self.queue(&source, &[visibility]).await;
        Queues {
            source,
            url,
            queue_arn,
            dlq,
            dlq_url,
        }
    }
}

/// The SQS event Lambda's event source mapping would build from `messages`.
fn sqs_event(messages: &[aws_sdk_sqs::types::Message], queue_arn: &str) -> Vec<u8> {
    let owned: Vec<_> = messages
        .iter()
        .map(|m| {
            let attributes = m
                .attributes
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_owned(), v))
                .collect::<std::collections::HashMap<_, _>>();
            let message_attributes = m
                .message_attributes
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| v.string_value.map(|s| (k, (v.data_type, s))))
                .collect::<std::collections::BTreeMap<_, _>>();
            (m, attributes, message_attributes)
        })
        .collect();
    let records: Vec<_> = owned
        .iter()
        .map(
            |(m, attributes, message_attributes)| queue_events::RecordParts {
                message_id: m.message_id.as_deref().unwrap(),
                receipt_handle: m.receipt_handle.as_deref().unwrap(),
                body: m.body.as_deref().unwrap(),
                attributes,
                message_attributes,
                queue_arn,
                region: "us-east-1",
            },
        )
        .collect();
    serde_json::to_vec(&queue_events::event(&records)).unwrap()
}

/// A dispatcher's answer, as JSON.
fn json_of(answer: &[u8]) -> Value {
    serde_json::from_slice(answer).unwrap()
}

type Seen = Arc<Mutex<Vec<Message<Value>>>>;

fn recording(name: &str, source: &str, topic: bool, seen: &Seen) -> Function {
    let seen = seen.clone();
    let handler = move |m: Message<Value>, _: Context| {
        let seen = seen.clone();
        async move {
            let verdict = m.body["verdict"].as_str().map(str::to_owned);
            seen.lock().unwrap().push(m);
            match verdict.as_deref() {
                Some("invalid") => Err(Error::invalid("this order cannot be charged")),
                Some("retry") => Err(Error::unavailable("try later")),
                _ => Ok(()),
            }
        }
    };
    if topic {
        Function::topic(name, source, handler)
    } else {
        Function::queue(name, source, handler)
    }
}

async fn dispatcher(aws: &Aws, function: Function) -> Dispatcher {
    let name = function.name().to_owned();
    let app = App::new("it").function(function);
    let sqs = Arc::new(aws.clients.sqs());
    let services = app.services(
        "aws",
        sqs.clone(),
        Arc::new(aws.clients.sns()),
        Arc::new(cloudfn_core::store::MemoryStore::new()),
    );
    Dispatcher::new(app.get(&name).unwrap().clone(), services, Some(sqs))
}

#[tokio::test]
async fn the_sqs_client_sends_batches_fifo_groups_and_attributes() {
    let Some(aws) = aws().await else { return };
    let client = aws.clients.sqs();

    let name = unique("std");
    let (url, _) = aws.queue(&name, &[]).await;
    let id = client
        .send(
            &name,
            OutgoingMessage::new("hello").with_attribute("tenant", "t-1"),
        )
        .await
        .unwrap();
    let got = aws.receive(&url, 1).await;
    assert_eq!(got[0].message_id.as_deref(), Some(id.as_str()));
    assert_eq!(got[0].body.as_deref(), Some("hello"));
    let tenant = &got[0].message_attributes.as_ref().unwrap()["tenant"];
    assert_eq!(tenant.string_value.as_deref(), Some("t-1"));

    // 25 messages of 30 KiB: more than one SQS batch by count and by size.
    let big = "x".repeat(30 * 1024);
    let batch = (0..25)
        .map(|i| OutgoingMessage::new(format!("{i}:{big}")))
        .collect();
    let ids = client.send_batch(&name, batch).await.unwrap();
    assert_eq!(ids.len(), 25);
    assert!(ids.iter().all(|id| !id.is_empty()));
    assert_eq!(aws.receive(&url, 25).await.len(), 25);

    // A FIFO queue named `<name>.fifo` is found by its neutral name.
    let fifo = unique("ledger");
    let (fifo_url, _) = aws
        .queue(
            &format!("{fifo}.fifo"),
            &[(QueueAttributeName::FifoQueue, "true".into())],
        )
        .await;
    let entries = (0..5)
        .map(|i| {
            OutgoingMessage::new(format!("entry-{i}"))
                .with_ordering_key("acct-1")
                .with_deduplication_id(format!("d-{i}"))
        })
        .collect();
    client.send_batch(&fifo, entries).await.unwrap();
    client
        .send(
            &fifo,
            OutgoingMessage::new("entry-0 again")
                .with_ordering_key("acct-1")
                .with_deduplication_id("d-0"),
        )
        .await
        .unwrap();
    let got = aws.receive(&fifo_url, 5).await;
    let bodies: Vec<_> = got.iter().map(|m| m.body.clone().unwrap()).collect();
    assert_eq!(
        bodies,
        ["entry-0", "entry-1", "entry-2", "entry-3", "entry-4"],
        "order kept, duplicate dropped"
    );
    let group =
        got[0].attributes.as_ref().unwrap()[&MessageSystemAttributeName::MessageGroupId].clone();
    assert_eq!(group, "acct-1");

    let err = client
        .send(&unique("missing"), OutgoingMessage::new("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), cloudfn_core::ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn a_queue_redrives_to_its_dead_letter_queue_after_max_receives() {
    let Some(aws) = aws().await else { return };
    let (dlq_url, dlq_arn) = aws.queue(&unique("dlq"), &[]).await;
    let policy = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}).to_string();
    let (url, _) = aws
        .queue(
            &unique("work"),
            &[(QueueAttributeName::RedrivePolicy, policy)],
        )
        .await;
    aws.sqs
        .send_message()
        .queue_url(&url)
        .message_body("poison")
        .send()
        .await
        .unwrap();
    for _ in 0..3 {
        // Received and never deleted: each receive counts.
        aws.sqs
            .receive_message()
            .queue_url(&url)
            .visibility_timeout(0)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
    }
    let dead = aws.receive(&dlq_url, 1).await;
    assert_eq!(dead[0].body.as_deref(), Some("poison"));
}

#[tokio::test]
async fn sns_through_a_raw_subscription_queue_reaches_a_topic_function() {
    let Some(aws) = aws().await else { return };
    let topic = unique("order-paid");
    let topic_arn = aws
        .sns
        .create_topic()
        .name(&topic)
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let (url, queue_arn) = aws.queue(&unique("sub"), &[]).await;
    // As the deployment and the dev emulation subscribe: with raw delivery,
    // the body is the published message and its attributes SQS's own.
    aws.sns
        .subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();
    let publisher = aws.clients.sns();
    publisher
        .publish(
            &topic,
            OutgoingMessage::json(&json!({"order_id": "o-1"}))
                .unwrap()
                .with_attribute("tenant", "t-9"),
        )
        .await
        .unwrap();

    let delivered = aws.receive(&url, 1).await;
    let seen = Seen::default();
    let dispatcher = dispatcher(&aws, recording("notify", &topic, true, &seen)).await;
    let out = dispatcher
        .handle(&sqs_event(&delivered, &queue_arn), &Invocation::default())
        .await
        .unwrap();
    assert_eq!(json_of(&out), json!({"batchItemFailures": []}));
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].body, json!({"order_id": "o-1"}));
    assert_eq!(
        Some(seen[0].id.as_str()),
        delivered[0].message_id.as_deref(),
        "the id is the queue's"
    );
    assert_eq!(seen[0].source, topic);
    assert_eq!(seen[0].attribute("tenant"), Some("t-9"));
}

#[tokio::test]
async fn permanent_failures_go_straight_to_the_dead_letter_queue_and_transient_ones_back_off() {
    let Some(aws) = aws().await else { return };
    let Queues {
        source,
        url,
        queue_arn,
        dlq,
        dlq_url,
    } = aws.orders_and_dead_letters(60).await;
    for verdict in ["invalid", "retry", "ok"] {
        aws.sqs
            .send_message()
            .queue_url(&url)
            .message_body(json!({"verdict": verdict}).to_string())
            .send()
            .await
            .unwrap();
    }
    let mut delivered = Vec::new();
    while delivered.len() < 3 {
        let out = aws
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        delivered.extend(out.messages.unwrap_or_default());
    }
    let seen = Seen::default();
    let function = recording("charge", &source, false, &seen)
        .dead_letter(&dlq)
        .retry(RetryPolicy::new(5).initial_delay(Duration::ZERO));
    let dispatcher = dispatcher(&aws, function).await;
    let out = dispatcher
        .handle(&sqs_event(&delivered, &queue_arn), &Invocation::default())
        .await
        .unwrap();
    let retry_id = delivered
        .iter()
        .find(|m| m.body.as_deref().unwrap().contains("retry"))
        .and_then(|m| m.message_id.clone())
        .unwrap();
    assert_eq!(
        json_of(&out),
        json!({"batchItemFailures": [{"itemIdentifier": retry_id}]}),
        "only the transient failure returns"
    );

    let dead = aws.receive(&dlq_url, 1).await;
    assert!(dead[0].body.as_deref().unwrap().contains("invalid"));
    let attributes = dead[0].message_attributes.as_ref().unwrap();
    assert!(
        attributes[dead_letter::ERROR]
            .string_value
            .as_deref()
            .unwrap()
            .starts_with("invalid:")
    );
    assert_eq!(
        attributes[dead_letter::FUNCTION].string_value.as_deref(),
        Some("charge")
    );

    // The queue's visibility timeout is 60 s; the retry policy's backoff made
    // the failed message visible again at once.
    let again = aws.receive(&url, 1).await;
    assert_eq!(again[0].message_id.as_deref(), Some(retry_id.as_str()));
}

/// What SQS says about how many messages `url` holds: (visible, in flight).
async fn counts(aws: &Aws, url: &str) -> (u64, u64) {
    let out = aws
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let attributes = out.attributes.unwrap_or_default();
    let count = |name| {
        attributes
            .get(&name)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (
        count(QueueAttributeName::ApproximateNumberOfMessages),
        count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

/// A FIFO message held back because the message before it in its group
/// kept failing runs before anything can dead-letter it, however many
/// receives that cost; the head, out of attempts, reaches the dead-letter
/// queue with the `cloudfn-dead-letter-*` attributes.
#[tokio::test]
async fn a_fifo_message_behind_a_failing_one_runs_before_any_dead_letter() {
    let Some(aws) = aws().await else { return };
    let fifo = [(QueueAttributeName::FifoQueue, "true".to_owned())];
    let dlq = unique("ledger-dlq");
    let (dlq_url, _) = aws.queue(&format!("{dlq}.fifo"), &fifo).await;
    let source = unique("ledger");
    let (url, queue_arn) = aws
        .queue(
            &format!("{source}.fifo"),
            &[
                fifo[0].clone(),
                (QueueAttributeName::VisibilityTimeout, "60".into()),
            ],
        )
        .await;
    for (i, verdict) in ["retry", "ok"].into_iter().enumerate() {
        aws.sqs
            .send_message()
            .queue_url(&url)
            .message_body(json!({"verdict": verdict, "n": i}).to_string())
            .message_group_id("acct-1")
            .message_deduplication_id(format!("d-{i}"))
            .send()
            .await
            .unwrap();
    }
    let seen = Seen::default();
    let seen_by_handler = seen.clone();
    let post = Function::fifo_queue("post", &source, move |m: Message<Value>, _: Context| {
        let seen = seen_by_handler.clone();
        async move {
            let retry = m.body["verdict"] == "retry";
            seen.lock().unwrap().push(m);
            match retry {
                true => Err(Error::unavailable("the ledger is busy")),
                false => Ok(()),
            }
        }
    })
    .dead_letter(&dlq)
    .retry(RetryPolicy::new(2).initial_delay(Duration::ZERO));
    let dispatcher = dispatcher(&aws, post).await;

    // Lambda's part: deliver, then delete what the answer does not name.
    let give_up = Instant::now() + Duration::from_secs(60);
    while !seen
        .lock()
        .unwrap()
        .iter()
        .any(|m| m.body["verdict"] == "ok")
    {
        assert!(
            Instant::now() < give_up,
            "the second message never ran: {:?}",
            seen.lock().unwrap()
        );
        let delivered = aws.take(&url, 1).await;
        let out = dispatcher
            .handle(&sqs_event(&delivered, &queue_arn), &Invocation::default())
            .await
            .unwrap();
        let failed = json_of(&out)["batchItemFailures"].to_string();
        for message in &delivered {
            if !failed.contains(message.message_id.as_deref().unwrap()) {
                let _ = aws
                    .sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(message.receipt_handle.clone().unwrap())
                    .send()
                    .await;
            }
        }
    }
    let runs: Vec<(i64, u32)> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|m| (m.body["n"].as_i64().unwrap(), m.attempt))
        .collect();
    assert_eq!(
        runs.iter().filter(|(n, _)| *n == 0).count(),
        2,
        "the head ran its two attempts: {runs:?}"
    );
    let dead = aws.receive(&dlq_url, 1).await;
    assert!(dead[0].body.as_deref().unwrap().contains("\"retry\""));
    let attributes = dead[0].message_attributes.as_ref().unwrap();
    let attribute = |name: &str| attributes[name].string_value.clone().unwrap();
    assert!(attribute(dead_letter::ERROR).starts_with("unavailable:"));
    assert_eq!(attribute(dead_letter::ATTEMPTS), "2");
    assert_eq!(attribute(dead_letter::FUNCTION), "post");
    assert_eq!(attribute(dead_letter::SOURCE), source);
}

/// A batch that fails for good, one malformed record included, goes to the
/// dead-letter queue whole, each with its attributes, and leaves its queue;
/// with no time left before Lambda's deadline nothing is sent, and every
/// message is reported failed rather than lost.
#[tokio::test]
async fn a_batch_that_fails_for_good_is_dead_lettered_within_the_deadline() {
    let Some(aws) = aws().await else { return };
    let Queues {
        source,
        url,
        queue_arn,
        dlq,
        dlq_url,
    } = aws.orders_and_dead_letters(120).await;
    let client = aws.clients.sqs();
    let batch = (0..25)
        .map(|i| OutgoingMessage::json(&json!({"verdict": "invalid", "n": i})).unwrap())
        .collect();
    client.send_batch(&source, batch).await.unwrap();
    let delivered = aws.take(&url, 25).await;
    let mut event: Value = serde_json::from_slice(&sqs_event(&delivered, &queue_arn)).unwrap();
    // One record of the wrong shape: its attributes are not a map.
    event["Records"][3]["attributes"] = json!(["ApproximateReceiveCount"]);
    let event = serde_json::to_vec(&event).unwrap();
    let dispatcher = dispatcher(
        &aws,
        recording("charge", &source, false, &Seen::default()).dead_letter(&dlq),
    )
    .await;

    let no_time_left = Invocation {
        deadline: Some(std::time::Instant::now()),
        ..Invocation::default()
    };
    let out = dispatcher.handle(&event, &no_time_left).await.unwrap();
    assert_eq!(
        json_of(&out)["batchItemFailures"].as_array().unwrap().len(),
        25,
        "what could not be dead-lettered in time is reported failed: {}",
        json_of(&out)
    );
    assert_eq!(
        counts(&aws, &dlq_url).await,
        (0, 0),
        "nothing was sent late"
    );

    let out = dispatcher
        .handle(&event, &Invocation::default())
        .await
        .unwrap();
    assert_eq!(json_of(&out), json!({"batchItemFailures": []}));
    let dead = aws.receive(&dlq_url, 25).await;
    let malformed = delivered[3].message_id.clone().unwrap();
    for message in &dead {
        let attributes = message.message_attributes.as_ref().unwrap();
        let error = attributes[dead_letter::ERROR].string_value.clone().unwrap();
        let expected = match message.body.as_deref() == delivered[3].body.as_deref() {
            true => format!("bad_input: malformed SQS record `{malformed}`"),
            false => "invalid:".to_owned(),
        };
        assert!(error.starts_with(&expected), "{error}");
        assert_eq!(
            attributes[dead_letter::SOURCE].string_value.as_deref(),
            Some(source.as_str())
        );
    }
    assert_eq!(
        counts(&aws, &url).await,
        (0, 0),
        "dead letters leave their queue"
    );
}

/// A schedule run that fails for good goes to the function's default
/// dead-letter queue at once, with its attributes, instead of being retried
/// by Lambda to no avail; a retryable failure fails the invocation, for
/// Lambda to retry.
#[tokio::test]
async fn a_schedule_run_that_fails_for_good_is_dead_lettered() {
    let Some(aws) = aws().await else { return };
    let name = unique("nightly");
    let (dlq_url, _) = aws
        .queue(
            &cloudfn_core::conventions::default_dead_letter_queue(&name),
            &[],
        )
        .await;
    let nightly = Function::schedule(
        &name,
        "0 3 * * *",
        |tick: ScheduledTick, _: Context| async move {
            match tick.scheduled_time.timestamp() % 2 {
                0 => Err(Error::invalid("the report has no template")),
                _ => Err(Error::unavailable("the warehouse is down")),
            }
        },
    );
    let dispatcher = dispatcher(&aws, nightly).await;
    let mut event = crate::support::fixture("example-eventbridge-schedule.json");
    let invocation = Invocation {
        request_id: "req-1".into(),
        ..Invocation::default()
    };

    event["time"] = json!("2026-11-27T03:00:00Z");
    let answer = dispatcher
        .handle(&serde_json::to_vec(&event).unwrap(), &invocation)
        .await
        .unwrap();
    assert_eq!(&answer[..], b"null", "nothing for Lambda to retry");
    let dead = aws.receive(&dlq_url, 1).await;
    let tick: Value = serde_json::from_str(dead[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(tick["scheduled_time"], "2026-11-27T03:00:00Z");
    let attributes = dead[0].message_attributes.as_ref().unwrap();
    let attribute = |name: &str| attributes[name].string_value.clone().unwrap();
    assert!(attribute(dead_letter::ERROR).starts_with("invalid:"));
    assert_eq!(attribute(dead_letter::FUNCTION), name);

    event["time"] = json!("2026-11-27T03:00:01Z");
    let err = dispatcher
        .handle(&serde_json::to_vec(&event).unwrap(), &invocation)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "Lambda retries it: {err}");
}
