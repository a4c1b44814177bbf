//! cloudfn-azure integration tests: with `TEST_INTEGRATION=1`, against
//! Azurite, which checks every request's SharedKey signature or token.

mod azurite;
mod custom_handler;
mod identity;
mod queue;
mod store;
mod support;
mod tls;
