//! Google's side of Cloud Run functions on this machine, over the Pub/Sub
//! emulator: what `cargo cloudfn dev --cloud gcp` runs and the contract
//! suite's GCP column runs through.
//!
//! [`DevProject`] makes the app's topics and subscriptions on the emulator
//! as the deployment declares them ([`crate::deploy::messaging`]: retry
//! policies, dead-letter policies, ordering); starts one process of the
//! app's binary per function with `FUNCTION_TARGET`, `PORT` and the
//! deployment's settings, as Cloud Run runs one service per function; and
//! then delivers to them:
//!
//! - Pub/Sub pushes, in the envelope Pub/Sub sends, from each push
//!   subscription (pulled from the emulator: its own pushes leave out the
//!   delivery attempt and the ordering key, see `push.rs`);
//! - Cloud Scheduler's calls, on each schedule function's cron;
//! - HTTP, on one address routed by the HTTP functions' methods and
//!   routes (`front.rs`).
//!
//! Cloud Storage events (Eventarc) are not simulated: no Storage emulator
//! runs here.

mod admin;
mod front;
mod inbox;
mod instances;
mod push;
mod scheduler;

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{Arc, Mutex},
};

use cloudfn_core::{
    AppSpec, Error, Message, OutgoingMessage, Trigger, conventions, provider::QueueClient,
};
use google_cloud_pubsub::client::Subscriber;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    client::{PubSub, anonymous},
    deploy::{self, Subscription},
    names,
};

use self::{admin::Admin, inbox::Inbox, instances::Instance};

/// The project the emulator is asked for when none is given.
pub const DEV_PROJECT: &str = "cloudfn-dev";

/// The region in Cloud Scheduler's job names.
const LOCATION: &str = "local";

/// What to run.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// The app.
    pub spec: AppSpec,
    /// The binary every function's process runs.
    pub binary: PathBuf,
    /// The Pub/Sub emulator, `HOST:PORT`.
    pub pubsub: String,
    /// The Firestore emulator, `HOST:PORT`, for apps with stores.
    pub firestore: Option<String>,
    /// The project (any name does on the emulators).
    pub project: String,
    /// Put before every topic, subscription and collection name, so that
    /// apps and runs side by side keep apart.
    pub prefix: String,
    /// More environment for every function.
    pub env: Vec<(String, String)>,
    /// The port the HTTP functions answer on (0: any free one).
    pub http_port: u16,
}

impl DevOptions {
    /// Options for `spec` served by `binary`, on the Pub/Sub emulator at
    /// `pubsub`.
    pub fn new(spec: AppSpec, binary: impl Into<PathBuf>, pubsub: impl Into<String>) -> Self {
        Self {
            prefix: spec.name.clone(),
            spec,
            binary: binary.into(),
            pubsub: pubsub.into(),
            firestore: None,
            project: DEV_PROJECT.to_owned(),
            env: Vec::new(),
            http_port: 0,
        }
    }
}

