//! The app settings of the function app: the worker runtime, and the name
//! of each queue, table and topic the bindings and clients read.

use std::collections::BTreeMap;

use cloudfn_core::{AppSpec, conventions};
use serde_json::{Value, json};

use crate::names::{self, SERVICE_BUS_CONNECTION, STORAGE_CONNECTION};

/// The settings naming every resource of `spec` in the cloud, each the
/// neutral name behind `prefix` ([`conventions::physical_name`]), plus
/// `FUNCTIONS_WORKER_RUNTIME=Custom`.
pub fn app_settings(spec: &AppSpec, prefix: &str) -> BTreeMap<String, String> {
    let mut settings =
        BTreeMap::from([("FUNCTIONS_WORKER_RUNTIME".to_owned(), "Custom".to_owned())]);
    for queue in names::queues(spec) {
        settings.insert(
            names::queue_variable(&queue),
            conventions::physical_name(prefix, &queue),
        );
    }
    for store in &spec.stores {
        let table = names::default_table_name(&conventions::physical_name(prefix, &store.name));
        settings.insert(names::table_variable(&store.name), table);
    }
    for topic in &spec.topics {
        settings.insert(
            names::topic_variable(&topic.name),
            conventions::physical_name(prefix, &topic.name),
        );
    }
    settings
}

/// `local.settings.json` for `func start` against Azurite: the app
/// settings with no prefix, and the development storage account.
pub fn local_settings(spec: &AppSpec) -> Value {
    let mut values: serde_json::Map<String, Value> = app_settings(spec, "")
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    values.insert(
        STORAGE_CONNECTION.into(),
        json!("UseDevelopmentStorage=true"),
    );
    if !spec.topics.is_empty() {
        values.insert(
            SERVICE_BUS_CONNECTION.into(),
            json!("Endpoint=sb://<namespace>.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=<key>"),
        );
    }
    json!({ "IsEncrypted": false, "Values": values })
}
