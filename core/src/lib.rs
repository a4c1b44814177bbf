//! cloudfn-core: the provider-neutral model of cloudfn.
//!
//! An [`App`] is a named set of [`Function`]s; each has a [`Trigger`], a
//! handler and a [`Policy`]. Handlers are plain async functions of an event
//! ([`HttpRequest`], [`Message<T>`], [`ScheduledTick`], [`StorageEvent`]) and a
//! [`Context`], returning `Result<_, `[`Error`]`>`. Nothing here does I/O or
//! names a cloud. A [`workflow::Workflow`] strings the app's functions
//! into one orchestrated flow, as data every provider can render.
//!
//! What a handler author needs is at the top of this crate. What a provider
//! (the local runtime, AWS, Azure, GCP) builds on — the invocation engine,
//! context building, routing, the scheduler, messaging clients — is in
//! [`provider`]; the rules every provider follows alike are in
//! [`conventions`].

#![forbid(unsafe_code)]

mod access;
mod app;
mod capabilities;
mod collisions;
mod context;
pub mod conventions;
mod error;
pub mod event;
mod function;
mod handler;
mod idempotency;
mod invoke;
pub mod messaging;
mod policy;
pub mod propagation;
mod router;
mod spec;
pub mod store;
mod ticker;
mod trigger;
pub mod workflow;

/// What providers build on: handler authors do not need any of it.
///
/// A provider reads its platform's event, builds a [`Context`] with
/// [`provider::ContextBuilder`] from the [`provider::Services`] it set up
/// once, and runs the function through [`provider::Invoke`]; HTTP providers
/// route with [`provider::HttpRouter`], schedules fire through
/// [`provider::Ticker`], and messaging clients implement
/// [`provider::QueueClient`] and [`provider::TopicClient`].
pub mod provider {
    pub use crate::context::{ContextBuilder, Services};
    pub use crate::event::{Event, Output};
    pub use crate::invoke::Invoke;
    pub use crate::messaging::{QueueClient, TopicClient};
    pub use crate::router::{HttpRouter, Route, Routes, unrouted};
    pub use crate::store::StoreClient;
    pub use crate::ticker::Ticker;
}

pub use access::Access;
pub use app::App;
pub use capabilities::Capabilities;
pub use context::Context;
pub use error::{Error, ErrorKind};
pub use event::{HttpRequest, HttpResponse, Message, OutgoingMessage, ScheduledTick, StorageEvent};
pub use function::{Function, Policy};
pub use handler::{BoxError, Handler, HttpService, PathParams};
pub use messaging::{Queue, Topic};
pub use policy::{Idempotency, IdempotencyKey, RetryPolicy};
pub use spec::{AppSpec, FunctionSpec, QueueSpec, StoreSpec, TopicSpec};
pub use store::{Store, StoreAccess, Version, Versioned};
pub use trigger::{Method, Schedule, StorageEventKind, Trigger};
