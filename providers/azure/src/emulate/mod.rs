//! The Functions host's side of the custom-handler protocol, on this
//! machine: what `cargo cloudfn dev --cloud azure` runs and the contract
//! suite's Azure column runs through.
//!
//! [`HostSimulator`] renders the app's `host.json` and `function.json`
//! files and reads its functions from them, as the host does; creates the
//! app's queues and tables in a Storage account (Azurite); starts the real
//! handler binary with `FUNCTIONS_CUSTOMHANDLER_PORT` and waits for it to
//! answer `GET /`; and then serves it the host's invocations:
//!
//! - HTTP on a port of its own, routed by each `httpTrigger`'s route and
//!   methods, in the wrapped form, or forwarded as sent when `host.json`
//!   says so;
//! - Storage queue messages, received, posted, deleted on a 2xx answer,
//!   made visible again after `visibilityTimeout` otherwise and moved to
//!   `<queue>-poison` after `maxDequeueCount` deliveries;
//! - Service Bus topics, for which no emulator runs here: the simulator
//!   answers Service Bus' REST send (checking the shared access signature)
//!   and fans each message out over Storage queues, one per subscription,
//!   delivered as `serviceBusTrigger` invocations;
//! - timers, on their NCRONTAB schedules.
//!
//! Event Grid (storage functions) is not simulated.

mod bus;
mod consumers;
mod front;
mod payload;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use cloudfn_core::{AppSpec, Error, conventions};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::client::{StorageAccount, StorageQueues, TableStore};

pub use payload::{BusDelivery, HttpCall, QueueDelivery};

/// What to run.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// The app.
    pub spec: AppSpec,
    /// The handler binary.
    pub binary: PathBuf,
    /// The Storage account (Azurite's) as a connection string: the host's
    /// and the app's.
    pub storage: String,
    /// Put before every queue and table name, so that apps and runs side
    /// by side keep apart.
    pub prefix: String,
    /// More environment for the handler.
    pub env: Vec<(String, String)>,
    /// The port the HTTP functions answer on (0: any free one).
    pub http_port: u16,
}

impl DevOptions {
    /// Options for `spec` served by `binary` on the account of `storage`.
    pub fn new(spec: AppSpec, binary: impl Into<PathBuf>, storage: impl Into<String>) -> Self {
        Self {
            prefix: spec.name.clone(),
            spec,
            binary: binary.into(),
            storage: storage.into(),
            env: Vec::new(),
            http_port: 0,
        }
    }
}

/// One function as its `function.json` declares it.
#[derive(Debug, Clone)]
pub(crate) struct Declared {
    pub(crate) name: String,
    /// The trigger binding, `%setting%`s resolved.
    pub(crate) trigger: serde_json::Map<String, Value>,
}

