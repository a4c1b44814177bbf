//! How neutral names become Azure names, and the app settings through which
//! a deployment tells the function app its resources' names: the deployment
//! files, the host simulator and the clients read them here alike.
//!
//! With nothing set, queue `orders` is the Storage queue `orders` of the
//! `AzureWebJobsStorage` account, and store `orders` the table `orders`.

use cloudfn_core::{AppSpec, Error, conventions::resource_variable};

/// The app setting holding the Storage account's connection string: the
/// host's own (queue triggers, timer locks), and cloudfn's clients' unless
/// [`CLIENT_STORAGE_CONNECTION`] is set.
pub const STORAGE_CONNECTION: &str = "AzureWebJobsStorage";

/// The connection cloudfn's Storage clients prefer to the host's: in a
/// deployment, `CLOUDFN_STORAGE__accountName`, so that the function code
/// reaches Storage with the app's managed identity, bounded by its role
/// assignments, rather than with the account key the host holds.
pub const CLIENT_STORAGE_CONNECTION: &str = "CLOUDFN_STORAGE";

/// The app setting holding the connection string of the Service Bus
/// namespace with the app's topics.
pub const SERVICE_BUS_CONNECTION: &str = "CLOUDFN_SERVICE_BUS";

/// The app setting naming queue `name`'s Storage queue (core's
/// convention): `CLOUDFN_QUEUE_ORDERS_DLQ` for `orders-dlq`.
/// `function.json` refers to it as `%CLOUDFN_QUEUE_ORDERS_DLQ%`.
pub use cloudfn_core::conventions::queue_variable;

/// The app setting naming topic `name`'s Service Bus topic (core's
/// convention).
pub use cloudfn_core::conventions::topic_variable;

/// The app setting naming store `name`'s table.
pub fn table_variable(name: &str) -> String {
    resource_variable("CLOUDFN_STORE_TABLE_", name)
}

/// The Storage queue of neutral queue `name`: the app setting
/// [`queue_variable`] names, else `name` itself.
pub fn queue_name(name: &str) -> String {
    setting(&queue_variable(name)).unwrap_or_else(|| name.to_owned())
}

/// The table of neutral store `name`: the app setting [`table_variable`]
/// names, else [`default_table_name`].
pub fn table_name(name: &str) -> String {
    setting(&table_variable(name)).unwrap_or_else(|| default_table_name(name))
}

/// The Service Bus topic of neutral topic `name`: the app setting
/// [`topic_variable`] names, else `name` itself.
pub fn topic_name(name: &str) -> String {
    setting(&topic_variable(name)).unwrap_or_else(|| name.to_owned())
}

/// A table name for store `name`: tables take letters and digits only, so
/// the rest is dropped (`cloudfn-idempotency` → `cloudfnidempotency`).
pub fn default_table_name(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).collect()
}

fn setting(variable: &str) -> Option<String> {
    std::env::var(variable).ok().filter(|v| !v.is_empty())
}

/// Whether `name` is a Storage queue name: 3–63 lower-case letters, digits
/// and single hyphens, starting and ending with a letter or digit.
pub fn is_queue_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// Every Storage queue `spec` needs, by neutral name: the queues it
/// declares, those that feed its consumers (a topic subscriber's own
/// queue in the host simulator), and its functions' dead-letter queues.
pub fn queues(spec: &AppSpec) -> std::collections::BTreeSet<String> {
    let mut queues: std::collections::BTreeSet<String> =
        spec.queues.iter().map(|q| q.name.clone()).collect();
    for function in &spec.functions {
        let trigger = &function.trigger;
        queues.extend(cloudfn_core::conventions::consumed_queue(
            &function.name,
            trigger,
        ));
        queues.extend(cloudfn_core::conventions::failure_queue(
            &function.name,
            trigger,
            &function.policy,
        ));
    }
    queues
}

/// Refuses an app whose names Azure cannot take, or would take as one:
/// a queue that is no Storage queue name, a store whose table name is not
/// 3–63 characters starting with a letter, two stores with one table name,
/// two names with one app setting. The error names what to rename.
pub fn check(spec: &AppSpec) -> Result<(), Error> {
    let queues = queues(spec);
    for queue in &queues {
        if !is_queue_name(queue) {
            return Err(Error::invalid(format!(
                "queue `{queue}` cannot be a Storage queue on Azure: use 3 to 63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit"
            )));
        }
    }
    let mut tables = std::collections::HashMap::new();
    for store in &spec.stores {
        let table = default_table_name(&store.name);
        let starts_with_letter = table.starts_with(|c: char| c.is_ascii_alphabetic());
        if !(3..=63).contains(&table.len()) || !starts_with_letter {
            return Err(Error::invalid(format!(
                "store `{}` would be table `{table}` on Azure, which needs 3 to 63 letters and digits starting with a letter",
                store.name
            )));
        }
        if let Some(other) = tables.insert(table.to_ascii_lowercase(), &store.name) {
            return Err(Error::invalid(format!(
                "stores `{other}` and `{}` would both be table `{table}` on Azure (tables keep letters and digits only, case aside): rename one",
                store.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudfn_core::{App, Function, Method};

    #[test]
    fn settings_and_default_names() {
        assert_eq!(queue_variable("orders-dlq"), "CLOUDFN_QUEUE_ORDERS_DLQ");
        assert_eq!(table_variable("orders"), "CLOUDFN_STORE_TABLE_ORDERS");
        assert_eq!(topic_variable("order.paid"), "CLOUDFN_TOPIC_ORDER_PAID");
        assert_eq!(
            default_table_name("cloudfn-idempotency"),
            "cloudfnidempotency"
        );
        assert!(is_queue_name("orders-dlq"));
        for bad in ["Orders", "or", "a--b", "-ab", "ab-", "order.paid"] {
            assert!(!is_queue_name(bad), "{bad}");
        }
    }

    #[test]
    fn names_azure_cannot_take_are_refused_by_name() {
        let ok = |_: cloudfn_core::HttpRequest, _: cloudfn_core::Context| async {
            Ok::<_, Error>(cloudfn_core::HttpResponse::new(200))
        };
        let app =
            App::new("a").function(Function::http("f", Method::Get, "/", ok).sends_to("Orders"));
        let error = check(&app.spec()).unwrap_err();
        assert!(error.message().contains("`Orders`"), "{error}");

        let app = App::new("a").function(
            Function::http("f", Method::Get, "/", ok)
                .uses_store("order-log")
                .uses_store("orderlog"),
        );
        let error = check(&app.spec()).unwrap_err();
        assert!(
            error.message().contains("`order-log`") && error.message().contains("`orderlog`"),
            "{error}"
        );
    }
}
