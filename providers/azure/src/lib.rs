//! cloudfn-azure: cloudfn on Azure Functions.
//!
//! This first step holds what every Azure client of the adapter stands on:
//! [`client::StorageAccount`], read from a Functions app's
//! `AzureWebJobsStorage` connection string, and [`client::SharedKey`], the
//! azure_core pipeline policy that signs Storage requests with the
//! account's key (azure_core's own crates sign only with Entra ID tokens or
//! SAS). The custom-handler server, event mapping, Storage Queue and Table
//! clients and deployment files build on them.

#![forbid(unsafe_code)]

pub mod client;
pub mod events;
pub mod names;

/// The provider name handlers see in `Context::provider`.
pub const PROVIDER: &str = "azure";
