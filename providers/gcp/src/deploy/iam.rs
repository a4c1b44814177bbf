//! Who may do what: each function's own service account holds exactly what
//! its declarations ask for, on the one topic it is for; the app's
//! invoker may call only the services Pub/Sub, Cloud Scheduler and
//! Eventarc deliver to; each workflow's account only the step functions it
//! calls and the topics it sends and publishes to; Google's service agents
//! get what their part needs.

use std::collections::BTreeMap;

use cloudfn_core::{AppSpec, Error, StoreAccess, conventions, workflow::Action};

use super::{Invokers, Plan};

/// Publishes to a topic.
pub const PUBSUB_PUBLISHER: &str = "roles/pubsub.publisher";
/// Pulls from and acks on a subscription.
pub const PUBSUB_SUBSCRIBER: &str = "roles/pubsub.subscriber";
/// Calls a Cloud Run service.
pub const RUN_INVOKER: &str = "roles/run.invoker";
/// Reads and writes Firestore documents.
pub const DATASTORE_USER: &str = "roles/datastore.user";
/// Reads Firestore documents.
pub const DATASTORE_VIEWER: &str = "roles/datastore.viewer";
/// Receives events from Eventarc's providers.
pub const EVENTARC_EVENT_RECEIVER: &str = "roles/eventarc.eventReceiver";
/// Starts executions of the project's workflows.
pub const WORKFLOWS_INVOKER: &str = "roles/workflows.invoker";

/// Who a role is granted to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Member {
    /// The service account of the function of this name.
    Function(String),
    /// The service account of the workflow of this name ([`Plan::flow`]).
    Workflow(String),
    /// The app's invoker account ([`Plan::invoker`]).
    Invoker,
    /// Anyone on the internet, signed in or not.
    AllUsers,
    /// The project's Pub/Sub service agent,
    /// `service-<project number>@gcp-sa-pubsub.iam.gserviceaccount.com`.
    PubSubAgent,
    /// The project's Cloud Storage service agent (`gcloud storage
    /// service-agent`).
    StorageAgent,
}

/// What a role is granted on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// The whole project: only for what IAM cannot grant more narrowly.
    Project,
    /// A Pub/Sub topic, by id.
    Topic(String),
    /// A Pub/Sub subscription, by id.
    Subscription(String),
    /// A Cloud Run service, by name.
    Service(String),
}

/// One role for one member on one resource, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Who.
    pub member: Member,
    /// The role.
    pub role: &'static str,
    /// On what.
    pub resource: Resource,
    /// The declarations that ask for it, for the reader of the script.
    pub reasons: Vec<String>,
}

