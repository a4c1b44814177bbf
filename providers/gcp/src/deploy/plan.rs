//! What a deployment of an app is made of, named and checked once, so
//! that the services, the IAM bindings and the deploy script all say the
//! same: one Cloud Run service and service account per function, the
//! app's invoker account, the Pub/Sub resources of [`super::messaging`],
//! Cloud Scheduler jobs, Eventarc triggers, buckets, collections, and one
//! Google Cloud Workflows workflow with an account of its own per workflow.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use cloudfn_core::{
    Access, AppSpec, Error, FunctionSpec, StorageEventKind, Trigger, conventions,
    workflow::{Action, Step},
};

use super::{Messaging, account_id, messaging};
use crate::events::{OBJECT_DELETED, OBJECT_FINALIZED};

/// Where the deploy script puts the project id. The rendered files keep
/// the placeholder so that one package deploys to any project; the script
/// substitutes it with `sed`, which every machine has (envsubst comes with
/// gettext, which many do not), and in its own lines it is simply bash's
/// `${PROJECT}`.
pub const PROJECT: &str = "${PROJECT}";

/// Where the deploy script puts the container image (the same for every
/// service), as [`PROJECT`].
pub const IMAGE: &str = "${IMAGE}";

/// Where the deploy script puts the region, as [`PROJECT`].
pub const REGION: &str = "${REGION}";

/// The longest Cloud Run service name.
pub const MAX_SERVICE_NAME: usize = 49;

/// Cloud Run's longest request timeout.
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(3600);

/// Time beyond the function's own deadline for the server to answer: the
/// 504, the dead letter, the ack. The subscriptions' ack deadline has the
/// same ([`super::Subscription::ack_deadline`]).
const REPORT_MARGIN: Duration = Duration::from_secs(10);

/// The shortest and longest `attemptDeadline` Cloud Scheduler takes for an
/// HTTP target.
const ATTEMPT_DEADLINE: (Duration, Duration) = (Duration::from_secs(15), Duration::from_secs(1800));

/// Cloud Run's most requests at once per instance (`containerConcurrency`).
const MAX_CONTAINER_CONCURRENCY: u32 = 1000;

/// The longest workflow id Google Cloud Workflows takes.
pub const MAX_WORKFLOW_NAME: usize = 64;

/// The most environment variables a workflow may have: one per function
/// it calls ([`super::url_variable`]).
pub const MAX_WORKFLOW_VARIABLES: usize = 20;

/// An app's deployment on Google Cloud, from [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// What every resource name starts with: the app's name, by default.
    pub prefix: String,
    /// One Cloud Run service per function, in the app's order.
    pub services: Vec<Service>,
    /// The account id of the app's invoker: Pub/Sub pushes, Cloud
    /// Scheduler jobs and Eventarc triggers call the event functions as it.
    pub invoker: String,
    /// The topics and subscriptions ([`messaging`]).
    pub messaging: Messaging,
    /// One Cloud Scheduler job per schedule function.
    pub jobs: Vec<Job>,
    /// One bucket per bucket a storage function watches.
    pub buckets: Vec<Bucket>,
    /// One Eventarc trigger per storage function and kind of change.
    pub triggers: Vec<EventTrigger>,
    /// The Firestore collection of every store.
    pub collections: Vec<String>,
    /// One Google Cloud Workflows workflow per workflow of the app.
    pub workflows: Vec<Flow>,
}

/// One function's Cloud Run service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The function it runs (`FUNCTION_TARGET`).
    pub function: String,
    /// The service's name: the function's physical name, lower-cased,
    /// with `_` as `-`.
    pub name: String,
    /// The id of its own service account ([`account_id`] of its name).
    pub account: String,
    /// The request timeout: the function's timeout, all its attempts for
    /// events retried in the invocation (schedules, storage changes), and
    /// time to report, within Cloud Run's hour.
    pub timeout: Duration,
    /// Where requests may come from.
    pub ingress: Ingress,
    /// Who may invoke it.
    pub invokers: Invokers,
    /// Requests one instance takes at once, from the function's
    /// `max_concurrency`; `None` leaves Cloud Run's default (80).
    pub container_concurrency: Option<u32>,
    /// The most instances, so that `max_concurrency` bounds the whole
    /// service, not each instance; `None` leaves it to Cloud Run.
    pub max_scale: Option<u32>,
}

