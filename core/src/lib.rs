//! cloudfn-core: the provider-neutral model of cloudfn.
//!
//! An [`App`] is a named set of [`Function`]s; each has a [`Trigger`], a
//! handler and a [`Policy`]. Handlers are plain async functions of an event
//! ([`HttpRequest`], [`Message<T>`], [`ScheduledTick`], [`StorageEvent`]) and a
//! [`Context`], returning `Result<_, `[`Error`]`>`. Providers (the local
//! runtime, AWS, Azure, GCP) turn their platform's events into these and call
//! [`Function::invoke`]; nothing here does I/O or names a cloud.

mod app;
mod context;
mod error;
pub mod event;
mod function;
mod handler;
mod idempotency;
pub mod messaging;
mod policy;
mod router;
mod spec;
mod trigger;

pub use app::App;
pub use context::{Context, ContextBuilder, Services};
pub use error::{Error, ErrorKind};
pub use event::{
    Event, HttpRequest, HttpResponse, Message, OutgoingMessage, Output, ScheduledTick, StorageEvent,
};
pub use function::{Function, Policy};
pub use handler::{BoxError, Handler, HttpService, PathParams};
pub use idempotency::{Claim, ClaimToken, IdempotencyStore, MemoryIdempotencyStore};
pub use messaging::{Queue, QueueClient, Topic, TopicClient};
pub use policy::{Idempotency, IdempotencyKey, RetryPolicy};
pub use router::{HttpRouter, Route, Routes, unrouted};
pub use spec::{AppSpec, FunctionSpec, QueueSpec, TopicSpec};
pub use trigger::{Method, Schedule, StorageEventKind, Trigger};
