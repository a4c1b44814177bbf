//! Lambda's side of the protocol, on this machine: the Runtime API (for the
//! tests and for `cargo cloudfn dev`), and a whole app run the way Lambda
//! runs it against real queues.

mod dev;
mod runtime_api;
mod tables;

pub use dev::{DevOptions, DevStack, queue_arn};
pub use runtime_api::{Outcome, RuntimeApiServer};
pub use tables::create_tables;
