//! The X-Ray trace of the invocation being served, for the AWS calls it
//! makes.
//!
//! Lambda asks a custom runtime to copy `Lambda-Runtime-Trace-Id` into the
//! `_X_AMZN_TRACE_ID` environment variable, where the SDK's
//! recursion-detection interceptor reads it to send `X-Amzn-Trace-Id`.
//! Setting a variable is `unsafe` in Rust 2024 — another thread may read
//! the environment at that moment, which the C library does not guard — and
//! cloudfn forbids unsafe code. So the trace is kept for each invocation
//! here instead (task-local, which also keeps side-by-side invocations
//! apart), and cloudfn's HTTP client for the SDK sends it as the
//! `X-Amzn-Trace-Id` header: the header the interceptor would have sent,
//! which SigV4 leaves unsigned.
//!
//! What this does not reach: work a handler spawns onto other tasks, and
//! libraries that read `_X_AMZN_TRACE_ID` themselves; `Context::trace_id`
//! has the value for them.

use std::future::Future;

tokio::task_local! {
    static TRACE_ID: Option<String>;
}

/// Runs `invocation` with `trace_id` as its trace.
pub(crate) async fn scope<F: Future>(trace_id: Option<String>, invocation: F) -> F::Output {
    TRACE_ID.scope(trace_id, invocation).await
}

/// The trace of the invocation running on this task, if any.
#[cfg_attr(not(feature = "sdk"), allow(dead_code))]
pub(crate) fn current() -> Option<String> {
    TRACE_ID.try_with(Clone::clone).ok().flatten()
}