impl Declared {
    pub(crate) fn kind(&self) -> &str {
        self.trigger
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub(crate) fn field(&self, name: &str) -> &str {
        self.trigger
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// What the host read from `host.json`.
#[derive(Debug, Clone)]
pub(crate) struct HostSettings {
    pub(crate) forwarding: bool,
    pub(crate) batch_size: u8,
    pub(crate) max_dequeue_count: u32,
    pub(crate) visibility_timeout: Duration,
}

/// The app under the simulated host. Stop it with [`HostSimulator::stop`].
pub struct HostSimulator {
    http_url: String,
    queues: StorageQueues,
    /// Neutral queue name → physical, for the app's queues and watchers.
    names: Arc<Mutex<BTreeMap<String, String>>>,
    bus: Arc<bus::Bus>,
    prefix: String,
    child: tokio::process::Child,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl HostSimulator {
    /// Renders and reads the function app, makes its queues and tables,
    /// starts the handler and serves it the host's invocations.
    pub async fn start(options: DevOptions) -> Result<Self, Error> {
        let spec = &crate::workflows::hosted_spec(&options.spec)?;
        crate::validate(spec)?;
        let account = StorageAccount::from_connection_string(&options.storage)?;
        let queues = StorageQueues::new(&account).as_given();
        let settings = crate::deploy::app_settings(spec, &options.prefix);
        let dir = tempfile::tempdir()
            .map_err(|e| Error::unavailable(format!("cannot make a folder for the app: {e}")))?;
        crate::deploy::write_app_files(spec, dir.path())?;
        let (host, functions) = read_app(dir.path(), &settings)?;

        let names: BTreeMap<String, String> = crate::names::queues(spec)
            .into_iter()
            .map(|q| {
                let physical = settings[&crate::names::queue_variable(&q)].clone();
                (q, physical)
            })
            .collect();
        for physical in names.values() {
            queues.create(physical).await?;
        }
        let tables = TableStore::new(&account).as_given();
        for store in &spec.stores {
            tables
                .create_table(&settings[&crate::names::table_variable(&store.name)])
                .await?;
        }

        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        let bus = bus::Bus::new(queues.clone(), &functions);
        let (bus_url, task) = bus.clone().serve(stop.clone()).await?;
        tasks.push(task);

        let port = cloudfn_server::dev::free_port().await?;
        // The handler runs in the app's folder, as under the host.
        let binary = std::path::absolute(&options.binary).map_err(|e| {
            Error::unavailable(format!("no path to {}: {e}", options.binary.display()))
        })?;
        let mut command = tokio::process::Command::new(&binary);
        command
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env(crate::names::STORAGE_CONNECTION, &options.storage)
            .env(
                crate::names::SERVICE_BUS_CONNECTION,
                bus.connection_string(&bus_url),
            )
            .envs(&settings)
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir.path())
            .kill_on_drop(true);
        let child = command.spawn().map_err(|e| {
            Error::unavailable(format!("cannot start {}: {e}", options.binary.display()))
        })?;
        let handler = format!("http://127.0.0.1:{port}");
        crate::client::install_tls();
        let http = reqwest::Client::new();
        // The host polls `GET /` until any answer comes, for at most its
        // `initializationTimeout`.
        cloudfn_server::dev::wait_answering(
            &http,
            &handler,
            "the handler",
            Duration::from_secs(30),
        )
        .await?;

        let context = Arc::new(consumers::Host {
            http: http.clone(),
            handler: handler.clone(),
            queues: queues.clone(),
            settings: host.clone(),
            spec: spec.clone(),
        });
        for function in &functions {
            match function.kind() {
                "queueTrigger" => tasks.push(tokio::spawn(
                    context
                        .clone()
                        .consume_queue(function.clone(), stop.clone()),
                )),
                "serviceBusTrigger" => tasks.push(tokio::spawn(
                    context
                        .clone()
                        .consume_subscription(function.clone(), stop.clone()),
                )),
                "timerTrigger" => tasks.push(tokio::spawn(
                    context.clone().run_timer(function.clone(), stop.clone()),
                )),
                _ => {}
            }
        }
        let (http_url, task) = front::Front::new(context, &functions, host.forwarding)?
            .serve(options.http_port, stop.clone())
            .await?;
        tasks.push(task);
        Ok(Self {
            http_url,
            queues,
            names: Arc::new(Mutex::new(names)),
            bus,
            prefix: options.prefix,
            child,
            stop,
            tasks,
            _dir: dir,
        })
    }

    /// Where the app's HTTP functions answer.
    pub fn http_url(&self) -> &str {
        &self.http_url
    }

    /// The Storage queues, by physical name ([`HostSimulator::queue_name`]).
    pub fn queues(&self) -> &StorageQueues {
        &self.queues
    }

    /// The Storage queue of the app's (or a watcher's) neutral queue `queue`.
    pub fn queue_name(&self, queue: &str) -> Option<String> {
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(queue)
            .cloned()
    }

    /// Subscribes a new queue to neutral topic `topic`, as another app
    /// would subscribe, and returns its neutral name.
    pub async fn watch(&self, topic: &str) -> Result<String, Error> {
        let neutral = format!(
            "{topic}-watch-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        let physical = conventions::physical_name(&self.prefix, &neutral);
        self.queues.create(&physical).await?;
        self.bus
            .subscribe(&conventions::physical_name(&self.prefix, topic), &physical);
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(neutral.clone(), physical);
        Ok(neutral)
    }

    /// Stops serving and stops the handler.
    pub async fn stop(mut self) {
        self.stop.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        let _ = self.child.kill().await;
    }
}

/// Reads `host.json` and every `<function>/function.json` under `dir`,
/// resolving `%setting%`s with `settings`.
fn read_app(
    dir: &Path,
    settings: &BTreeMap<String, String>,
) -> Result<(HostSettings, Vec<Declared>), Error> {
    let read = |path: PathBuf| -> Result<Value, Error> {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::unavailable(format!("reading {}: {e}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::invalid(format!("{} is not JSON: {e}", path.display())))
    };
    let host = read(dir.join("host.json"))?;
    let queues = &host["extensions"]["queues"];
    let visibility = queues["visibilityTimeout"]
        .as_str()
        .and_then(|t| {
            let parts: Vec<u64> = t.split(':').filter_map(|p| p.parse().ok()).collect();
            (parts.len() == 3)
                .then(|| Duration::from_secs(parts[0] * 3600 + parts[1] * 60 + parts[2]))
        })
        .unwrap_or_default();
    let settings_of_host = HostSettings {
        forwarding: host["customHandler"]["enableForwardingHttpRequest"]
            .as_bool()
            .unwrap_or(false),
        batch_size: queues["batchSize"].as_u64().unwrap_or(16).clamp(1, 32) as u8,
        max_dequeue_count: queues["maxDequeueCount"].as_u64().unwrap_or(5) as u32,
        visibility_timeout: visibility,
    };
    let mut functions = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::unavailable(format!("reading {}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let path = entry.path().join("function.json");
        if !path.exists() {
            continue;
        }
        let config = read(path)?;
        let trigger = config["bindings"]
            .as_array()
            .and_then(|b| b.iter().find(|b| b["direction"] == "in"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let trigger = trigger
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => Value::String(resolve(&s, settings)),
                    other => other,
                };
                (k, v)
            })
            .collect();
        functions.push(Declared {
            name: entry.file_name().to_string_lossy().into_owned(),
            trigger,
        });
    }
    functions.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((settings_of_host, functions))
}

/// `%NAME%` replaced by setting `NAME`, as the host does in bindings.
fn resolve(value: &str, settings: &BTreeMap<String, String>) -> String {
    match value.strip_prefix('%').and_then(|v| v.strip_suffix('%')) {
        Some(name) => settings
            .get(name)
            .cloned()
            .unwrap_or_else(|| value.to_owned()),
        None => value.to_owned(),
    }
}
