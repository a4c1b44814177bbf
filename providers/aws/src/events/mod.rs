//! Lambda event payloads ⇄ neutral events, one module per trigger kind:
//! pure mapping, no I/O. What runs a function on them and settles the
//! outcome is [`crate::dispatch`].

pub mod http;
pub mod queue;
pub mod schedule;
pub(crate) mod shape;
pub mod storage;
pub mod topic;