/// One workflow of the app on Google Cloud Workflows
/// ([`super::workflow_yaml`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// The workflow's neutral name.
    pub workflow: String,
    /// The Workflows id: its physical name, lower-cased, with `_` as `-`.
    pub name: String,
    /// The id of the service account it runs as, which may invoke the
    /// services of the functions it calls and publish to the topics it
    /// sends and publishes to, nothing else.
    pub account: String,
    /// The functions it calls, compensations included, each once: their
    /// URLs are the workflow's environment variables.
    pub functions: Vec<String>,
}

/// Cloud Run's ingress setting of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    /// From anywhere (IAM still decides who gets in): HTTP functions.
    All,
    /// From the project's VPC and from Pub/Sub, Cloud Scheduler and
    /// Eventarc of the same project: event functions, which nothing else
    /// calls.
    Internal,
}

impl Ingress {
    /// The annotation's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Internal => "internal",
        }
    }
}

/// Who holds `roles/run.invoker` on a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invokers {
    /// `allUsers`: a public HTTP function.
    Public,
    /// Nobody the deployment names: a private HTTP function's callers
    /// need the role granted to them.
    Private,
    /// The app's invoker account: an event function.
    App,
    /// The accounts of the workflows that call it: a step function.
    Workflows,
}

/// A Cloud Scheduler job calling a schedule function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The job's id: its service's name.
    pub name: String,
    /// The function.
    pub function: String,
    /// Its service.
    pub service: String,
    /// The five-field cron, in UTC.
    pub cron: String,
    /// How long Scheduler waits for an answer: the service's timeout,
    /// within Scheduler's 15 s to 30 min.
    pub attempt_deadline: Duration,
}

/// A bucket a storage function watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// The neutral name.
    pub name: String,
    /// Its id without the project: bucket ids are global, so the script
    /// names it `<stem>-<project>` ([`Bucket::id`]).
    pub stem: String,
}

impl Bucket {
    /// The bucket's id, with [`PROJECT`] for the project.
    pub fn id(&self) -> String {
        format!("{}-{PROJECT}", self.stem)
    }
}

/// An Eventarc trigger sending one kind of Cloud Storage change to a
/// storage function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTrigger {
    /// The trigger's id: its service's name and the kind.
    pub name: String,
    /// The function.
    pub function: String,
    /// Its service.
    pub service: String,
    /// The neutral bucket.
    pub bucket: String,
    /// The CloudEvent type it filters on.
    pub event_type: &'static str,
}

