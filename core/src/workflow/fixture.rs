//! A workflow with a step of every kind, for the tests of whatever runs or
//! renders workflows (the orchestrator, each cloud's rendering), so that
//! they all check the same definition.

use std::time::Duration;

use super::{Choice, Condition, ErrorMatch, Step, Workflow};
use crate::{ErrorKind, RetryPolicy};

/// The functions [`every_kind_of_step`] calls, compensations included.
pub const FUNCTIONS: [&str; 6] = [
    "validate-order",
    "charge-card",
    "reserve-stock",
    "notify",
    "refund",
    "release-stock",
];

/// An order flow: validate; charge (three attempts, refunded on a later
/// failure); reserve (a conflict caught into a `backorders` send, released
/// on a later failure); a choice on `shipping` between publishing to
/// `rush-orders` and a 30 s wait; email and an `order-paid` publish side by
/// side; succeed.
pub fn every_kind_of_step() -> Workflow {
    Workflow::new("order")
        .step(Step::call("validate", "validate-order"))
        .step(
            Step::call("charge", "charge-card")
                .retry(RetryPolicy::new(3))
                .compensate("refund"),
        )
        .step(
            Step::call("reserve", "reserve-stock")
                .catch(
                    ErrorMatch::Kinds(vec![ErrorKind::Conflict]),
                    [Step::send("backorder", "backorders")],
                )
                .compensate("release-stock"),
        )
        .step(Step::choice(
            "express",
            Choice::new()
                .when(
                    Condition::equals("shipping", "express"),
                    [Step::publish("rush", "rush-orders")],
                )
                .otherwise([Step::wait("settle", Duration::from_secs(30))]),
        ))
        .step(Step::parallel(
            "tell",
            [
                vec![Step::call("email", "notify")],
                vec![Step::publish("announce", "order-paid")],
            ],
        ))
        .step(Step::succeed("done"))
}
