//! `AppSpec` → an AWS SAM template: one function per cloudfn function on the
//! shared bootstrap, its event sources, its queues (with redrive policies and
//! dead-letter queues) and topics, and a role per function that may touch
//! only what the function declares.

use std::collections::BTreeMap;

use cloudfn_core::{AppSpec, Error, FunctionSpec, Method, StorageEventKind, Trigger, conventions};
use serde_json::{Map, Value, json};

use crate::names::{resource_variable, sqs_name};

/// How to render: where the code is and how it runs.
#[derive(Debug, Clone)]
pub struct SamOptions {
    /// The zip holding `bootstrap`, relative to the template.
    pub code_uri: String,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    /// Memory of every function, in MB.
    pub memory_mb: u32,
}

impl Default for SamOptions {
    fn default() -> Self {
        Self {
            code_uri: "bootstrap.zip".into(),
            architecture: "x86_64".into(),
            memory_mb: 128,
        }
    }
}

/// A CloudFormation logical id for a name: letters and digits in
/// PascalCase, with a suffix saying what it is (`order-paid` → `OrderPaidTopic`).
pub fn logical_id(name: &str, suffix: &str) -> String {
    let mut id = String::new();
    let mut upper = true;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            id.push(if upper { c.to_ascii_uppercase() } else { c });
            upper = false;
        } else {
            upper = true;
        }
    }
    id.push_str(suffix);
    id
}

fn queue_id(name: &str) -> String {
    logical_id(name, "Queue")
}

/// A neutral five-field cron expression as an EventBridge one:
/// `cron(min hour day month weekday year)`, with `?` in one day field and
/// weekdays counted from 1 (Sunday) instead of 0.
pub fn eventbridge_cron(cron: &str) -> Result<String, Error> {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    let [minute, hour, mut day, month, mut weekday] = fields[..] else {
        return Err(Error::invalid(format!(
            "cron `{cron}` does not have five fields"
        )));
    };
    let weekday_aws;
    match (day, weekday) {
        (_, "*") => weekday = "?",
        ("*", _) => {
            day = "?";
            weekday_aws = shift_weekdays(weekday)?;
            weekday = &weekday_aws;
        }
        _ => {
            return Err(Error::invalid(format!(
                "cron `{cron}` sets both day of month and day of week, which EventBridge cannot express"
            )));
        }
    }
    Ok(format!("cron({minute} {hour} {day} {month} {weekday} *)"))
}

/// Unix weekdays are 0–6 from Sunday (7 is Sunday too); EventBridge's are 1–7.
fn shift_weekdays(field: &str) -> Result<String, Error> {
    let mut out = String::new();
    let mut number = String::new();
    let flush = |number: &mut String, out: &mut String| -> Result<(), Error> {
        if !number.is_empty() {
            let n: u32 = number
                .parse()
                .map_err(|_| Error::invalid(format!("weekday `{number}` is not a number")))?;
            out.push_str(&(n % 7 + 1).to_string());
            number.clear();
        }
        Ok(())
    };
    let mut after_slash = false;
    for c in field.chars() {
        if c.is_ascii_digit() && !after_slash {
            number.push(c);
        } else {
            flush(&mut number, &mut out)?;
            after_slash = c == '/' || (after_slash && c.is_ascii_digit());
            out.push(c);
        }
    }
    flush(&mut number, &mut out)?;
    Ok(out)
}

/// API Gateway path syntax: `{*rest}` becomes the greedy `{rest+}`.
fn api_path(route: &str) -> String {
    route
        .split('/')
        .map(
            |segment| match segment.strip_prefix("{*").and_then(|s| s.strip_suffix('}')) {
                Some(name) => format!("{{{name}+}}"),
                None => segment.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// A bucket's physical name: unique per account and region.
fn bucket_name_pattern(bucket: &str) -> String {
    format!("{bucket}-${{AWS::AccountId}}-${{AWS::Region}}")
}

fn bucket_name(bucket: &str) -> Value {
    json!({ "Fn::Sub": bucket_name_pattern(bucket) })
}

fn get_att(id: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [id, attribute] })
}

fn reference(id: &str) -> Value {
    json!({ "Ref": id })
}

/// A queue's or topic's name in a stack: `<stack>-<name>`.
fn stack_name(name: &str) -> Value {
    json!({ "Fn::Sub": conventions::physical_name("${AWS::StackName}", name) })
}

struct Renderer<'a> {
    spec: &'a AppSpec,
    options: &'a SamOptions,
    resources: Map<String, Value>,
}

