//! cloudfn-gcp integration tests: the functions-framework server over
//! loopback, sent what Cloud Run's callers send; with `TEST_INTEGRATION=1`,
//! the Pub/Sub client and push delivery on Google's Pub/Sub emulator.

mod pubsub;
mod server;
mod store;
mod support;
mod workflows;
