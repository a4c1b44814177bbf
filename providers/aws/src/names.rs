//! How neutral names become AWS names: CloudFormation logical ids, SQS's
//! FIFO suffix, and the environment variables through which a deployment
//! tells a function its resources' URLs and ARNs. The deployment files, the
//! dev emulation and the clients read them here alike — and
//! [`check_collisions`] refuses distinct names that would become one.

use std::collections::{HashMap, hash_map::Entry};

use cloudfn_core::{AppSpec, Error};

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

/// The environment variable that names a resource's physical id, as the
/// SAM template sets it: `CLOUDFN_QUEUE_URL_ORDERS_DLQ` for queue
/// `orders-dlq`.
pub use cloudfn_core::conventions::resource_variable;

/// SQS wants FIFO queue names to end in `.fifo`.
pub fn sqs_name(name: &str, fifo: bool) -> String {
    if fifo && !name.ends_with(".fifo") {
        format!("{name}.fifo")
    } else {
        name.to_owned()
    }
}

/// Refuses an app in which two distinct names become one name on AWS — one
/// CloudFormation logical id (`order-paid`, `order_paid` and `orderPaid`
/// are all `OrderPaid…`), one environment variable (`order-paid` and
/// `order.paid` are both `…_ORDER_PAID`), one SQS queue name (`ledger` as
/// a FIFO queue and `ledger.fifo`): one resource would silently replace the
/// other, or one function reach another's queue. The error names both.
/// Checked when a bootstrap starts and when the template is rendered.
///
/// ```
/// use cloudfn_core::{App, Context, Error, Function, Message};
///
/// async fn noop(_: Message<serde_json::Value>, _: Context) -> Result<(), Error> { Ok(()) }
///
/// let app = App::new("a")
///     .function(Function::topic("paid", "order-paid", noop))
///     .function(Function::topic("other", "order_paid", noop));
/// let err = cloudfn_aws::names::check_collisions(&app.spec()).unwrap_err();
/// assert!(err.message().contains("topic `order-paid`") && err.message().contains("topic `order_paid`"));
/// ```
pub fn check_collisions(spec: &AppSpec) -> Result<(), Error> {
    let mut names = Names::default();
    for function in &spec.functions {
        let who = format!("function `{}`", function.name);
        names.claim(
            "CloudFormation logical id",
            logical_id(&function.name, "Function"),
            &who,
        )?;
        if function.consumes.is_some() {
            // SAM names an SQS event source `<function id><event name>`,
            // and the function's event is called `Queue`.
            names.claim(
                "CloudFormation logical id",
                logical_id(&function.name, "FunctionQueue"),
                &format!("the SQS event source of function `{}`", function.name),
            )?;
        }
    }
    for queue in &spec.queues {
        let who = format!("queue `{}`", queue.name);
        names.claim(
            "CloudFormation logical id",
            logical_id(&queue.name, "Queue"),
            &who,
        )?;
        names.claim(
            "environment variable",
            queue_url_variable(&queue.name),
            &who,
        )?;
        names.claim("SQS queue name", sqs_name(&queue.name, queue.fifo), &who)?;
    }
    for topic in &spec.topics {
        let who = format!("topic `{}`", topic.name);
        names.claim(
            "CloudFormation logical id",
            logical_id(&topic.name, "Topic"),
            &who,
        )?;
        names.claim(
            "environment variable",
            topic_arn_variable(&topic.name),
            &who,
        )?;
    }
    for workflow in &spec.workflows {
        let who = format!("workflow `{}`", workflow.name());
        for (id, what) in [
            ("StateMachine", "state machine"),
            ("StateMachineRole", "role"),
        ] {
            names.claim(
                "CloudFormation logical id",
                logical_id(workflow.name(), id),
                &format!("{who}'s {what}"),
            )?;
        }
        names.claim(
            "environment variable",
            state_machine_variable(workflow.name()),
            &who,
        )?;
    }
    for bucket in &spec.buckets {
        let who = format!("bucket `{bucket}`");
        names.claim(
            "CloudFormation logical id",
            logical_id(bucket, "Bucket"),
            &who,
        )?;
    }
    Ok(())
}

/// The prefix of the variable holding a queue's URL.
const QUEUE_URL: &str = "CLOUDFN_QUEUE_URL_";
/// The prefix of the variable holding a topic's ARN.
const TOPIC_ARN: &str = "CLOUDFN_TOPIC_ARN_";
/// The prefix of the variable holding a workflow's state machine ARN.
const STATE_MACHINE_ARN: &str = "CLOUDFN_STATE_MACHINE_ARN_";
/// The prefix of the variable holding a store's table name.
const STORE_TABLE: &str = "CLOUDFN_STORE_TABLE_";