/// The deployment of `spec` with every resource named behind `prefix`.
/// Errors name the function, queue or bucket Google Cloud cannot take:
/// JWT access (Cloud Run checks only Google's own tokens), a service name
/// over [`MAX_SERVICE_NAME`] characters or with characters it cannot
/// have, two functions with one service or account, a cron Cloud
/// Scheduler cannot read, names Pub/Sub refuses.
pub fn plan(spec: &AppSpec, prefix: &str) -> Result<Plan, Error> {
    crate::validate(spec)?;
    let messaging = messaging(spec, prefix);
    check_pubsub_names(&messaging)?;

    let mut services = Vec::new();
    for function in &spec.functions {
        services.push(service(prefix, function)?);
    }
    let invoker = account_id(&normalize(&conventions::physical_name(prefix, "invoker")));
    let workflows = spec
        .workflows
        .iter()
        .map(|workflow| flow(prefix, workflow))
        .collect::<Result<Vec<_>, _>>()?;
    check_unique(&services, &invoker, &workflows)?;

    let mut jobs = Vec::new();
    let mut triggers = Vec::new();
    for (function, service) in spec.functions.iter().zip(&services) {
        match &function.trigger {
            Trigger::Schedule { cron } => {
                check_cron(&function.name, cron)?;
                jobs.push(Job {
                    name: service.name.clone(),
                    function: function.name.clone(),
                    service: service.name.clone(),
                    cron: cron.clone(),
                    attempt_deadline: service
                        .timeout
                        .clamp(ATTEMPT_DEADLINE.0, ATTEMPT_DEADLINE.1),
                });
            }
            Trigger::Storage { bucket, events } => {
                let kinds: BTreeSet<_> = events.iter().map(|e| event_type(*e)).collect();
                for (suffix, event_type) in kinds {
                    triggers.push(EventTrigger {
                        name: format!("{}-{suffix}", service.name),
                        function: function.name.clone(),
                        service: service.name.clone(),
                        bucket: bucket.clone(),
                        event_type,
                    });
                }
            }
            _ => {}
        }
    }
    let mut buckets = Vec::new();
    for bucket in &spec.buckets {
        if bucket.is_empty()
            || !bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(Error::invalid(format!(
                "bucket `{bucket}`: Cloud Storage bucket names here take lower-case letters, digits and `-`"
            )));
        }
        buckets.push(Bucket {
            name: bucket.clone(),
            stem: normalize(&conventions::physical_name(prefix, bucket)),
        });
    }
    let collections = spec
        .stores
        .iter()
        .map(|s| conventions::physical_name(prefix, &s.name))
        .collect();
    let plan = Plan {
        prefix: prefix.to_owned(),
        services,
        invoker,
        messaging,
        jobs,
        buckets,
        triggers,
        collections,
        workflows,
    };
    // Refused here, not when a workflow is rendered: a send to a queue the
    // deployment makes no topic for could only fail at run time.
    for workflow in &spec.workflows {
        for step in workflow.all_steps() {
            plan.step_topic(workflow.name(), step)?;
        }
    }
    Ok(plan)
}

impl Plan {
    /// The service of `function`.
    pub fn service(&self, function: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.function == function)
    }

    /// The topic queue `queue` is sent to: its own, or for a subscription
    /// queue its topic's.
    pub fn queue_topic(&self, queue: &str) -> Option<&str> {
        self.messaging
            .subscriptions
            .iter()
            .find(|s| s.queue == queue)
            .map(|s| s.topic.as_str())
    }

    /// The deployment of workflow `workflow`.
    pub fn flow(&self, workflow: &str) -> Option<&Flow> {
        self.workflows.iter().find(|f| f.workflow == workflow)
    }

    /// The Pub/Sub topic a step of workflow `workflow` sends or publishes
    /// to, `None` for a step that does neither; an error if the app makes
    /// no such topic, since Pub/Sub refuses to publish to a topic that
    /// does not exist.
    pub fn step_topic(&self, workflow: &str, step: &Step) -> Result<Option<String>, Error> {
        let missing = |what: &str| {
            Error::invalid(format!(
                "workflow `{workflow}`: step `{}` sends to {what}, which no function of the app consumes, sends or publishes to, so the deployment makes no topic for it",
                step.name
            ))
        };
        match &step.action {
            Action::Send { queue } => self
                .queue_topic(queue)
                .map(|topic| Some(topic.to_owned()))
                .ok_or_else(|| missing(&format!("queue `{queue}`"))),
            Action::Publish { topic } => {
                let id = conventions::physical_name(&self.prefix, topic);
                if self.messaging.topics.contains(&id) {
                    Ok(Some(id))
                } else {
                    Err(missing(&format!("topic `{topic}`")))
                }
            }
            _ => Ok(None),
        }
    }
}

