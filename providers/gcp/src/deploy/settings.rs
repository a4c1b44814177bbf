//! The environment of every function: the project, and the name of each
//! topic and collection the clients read ([`crate::names`]).

use std::collections::BTreeMap;

use cloudfn_core::{AppSpec, conventions};

use crate::names;

/// The settings naming every resource of `spec` in `project`, each the
/// neutral name behind `prefix` ([`conventions::physical_name`]).
pub fn settings(spec: &AppSpec, prefix: &str, project: &str) -> BTreeMap<String, String> {
    let physical = |name: &str| conventions::physical_name(prefix, name);
    let mut settings = BTreeMap::from([(names::PROJECT_VARIABLE.to_owned(), project.to_owned())]);
    // Subscription queues have no topic of their own: nothing sends to them.
    for queue in spec.queues.iter().filter(|q| q.subscribes_to.is_none()) {
        settings.insert(
            conventions::queue_variable(&queue.name),
            physical(&queue.name),
        );
    }
    for topic in &spec.topics {
        settings.insert(
            conventions::topic_variable(&topic.name),
            physical(&topic.name),
        );
    }
    for store in &spec.stores {
        settings.insert(
            names::collection_variable(&store.name),
            physical(&store.name),
        );
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::tests::every_trigger;

    #[test]
    fn settings_name_every_resource_behind_the_prefix() {
        let settings = settings(&every_trigger().spec(), "shop-prod", "my-project");
        assert_eq!(settings["GOOGLE_CLOUD_PROJECT"], "my-project");
        assert_eq!(settings["CLOUDFN_QUEUE_ORDERS"], "shop-prod-orders");
        assert_eq!(settings["CLOUDFN_QUEUE_ORDERS_DLQ"], "shop-prod-orders-dlq");
        assert_eq!(settings["CLOUDFN_TOPIC_ORDER_PAID"], "shop-prod-order-paid");
        assert_eq!(
            settings["CLOUDFN_QUEUE_REPORT_DEAD_LETTER"],
            "shop-prod-report-dead-letter"
        );
        assert!(!settings.contains_key("CLOUDFN_QUEUE_ORDER_PAID_NOTIFY"));
    }
}
