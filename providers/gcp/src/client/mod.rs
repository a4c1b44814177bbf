//! Clients of Google Cloud services: Pub/Sub for queues and topics
//! ([`PubSub`]), Firestore for stores ([`Firestore`]), Workflows for
//! starting executions ([`WorkflowExecutions`]).

mod firestore;
mod lazy;
mod pubsub;
mod rest;
pub mod workflows;

pub use cloudfn_server::install_tls;
pub use firestore::Firestore;
pub(crate) use lazy::OnFirstUse;
// The deployment sets Firestore's TTL policy on the field the store writes.
#[cfg(feature = "deploy")]
pub(crate) use firestore::EXPIRES;
pub use pubsub::{PubSub, received};
pub use workflows::WorkflowExecutions;

/// Credentials that send nothing: what the emulators take.
pub(crate) fn anonymous() -> google_cloud_auth::credentials::Credentials {
    google_cloud_auth::credentials::anonymous::Builder::new().build()
}
