//! Clients of Google Cloud services: Pub/Sub for queues and topics
//! ([`PubSub`]).

mod pubsub;

pub use cloudfn_server::install_tls;
pub use pubsub::PubSub;
