//! Storage clients on azure_core's pipeline: the account they reach and how
//! its requests are signed.

mod account;
mod auth;
mod service_bus;

pub use account::{DEVELOPMENT_ACCOUNT, StorageAccount};
pub use auth::SharedKey;
pub use service_bus::ServiceBus;
