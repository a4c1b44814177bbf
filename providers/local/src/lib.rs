//! cloudfn-local: the embedded runtime that serves a whole cloudfn app in one
//! process, no cloud needed.
//!
//! HTTP functions answer on one port; queue functions consume in-memory
//! queues with at-least-once delivery, visibility timeouts, retries with
//! backoff and dead-letter queues; topics fan out to every subscribed
//! function; schedule functions fire on their cron times; workflows run on
//! the durable orchestrator, resumed when the runtime starts again. Each
//! invocation runs in a tracing span, and shutdown finishes what is in flight.

#![forbid(unsafe_code)]

mod broker;
mod consumer;
mod queue;
mod runtime;
mod scheduler;
mod store;
mod workflows;

pub use broker::LocalBroker;
pub use queue::QueueDepth;
pub use runtime::{
    CAPABILITIES, DATA_DIR_VARIABLE, LocalRuntime, PROVIDER, Running, ShutdownReport,
    address_from_env,
};
pub use store::FileStore;
pub use workflows::EXECUTIONS_PATH;

use cloudfn_core::{App, Error};

/// Serves `app` on `127.0.0.1:$PORT` (3000 by default; a `PORT` that is no
/// port number is an error) until Ctrl-C or
/// SIGTERM, then shuts down gracefully and logs what was left in queues.
///
/// Logs go through `tracing` to whatever subscriber is installed
/// (`cloudfn::run` installs one writing to stderr, filtered by `RUST_LOG`).
pub async fn serve(app: App) -> Result<ShutdownReport, Error> {
    let running = LocalRuntime::new(app).start().await?;
    cloudfn_server::stop_signal().await;
    tracing::info!("shutting down: finishing in-flight work");
    let report = running.shutdown().await;
    if report.is_clean() {
        tracing::info!("{report}");
    } else {
        tracing::warn!("{report}");
    }
    Ok(report)
}