/// The IAM bindings of `plan`, each once:
///
/// - a function's account: [`PUBSUB_PUBLISHER`] on the topic of every
///   queue it sends to and every topic it publishes to, and on its
///   dead-letter topic (the handler dead-letters in code); on the project
///   [`DATASTORE_USER`] if it writes a store, else [`DATASTORE_VIEWER`] if
///   it reads one: Firestore's IAM stops at the database, so a function
///   with a store can reach every collection of the project.
/// - [`RUN_INVOKER`] on a service: `allUsers` for a public HTTP function,
///   nobody for a private one (its callers need the role), the app's
///   invoker for an event function, which Pub/Sub, Cloud Scheduler and
///   Eventarc call as it; with Eventarc, also
///   [`EVENTARC_EVENT_RECEIVER`] on the project.
/// - a function that starts a workflow: [`WORKFLOWS_INVOKER`] on the
///   project (Workflows' IAM has nothing narrower).
/// - a workflow's account: [`RUN_INVOKER`] on the service of every
///   function it calls (compensations included), which is how a step
///   function is reached, and [`PUBSUB_PUBLISHER`] on the topic of every
///   queue it sends to and topic it publishes to.
/// - the Pub/Sub service agent: [`PUBSUB_PUBLISHER`] on every dead-letter
///   topic and [`PUBSUB_SUBSCRIBER`] on the subscription it moves dead
///   letters from; without them Pub/Sub's own dead-lettering silently
///   stops.
/// - the Cloud Storage service agent: [`PUBSUB_PUBLISHER`] on the project,
///   which Eventarc's Cloud Storage triggers publish through.
pub fn grants(spec: &AppSpec, plan: &Plan) -> Result<Vec<Grant>, Error> {
    let mut grants: BTreeMap<(Resource, &'static str, Member), Vec<String>> = BTreeMap::new();
    let mut grant = |member: Member, role: &'static str, resource: Resource, reason: String| {
        let reasons = grants.entry((resource, role, member)).or_default();
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    };
    let queue_topic = |function: &str, queue: &str| {
        plan.queue_topic(queue).map(str::to_owned).ok_or_else(|| {
            Error::invalid(format!(
                "function `{function}` uses queue `{queue}`, which the app's spec does not list"
            ))
        })
    };
    for (function, service) in spec.functions.iter().zip(&plan.services) {
        let name = &function.name;
        let account = || Member::Function(name.clone());
        for queue in &function.sends_to {
            grant(
                account(),
                PUBSUB_PUBLISHER,
                Resource::Topic(queue_topic(name, queue)?),
                format!("`{name}` sends to queue `{queue}`"),
            );
        }
        for topic in &function.publishes_to {
            grant(
                account(),
                PUBSUB_PUBLISHER,
                Resource::Topic(conventions::physical_name(&plan.prefix, topic)),
                format!("`{name}` publishes to topic `{topic}`"),
            );
        }
        if let Some(dead_letter) =
            conventions::failure_queue(name, &function.trigger, &function.policy)
        {
            grant(
                account(),
                PUBSUB_PUBLISHER,
                Resource::Topic(queue_topic(name, &dead_letter)?),
                format!("`{name}` dead-letters into `{dead_letter}`"),
            );
        }
        let writes = function
            .stores
            .iter()
            .filter(|(_, access)| **access == StoreAccess::ReadWrite)
            .map(|(store, _)| format!("`{store}`"))
            .collect::<Vec<_>>();
        let reads = function
            .stores
            .keys()
            .map(|store| format!("`{store}`"))
            .collect::<Vec<_>>();
        let stores = |names: &[String]| {
            let plural = if names.len() == 1 { "store" } else { "stores" };
            format!("{plural} {}", names.join(", "))
        };
        if !writes.is_empty() {
            grant(
                account(),
                DATASTORE_USER,
                Resource::Project,
                format!("`{name}` writes {}", stores(&writes)),
            );
        } else if !reads.is_empty() {
            grant(
                account(),
                DATASTORE_VIEWER,
                Resource::Project,
                format!("`{name}` reads {}", stores(&reads)),
            );
        }
        // Workflows' IAM stops at the project: an account that may start
        // one workflow may start any of the project's.
        for workflow in &function.starts {
            grant(
                account(),
                WORKFLOWS_INVOKER,
                Resource::Project,
                format!("`{name}` starts workflow `{workflow}`"),
            );
        }
        let on_service = Resource::Service(service.name.clone());
        match service.invokers {
            Invokers::Public => grant(
                Member::AllUsers,
                RUN_INVOKER,
                on_service,
                format!("`{name}` is public"),
            ),
            Invokers::App => grant(
                Member::Invoker,
                RUN_INVOKER,
                on_service,
                format!("`{name}` is called with the app's events"),
            ),
            Invokers::Private | Invokers::Workflows => {}
        }
    }
    for workflow in &spec.workflows {
        let name = workflow.name();
        let account = || Member::Workflow(name.to_owned());
        for function in workflow.functions() {
            let service = plan.service(function).ok_or_else(|| {
                Error::invalid(format!(
                    "workflow `{name}` calls `{function}`, which the app does not have"
                ))
            })?;
            grant(
                account(),
                RUN_INVOKER,
                Resource::Service(service.name.clone()),
                format!("workflow `{name}` calls `{function}`"),
            );
        }
        for step in workflow.all_steps() {
            let Some(topic) = plan.step_topic(name, step)? else {
                continue;
            };
            let reason = match &step.action {
                Action::Send { queue } => format!("workflow `{name}` sends to queue `{queue}`"),
                Action::Publish { topic } => {
                    format!("workflow `{name}` publishes to topic `{topic}`")
                }
                _ => continue,
            };
            grant(account(), PUBSUB_PUBLISHER, Resource::Topic(topic), reason);
        }
    }
    for subscription in &plan.messaging.subscriptions {
        let Some(dead_letter) = &subscription.dead_letter_topic else {
            continue;
        };
        let reason = format!(
            "Pub/Sub moves what `{}` fails to deliver to `{dead_letter}`",
            subscription.name
        );
        grant(
            Member::PubSubAgent,
            PUBSUB_PUBLISHER,
            Resource::Topic(dead_letter.clone()),
            reason.clone(),
        );
        grant(
            Member::PubSubAgent,
            PUBSUB_SUBSCRIBER,
            Resource::Subscription(subscription.name.clone()),
            reason,
        );
    }
    if let Some(trigger) = plan.triggers.first() {
        let reason = format!("Eventarc delivers `{}`'s bucket events", trigger.function);
        grant(
            Member::Invoker,
            EVENTARC_EVENT_RECEIVER,
            Resource::Project,
            reason.clone(),
        );
        grant(
            Member::StorageAgent,
            PUBSUB_PUBLISHER,
            Resource::Project,
            reason,
        );
    }
    Ok(grants
        .into_iter()
        .map(|((resource, role, member), reasons)| Grant {
            member,
            role,
            resource,
            reasons,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use cloudfn_core::{App, Context, Error, Function, Message, Method};

    use super::*;
    use crate::deploy::{plan, tests::every_trigger};

    fn all_grants(spec: &AppSpec) -> Vec<Grant> {
        grants(spec, &plan(spec, "all").unwrap()).unwrap()
    }

    /// The resources `member` holds `role` on.
    fn held(grants: &[Grant], member: &Member, role: &str) -> BTreeSet<Resource> {
        grants
            .iter()
            .filter(|g| &g.member == member && g.role == role)
            .map(|g| g.resource.clone())
            .collect()
    }

    fn topics(names: &[&str]) -> BTreeSet<Resource> {
        names.iter().map(|n| Resource::Topic((*n).into())).collect()
    }

    #[test]
    fn functions_publish_only_to_what_they_declare_and_their_dead_letters() {
        let grants = all_grants(&every_trigger().spec());
        let function = |name: &str| Member::Function(name.into());
        assert_eq!(
            held(&grants, &function("charge"), PUBSUB_PUBLISHER),
            topics(&["all-order-paid", "all-orders-dlq"])
        );
        assert_eq!(
            held(&grants, &function("notify"), PUBSUB_PUBLISHER),
            topics(&["all-order-paid-notify-dead-letter"])
        );
        assert_eq!(
            held(&grants, &function("ledger"), PUBSUB_PUBLISHER),
            topics(&["all-entries-dead-letter"])
        );
        assert_eq!(
            held(&grants, &function("report"), PUBSUB_PUBLISHER),
            topics(&["all-report-dead-letter"])
        );
        assert_eq!(
            held(&grants, &function("thumbs"), PUBSUB_PUBLISHER),
            topics(&["all-thumbs-dead-letter"])
        );
        for http in ["checkout", "status"] {
            assert!(
                grants.iter().all(|g| g.member != function(http)),
                "`{http}` declares nothing"
            );
        }
        // Nothing but publishing, for any function of this app.
        assert!(
            grants
                .iter()
                .filter(|g| matches!(g.member, Member::Function(_)))
                .all(|g| g.role == PUBSUB_PUBLISHER)
        );
    }

    #[test]
    fn only_public_functions_answer_anyone_and_the_invoker_calls_only_event_functions() {
        let grants = all_grants(&every_trigger().spec());
        let services = |names: &[&str]| -> BTreeSet<Resource> {
            names
                .iter()
                .map(|n| Resource::Service(format!("all-{n}")))
                .collect()
        };
        assert_eq!(
            held(&grants, &Member::AllUsers, RUN_INVOKER),
            services(&["checkout"])
        );
        assert_eq!(
            held(&grants, &Member::Invoker, RUN_INVOKER),
            services(&["charge", "ledger", "notify", "report", "thumbs"])
        );
        assert!(
            grants
                .iter()
                .all(|g| g.resource != Resource::Service("all-status".into())),
            "a private function's callers are granted by its owner"
        );
        assert_eq!(
            held(&grants, &Member::Invoker, EVENTARC_EVENT_RECEIVER),
            BTreeSet::from([Resource::Project])
        );
        assert_eq!(
            held(&grants, &Member::StorageAgent, PUBSUB_PUBLISHER),
            BTreeSet::from([Resource::Project])
        );
    }

    #[test]
    fn the_pub_sub_agent_may_move_dead_letters() {
        let spec = every_trigger().spec();
        let grants = all_grants(&spec);
        let plan = plan(&spec, "all").unwrap();
        let pushed: Vec<_> = plan
            .messaging
            .subscriptions
            .iter()
            .filter(|s| s.dead_letter_topic.is_some())
            .collect();
        assert_eq!(
            pushed.len(),
            3,
            "orders, entries, order-paid-notify: {pushed:?}"
        );
        assert_eq!(
            held(&grants, &Member::PubSubAgent, PUBSUB_PUBLISHER),
            pushed
                .iter()
                .map(|s| Resource::Topic(s.dead_letter_topic.clone().unwrap()))
                .collect()
        );
        assert_eq!(
            held(&grants, &Member::PubSubAgent, PUBSUB_SUBSCRIBER),
            pushed
                .iter()
                .map(|s| Resource::Subscription(s.name.clone()))
                .collect()
        );
    }

    #[test]
    fn stores_are_reached_through_the_project_read_only_when_only_read() {
        async fn consume(_: Message<serde_json::Value>, _: Context) -> Result<(), Error> {
            Ok(())
        }
        async fn page(
            _: cloudfn_core::HttpRequest,
            _: Context,
        ) -> Result<cloudfn_core::HttpResponse, Error> {
            Ok(cloudfn_core::HttpResponse::new(200))
        }
        let spec = App::new("all")
            .function(Function::queue("save", "orders", consume).uses_store("orders"))
            .function(Function::http("show", Method::Get, "/o", page).reads_store("orders"))
            .function(Function::http("home", Method::Get, "/", page))
            .spec();
        let grants = all_grants(&spec);
        let on_project = |name: &str| -> Vec<&str> {
            grants
                .iter()
                .filter(|g| {
                    g.member == Member::Function(name.into()) && g.resource == Resource::Project
                })
                .map(|g| g.role)
                .collect()
        };
        assert_eq!(on_project("save"), [DATASTORE_USER]);
        assert_eq!(on_project("show"), [DATASTORE_VIEWER]);
        assert!(on_project("home").is_empty());
    }
}
