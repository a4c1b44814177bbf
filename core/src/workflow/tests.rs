use std::time::Duration;

use serde_json::json;

use super::*;
use crate::{App, Context, Error, Function, Message};

use fixture::{FUNCTIONS, every_kind_of_step as order_flow};

fn known(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

fn refused(flow: Workflow) -> String {
    flow.validate(known).unwrap_err().message().to_owned()
}

#[test]
fn a_workflow_is_data_that_survives_json() {
    let flow = order_flow();
    let text = serde_json::to_value(&flow).unwrap();
    assert_eq!(text["steps"][1]["type"], "call");
    assert_eq!(text["steps"][1]["function"], "charge-card");
    assert_eq!(text["steps"][1]["compensation"], "refund");
    assert_eq!(text["steps"][1]["retry"]["max_attempts"], 3);
    assert_eq!(
        text["steps"][3]["when"][0]["condition"]["equals"]["path"],
        "shipping"
    );
    assert_eq!(text["steps"][3]["otherwise"][0]["millis"], 30_000);
    let back: Workflow = serde_json::from_value(text).unwrap();
    assert_eq!(back, flow);
}

#[test]
fn the_shop_flow_is_valid_and_says_what_it_calls() {
    let flow = order_flow();
    flow.validate(known).unwrap();
    assert_eq!(flow.functions(), {
        let mut all = FUNCTIONS.to_vec();
        all.sort_unstable();
        all
    });
    assert_eq!(flow.compensations(), ["refund", "release-stock"]);
    let names: Vec<&str> = flow.all_steps().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "validate",
            "charge",
            "reserve",
            "backorder",
            "express",
            "rush",
            "settle",
            "tell",
            "email",
            "announce",
            "done"
        ]
    );
}

#[test]
fn validation_names_the_workflow_the_step_and_the_fault() {
    let one = |step: Step| Workflow::new("flow").step(step);
    assert_eq!(
        refused(one(Step::call("pay", "charge"))),
        "workflow `flow`: step `pay`: `charge` is not a step function of the app"
    );
    assert_eq!(
        refused(one(Step::call("pay", "charge-card").compensate("undo"))),
        "workflow `flow`: step `pay`: compensation `undo` is not a step function of the app"
    );
    assert_eq!(
        refused(
            Workflow::new("flow")
                .step(Step::fail("stop", "Stopped", "always"))
                .step(Step::call("pay", "charge-card"))
        ),
        "workflow `flow`: step `pay` is unreachable: `stop` before it ends the run"
    );
    assert_eq!(
        refused(
            Workflow::new("flow")
                .step(Step::call("pay", "charge-card"))
                .step(Step::parallel("both", [[Step::call("pay", "notify")]]))
        ),
        "workflow `flow`: step `pay` is named twice; step names are unique in a workflow"
    );
    assert_eq!(
        refused(Workflow::new("flow")),
        "workflow `flow`: it has no steps"
    );
    assert_eq!(
        refused(Workflow::new("no flow").step(Step::succeed("done"))),
        "workflow `no flow`: names are 1 to 64 letters, digits, `-` or `_`"
    );
}

#[test]
fn branches_and_their_steps_are_checked_too() {
    let one = |step: Step| refused(Workflow::new("flow").step(step));
    assert!(one(Step::choice("route", Choice::new())).contains("at least one condition"));
    assert!(
        one(Step::parallel("both", [vec![Step::succeed("a")], vec![]]))
            .contains("each with a step")
    );
    assert!(
        one(Step::choice(
            "route",
            Choice::new().when(Condition::exists("order.2total"), [Step::succeed("a")])
        ))
        .contains("field path `order.2total`")
    );
    assert!(
        one(Step::choice(
            "route",
            Choice::new().when(
                Condition::exists("ok"),
                [Step::call("pay", "charge-card").compensate("refund")]
            )
        ))
        .contains("step `pay`: only the workflow's own steps compensate")
    );
    assert!(
        one(Step::choice(
            "route",
            Choice::new().when(Condition::exists("ok"), [Step::call("pay", "nothing")])
        ))
        .contains("step `pay`: `nothing` is not a step function")
    );
    assert!(one(Step::wait("nap", Duration::ZERO)).contains("more than zero"));
    assert!(one(Step::succeed("done").retry(RetryPolicy::new(2))).contains("nothing to retry"));
    assert!(
        one(Step::wait("nap", Duration::from_secs(1)).compensate("refund"))
            .contains("only call, send and publish steps retry or compensate")
    );
    assert!(
        one(
            Step::choice("route", Choice::new().when(Condition::exists("ok"), []))
                .catch(ErrorMatch::Any, [Step::succeed("a")])
        )
        .contains("only call, send, publish and parallel steps catch")
    );
    assert!(
        one(Step::call("pay", "charge-card").catch(ErrorMatch::Any, []))
            .contains("a catch needs a step")
    );
}

#[test]
fn conditions_read_plain_field_paths() {
    let order = json!({"status": "paid", "total": 12.5, "customer": {"tier": "gold"}});
    assert!(Condition::equals("customer.tier", "gold").holds(&order));
    assert!(!Condition::equals("customer.tier", "silver").holds(&order));
    assert!(!Condition::equals("missing.tier", "gold").holds(&order));
    assert!(Condition::greater_than("total", 10.0).holds(&order));
    assert!(
        !Condition::less_than("status", 10.0).holds(&order),
        "not a number"
    );
    assert!(
        Condition::exists("refund")
            .negate()
            .or(Condition::equals("status", "refunded"))
            .holds(&order)
    );
    assert!(!Condition::exists("refund").holds(&json!({"refund": null})));
}

#[test]
fn a_catch_matches_by_kind_or_by_retryability() {
    assert!(ErrorMatch::Any.matches(ErrorKind::Invalid));
    assert!(ErrorMatch::Retryable.matches(ErrorKind::Unavailable));
    assert!(!ErrorMatch::Retryable.matches(ErrorKind::Invalid));
    assert!(ErrorMatch::Permanent.matches(ErrorKind::Invalid));
    assert!(ErrorMatch::Kinds(vec![ErrorKind::Conflict]).matches(ErrorKind::Conflict));
    assert!(!ErrorMatch::Kinds(vec![ErrorKind::Conflict]).matches(ErrorKind::NotFound));
}

async fn step(msg: Message<serde_json::Value>, _: Context) -> Result<serde_json::Value, Error> {
    Ok(msg.body)
}

#[test]
fn an_app_checks_its_workflows_and_hands_them_to_deployments() {
    let app = FUNCTIONS
        .iter()
        .fold(App::new("shop"), |app, name| {
            app.function(Function::step(*name, step))
        })
        .workflow(order_flow());
    app.validate().unwrap();
    let queue_fed = App::new("shop")
        .function(Function::queue(
            "validate-order",
            "orders",
            |_: Message<()>, _| async { Ok(()) },
        ))
        .workflow(Workflow::new("order").step(Step::call("validate", "validate-order")));
    assert_eq!(
        queue_fed.validate().unwrap_err().message(),
        "workflow `order`: step `validate`: `validate-order` is not a step function of the app"
    );
    assert_eq!(app.spec().workflows, [order_flow()]);

    let twice = app.clone().workflow(order_flow());
    assert_eq!(
        twice.validate().unwrap_err().message(),
        "workflow `order`: the name is used twice"
    );
    let unknown = App::new("shop").workflow(order_flow());
    assert!(
        unknown
            .validate()
            .unwrap_err()
            .message()
            .contains("`validate-order` is not a step function of the app")
    );
}