/// The app on the emulators. Stop it with [`DevProject::stop`].
pub struct DevProject {
    http_url: String,
    prefix: String,
    pubsub: PubSub,
    admin: Admin,
    subscriber: Subscriber,
    /// The app's queues by neutral name.
    queues: BTreeMap<String, Subscription>,
    /// Pull subscriptions the caller reads, by neutral name, opened on
    /// first read.
    inboxes: Mutex<HashMap<String, Arc<Inbox>>>,
    /// Subscriptions made by [`DevProject::watch`]: neutral name → id.
    watches: Mutex<BTreeMap<String, String>>,
    instances: Vec<Instance>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl DevProject {
    /// Makes the app's topics and subscriptions, starts its functions and
    /// delivers to them.
    pub async fn start(options: DevOptions) -> Result<Self, Error> {
        let spec = &options.spec;
        crate::validate(spec)?;
        crate::client::install_tls();
        let messaging = deploy::messaging(spec, &options.prefix);
        let admin = Admin::connect(&options.project, &options.pubsub).await?;
        for topic in &messaging.topics {
            admin.create_topic(topic).await?;
        }
        for subscription in &messaging.subscriptions {
            admin.create_subscription(subscription).await?;
        }

        let mut env: Vec<(String, String)> =
            deploy::settings(spec, &options.prefix, &options.project)
                .into_iter()
                .collect();
        env.push((
            names::PUBSUB_EMULATOR_VARIABLE.into(),
            options.pubsub.clone(),
        ));
        if let Some(firestore) = &options.firestore {
            env.push((names::FIRESTORE_EMULATOR_VARIABLE.into(), firestore.clone()));
        }
        env.extend(options.env.iter().cloned());
        let binary = std::path::absolute(&options.binary).map_err(|e| {
            Error::unavailable(format!("no path to {}: {e}", options.binary.display()))
        })?;
        let http = reqwest::Client::new();
        let mut urls = BTreeMap::new();
        let mut instances = Vec::new();
        for function in &spec.functions {
            let service = conventions::physical_name(&options.prefix, &function.name);
            let instance = Instance::start(&binary, &function.name, &service, &env, &http).await?;
            urls.insert(function.name.clone(), instance.url.clone());
            instances.push(instance);
        }

        let subscriber = Subscriber::builder()
            .with_endpoint(format!("http://{}", options.pubsub))
            .with_credentials(anonymous())
            .build()
            .await
            .map_err(|e| {
                Error::unavailable(format!("cannot set up the Pub/Sub subscriber: {e}"))
            })?;
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        for subscription in &messaging.subscriptions {
            let Some(consumer) = &subscription.consumer else {
                continue;
            };
            let endpoint = push::Endpoint {
                subscription: admin.subscription_path(&subscription.name),
                url: format!("{}/", urls[consumer]),
                deadline: subscription.ack_deadline,
                http: http.clone(),
            };
            tasks.push(tokio::spawn(endpoint.run(subscriber.clone(), stop.clone())));
        }
        let mut routes = Vec::new();
        for function in &spec.functions {
            match &function.trigger {
                Trigger::Http { method, route } => routes.push((
                    function.name.clone(),
                    *method,
                    route.clone(),
                    urls[&function.name].clone(),
                )),
                Trigger::Schedule { cron } => {
                    let job = scheduler::Job {
                        name: format!(
                            "projects/{}/locations/{LOCATION}/jobs/{}",
                            options.project,
                            conventions::physical_name(&options.prefix, &function.name)
                        ),
                        schedule: cron.parse()?,
                        url: urls[&function.name].clone(),
                        http: http.clone(),
                    };
                    tasks.push(tokio::spawn(job.run(stop.clone())));
                }
                Trigger::Storage { .. } => tracing::warn!(
                    function = %function.name,
                    "Cloud Storage events are not simulated: the function runs but gets none"
                ),
                // Called by the workflow's orchestrator at its own URL.
                Trigger::Queue { .. } | Trigger::Topic { .. } | Trigger::Step => {}
            }
        }
        let (http_url, task) = front::Front::new(&routes, http)?
            .serve(options.http_port, stop.clone())
            .await?;
        tasks.push(task);

        let pubsub = PubSub::connect(&options.project, Some(&options.pubsub))
            .await?
            .as_given();
        Ok(Self {
            http_url,
            prefix: options.prefix,
            pubsub,
            admin,
            subscriber,
            queues: messaging
                .subscriptions
                .into_iter()
                .map(|s| (s.queue.clone(), s))
                .collect(),
            inboxes: Mutex::default(),
            watches: Mutex::default(),
            instances,
            stop,
            tasks,
        })
    }

    /// Where the app's HTTP functions answer.
    pub fn http_url(&self) -> &str {
        &self.http_url
    }

    /// Sends `message` to the app's queue `queue`, as another service
    /// would; its message id.
    pub async fn send(&self, queue: &str, message: OutgoingMessage) -> Result<String, Error> {
        let subscription = self.queue(queue)?;
        if subscription.topic != conventions::physical_name(&self.prefix, queue) {
            return Err(Error::invalid(format!(
                "`{queue}` carries topic `{}` to one subscriber: publish to the topic",
                subscription.topic
            )));
        }
        self.pubsub.send(&subscription.topic, message).await
    }

    /// Takes what arrived on `queue` since the last take: one of the app's
    /// queues that no function consumes (a dead-letter queue), or a queue
    /// [`DevProject::watch`] made.
    pub async fn receive(&self, queue: &str) -> Result<Vec<Message>, Error> {
        let inbox = {
            let mut inboxes = self.inboxes.lock().unwrap_or_else(|p| p.into_inner());
            match inboxes.get(queue) {
                Some(inbox) => inbox.clone(),
                None => {
                    let subscription = self.pulled(queue)?;
                    let inbox = Arc::new(Inbox::open(
                        &self.subscriber,
                        &self.admin.subscription_path(&subscription),
                        queue,
                        self.stop.clone(),
                    ));
                    inboxes.insert(queue.to_owned(), inbox.clone());
                    inbox
                }
            }
        };
        Ok(inbox.take())
    }

    /// Subscribes a new queue to the app's topic `topic`, as another app
    /// would, and returns its name for [`DevProject::receive`].
    pub async fn watch(&self, topic: &str) -> Result<String, Error> {
        let neutral = format!(
            "{topic}-watch-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        let name = conventions::physical_name(&self.prefix, &neutral);
        self.admin
            .create_pull(&name, &conventions::physical_name(&self.prefix, topic))
            .await?;
        self.watches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(neutral.clone(), name);
        Ok(neutral)
    }

    /// Stops delivering and stops the functions.
    pub async fn stop(mut self) {
        self.stop.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        for instance in self.instances.drain(..) {
            instance.stop().await;
        }
    }

    fn queue(&self, queue: &str) -> Result<&Subscription, Error> {
        self.queues
            .get(queue)
            .ok_or_else(|| Error::not_found(format!("the app has no queue `{queue}`")))
    }

    /// The pull subscription of `queue`.
    fn pulled(&self, queue: &str) -> Result<String, Error> {
        if let Some(name) = self
            .watches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(queue)
        {
            return Ok(name.clone());
        }
        let subscription = self.queue(queue)?;
        match &subscription.consumer {
            None => Ok(subscription.name.clone()),
            Some(consumer) => Err(Error::invalid(format!(
                "`{queue}` is pushed to `{consumer}`: reading it would take its messages"
            ))),
        }
    }
}