/// The variable that tells a function queue `queue`'s URL.
pub fn queue_url_variable(queue: &str) -> String {
    resource_variable(QUEUE_URL, queue)
}

/// The variable that tells a function topic `topic`'s ARN.
pub fn topic_arn_variable(topic: &str) -> String {
    resource_variable(TOPIC_ARN, topic)
}

/// The variable that tells a function workflow `workflow`'s state machine ARN.
pub fn state_machine_variable(workflow: &str) -> String {
    resource_variable(STATE_MACHINE_ARN, workflow)
}

/// The variable that tells a function the table of store `store`.
pub fn store_table_variable(store: &str) -> String {
    resource_variable(STORE_TABLE, store)
}

/// AWS names handed out so far, each with who has it.
#[derive(Default)]
struct Names(HashMap<(&'static str, String), String>);

impl Names {
    fn claim(&mut self, what: &'static str, name: String, who: &str) -> Result<(), Error> {
        match self.0.entry((what, name)) {
            Entry::Vacant(free) => {
                free.insert(who.to_owned());
                Ok(())
            }
            Entry::Occupied(taken) => Err(Error::invalid(format!(
                "{} and {who} both become the {what} `{}` on AWS; rename one",
                taken.get(),
                taken.key().1
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_name_resources() {
        assert_eq!(
            queue_url_variable("orders-dlq"),
            "CLOUDFN_QUEUE_URL_ORDERS_DLQ"
        );
        assert_eq!(
            topic_arn_variable("order.paid"),
            "CLOUDFN_TOPIC_ARN_ORDER_PAID"
        );
        assert_eq!(sqs_name("ledger", true), "ledger.fifo");
        assert_eq!(sqs_name("ledger.fifo", true), "ledger.fifo");
        assert_eq!(sqs_name("jobs", false), "jobs");
    }
}

#[cfg(test)]
mod collision_tests {
    use cloudfn_core::{App, Context, Error, Function, HttpRequest, HttpResponse, Message, Method};

    use super::check_collisions;

    async fn noop(_: Message<serde_json::Value>, _: Context) -> Result<(), Error> {
        Ok(())
    }

    async fn http(_: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
        Ok(HttpResponse::new(200))
    }

    fn refused(app: App) -> String {
        check_collisions(&app.spec())
            .unwrap_err()
            .message()
            .to_owned()
    }

    #[test]
    fn names_that_meet_on_aws_are_refused_naming_both() {
        for other in ["order_paid", "orderPaid"] {
            let why = refused(
                App::new("a")
                    .function(
                        Function::http("a", Method::Post, "/a", http).publishes_to("order-paid"),
                    )
                    .function(Function::http("b", Method::Post, "/b", http).publishes_to(other)),
            );
            assert!(
                why.contains("topic `order-paid`") && why.contains(&format!("topic `{other}`")),
                "{why}"
            );
        }
        let why = refused(
            App::new("a")
                .function(Function::queue("order-paid", "a", noop))
                .function(Function::queue("orderPaid", "b", noop)),
        );
        assert!(
            why.contains("function `order-paid`") && why.contains("function `orderPaid`"),
            "{why}"
        );
        let why = refused(
            App::new("a").function(
                Function::http("h", Method::Post, "/", http)
                    .sends_to("order.paid")
                    .sends_to("ORDER-PAID"),
            ),
        );
        assert!(
            why.contains("environment variable `CLOUDFN_QUEUE_URL_ORDER_PAID`"),
            "{why}"
        );
        let why = refused(
            App::new("a")
                .function(Function::fifo_queue("book", "ledger", noop))
                .function(Function::http("h", Method::Post, "/", http).sends_to("ledger.fifo")),
        );
        assert!(why.contains("SQS queue name `ledger.fifo`"), "{why}");
        let why = refused(
            App::new("a")
                .function(Function::queue("work", "jobs", noop).dead_letter("work-function")),
        );
        assert!(
            why.contains("queue `work-function`")
                && why.contains("event source of function `work`"),
            "{why}"
        );
    }

    #[test]
    fn distinct_names_pass() {
        let app = App::new("a")
            .function(Function::queue("charge", "orders", noop).dead_letter("orders-dlq"))
            .function(Function::topic("notify", "order-paid", noop))
            .function(Function::http("h", Method::Post, "/", http).sends_to("orders"));
        check_collisions(&app.spec()).unwrap();
    }
}
