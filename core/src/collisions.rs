//! Queue names that must belong to one use only. A topic reaches each
//! subscriber through its own queue `<topic>-<function>`
//! ([`conventions::subscription_queue`]), so `order-paid` + `notify-all` and
//! `order-paid-notify` + `all` would share one queue — one function would
//! consume the other's messages — and a queue the app declares (or a
//! default dead-letter queue) could be the same name. Every provider
//! refuses such an app in [`crate::App::validate`], naming both parties.

use std::collections::BTreeMap;

use crate::{AppSpec, Error, Trigger, conventions};

/// Refuses a subscription queue that is also any other queue of the app.
pub(crate) fn check(spec: &AppSpec) -> Result<(), Error> {
    let mut uses: BTreeMap<String, Vec<(bool, String)>> = BTreeMap::new();
    let mut used = |queue: String, subscription: bool, who: String| {
        uses.entry(queue).or_default().push((subscription, who));
    };
    for function in &spec.functions {
        let name = &function.name;
        match &function.trigger {
            Trigger::Topic { topic } => used(
                conventions::subscription_queue(topic, name),
                true,
                format!("the queue carrying topic `{topic}` to function `{name}`"),
            ),
            Trigger::Queue { queue, .. } => used(
                queue.clone(),
                false,
                format!("the queue function `{name}` consumes"),
            ),
            _ => {}
        }
        for queue in &function.sends_to {
            used(
                queue.clone(),
                false,
                format!("a queue function `{name}` sends to"),
            );
        }
        let dead_letter = match &function.consumes {
            Some(source) => Some(conventions::dead_letter_queue(&function.policy, source)),
            None => function.policy.dead_letter.clone(),
        };
        if let Some(queue) = dead_letter {
            used(
                queue,
                false,
                format!("the dead-letter queue of function `{name}`"),
            );
        }
    }
    for (queue, uses) in &uses {
        let Some((_, subscription)) = uses.iter().find(|(subscription, _)| *subscription) else {
            continue;
        };
        if let Some((_, other)) = uses.iter().find(|(_, who)| who != subscription) {
            return Err(Error::invalid(format!(
                "queue `{queue}` is both {subscription} and {other}; rename a topic or a function"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{App, Context, Error, Function, HttpRequest, HttpResponse, Message, Method};

    async fn noop(_: Message<serde_json::Value>, _: Context) -> Result<(), Error> {
        Ok(())
    }

    async fn http(_: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
        Ok(HttpResponse::new(200))
    }

    fn refused(app: App) -> String {
        app.validate().unwrap_err().message().to_owned()
    }

    #[test]
    fn subscription_queues_of_different_pairs_cannot_meet() {
        let why = refused(
            App::new("a")
                .function(Function::topic("notify-all", "order-paid", noop))
                .function(Function::topic("all", "order-paid-notify", noop)),
        );
        assert!(
            why.contains("`order-paid-notify-all`")
                && why.contains("topic `order-paid` to function `notify-all`")
                && why.contains("topic `order-paid-notify` to function `all`"),
            "{why}"
        );
    }

    #[test]
    fn a_subscription_queue_is_no_declared_queue() {
        let consumed = refused(
            App::new("a")
                .function(Function::topic("notify", "order-paid", noop))
                .function(Function::queue("thief", "order-paid-notify", noop)),
        );
        assert!(
            consumed.contains("function `notify`") && consumed.contains("function `thief`"),
            "{consumed}"
        );
        let sent = refused(
            App::new("a")
                .function(Function::topic("notify", "order-paid", noop))
                .function(
                    Function::http("h", Method::Post, "/", http).sends_to("order-paid-notify"),
                ),
        );
        assert!(sent.contains("sends to"), "{sent}");
        let dead_letter = refused(
            App::new("a")
                .function(Function::topic("dead-letter", "orders", noop))
                .function(Function::queue("charge", "orders", noop)),
        );
        assert!(
            dead_letter.contains("`orders-dead-letter`")
                && dead_letter.contains("dead-letter queue of function `charge`"),
            "{dead_letter}"
        );
    }

    #[test]
    fn ordinary_sharing_passes() {
        App::new("a")
            .function(Function::topic("notify", "order-paid", noop))
            .function(Function::topic("audit", "order-paid", noop))
            .function(Function::queue("charge", "orders", noop).dead_letter("failed"))
            .function(Function::queue("redrive", "failed", noop))
            .function(Function::http("h", Method::Post, "/", http).sends_to("orders"))
            .validate()
            .unwrap();
    }
}
