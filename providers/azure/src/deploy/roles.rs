//! What the function app's identity may do, resource by resource: the
//! union of what its functions declare, as Azure built-in data roles.

use std::collections::{BTreeMap, BTreeSet};

use cloudfn_core::{AppSpec, Trigger, conventions};

/// An Azure built-in role: its name and its role definition id (the same
/// GUID in every subscription).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BuiltInRole {
    /// The role's name, as the portal shows it.
    pub name: &'static str,
    /// The role definition's GUID.
    pub id: &'static str,
}

/// Adds messages to a Storage queue.
pub const STORAGE_QUEUE_DATA_MESSAGE_SENDER: BuiltInRole = BuiltInRole {
    name: "Storage Queue Data Message Sender",
    id: "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
};

/// Peeks, receives and deletes messages of a Storage queue.
pub const STORAGE_QUEUE_DATA_MESSAGE_PROCESSOR: BuiltInRole = BuiltInRole {
    name: "Storage Queue Data Message Processor",
    id: "8a0f0c08-91a1-4084-bc3d-661d67233fed",
};

/// Reads, writes and deletes entities of a table.
pub const STORAGE_TABLE_DATA_CONTRIBUTOR: BuiltInRole = BuiltInRole {
    name: "Storage Table Data Contributor",
    id: "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
};

/// Reads entities of a table.
pub const STORAGE_TABLE_DATA_READER: BuiltInRole = BuiltInRole {
    name: "Storage Table Data Reader",
    id: "76199698-9eea-4c19-bc75-cec21354c6b6",
};

/// Sends messages to a Service Bus queue or topic.
pub const AZURE_SERVICE_BUS_DATA_SENDER: BuiltInRole = BuiltInRole {
    name: "Azure Service Bus Data Sender",
    id: "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
};

/// Receives messages from a Service Bus queue or subscription.
pub const AZURE_SERVICE_BUS_DATA_RECEIVER: BuiltInRole = BuiltInRole {
    name: "Azure Service Bus Data Receiver",
    id: "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
};

/// The resource a role is granted on, by neutral name: always one queue,
/// table, topic or subscription, never a whole account or namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GrantTarget {
    /// A Storage queue.
    Queue(String),
    /// The table of a store.
    Table(String),
    /// A Service Bus topic.
    Topic(String),
    /// The Service Bus subscription of `function` to `topic`.
    Subscription {
        /// The topic.
        topic: String,
        /// The subscribing function, whose name the subscription bears.
        function: String,
    },
}

/// One role on one resource, and the functions that need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    /// The role.
    pub role: BuiltInRole,
    /// What it is granted on.
    pub target: GrantTarget,
    /// The functions whose declarations ask for it.
    pub functions: BTreeSet<String>,
}

/// The roles the function app's identity needs on `spec`'s resources.
///
/// On Azure the managed identity belongs to the function app, not to one
/// function: these grants are the union of what the app's functions
/// declare, each on the one queue, table, topic or subscription it is
/// for, never on an account or namespace. Isolating functions from each
/// other would take one function app per function; within an app this is
/// the nearest thing to per-function least privilege.
///
/// - [`STORAGE_QUEUE_DATA_MESSAGE_SENDER`] on every queue a function sends
///   to, every dead-letter queue a function settles failures into, and
///   every queue a function consumes (cloudfn re-enqueues a retry after its
///   backoff there).
/// - [`STORAGE_QUEUE_DATA_MESSAGE_PROCESSOR`] on every queue a function
///   consumes.
/// - [`STORAGE_TABLE_DATA_CONTRIBUTOR`] on the table of every store some
///   function writes; [`STORAGE_TABLE_DATA_READER`] on one that functions
///   only read.
/// - [`AZURE_SERVICE_BUS_DATA_SENDER`] on every topic a function publishes
///   to; [`AZURE_SERVICE_BUS_DATA_RECEIVER`] on the subscription of every
///   function a topic triggers.
///
/// A topic subscriber's subscription queue ([`crate::names::queues`])
/// gets no grant: on Azure the Service Bus subscription carries the topic.
pub fn role_grants(spec: &AppSpec) -> Vec<RoleGrant> {
    let mut grants: BTreeMap<(GrantTarget, BuiltInRole), BTreeSet<String>> = BTreeMap::new();
    let mut grant = |target: GrantTarget, role: BuiltInRole, function: &str| {
        grants
            .entry((target, role))
            .or_default()
            .insert(function.to_owned());
    };
    for function in &spec.functions {
        let name = function.name.as_str();
        for queue in &function.sends_to {
            grant(
                GrantTarget::Queue(queue.clone()),
                STORAGE_QUEUE_DATA_MESSAGE_SENDER,
                name,
            );
        }
        if let Some(dead_letter) =
            conventions::failure_queue(name, &function.trigger, &function.policy)
        {
            grant(
                GrantTarget::Queue(dead_letter),
                STORAGE_QUEUE_DATA_MESSAGE_SENDER,
                name,
            );
        }
        match &function.trigger {
            Trigger::Queue { queue, .. } => {
                for role in [
                    STORAGE_QUEUE_DATA_MESSAGE_PROCESSOR,
                    STORAGE_QUEUE_DATA_MESSAGE_SENDER,
                ] {
                    grant(GrantTarget::Queue(queue.clone()), role, name);
                }
            }
            Trigger::Topic { topic } => grant(
                GrantTarget::Subscription {
                    topic: topic.clone(),
                    function: name.to_owned(),
                },
                AZURE_SERVICE_BUS_DATA_RECEIVER,
                name,
            ),
            _ => {}
        }
        for topic in &function.publishes_to {
            grant(
                GrantTarget::Topic(topic.clone()),
                AZURE_SERVICE_BUS_DATA_SENDER,
                name,
            );
        }
    }
    for store in &spec.stores {
        let role = if store.writers.is_empty() {
            STORAGE_TABLE_DATA_READER
        } else {
            STORAGE_TABLE_DATA_CONTRIBUTOR
        };
        for function in store.writers.iter().chain(&store.readers) {
            grant(GrantTarget::Table(store.name.clone()), role, function);
        }
    }
    grants
        .into_iter()
        .map(|((target, role), functions)| RoleGrant {
            role,
            target,
            functions,
        })
        .collect()
}
