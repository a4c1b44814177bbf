//! The contract every provider keeps, written once.
//!
//! Scenarios drive a [`Deployment`] — one app running on one provider — from
//! outside, as a user would: HTTP requests, messages sent to its queues,
//! what its functions report to the `observed` queue, what they publish, and
//! what they leave in a dead-letter queue. The apps ([`APPS`]) are the
//! contract app (`examples/contract`, one function per promise, scenarios in
//! [`scenarios`]) and the shop (`examples/shop`, scenarios in [`shop`]).
//! Each provider adds one small adapter that starts an app its real way
//! ([`local`]; [`aws`]: real bootstrap processes behind the Runtime API,
//! fed from LocalStack; [`azure`]: the real handler under a simulated
//! Functions host on Azurite; [`gcp`]: one real process per function, fed
//! from the Pub/Sub emulator). A scenario the provider's [`Capabilities`] rule out
//! is skipped, and says so in the table.
//!
//! The test prints a scenario × provider table and writes it to
//! `target/tmp/contract-table.md`, which the test command shows.

#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "azure")]
mod azure;
#[cfg(feature = "gcp-emulate")]
mod gcp;
mod local;
mod scenarios;
mod shop;

use std::{
    collections::HashMap,
    fmt::Write as _,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use cloudfn::{App, Capabilities, Message, OutgoingMessage};
use futures::{FutureExt, future::BoxFuture};

use crate::contract_app::Observation;

/// One provider running the contract app, as the suite reaches it.
#[async_trait]
pub trait Deployment: Send + Sync {
    /// What the provider can do; scenarios that need more are skipped.
    fn capabilities(&self) -> &Capabilities;
    /// The base URL of the app's HTTP functions.
    fn http_url(&self) -> String;
    /// Sends `messages` to queue `queue`, in order, from outside the app.
    async fn send(&self, queue: &str, messages: Vec<OutgoingMessage>);
    /// Takes what queue `queue` holds now (received and deleted).
    async fn receive(&self, queue: &str) -> Vec<Message>;
    /// Subscribes a new queue of the test's to topic `topic`, as another
    /// service would, and returns its name for [`Deployment::receive`].
    async fn watch(&self, topic: &str) -> String;
    /// Stops the app.
    async fn stop(self: Box<Self>);
}

/// What scenarios use: the deployment, an HTTP client, and what has been
/// received from each queue so far (scenarios run side by side, so each
/// reads the messages that concern it from one shared inbox).
pub struct Harness {
    deployment: Box<dyn Deployment>,
    http: reqwest::Client,
    inboxes: Mutex<HashMap<String, Vec<Message>>>,
    run: String,
}

impl Harness {
    fn new(deployment: Box<dyn Deployment>) -> Self {
        Self {
            deployment,
            http: crate::support::client(),
            inboxes: Mutex::default(),
            run: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
        }
    }

    /// A key unique to this run and scenario.
    pub fn key(&self, scenario: &str) -> String {
        format!("{scenario}-{}", self.run)
    }

    /// A request to the app's HTTP functions; `path` may carry a query.
    pub fn http(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.deployment.http_url()))
    }

    /// Sends JSON `bodies` to `queue`.
    pub async fn send_json<T: serde::Serialize>(&self, queue: &str, bodies: &[T]) {
        let messages = bodies
            .iter()
            .map(|b| OutgoingMessage::json(b).unwrap())
            .collect();
        self.deployment.send(queue, messages).await
    }

    /// Sends `messages` to `queue`.
    pub async fn send(&self, queue: &str, messages: Vec<OutgoingMessage>) {
        self.deployment.send(queue, messages).await
    }

    /// Waits until `found` finds what it looks for among the messages
    /// received from `queue` so far; fails the scenario, saying `what`, after
    /// `patience` (a guard against hanging, not a measure of speed).
    pub async fn wait_for<T>(
        &self,
        queue: &str,
        what: &str,
        patience: Duration,
        found: impl Fn(&[Message]) -> Option<T>,
    ) -> T {
        let give_up = tokio::time::Instant::now() + patience;
        loop {
            let received = self.deployment.receive(queue).await;
            {
                let mut inboxes = self.inboxes.lock().unwrap();
                let inbox = inboxes.entry(queue.to_owned()).or_default();
                inbox.extend(received);
                if let Some(result) = found(inbox) {
                    return result;
                }
            }
            assert!(
                tokio::time::Instant::now() < give_up,
                "never happened within {patience:?}: {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A queue of the test's that gets everything published to `topic`.
    pub async fn watch(&self, topic: &str) -> String {
        self.deployment.watch(topic).await
    }

    /// What the functions reported about `key` so far, in arrival order.
    pub async fn observations(&self, key: &str) -> Vec<Observation> {
        self.wait_for(
            crate::contract_app::OBSERVED,
            "a read",
            Duration::ZERO,
            |all| Some(observations_of(all, key)),
        )
        .await
    }

    /// Waits until `done` holds for what the functions reported about `key`,
    /// and returns those reports.
    pub async fn observe_until(
        &self,
        key: &str,
        patience: Duration,
        done: impl Fn(&[Observation]) -> bool,
    ) -> Vec<Observation> {
        self.wait_for(
            crate::contract_app::OBSERVED,
            &format!("the reports about `{key}`"),
            patience,
            |all| {
                let seen = observations_of(all, key);
                done(&seen).then_some(seen)
            },
        )
        .await
    }
}

/// The reports about `key`, in the order the functions made them (not the
/// order the `observed` queue, a standard one, happened to hand them out).
fn observations_of(messages: &[Message], key: &str) -> Vec<Observation> {
    let mut seen: Vec<Observation> = messages
        .iter()
        .filter_map(|m| serde_json::from_slice::<Observation>(&m.body).ok())
        .filter(|o| o.key == key)
        .collect();
    seen.sort_by_key(|o| o.at);
    seen
}

/// An app the suite runs, and how each provider starts it.
pub struct AppUnderTest {
    /// Its name, in resource names.
    pub name: &'static str,
    /// The app on a provider that can do what `Capabilities` say.
    pub app: fn(&Capabilities) -> App,
    /// The example that serves it, for providers that run real processes.
    pub example: &'static str,
    /// Environment for those processes (what `app` sets in code).
    pub env: &'static [(&'static str, &'static str)],
    /// The promises checked on it.
    pub scenarios: &'static [Scenario],
}

/// Every app the suite runs, in the table's order.
pub const APPS: &[AppUnderTest] = &[
    AppUnderTest {
        name: "contract",
        app: |caps| crate::contract_app::app_for(caps.fifo_queues),
        example: "contract",
        env: &[],
        scenarios: scenarios::ALL,
    },
    AppUnderTest {
        name: "shop",
        app: |_| crate::shop_app::app(crate::shop_app::Shop::new(0.0)),
        example: "shop",
        env: &[("SHOP_CHARGE_FAILURE_RATE", "0")],
        scenarios: shop::ALL,
    },
    AppUnderTest {
        name: "orchestrated",
        app: |_| {
            crate::shop_app::app(crate::shop_app::Shop::with_flow(
                0.0,
                crate::shop_app::Flow::Orchestrated,
            ))
        },
        example: "shop",
        env: &[
            ("SHOP_CHARGE_FAILURE_RATE", "0"),
            ("SHOP_FLOW", "orchestrated"),
        ],
        scenarios: shop::ORCHESTRATED,
    },
    AppUnderTest {
        name: "declining",
        app: |_| crate::shop_app::app(crate::shop_app::Shop::new(1.0)),
        example: "shop",
        env: &[("SHOP_CHARGE_FAILURE_RATE", "1")],
        scenarios: shop::DECLINING,
    },
];

impl AppUnderTest {
    /// The environment of its processes on a provider that can do what
    /// `caps` say: [`AppUnderTest::env`], and for the contract app
    /// without FIFO queues the switch that leaves its FIFO function out
    /// (as `app` does in this process), plus `RUST_LOG=warn`.
    pub fn env_for(&self, caps: &Capabilities) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if !caps.fifo_queues {
            env.push((
                crate::contract_app::FIFO_VARIABLE.to_owned(),
                "off".to_owned(),
            ));
        }
        env.push(("RUST_LOG".to_owned(), "warn".to_owned()));
        env
    }
}

fn all_scenarios() -> impl Iterator<Item = &'static Scenario> {
    APPS.iter().flat_map(|app| app.scenarios.iter())
}