/// The deployment of `workflow`, named behind `prefix` as services are.
fn flow(prefix: &str, workflow: &cloudfn_core::workflow::Workflow) -> Result<Flow, Error> {
    let name = normalize(&conventions::physical_name(prefix, workflow.name()));
    if name.len() > MAX_WORKFLOW_NAME
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
        || name.ends_with(['-', '_'])
    {
        return Err(Error::invalid(format!(
            "workflow `{}`: its Google Cloud Workflows id would be `{name}`, and an id is at most {MAX_WORKFLOW_NAME} letters, digits, `-` and `_`, starting with a letter and ending with a letter or digit",
            workflow.name()
        )));
    }
    let functions: Vec<String> = workflow
        .functions()
        .into_iter()
        .map(str::to_owned)
        .collect();
    if functions.len() > MAX_WORKFLOW_VARIABLES {
        return Err(Error::invalid(format!(
            "workflow `{}` calls {} functions, and a workflow on Google Cloud has at most {MAX_WORKFLOW_VARIABLES} environment variables, one per function's URL: split it",
            workflow.name(),
            functions.len()
        )));
    }
    // Not the workflow's own name, which a function may have too.
    let account_name = format!("workflow-{}", workflow.name());
    Ok(Flow {
        workflow: workflow.name().to_owned(),
        account: account_id(&normalize(&conventions::physical_name(
            prefix,
            &account_name,
        ))),
        name,
        functions,
    })
}

fn service(prefix: &str, function: &FunctionSpec) -> Result<Service, Error> {
    let name = normalize(&conventions::physical_name(prefix, &function.name));
    let valid = name.len() <= MAX_SERVICE_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(Error::invalid(format!(
            "function `{}`: its Cloud Run service would be `{name}`, and a service name is at most {MAX_SERVICE_NAME} lower-case letters, digits and `-`, starting with a letter and not ending with `-`: shorten the function's or the app's name",
            function.name
        )));
    }
    let (ingress, invokers) = match (&function.trigger, &function.policy.access) {
        (_, Access::Jwt { .. }) => return Err(jwt_unsupported(&function.name)),
        (Trigger::Http { .. }, Access::Public) => (Ingress::All, Invokers::Public),
        (Trigger::Http { .. }, Access::Private) => (Ingress::All, Invokers::Private),
        (Trigger::Step, _) => (Ingress::Internal, Invokers::Workflows),
        _ => (Ingress::Internal, Invokers::App),
    };
    // `max_concurrency` bounds the function, not each instance: the
    // instances times their concurrency must not exceed it.
    let (container_concurrency, max_scale) = match function.policy.max_concurrency {
        Some(limit) => {
            let per_instance = limit.clamp(1, MAX_CONTAINER_CONCURRENCY);
            (
                Some(per_instance),
                Some(limit.div_ceil(per_instance).max(1)),
            )
        }
        None => (None, None),
    };
    Ok(Service {
        function: function.name.clone(),
        account: account_id(&name),
        name,
        timeout: request_timeout(function),
        ingress,
        invokers,
        container_concurrency,
        max_scale,
    })
}

/// Schedules and storage changes are retried in the invocation
/// ([`cloudfn_core::Function::invoke_retrying`]): their request lasts for
/// every attempt and the backoff between them. Beyond Cloud Run's hour the
/// last attempts are cut short, and the event is redelivered (Eventarc) or
/// waits for the next run (Scheduler).
fn request_timeout(function: &FunctionSpec) -> Duration {
    let policy = &function.policy;
    let busy = match function.trigger {
        Trigger::Schedule { .. } | Trigger::Storage { .. } => {
            let retry = &policy.retry;
            let waits: Duration = (1..retry.max_attempts)
                .map(|a| retry.backoff_ceiling(a))
                .sum();
            policy.timeout.saturating_mul(retry.max_attempts.max(1)) + waits
        }
        _ => policy.timeout,
    };
    let seconds = Duration::from_secs(busy.as_secs_f64().ceil() as u64);
    (seconds + REPORT_MARGIN).min(MAX_REQUEST_TIMEOUT)
}

