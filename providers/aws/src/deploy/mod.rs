//! `AppSpec` → an AWS SAM template: one function per cloudfn function on the
//! shared bootstrap, its event sources, its queues (with redrive policies and
//! dead-letter queues) and topics, a role per function that may touch
//! only what the function declares, and a Step Functions state machine per
//! workflow.

//!
//! One file per part of the template: [`queues`](self) (queues, topics and
//! subscriptions), buckets, tables, and each function with its events and role;
//! [`cron`](self) converts schedules; [`package`] writes the files.

mod buckets;
mod cfn;
mod cron;
mod function;
mod http_api;
mod package;
mod queues;
mod state_machine;
mod tables;
mod workflows;

use cloudfn_core::{AppSpec, Error, Trigger};
use serde_json::{Map, Value, json};

pub use cfn::logical_id;
pub use cron::eventbridge_cron;
pub use package::{Package, package, zip_bootstrap};
pub use state_machine::{Placeholder, placeholders, state_machine, substitutions};

/// How to render: where the code is and how it runs.
#[derive(Debug, Clone)]
pub struct SamOptions {
    /// The zip holding `bootstrap`, relative to the template.
    pub code_uri: String,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    /// Memory of every function, in MB.
    pub memory_mb: u32,
    /// Requests per second every HTTP route takes before API Gateway answers 429.
    pub throttle_rate: f64,
    /// Requests a route takes at once above that rate.
    pub throttle_burst: u32,
}