/// Renders `spec` as a SAM template (YAML).
pub fn render_sam(spec: &AppSpec, options: &SamOptions) -> Result<String, Error> {
    let template = sam_template(spec, options)?;
    serde_norway::to_string(&template).map_err(|e| Error::internal(format!("template YAML: {e}")))
}

/// Renders `spec` as a SAM template, as a JSON value (the same document the
/// YAML holds).
pub fn sam_template(spec: &AppSpec, options: &SamOptions) -> Result<Value, Error> {
    spec.validate_for(&crate::CAPABILITIES)?;
    let mut renderer = Renderer {
        spec,
        options,
        resources: Map::new(),
    };
    renderer.queues();
    renderer.topics();
    renderer.buckets()?;
    for function in &spec.functions {
        renderer.function(function)?;
    }
    let mut template = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": format!("cloudfn app `{}`, rendered by cloudfn-aws", spec.name),
        "Resources": renderer.resources,
    });
    if spec
        .functions
        .iter()
        .any(|f| matches!(f.trigger, Trigger::Http { .. }))
    {
        template["Outputs"] = json!({
            "HttpApiUrl": {
                "Description": "The base URL of the app's HTTP functions",
                "Value": { "Fn::Sub": "https://${ServerlessHttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}" }
            }
        });
    }
    Ok(template)
}

