//! Integration tests: one binary, one module per area. Everything goes through
//! real HTTP on loopback and the real local runtime.

#[path = "../../examples/shop/app.rs"]
#[allow(dead_code)]
mod shop_app;

#[path = "../../examples/contract/app.rs"]
mod contract_app;

mod access;
#[cfg(feature = "aws")]
mod aws_invoke;
mod contract;
#[cfg(feature = "gcp")]
mod gcp_process;
mod leaks;
mod local_server;
mod reliability;
mod runtime;
mod shop;
mod support;