/// One promise every provider keeps.
pub struct Scenario {
    /// What the table calls it.
    pub name: &'static str,
    /// `Err(why)` when the provider cannot do what the scenario needs.
    pub needs: fn(&Capabilities) -> Result<(), &'static str>,
    /// Drives the deployment; panics (an assertion) when the promise is broken.
    pub run: for<'a> fn(&'a Harness) -> BoxFuture<'a, ()>,
}

/// Needs nothing beyond what every provider has.
pub fn anywhere(_: &Capabilities) -> Result<(), &'static str> {
    Ok(())
}

#[derive(Debug, Clone)]
enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

impl Outcome {
    fn cell(&self) -> String {
        match self {
            Self::Passed => "pass".into(),
            Self::Failed(_) => "**FAIL**".into(),
            Self::Skipped(why) => format!("skipped: {why}"),
        }
    }
}

/// Every scenario of `scenarios` on `harness`, side by side; one
/// scenario's failure does not stop the others.
async fn run_all(harness: Arc<Harness>, scenarios: &'static [Scenario]) -> Vec<Outcome> {
    let runs = scenarios.iter().map(|scenario| {
        let harness = harness.clone();
        async move {
            if let Err(why) = (scenario.needs)(harness.deployment.capabilities()) {
                return Outcome::Skipped(why.to_owned());
            }
            let run = AssertUnwindSafe((scenario.run)(&harness)).catch_unwind();
            match tokio::time::timeout(Duration::from_secs(180), run).await {
                Ok(Ok(())) => Outcome::Passed,
                Ok(Err(panic)) => Outcome::Failed(
                    panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_else(|| "panicked".into()),
                ),
                Err(_) => Outcome::Failed("did not finish in 180 s".into()),
            }
        }
    });
    futures::future::join_all(runs).await
}

