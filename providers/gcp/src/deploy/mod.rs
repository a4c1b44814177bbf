//! `AppSpec` → what a Google Cloud project needs to run the app: the
//! Pub/Sub topics and subscriptions its queues and topics become
//! ([`messaging`]), and the settings that tell each function their names
//! ([`settings`]) — the emulator (`emulate`, with that feature) creates
//! exactly these on this machine — and the deployment itself
//! ([`package`]):
//!
//! - one Cloud Run service per function, all on one image that serves the
//!   function `FUNCTION_TARGET` names, as Knative YAML
//!   ([`knative_service`]), each running as a service account of its own;
//! - the IAM bindings ([`grants`]): each function may publish to the topics
//!   it declares and its dead-letter topic, and reach Firestore if it has
//!   stores; public HTTP functions answer anyone, private ones only
//!   callers granted `roles/run.invoker`, event functions only the app's
//!   invoker account, as which Pub/Sub pushes, Cloud Scheduler calls and
//!   Eventarc delivers;
//! - one Google Cloud Workflows definition per workflow
//!   ([`workflow_yaml`]), run as a service account of its own that may
//!   invoke only its step functions and publish only to its topics;
//! - `deploy.sh`, the `gcloud` commands that make all of it in order
//!   ([`deploy_script`]), and the `Dockerfile` of the image.
//!
//! [`plan`] names and checks everything once; the renderers only read it.

mod accounts;
mod iam;
mod messaging;
mod package;
mod plan;
mod script;
mod service;
mod settings;
mod workflows;

pub use accounts::{account_email, account_id};
pub use iam::{
    DATASTORE_USER, DATASTORE_VIEWER, EVENTARC_EVENT_RECEIVER, Grant, Member, PUBSUB_PUBLISHER,
    PUBSUB_SUBSCRIBER, RUN_INVOKER, Resource, WORKFLOWS_INVOKER, grants,
};
pub use messaging::{Messaging, Subscription, messaging};
pub use package::{DOCKERFILE, HANDLER, Project, package};
pub use plan::{
    Bucket, EventTrigger, Flow, IMAGE, Ingress, Invokers, Job, MAX_SERVICE_NAME, MAX_WORKFLOW_NAME,
    MAX_WORKFLOW_VARIABLES, PROJECT, Plan, REGION, Service, plan,
};
pub use script::deploy_script;
pub use service::{knative_service, service_file, service_yaml};
pub use settings::settings;
pub use workflows::{url_variable, workflow_definition, workflow_file, workflow_yaml};

#[cfg(test)]
pub(crate) mod tests {
    use cloudfn_core::{
        App, AppSpec, Context, Error, Function, HttpRequest, HttpResponse, Message, Method,
        RetryPolicy, ScheduledTick, StorageEvent, StorageEventKind,
        workflow::{Workflow, fixture::FUNCTIONS},
    };

    async fn page(_: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
        Ok(HttpResponse::new(200))
    }
    async fn consume(_: Message<serde_json::Value>, _: Context) -> Result<(), Error> {
        Ok(())
    }
    async fn tick(_: ScheduledTick, _: Context) -> Result<(), Error> {
        Ok(())
    }
    async fn changed(_: StorageEvent, _: Context) -> Result<(), Error> {
        Ok(())
    }
    async fn step(msg: Message<serde_json::Value>, _: Context) -> Result<serde_json::Value, Error> {
        Ok(msg.body)
    }

    /// An app with every trigger, what the deployment tests render.
    pub(crate) fn every_trigger() -> App {
        App::new("all")
            .function(Function::http("checkout", Method::Post, "/orders", page).public())
            .function(Function::http("status", Method::Get, "/orders/{id}", page))
            .function(
                Function::queue("charge", "orders", consume)
                    .retry(RetryPolicy::new(4))
                    .dead_letter("orders-dlq")
                    .publishes_to("order-paid"),
            )
            .function(Function::fifo_queue("ledger", "entries", consume))
            .function(Function::topic("notify", "order-paid", consume))
            .function(Function::schedule("report", "*/5 * * * 1-5", tick))
            .function(Function::storage(
                "thumbs",
                "uploads",
                [StorageEventKind::Created],
                changed,
            ))
    }

    /// An app with `flow`: the functions of
    /// [`cloudfn_core::workflow::fixture`] as step functions, and
    /// functions that consume its queue and topics, so that the deployment
    /// makes them.
    pub(crate) fn shop(flow: Workflow) -> AppSpec {
        shop_app(flow).spec()
    }

    /// The app of [`shop`].
    pub(crate) fn shop_app(flow: Workflow) -> App {
        FUNCTIONS
            .iter()
            .fold(App::new("shop"), |app, name| {
                app.function(Function::step(*name, step))
            })
            .function(Function::queue("restock", "backorders", consume))
            .function(Function::topic("dispatch", "rush-orders", consume))
            .function(Function::topic("ledger", "order-paid", consume))
            .workflow(flow)
    }
}
