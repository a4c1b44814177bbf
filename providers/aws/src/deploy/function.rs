//! One function: its events, its environment, and a role that reaches only
//! what it declares.

use std::collections::BTreeMap;

use cloudfn_core::{Error, FunctionSpec, StorageEventKind, Trigger, conventions};
use serde_json::{Map, json};

use super::{
    Renderer,
    buckets::bucket_name_pattern,
    cfn::{assumed_by, get_att, logical_id, queue_id, reference},
    cron::eventbridge_cron,
    http_api::http_event,
    tables::store_grants,
};
use crate::names::{queue_url_variable, state_machine_variable, topic_arn_variable};

impl Renderer<'_> {
    pub(super) fn function(&mut self, function: &FunctionSpec) -> Result<(), Error> {
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
            variables.insert(queue_url_variable(queue), reference(&qid));
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
        // The runtime dead-letters what fails for good itself, and Lambda
        // sends the last failure of an asynchronous event there.
        let dead_letter =
            conventions::failure_queue(&function.name, &function.trigger, &function.policy);
        send_to.extend(&dead_letter);
        for queue in send_to {
            let qid = queue_id(queue);
            statements.push(json!({
                "Effect": "Allow",
                "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"],
                "Resource": get_att(&qid, "Arn"),
            }));
            variables.insert(queue_url_variable(queue), reference(&qid));
        }
        for workflow in &function.starts {
            let sid = logical_id(workflow, "StateMachine");
            statements.push(
                json!({ "Effect": "Allow", "Action": "states:StartExecution", "Resource": reference(&sid) }),
            );
            variables.insert(state_machine_variable(workflow), reference(&sid));
        }
        for topic in &function.publishes_to {
            let tid = logical_id(topic, "Topic");
            statements.push(
                json!({ "Effect": "Allow", "Action": "sns:Publish", "Resource": reference(&tid) }),
            );
            variables.insert(topic_arn_variable(topic), reference(&tid));
        }
        let (grants, tables) = store_grants(function);
        statements.extend(grants);
        variables.extend(tables);
        match &function.trigger {
            Trigger::Http { .. } => {
                events.extend(
                    http_event(function, &self.spec.functions).map(|event| ("Http".into(), event)),
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
            // A step function is invoked by its state machine, whose role
            // alone may (`deploy::state_machine`).
            Trigger::Queue { .. } | Trigger::Topic { .. } | Trigger::Step => {}
        }

        let mut role = json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": assumed_by("lambda.amazonaws.com"),
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
            // last failure to the dead-letter queue, declared or default.
            let retries = function.policy.retry.max_attempts.saturating_sub(1);
            let mut config = json!({ "MaximumRetryAttempts": retries });
            if let Some(dlq) = &dead_letter {
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

/// API Gateway path syntax: `{*rest}` becomes the greedy `{rest+}`.
pub(super) fn api_path(route: &str) -> String {
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

/// Lambda timeouts are whole seconds, 1 to 900.
fn timeout_secs(function: &FunctionSpec) -> u64 {
    function
        .policy
        .timeout
        .as_secs_f64()
        .ceil()
        .clamp(1.0, 900.0) as u64
}