fn event_type(kind: StorageEventKind) -> (&'static str, &'static str) {
    match kind {
        StorageEventKind::Created => ("finalized", OBJECT_FINALIZED),
        StorageEventKind::Deleted => ("deleted", OBJECT_DELETED),
    }
}

/// A Cloud Run name from a physical one: lower-case, `_` as `-`.
pub(crate) fn normalize(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '_' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Two functions whose names differ only in case or `_`/`-` would share a
/// service; a function named like the invoker or a workflow's account
/// would share its account.
fn check_unique(services: &[Service], invoker: &str, workflows: &[Flow]) -> Result<(), Error> {
    let mut names: BTreeMap<&str, &str> = BTreeMap::new();
    let mut accounts: BTreeMap<&str, String> = BTreeMap::new();
    accounts.insert(invoker, "the app's invoker".to_owned());
    let mut ids: BTreeMap<&str, &str> = BTreeMap::new();
    for flow in workflows {
        if let Some(other) = ids.insert(&flow.name, &flow.workflow) {
            return Err(Error::invalid(format!(
                "workflows `{other}` and `{}` would both be Google Cloud workflow `{}`: rename one",
                flow.workflow, flow.name
            )));
        }
        if let Some(other) = accounts.insert(&flow.account, format!("workflow `{}`", flow.workflow))
        {
            return Err(Error::invalid(format!(
                "workflow `{}` would have service account `{}`, which is {other}'s: rename the workflow",
                flow.workflow, flow.account
            )));
        }
    }
    for service in services {
        let function = service.function.as_str();
        if let Some(other) = names.insert(&service.name, function) {
            return Err(Error::invalid(format!(
                "functions `{other}` and `{function}` would both be Cloud Run service `{}`: rename one",
                service.name
            )));
        }
        if let Some(other) = accounts.insert(&service.account, format!("function `{function}`")) {
            return Err(Error::invalid(format!(
                "function `{function}` would have service account `{}`, which is {other}'s: rename the function",
                service.account
            )));
        }
    }
    Ok(())
}

/// Cloud Scheduler reads unix-cron: `*`, ranges, steps, lists and the
/// names of months and days, but not croner's `L`, `W`, `#` or `?`.
fn check_cron(function: &str, cron: &str) -> Result<(), Error> {
    let refused = |what: &str| {
        Error::invalid(format!(
            "function `{function}`: cron `{cron}` uses `{what}`, which Cloud Scheduler's unix-cron does not have"
        ))
    };
    for field in cron.split_whitespace() {
        if let Some(c) = field.chars().find(|c| matches!(c, '#' | '?')) {
            return Err(refused(&c.to_string()));
        }
        for part in field.split([',', '-', '/']) {
            let part = part.to_ascii_uppercase();
            let Some(body) = part.strip_suffix(['L', 'W']) else {
                continue;
            };
            if body.is_empty() || body == "L" || body.chars().all(|c| c.is_ascii_digit()) {
                return Err(refused(&part));
            }
        }
    }
    Ok(())
}

/// Pub/Sub's rule for topic and subscription ids: 3 to 255 characters,
/// a letter first, then letters, digits and `-_.~+%`, never `goog` first.
fn check_pubsub_names(messaging: &Messaging) -> Result<(), Error> {
    let valid = |id: &str| {
        (3..=255).contains(&id.len())
            && id.starts_with(|c: char| c.is_ascii_alphabetic())
            && !id.to_ascii_lowercase().starts_with("goog")
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.~+%".contains(c))
    };
    let names = messaging.topics.iter().map(|t| ("topic", t)).chain(
        messaging
            .subscriptions
            .iter()
            .map(|s| ("subscription", &s.name)),
    );
    for (kind, name) in names {
        if !valid(name) {
            return Err(Error::invalid(format!(
                "Pub/Sub {kind} `{name}`: ids are 3 to 255 letters, digits and `-_.~+%`, starting with a letter (not `goog`)"
            )));
        }
    }
    Ok(())
}

/// Cloud Run's IAM checks Google-signed identity tokens only; a JWT from
/// another issuer would have to be checked in the handler, which cloudfn
/// does not do yet.
fn jwt_unsupported(function: &str) -> Error {
    Error::invalid(format!(
        "function `{function}` accepts JSON Web Tokens, which cloudfn does not check on Google Cloud yet: declare it public (and put API Gateway or IAP in front) or private (callers with roles/run.invoker)"
    ))
}

#[cfg(test)]
mod tests {
    use cloudfn_core::{App, Function, Method};

    use super::*;
    use crate::deploy::tests::every_trigger;

    fn page_app(function: Function) -> AppSpec {
        App::new("all").function(function).spec()
    }

    async fn page(
        _: cloudfn_core::HttpRequest,
        _: cloudfn_core::Context,
    ) -> Result<cloudfn_core::HttpResponse, Error> {
        Ok(cloudfn_core::HttpResponse::new(200))
    }

    async fn tick(_: cloudfn_core::ScheduledTick, _: cloudfn_core::Context) -> Result<(), Error> {
        Ok(())
    }

    #[test]
    fn every_function_is_a_service_of_its_own_with_its_own_account() {
        let plan = plan(&every_trigger().spec(), "all").unwrap();
        let names: Vec<_> = plan.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "all-checkout",
                "all-status",
                "all-charge",
                "all-ledger",
                "all-notify",
                "all-report",
                "all-thumbs"
            ]
        );
        assert!(plan.services.iter().all(|s| s.account == s.name));
        assert_eq!(plan.invoker, "all-invoker");
        let checkout = plan.service("checkout").unwrap();
        assert_eq!(
            (checkout.ingress, checkout.invokers),
            (Ingress::All, Invokers::Public)
        );
        let status = plan.service("status").unwrap();
        assert_eq!(
            (status.ingress, status.invokers),
            (Ingress::All, Invokers::Private)
        );
        for event in ["charge", "ledger", "notify", "report", "thumbs"] {
            let service = plan.service(event).unwrap();
            assert_eq!(
                (service.ingress, service.invokers),
                (Ingress::Internal, Invokers::App),
                "{event}"
            );
        }
    }

    #[test]
    fn timeouts_leave_room_to_report_and_for_attempts_retried_in_the_invocation() {
        let plan = plan(&every_trigger().spec(), "all").unwrap();
        let timeout = |f: &str| plan.service(f).unwrap().timeout.as_secs();
        assert_eq!(timeout("checkout"), 40);
        // A push consumer's request outlasts its subscription's ack deadline.
        let orders = plan
            .messaging
            .subscriptions
            .iter()
            .find(|s| s.queue == "orders")
            .unwrap();
        assert!(timeout("charge") >= orders.ack_deadline.as_secs());
        // Three attempts of 30 s, waits of 1 s and 2 s, and the margin.
        assert_eq!(timeout("report"), 30 * 3 + 1 + 2 + 10);
        assert_eq!(timeout("thumbs"), 103);
        let report = &plan.jobs[0];
        assert_eq!(report.attempt_deadline, Duration::from_secs(103));

        let long = page_app(
            Function::schedule("nightly", "0 2 * * *", tick)
                .timeout(Duration::from_secs(3000))
                .retry(cloudfn_core::RetryPolicy::new(5)),
        );
        let plan = super::plan(&long, "all").unwrap();
        assert_eq!(plan.services[0].timeout, MAX_REQUEST_TIMEOUT);
        assert_eq!(plan.jobs[0].attempt_deadline, Duration::from_secs(1800));
    }

    #[test]
    fn a_concurrency_limit_bounds_the_whole_service() {
        let spec = page_app(Function::http("api", Method::Get, "/", page).max_concurrency(5));
        let service = &plan(&spec, "all").unwrap().services[0];
        assert_eq!(service.container_concurrency, Some(5));
        assert_eq!(service.max_scale, Some(1));
        let spec = page_app(Function::http("api", Method::Get, "/", page).max_concurrency(2500));
        let service = &plan(&spec, "all").unwrap().services[0];
        assert_eq!(service.container_concurrency, Some(1000));
        assert_eq!(service.max_scale, Some(3));
        let plan = plan(&every_trigger().spec(), "all").unwrap();
        assert_eq!(plan.service("charge").unwrap().container_concurrency, None);
        assert_eq!(plan.service("charge").unwrap().max_scale, None);
    }

    #[test]
    fn schedules_become_jobs_and_storage_functions_triggers() {
        let plan = plan(&every_trigger().spec(), "all").unwrap();
        assert_eq!(
            plan.jobs,
            [Job {
                name: "all-report".into(),
                function: "report".into(),
                service: "all-report".into(),
                cron: "*/5 * * * 1-5".into(),
                attempt_deadline: Duration::from_secs(103),
            }]
        );
        assert_eq!(
            plan.triggers,
            [EventTrigger {
                name: "all-thumbs-finalized".into(),
                function: "thumbs".into(),
                service: "all-thumbs".into(),
                bucket: "uploads".into(),
                event_type: "google.cloud.storage.object.v1.finalized",
            }]
        );
        assert_eq!(plan.buckets[0].id(), "all-uploads-${PROJECT}");

        async fn changed(
            _: cloudfn_core::StorageEvent,
            _: cloudfn_core::Context,
        ) -> Result<(), Error> {
            Ok(())
        }
        let both = page_app(Function::storage(
            "sweep",
            "uploads",
            [StorageEventKind::Deleted, StorageEventKind::Created],
            changed,
        ));
        let types: Vec<_> = super::plan(&both, "all")
            .unwrap()
            .triggers
            .iter()
            .map(|t| (t.name.clone(), t.event_type))
            .collect();
        assert_eq!(
            types,
            [
                ("all-sweep-deleted".into(), OBJECT_DELETED),
                ("all-sweep-finalized".into(), OBJECT_FINALIZED)
            ]
        );
    }

    #[test]
    fn what_google_cloud_cannot_take_is_refused_by_name() {
        let message = |spec: AppSpec, prefix: &str| {
            plan(&spec, prefix)
                .expect_err("refused")
                .message()
                .to_owned()
        };
        let jwt = page_app(
            Function::http("me", Method::Get, "/me", page)
                .jwt("https://auth.example.com/", ["api"]),
        );
        assert!(message(jwt, "all").contains("`me`"));
        let long = page_app(Function::http(
            "a-function-with-a-name-far-too-long-for-cloud-run",
            Method::Get,
            "/",
            page,
        ));
        let said = message(long, "all");
        assert!(
            said.contains("`a-function-with") && said.contains("49"),
            "{said}"
        );
        let digit = page_app(Function::http("api", Method::Get, "/", page));
        assert!(message(digit, "2024-shop").contains("`api`"));
        let twins = App::new("all")
            .function(Function::http("Orders", Method::Get, "/a", page))
            .function(Function::http("orders", Method::Get, "/b", page))
            .spec();
        let said = message(twins, "all");
        assert!(
            said.contains("`Orders`") && said.contains("`orders`"),
            "{said}"
        );
        let invoker = page_app(Function::http("invoker", Method::Get, "/", page));
        assert!(message(invoker, "all").contains("invoker"));
        for cron in [
            "0 0 L * *",
            "0 0 15W * *",
            "0 0 * * 5#3",
            "0 0 ? * 1",
            "0 0 * * 5L",
        ] {
            let spec = page_app(Function::schedule("tick", cron, tick));
            let said = message(spec, "all");
            assert!(said.contains("`tick`") && said.contains(cron), "{said}");
        }
        let named = page_app(Function::schedule("tick", "0 0 * JUL MON-FRI", tick));
        assert!(
            plan(&named, "all").is_ok(),
            "month and day names are unix-cron"
        );
    }
}
