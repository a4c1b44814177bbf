//! How neutral names become Google Cloud names, and the settings through
//! which a deployment tells a function its resources' names: the
//! deployment files, the clients and the tests read them here alike.
//!
//! With nothing set, queue `orders` is the Pub/Sub topic `orders` of the
//! project in `GOOGLE_CLOUD_PROJECT` (a neutral queue is a topic with one
//! push subscription, to its consumer), and topic `order-paid` the topic
//! `order-paid`; store `orders` is the Firestore collection `orders`.

use cloudfn_core::{
    Error,
    conventions::{queue_variable, resource_variable, topic_variable},
};

/// The variable naming the project, which the deployment sets (Cloud Run
/// itself names none).
pub const PROJECT_VARIABLE: &str = "GOOGLE_CLOUD_PROJECT";

/// The variable naming the Pub/Sub emulator's `HOST:PORT`, as Google's
/// tools have it.
pub const PUBSUB_EMULATOR_VARIABLE: &str = "PUBSUB_EMULATOR_HOST";

/// The variable naming the Firestore emulator's `HOST:PORT`.
pub const FIRESTORE_EMULATOR_VARIABLE: &str = "FIRESTORE_EMULATOR_HOST";

/// The project of this process: [`PROJECT_VARIABLE`], or an error naming it.
pub fn project() -> Result<String, Error> {
    setting(PROJECT_VARIABLE).ok_or_else(|| {
        Error::invalid(format!(
            "`{PROJECT_VARIABLE}` is not set: it names the Google Cloud project of the function's topics"
        ))
    })
}

/// The Pub/Sub topic of neutral queue `name`: the setting
/// [`queue_variable`] names, else `name` itself.
pub fn queue_topic(name: &str) -> String {
    setting(&queue_variable(name)).unwrap_or_else(|| name.to_owned())
}

/// The Pub/Sub topic of neutral topic `name`: the setting
/// [`topic_variable`] names, else `name` itself.
pub fn topic(name: &str) -> String {
    setting(&topic_variable(name)).unwrap_or_else(|| name.to_owned())
}

/// The setting naming store `name`'s Firestore collection:
/// `CLOUDFN_STORE_COLLECTION_ORDERS` for `orders`.
pub fn collection_variable(name: &str) -> String {
    resource_variable("CLOUDFN_STORE_COLLECTION_", name)
}

/// The Firestore collection of neutral store `name`: the setting
/// [`collection_variable`] names, else `name` itself.
pub fn collection(name: &str) -> String {
    setting(&collection_variable(name)).unwrap_or_else(|| name.to_owned())
}

/// The setting naming workflow `name` on Google Cloud Workflows, in full
/// (`projects/P/locations/L/workflows/W`): `CLOUDFN_WORKFLOW_ORDER` for
/// `order`. Functions that start the workflow get it.
pub fn workflow_variable(name: &str) -> String {
    resource_variable("CLOUDFN_WORKFLOW_", name)
}

/// The full name Pub/Sub takes: `projects/<project>/topics/<topic>`.
pub fn topic_path(project: &str, topic: &str) -> String {
    format!("projects/{project}/topics/{topic}")
}

pub(crate) fn setting(variable: &str) -> Option<String> {
    std::env::var(variable)
        .ok()
        .filter(|v| !v.trim().is_empty())
}