impl Default for SamOptions {
    fn default() -> Self {
        Self {
            code_uri: "bootstrap.zip".into(),
            architecture: "x86_64".into(),
            memory_mb: 128,
            throttle_rate: 100.0,
            throttle_burst: 200,
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
    renderer.tables();
    renderer.http_api();
    for function in &spec.functions {
        renderer.function(function)?;
    }
    renderer.workflows()?;
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
                "Value": { "Fn::Sub": format!("https://${{{}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}", http_api::HTTP_API) }
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
        render(Function::queue("big", "jobs", noop).batch_size(10_000)).unwrap();
        let err = render(Function::queue("big", "jobs", noop).batch_size(10_001)).unwrap_err();
        assert!(err.message().contains("at most 10000"), "{err}");
        let err = render(Function::topic("big", "news", noop).batch_size(10_001)).unwrap_err();
        assert!(err.message().contains("at most 10000"), "{err}");
        let err = render(Function::queue("none", "jobs", noop).batch_size(0)).unwrap_err();
        assert!(err.message().contains("batch size 0"), "{err}");
        let err = render(Function::queue("one", "jobs", noop).max_concurrency(1)).unwrap_err();
        assert!(err.message().contains("2 to 1000"), "{err}");
    }

    #[test]
    fn a_consumer_without_a_dead_letter_queue_gets_one() {
        let t =
            render(Function::queue("work", "jobs", noop).retry(cloudfn_core::RetryPolicy::new(5)))
                .unwrap();
        let redrive = &t["Resources"]["JobsQueue"]["Properties"]["RedrivePolicy"];
        assert_eq!(
            redrive["maxReceiveCount"],
            cloudfn_core::conventions::redrive_receive_count(5),
            "the runtime counts the five attempts; the redrive is the last resort"
        );
        assert!(redrive["maxReceiveCount"].as_u64().unwrap() > 5);
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
        let statements = &t["Resources"]["ThumbsRole"]["Properties"]["Policies"][0]["PolicyDocument"]
            ["Statement"];
        let statement = statements
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Action"] == "s3:GetObject")
            .unwrap();
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

    /// A schedule or storage function that names no dead-letter queue still
    /// keeps its events that fail for good: Lambda's failure destination is
    /// the default queue, which its role may send to.
    #[test]
    fn asynchronous_triggers_without_a_dead_letter_queue_get_the_default_one() {
        let functions = [
            (
                Function::schedule("nightly", "0 3 * * *", |_, _| async { Ok(()) }),
                "Nightly",
            ),
            (
                Function::storage("thumbs", "uploads", [StorageEventKind::Created], stored),
                "Thumbs",
            ),
        ];
        for (function, id) in functions {
            let t = render(function).unwrap();
            let queue = format!("{id}DeadLetterQueue");
            assert_eq!(t["Resources"][&queue]["Type"], "AWS::SQS::Queue", "{id}");
            let config =
                &t["Resources"][format!("{id}Function")]["Properties"]["EventInvokeConfig"];
            assert_eq!(
                config["DestinationConfig"]["OnFailure"],
                json!({"Type": "SQS", "Destination": {"Fn::GetAtt": [&queue, "Arn"]}}),
                "{id}"
            );
            let statements = &t["Resources"][format!("{id}Role")]["Properties"]["Policies"][0]["PolicyDocument"]
                ["Statement"];
            assert!(
                statements.as_array().unwrap().iter().any(|s| {
                    s["Resource"]["Fn::GetAtt"][0] == queue.as_str()
                        && s["Action"]
                            .as_array()
                            .is_some_and(|a| a.contains(&json!("sqs:SendMessage")))
                }),
                "{id}: {statements}"
            );
        }
    }

    #[test]
    fn stores_are_tables_each_function_reaching_only_what_it_declared() {
        let app = App::new("t")
            .function(
                Function::queue("charge", "orders", noop)
                    .uses_store("orders")
                    .idempotent(cloudfn_core::Idempotency::by_message_id()),
            )
            .function(
                Function::schedule("report", "0 * * * *", |_, _| async { Ok(()) })
                    .reads_store("orders"),
            );
        let t = sam_template(&app.spec(), &SamOptions::default()).unwrap();
        let table = &t["Resources"]["OrdersTable"];
        assert_eq!(table["Type"], "AWS::DynamoDB::Table");
        assert_eq!(
            table["DeletionPolicy"], "Retain",
            "orders outlive the stack"
        );
        assert_eq!(
            table["Properties"]["TimeToLiveSpecification"],
            json!({"AttributeName": "ttl", "Enabled": true})
        );
        assert_eq!(
            t["Resources"]["CloudfnIdempotencyTable"]["DeletionPolicy"],
            "Delete"
        );
        let statements = |role: &str| {
            t["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["Action"].to_string().contains("dynamodb:"))
                .map(|s| (s["Resource"]["Fn::GetAtt"][0].clone(), s["Action"].clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            statements("ReportRole"),
            [(json!("OrdersTable"), json!(["dynamodb:GetItem"]))],
            "a reader may only read"
        );
        let charge = statements("ChargeRole");
        assert_eq!(
            charge.len(),
            2,
            "its store and the idempotency claims: {charge:?}"
        );
        let variables = &t["Resources"]["ReportFunction"]["Properties"]["Environment"]["Variables"];
        assert_eq!(
            variables["CLOUDFN_STORE_TABLE_ORDERS"],
            json!({"Ref": "OrdersTable"})
        );
        assert!(
            variables
                .get("CLOUDFN_STORE_TABLE_CLOUDFN_IDEMPOTENCY")
                .is_none()
        );
    }

    #[test]
    fn http_routes_are_private_unless_declared_and_throttled() {
        async fn page(
            _: cloudfn_core::HttpRequest,
            _: Context,
        ) -> Result<cloudfn_core::HttpResponse, Error> {
            Ok(cloudfn_core::HttpResponse::new(200))
        }
        use cloudfn_core::Method;
        let app = App::new("t")
            .function(Function::http("status", Method::Get, "/orders/{id}", page))
            .function(Function::http("checkout", Method::Post, "/orders", page).public())
            .function(
                Function::http("me", Method::Get, "/me", page)
                    .jwt("https://auth.example.com/", ["shop"]),
            );
        let t = sam_template(&app.spec(), &SamOptions::default()).unwrap();
        let authorizer = |f: &str| {
            let event = &t["Resources"][f]["Properties"]["Events"]["Http"]["Properties"];
            assert_eq!(event["ApiId"], json!({"Ref": "HttpApi"}));
            event["Auth"]["Authorizer"].as_str().unwrap().to_owned()
        };
        assert_eq!(
            authorizer("StatusFunction"),
            "AWS_IAM",
            "private by default"
        );
        assert_eq!(authorizer("CheckoutFunction"), "NONE");
        assert_eq!(authorizer("MeFunction"), "Jwt1");
        let api = &t["Resources"]["HttpApi"]["Properties"];
        assert_eq!(api["Auth"]["DefaultAuthorizer"], "AWS_IAM");
        assert_eq!(
            api["Auth"]["Authorizers"]["Jwt1"]["JwtConfiguration"],
            json!({"issuer": "https://auth.example.com/", "audience": ["shop"]})
        );
        assert_eq!(api["DefaultRouteSettings"]["ThrottlingRateLimit"], 100.0);
        assert_eq!(api["DefaultRouteSettings"]["ThrottlingBurstLimit"], 200);
    }

    #[test]
    fn greedy_routes_use_api_gateway_syntax() {
        assert_eq!(api_path("/files/{*path}"), "/files/{path+}");
        assert_eq!(api_path("/orders/{id}"), "/orders/{id}");
    }
}