/// The scenario × provider table, in Markdown.
fn table(columns: &[(&str, Vec<Outcome>)]) -> String {
    let mut out = String::from("| scenario |");
    for (provider, _) in columns {
        let _ = write!(out, " {provider} |");
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(columns.len()));
    for (row, scenario) in all_scenarios().enumerate() {
        let _ = write!(out, "\n| {} |", scenario.name);
        for (_, outcomes) in columns {
            let _ = write!(out, " {} |", outcomes[row].cell());
        }
    }
    out.push('\n');
    out
}

/// A provider's adapter: starts one app, or says why it cannot run here.
type Start = fn(&'static AppUnderTest) -> BoxFuture<'static, Option<Box<dyn Deployment>>>;

/// Every provider this build has, with what it can do.
fn providers() -> Vec<(&'static str, &'static Capabilities, Start)> {
    let mut providers: Vec<(&'static str, &'static Capabilities, Start)> =
        vec![("local", &cloudfn::local::CAPABILITIES, |app| {
            async move {
                Some(Box::new(local::LocalDeployment::start(app).await) as Box<dyn Deployment>)
            }
            .boxed()
        })];
    #[cfg(feature = "aws")]
    providers.push(("aws", &cloudfn::aws::CAPABILITIES, |app| {
        async move {
            aws::AwsDeployment::start(app)
                .await
                .map(|d| Box::new(d) as Box<dyn Deployment>)
        }
        .boxed()
    }));
    #[cfg(feature = "azure")]
    providers.push(("azure", &cloudfn::azure::CAPABILITIES, |app| {
        async move {
            azure::AzureDeployment::start(app)
                .await
                .map(|d| Box::new(d) as Box<dyn Deployment>)
        }
        .boxed()
    }));
    #[cfg(feature = "gcp-emulate")]
    providers.push(("gcp", &cloudfn::gcp::CAPABILITIES, |app| {
        async move {
            gcp::GcpDeployment::start(app)
                .await
                .map(|d| Box::new(d) as Box<dyn Deployment>)
        }
        .boxed()
    }));
    providers
}

/// The scenarios of `app` on one provider.
async fn run_app(start: Start, caps: &Capabilities, app: &'static AppUnderTest) -> Vec<Outcome> {
    // An app none of whose scenarios the provider can run is not started.
    let unable: Vec<Outcome> = app
        .scenarios
        .iter()
        .filter_map(|s| (s.needs)(caps).err())
        .map(|why| Outcome::Skipped(why.to_owned()))
        .collect();
    if unable.len() == app.scenarios.len() {
        return unable;
    }
    let Some(deployment) = start(app).await else {
        let why = Outcome::Skipped("its emulator is not running".into());
        return vec![why; app.scenarios.len()];
    };
    let harness = Arc::new(Harness::new(deployment));
    let outcomes = run_all(harness.clone(), app.scenarios).await;
    if let Ok(harness) = Arc::try_unwrap(harness) {
        harness.deployment.stop().await;
    }
    outcomes
}

/// Starts every app on every provider this build has, runs every scenario
/// side by side, prints the table and fails if any scenario failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_provider_keeps_the_contract() {
    let runs = providers()
        .into_iter()
        .map(|(provider, caps, start)| async move {
            let apps = APPS.iter().map(|app| run_app(start, caps, app));
            let outcomes: Vec<Outcome> = futures::future::join_all(apps)
                .await
                .into_iter()
                .flatten()
                .collect();
            (provider, outcomes)
        });
    let columns = futures::future::join_all(runs).await;

    let mut failures = String::new();
    for (provider, outcomes) in &columns {
        for (scenario, outcome) in all_scenarios().zip(outcomes) {
            if let Outcome::Failed(why) = outcome {
                let _ = writeln!(failures, "- {provider} / {}: {why}", scenario.name);
            }
        }
    }
    // The test command prints this file last, so a failure's reason is at
    // the end of a long CI log rather than lost in the middle of it.
    let mut report = table(&columns);
    if !failures.is_empty() {
        let _ = write!(report, "\nfailed:\n{failures}");
    }
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("contract-table.md");
    std::fs::write(&path, &report).unwrap();
    println!("{report}");
    assert!(failures.is_empty(), "\nfailed:\n{failures}");
}