impl Renderer<'_> {
    /// Every queue of the spec (subscription and default dead-letter queues
    /// included), with its consumer's visibility and a redrive policy whose
    /// `maxReceiveCount` is the consumer's attempts; a subscription queue is
    /// subscribed to its topic with raw delivery.
    fn queues(&mut self) {
        for queue in &self.spec.queues {
            let id = queue_id(&queue.name);
            let mut properties = json!({
                "QueueName": stack_name(&sqs_name(&queue.name, queue.fifo)),
                "MessageRetentionPeriod": if queue.is_dead_letter { 1_209_600 } else { 345_600 },
            });
            if let Some(visibility) = queue.visibility_timeout {
                properties["VisibilityTimeout"] = json!(visibility.as_secs());
            }
            if queue.fifo {
                // No content-based deduplication: two equal bodies are two
                // messages (a ledger may well debit 10 twice); senders give ids.
                properties["FifoQueue"] = json!(true);
            }
            if let (Some(dlq), Some(count)) = (&queue.dead_letter, queue.max_receive_count) {
                properties["RedrivePolicy"] = json!({
                    "deadLetterTargetArn": get_att(&queue_id(dlq), "Arn"),
                    "maxReceiveCount": count,
                });
            }
            self.resources.insert(
                id.clone(),
                json!({ "Type": "AWS::SQS::Queue", "Properties": properties }),
            );
            if let Some(topic) = &queue.subscribes_to {
                self.subscribe(&queue.name, &id, &logical_id(topic, "Topic"));
            }
        }
    }

    /// Every topic.
    fn topics(&mut self) {
        for topic in &self.spec.topics {
            self.resources.insert(
                logical_id(&topic.name, "Topic"),
                json!({
                    "Type": "AWS::SNS::Topic",
                    "Properties": { "TopicName": stack_name(&topic.name) }
                }),
            );
        }
    }

    /// Subscribes queue `name` (logical id `id`) to a topic, with raw
    /// delivery, and lets that topic send to it.
    fn subscribe(&mut self, name: &str, id: &str, topic_id: &str) {
        self.resources.insert(
            logical_id(name, "Subscription"),
            json!({
                "Type": "AWS::SNS::Subscription",
                "Properties": {
                    "Protocol": "sqs",
                    "TopicArn": reference(topic_id),
                    "Endpoint": get_att(id, "Arn"),
                    "RawMessageDelivery": true,
                }
            }),
        );
        self.resources.insert(
            logical_id(name, "QueuePolicy"),
            json!({
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {
                    "Queues": [reference(id)],
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Principal": { "Service": "sns.amazonaws.com" },
                            "Action": "sqs:SendMessage",
                            "Resource": get_att(id, "Arn"),
                            "Condition": { "ArnEquals": { "aws:SourceArn": reference(topic_id) } }
                        }]
                    }
                }
            }),
        );
    }

    /// Buckets get a deterministic name so the functions' policies can name
    /// them without referring to the bucket resource, which would make a
    /// circular dependency with its notification configuration.
    fn buckets(&mut self) -> Result<(), Error> {
        for bucket in &self.spec.buckets {
            if bucket.is_empty()
                || !bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(Error::invalid(format!(
                    "bucket `{bucket}`: S3 bucket names take lower-case letters, digits and `-`"
                )));
            }
            self.resources.insert(
                logical_id(bucket, "Bucket"),
                json!({ "Type": "AWS::S3::Bucket", "Properties": { "BucketName": bucket_name(bucket) } }),
            );
        }
        Ok(())
    }

    fn function(&mut self, function: &FunctionSpec) -> Result<(), Error> {
        let id = logical_id(&function.name, "Function");
        let role_id = logical_id(&function.name, "Role");
        let mut variables = BTreeMap::new();
        variables.insert("RUST_LOG".to_owned(), json!("info"));
        let mut statements = Vec::new();
        let mut events = Map::new();

        let consumed_queue = &function.consumes;
        if let Some(queue) = consumed_queue {
            let qid = queue_id(queue);
            statements.push(json!({
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"],
                "Resource": get_att(&qid, "Arn"),
            }));
            // The runtime applies backoff to this queue's messages.
            variables.insert(
                resource_variable("CLOUDFN_QUEUE_URL_", queue),
                reference(&qid),
            );
            let batch = function.policy.batch_size;
            let mut properties = json!({
                "Queue": get_att(&qid, "Arn"),
                "BatchSize": batch,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
            });
            if batch > 10 {
                // Lambda requires a batching window for batches above 10.
                properties["MaximumBatchingWindowInSeconds"] = json!(1);
            }
            if let Some(limit) = function.policy.max_concurrency {
                properties["ScalingConfig"] = json!({ "MaximumConcurrency": limit });
            }
            events.insert(
                "Queue".into(),
                json!({ "Type": "SQS", "Properties": properties }),
            );
        }
        let mut send_to: Vec<&String> = function.sends_to.iter().collect();
        // The runtime dead-letters what fails for good itself.
        let dead_letter = match consumed_queue {
            Some(queue) => self.spec.queue(queue).and_then(|q| q.dead_letter.as_ref()),
            None => function.policy.dead_letter.as_ref(),
        };
        send_to.extend(dead_letter);
        for queue in send_to {
            let qid = queue_id(queue);
            statements.push(json!({
                "Effect": "Allow",
                "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"],
                "Resource": get_att(&qid, "Arn"),
            }));
            variables.insert(
                resource_variable("CLOUDFN_QUEUE_URL_", queue),
                reference(&qid),
            );
        }
        for topic in &function.publishes_to {
            let tid = logical_id(topic, "Topic");
            statements.push(
                json!({ "Effect": "Allow", "Action": "sns:Publish", "Resource": reference(&tid) }),
            );
            variables.insert(
                resource_variable("CLOUDFN_TOPIC_ARN_", topic),
                reference(&tid),
            );
        }
        match &function.trigger {
            Trigger::Http { method, route } => {
                let method = match method {
                    Method::Any => "ANY".to_owned(),
                    other => other.as_str().to_lowercase(),
                };
                events.insert(
                    "Http".into(),
                    json!({ "Type": "HttpApi", "Properties": { "Path": api_path(route), "Method": method } }),
                );
            }
            Trigger::Schedule { cron } => {
                events.insert(
                    "Schedule".into(),
                    json!({ "Type": "Schedule", "Properties": { "Schedule": eventbridge_cron(cron)? } }),
                );
            }
            Trigger::Storage {
                bucket,
                events: kinds,
            } => {
                let bid = logical_id(bucket, "Bucket");
                let names: Vec<&str> = kinds
                    .iter()
                    .map(|k| match k {
                        StorageEventKind::Created => "s3:ObjectCreated:*",
                        StorageEventKind::Deleted => "s3:ObjectRemoved:*",
                    })
                    .collect();
                events.insert(
                    "Storage".into(),
                    json!({ "Type": "S3", "Properties": { "Bucket": reference(&bid), "Events": names } }),
                );
                statements.push(json!({
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": { "Fn::Sub": format!("arn:${{AWS::Partition}}:s3:::{}/*", bucket_name_pattern(bucket)) },
                }));
            }
            Trigger::Queue { .. } | Trigger::Topic { .. } => {}
        }

        let mut role = json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": { "Service": "lambda.amazonaws.com" },
                        "Action": "sts:AssumeRole"
                    }]
                },
                "ManagedPolicyArns": [{ "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole" }],
            }
        });
        if !statements.is_empty() {
            role["Properties"]["Policies"] = json!([{
                "PolicyName": format!("{}-least-privilege", function.name),
                "PolicyDocument": { "Version": "2012-10-17", "Statement": statements }
            }]);
        }
        self.resources.insert(role_id.clone(), role);

        let mut properties = json!({
            "Handler": function.name,
            "Runtime": "provided.al2023",
            "Architectures": [self.options.architecture],
            "CodeUri": self.options.code_uri,
            "MemorySize": self.options.memory_mb,
            // Two seconds past the handler's own timeout, so the runtime can
            // still report a timed-out invocation before Lambda stops it.
            "Timeout": (timeout_secs(function) + 2).min(900),
            "Role": get_att(&role_id, "Arn"),
            "Environment": { "Variables": variables },
            "Events": events,
        });
        if let Some(limit) = function
            .policy
            .max_concurrency
            .filter(|_| consumed_queue.is_none())
        {
            properties["ReservedConcurrentExecutions"] = json!(limit);
        }
        if matches!(
            function.trigger,
            Trigger::Schedule { .. } | Trigger::Storage { .. }
        ) {
            // These arrive as asynchronous invocations: Lambda retries them
            // itself (at most twice: CAPABILITIES refuses more) and hands the
            // last failure to the dead-letter queue.
            let retries = function.policy.retry.max_attempts.saturating_sub(1);
            let mut config = json!({ "MaximumRetryAttempts": retries });
            if let Some(dlq) = &function.policy.dead_letter {
                config["DestinationConfig"] = json!({
                    "OnFailure": { "Type": "SQS", "Destination": get_att(&queue_id(dlq), "Arn") }
                });
            }
            properties["EventInvokeConfig"] = config;
        }
        self.resources.insert(
            id,
            json!({ "Type": "AWS::Serverless::Function", "Properties": properties }),
        );
        Ok(())
    }
}

/// What [`package`] wrote.
#[derive(Debug, Clone)]
pub struct Package {
    /// The SAM template.
    pub template: std::path::PathBuf,
    /// The zip holding `bootstrap`.
    pub zip: std::path::PathBuf,
}

/// Writes `out/template.yaml` for `spec` and `out/bootstrap.zip` holding
/// `binary` as `bootstrap`: what `sam deploy --template-file
/// out/template.yaml` takes.
pub fn package(
    spec: &AppSpec,
    binary: &std::path::Path,
    out: &std::path::Path,
    options: &SamOptions,
) -> Result<Package, Error> {
    let io = |what: &str, e: std::io::Error| Error::unavailable(format!("{what}: {e}"));
    std::fs::create_dir_all(out).map_err(|e| io(&format!("creating {}", out.display()), e))?;
    let zip = out.join(&options.code_uri);
    zip_bootstrap(binary, &zip)?;
    let template = out.join("template.yaml");
    std::fs::write(&template, render_sam(spec, options)?)
        .map_err(|e| io(&format!("writing {}", template.display()), e))?;
    Ok(Package { template, zip })
}

/// Zips `binary` as an executable named `bootstrap`, the entry point of the
/// `provided.al2023` runtime.
pub fn zip_bootstrap(binary: &std::path::Path, zip_path: &std::path::Path) -> Result<(), Error> {
    use std::io::Write;
    let io = |what: String, e: &dyn std::fmt::Display| Error::unavailable(format!("{what}: {e}"));
    let bytes =
        std::fs::read(binary).map_err(|e| io(format!("reading {}", binary.display()), &e))?;
    let file = std::fs::File::create(zip_path)
        .map_err(|e| io(format!("creating {}", zip_path.display()), &e))?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options)
        .map_err(|e| io(format!("writing {}", zip_path.display()), &e))?;
    zip.write_all(&bytes)
        .map_err(|e| io(format!("writing {}", zip_path.display()), &e))?;
    zip.finish()
        .map_err(|e| io(format!("writing {}", zip_path.display()), &e))?;
    Ok(())
}

/// Lambda timeouts are whole seconds, 1 to 900.
fn timeout_secs(function: &FunctionSpec) -> u64 {
    function
        .policy
        .timeout
        .as_secs_f64()
        .ceil()
        .clamp(1.0, 900.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_ids_are_pascal_case() {
        assert_eq!(logical_id("order-paid", "Topic"), "OrderPaidTopic");
        assert_eq!(logical_id("orders.fifo", "Queue"), "OrdersFifoQueue");
    }

    #[test]
    fn cron_becomes_eventbridge_cron() {
        assert_eq!(
            eventbridge_cron("*/5 * * * *").unwrap(),
            "cron(*/5 * * * ? *)"
        );
        assert_eq!(
            eventbridge_cron("0 9 * * 1-5").unwrap(),
            "cron(0 9 ? * 2-6 *)"
        );
        assert_eq!(
            eventbridge_cron("0 9 * * 0,6").unwrap(),
            "cron(0 9 ? * 1,7 *)"
        );
        assert_eq!(eventbridge_cron("0 9 * * 7").unwrap(), "cron(0 9 ? * 1 *)");
        assert_eq!(
            eventbridge_cron("0 9 * * MON-FRI").unwrap(),
            "cron(0 9 ? * MON-FRI *)"
        );
        assert_eq!(
            eventbridge_cron("30 2 1 * *").unwrap(),
            "cron(30 2 1 * ? *)"
        );
        assert!(
            eventbridge_cron("0 0 1 * 1")
                .unwrap_err()
                .message()
                .contains("both")
        );
    }

    use cloudfn_core::{App, Context, Function, Message, StorageEvent};

    async fn noop(_: Message<Value>, _: Context) -> Result<(), Error> {
        Ok(())
    }

    async fn stored(_: StorageEvent, _: Context) -> Result<(), Error> {
        Ok(())
    }

    fn render(function: Function) -> Result<Value, Error> {
        sam_template(
            &App::new("t").function(function).spec(),
            &SamOptions::default(),
        )
    }

    #[test]
    fn batch_sizes_and_concurrency_follow_lambda_limits() {
        let t = render(Function::queue("big", "jobs", noop).batch_size(50)).unwrap();
        let events = &t["Resources"]["BigFunction"]["Properties"]["Events"]["Queue"]["Properties"];
        assert_eq!(
            events["MaximumBatchingWindowInSeconds"], 1,
            "batches above 10 need a window"
        );
        let err = render(Function::fifo_queue("big", "ledger", noop).batch_size(11)).unwrap_err();
        assert!(err.message().contains("at most 10"), "{err}");
        let err = render(Function::queue("one", "jobs", noop).max_concurrency(1)).unwrap_err();
        assert!(err.message().contains("2 to 1000"), "{err}");
    }

    #[test]
    fn a_consumer_without_a_dead_letter_queue_gets_one() {
        let t =
            render(Function::queue("work", "jobs", noop).retry(cloudfn_core::RetryPolicy::new(5)))
                .unwrap();
        let redrive = &t["Resources"]["JobsQueue"]["Properties"]["RedrivePolicy"];
        assert_eq!(redrive["maxReceiveCount"], 5);
        assert_eq!(
            redrive["deadLetterTargetArn"]["Fn::GetAtt"][0],
            "JobsDeadLetterQueue"
        );
        assert_eq!(
            t["Resources"]["JobsDeadLetterQueue"]["Type"],
            "AWS::SQS::Queue"
        );
    }

    #[test]
    fn storage_policies_name_the_bucket_without_referring_to_it() {
        let f = Function::storage("thumbs", "uploads", [StorageEventKind::Created], stored);
        let t = render(f).unwrap();
        let bucket = &t["Resources"]["UploadsBucket"]["Properties"]["BucketName"]["Fn::Sub"];
        assert_eq!(bucket, "uploads-${AWS::AccountId}-${AWS::Region}");
        let statement = &t["Resources"]["ThumbsRole"]["Properties"]["Policies"][0]["PolicyDocument"]
            ["Statement"][0];
        assert_eq!(
            statement["Resource"]["Fn::Sub"],
            "arn:${AWS::Partition}:s3:::uploads-${AWS::AccountId}-${AWS::Region}/*",
            "a Ref or GetAtt to the bucket here would be a circular dependency"
        );
        let bad = Function::storage("thumbs", "Uploads", [StorageEventKind::Created], stored);
        assert!(render(bad).unwrap_err().message().contains("lower-case"));
    }

    #[test]
    fn asynchronous_triggers_get_lambda_retries_and_a_failure_destination() {
        let nightly = |attempts| {
            Function::schedule("nightly", "0 3 * * *", |_, _| async { Ok(()) })
                .retry(cloudfn_core::RetryPolicy::new(attempts))
                .dead_letter("nightly-failures")
        };
        let err = render(nightly(5)).unwrap_err();
        assert!(
            err.message().contains("`nightly`") && err.message().contains("at most 3 times"),
            "Lambda retries an event at most twice, so five attempts are refused: {err}"
        );
        let t = render(nightly(3)).unwrap();
        let config = &t["Resources"]["NightlyFunction"]["Properties"]["EventInvokeConfig"];
        assert_eq!(config["MaximumRetryAttempts"], 2);
        assert_eq!(
            config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0],
            "NightlyFailuresQueue"
        );
    }

    #[test]
    fn greedy_routes_use_api_gateway_syntax() {
        assert_eq!(api_path("/files/{*path}"), "/files/{path+}");
        assert_eq!(api_path("/orders/{id}"), "/orders/{id}");
    }
}
