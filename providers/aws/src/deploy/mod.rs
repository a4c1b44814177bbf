//! `AppSpec` → an AWS SAM template: one function per cloudfn function on the
//! shared bootstrap, its event sources, its queues (with redrive policies and
//! dead-letter queues) and topics, and a role per function that may touch
//! only what the function declares.

//!
//! One file per part of the template: [`queues`](self) (queues, topics and
//! subscriptions), buckets, and each function with its events and role;
//! [`cron`](self) converts schedules; [`package`] writes the files.

mod buckets;
mod cfn;
mod cron;
mod function;
mod package;
mod queues;

use cloudfn_core::{AppSpec, Error, Trigger};
use serde_json::{Map, Value, json};

pub use cfn::logical_id;
pub use cron::eventbridge_cron;
pub use package::{Package, package, zip_bootstrap};

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

pub(super) struct Renderer<'a> {
    pub(super) spec: &'a AppSpec,
    pub(super) options: &'a SamOptions,
    pub(super) resources: Map<String, Value>,
}

/// Renders `spec` as a SAM template (YAML).
pub fn render_sam(spec: &AppSpec, options: &SamOptions) -> Result<String, Error> {
    let template = sam_template(spec, options)?;
    serde_norway::to_string(&template).map_err(|e| Error::internal(format!("template YAML: {e}")))
}

/// Renders `spec` as a SAM template, as a JSON value (the same document the
/// YAML holds).
pub fn sam_template(spec: &AppSpec, options: &SamOptions) -> Result<Value, Error> {
    crate::validate(spec)?;
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
            eventbridge_cron("0 9 * * 5#3").unwrap(),
            "cron(0 9 ? * 6#3 *)",
            "the third Friday: the weekday shifts, the count after `#` does not"
        );
        assert_eq!(
            eventbridge_cron("0 9 * * 1-5/2").unwrap(),
            "cron(0 9 ? * 2-6/2 *)"
        );
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

    use cloudfn_core::{App, Context, Function, Message, StorageEvent, StorageEventKind};

    use super::function::api_path;

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
