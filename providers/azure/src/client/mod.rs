//! Storage clients on azure_core's pipeline: the account they reach, how
//! its requests are authorized (account key or managed identity), and the clients themselves — Storage Queues
//! ([`StorageQueues`]), Table Storage as a cloudfn store ([`TableStore`])
//! — and Service Bus publishing ([`ServiceBus`]).

mod account;
mod auth;
mod pipeline;
mod queue;
mod service_bus;
mod table;

pub use account::{DEVELOPMENT_ACCOUNT, StorageAccount};
pub use auth::{Service, SharedKey, Stamp, authorization};
pub use pipeline::{install_tls, pipeline};
pub use queue::{MAX_DELAY, Received, StorageQueues};
pub use service_bus::ServiceBus;
pub use table::TableStore;
