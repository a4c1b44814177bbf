//! Starting, running and stopping a whole app in one process.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use cloudfn_core::{
    App, Capabilities, Error, Queue, Store, Topic, Trigger, conventions,
    provider::{Services, StoreClient, Ticker},
    store::MemoryStore,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    broker::LocalBroker,
    consumer::Consumer,
    queue::QueueDepth,
    scheduler,
    store::FileStore,
    workflows::{EXECUTIONS_PATH, Workflows},
};

/// The largest workflow input `POST /_cloudfn/executions/{workflow}` takes.
const MAX_START_BYTES: usize = 256 * 1024;

/// The provider name handlers see in [`cloudfn_core::Context::provider`].
pub const PROVIDER: &str = "local";

/// What the local runtime can do. Storage triggers are refused when the app
/// starts: nothing here produces storage changes.
pub const CAPABILITIES: Capabilities = Capabilities {
    provider: PROVIDER,
    storage_triggers: false,
    ..Capabilities::UNLIMITED
};

/// Configures and starts the local runtime.
///
/// ```no_run
/// # async fn demo(app: cloudfn_core::App) -> Result<(), cloudfn_core::Error> {
/// let running = cloudfn_local::LocalRuntime::new(app).port(0).start().await?;
/// println!("serving on {}", running.url());
/// let report = running.shutdown().await;
/// assert!(report.is_clean());
/// # Ok(()) }
/// ```
pub struct LocalRuntime {
    app: App,
    /// An invalid `PORT` is kept until [`LocalRuntime::start`] reports it,
    /// unless [`LocalRuntime::port`] or [`LocalRuntime::bind`] replace it.
    addr: Result<SocketAddr, Error>,
    grace: Duration,
    stores: Stores,
    header_read_timeout: Duration,
}

/// Where the runtime keeps the app's stores.
enum Stores {
    /// In a file under this folder, surviving restarts.
    File(PathBuf),
    /// In memory, gone when the runtime stops.
    Memory,
}

/// The variable naming the folder the local runtime keeps its stores in.
pub const DATA_DIR_VARIABLE: &str = "CLOUDFN_DATA_DIR";

impl LocalRuntime {
    /// The runtime for `app`, on [`address_from_env`] (127.0.0.1:`PORT`,
    /// 3000 when `PORT` is unset), waiting up to 30 s for in-flight work at
    /// shutdown and 30 s for a request's headers, keeping its stores in
    /// `$CLOUDFN_DATA_DIR` (else `.cloudfn/<app>` under the working folder).
    pub fn new(app: App) -> Self {
        let data_dir = std::env::var_os(DATA_DIR_VARIABLE)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".cloudfn").join(app.name()));
        Self {
            app,
            addr: address_from_env(),
            grace: Duration::from_secs(30),
            stores: Stores::File(data_dir),
            header_read_timeout: Duration::from_secs(30),
        }
    }

    /// Keeps the stores in a file under folder `dir`.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.stores = Stores::File(dir.into());
        self
    }

    /// Keeps the stores in memory, forgotten at shutdown (for tests).
    pub fn memory_stores(mut self) -> Self {
        self.stores = Stores::Memory;
        self
    }

    /// Listens on `port` instead (0 picks a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.addr = Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        self
    }

    /// Listens on `addr` instead.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addr = Ok(addr);
        self
    }

    /// How long a client may take to send a request's headers before it is
    /// disconnected.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long shutdown waits for in-flight invocations.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Validates the app, binds the HTTP port and starts every consumer and
    /// schedule.
    pub async fn start(self) -> Result<Running, Error> {
        let addr = self.addr?;
        self.app.validate_for(&CAPABILITIES)?;
        let broker = LocalBroker::for_app(&self.app);
        let stores: Arc<dyn StoreClient> = match &self.stores {
            Stores::File(dir) => Arc::new(FileStore::open(dir)?),
            Stores::Memory => Arc::new(MemoryStore::new()),
        };
        let services = self.app.services(
            PROVIDER,
            Arc::new(broker.clone()),
            Arc::new(broker.clone()),
            stores,
        );
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let mut background = Vec::new();
        let (workflows, services) = if self.app.workflows().is_empty() {
            (None, services)
        } else {
            let (workflows, services) =
                Workflows::new(&self.app, services, shutdown.clone(), tracker.clone());
            let resumed = workflows.resume().await?;
            if resumed > 0 {
                tracing::info!(resumed, "resuming unfinished workflow executions");
            }
            (Some(workflows), services)
        };

        for function in self.app.functions() {
            if let Trigger::Schedule { cron } = function.trigger() {
                background.push(tokio::spawn(scheduler::run(
                    function.clone(),
                    Ticker::new(cron.parse()?),
                    services.clone(),
                    shutdown.clone(),
                    tracker.clone(),
                )));
            }
            if let Some(queue) = conventions::consumed_queue(function.name(), function.trigger()) {
                let consumer = Consumer {
                    function: function.clone(),
                    queue: broker.queue(&queue),
                    broker: broker.clone(),
                    services: services.clone(),
                };
                background.push(tokio::spawn(
                    consumer.run(shutdown.clone(), tracker.clone()),
                ));
            }
        }

        let routed = Arc::new(cloudfn_server::Routed {
            router: self.app.router()?,
            services: services.clone(),
            max_body_bytes: self
                .app
                .functions()
                .iter()
                .map(|f| f.policy().max_body_bytes)
                .max()
                .unwrap_or(0),
        });
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            Error::unavailable(format!("cannot listen on {addr}: {e}")).with_source(e)
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::internal(format!("listener has no address: {e}")))?;
        let server = tokio::spawn(cloudfn_server::serve(
            listener,
            self.header_read_timeout,
            shutdown.clone(),
            move |request| {
                let routed = routed.clone();
                let workflows = workflows.clone();
                async move {
                    match workflows {
                        Some(workflows) if request.uri().path().starts_with(EXECUTIONS_PATH) => {
                            match cloudfn_server::read_request(request, MAX_START_BYTES).await {
                                Ok(request) => workflows.answer(request).await,
                                Err(error) => cloudfn_core::HttpResponse::from_error(&error),
                            }
                            .into_http()
                        }
                        _ => routed.handle(request).await,
                    }
                }
            },
        ));

        announce(&self.app, &format!("http://{addr}"));
        Ok(Running {
            app: self.app,
            addr,
            broker,
            services,
            shutdown,
            tracker,
            server,
            background,
            grace: self.grace,
        })
    }
}

/// The address [`LocalRuntime::new`] listens on: 127.0.0.1 and the port in
/// `PORT` (3000 when unset or empty). A `PORT` that is no port number is an
/// error naming it, never a silent 3000.
pub fn address_from_env() -> Result<SocketAddr, Error> {
    let port = std::env::var_os("PORT").map(|p| p.to_string_lossy().into_owned());
    let port = cloudfn_server::port_from("PORT", port.as_deref(), 3000)?;
    Ok(SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)))
}

/// A running app; drop it only through [`Running::shutdown`].
pub struct Running {
    app: App,
    addr: SocketAddr,
    broker: LocalBroker,
    services: Services,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    server: tokio::task::JoinHandle<()>,
    background: Vec<tokio::task::JoinHandle<()>>,
    grace: Duration,
}

/// What shutdown found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Invocations still running when the grace period ended.
    pub abandoned: usize,
    /// Queues that still hold messages, with how many.
    pub left_in_queues: BTreeMap<String, QueueDepth>,
}

impl ShutdownReport {
    /// Whether everything finished and every queue is empty.
    pub fn is_clean(&self) -> bool {
        self.abandoned == 0 && self.left_in_queues.is_empty()
    }
}

impl std::fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_clean() {
            return f.write_str("all work finished; every queue is empty");
        }
        if self.abandoned > 0 {
            write!(
                f,
                "{} invocation(s) abandoned after the grace period; ",
                self.abandoned
            )?;
        }
        f.write_str("left in queues:")?;
        for (name, depth) in &self.left_in_queues {
            write!(
                f,
                " {name}={} (ready {}, in flight {}, delayed {})",
                depth.total(),
                depth.ready,
                depth.in_flight,
                depth.delayed
            )?;
        }
        Ok(())
    }
}

impl Running {
    /// The address the HTTP server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://` + the address, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The app being served.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// The broker, to look into queues.
    pub fn broker(&self) -> &LocalBroker {
        &self.broker
    }

    /// A handle to send to queue `name` from outside any function.
    pub fn queue(&self, name: &str) -> Queue {
        self.services.queue(name)
    }

    /// A handle to publish to topic `name` from outside any function.
    pub fn topic(&self, name: &str) -> Topic {
        self.services.topic(name)
    }

    /// A handle on store `name` from outside any function.
    pub fn store(&self, name: &str) -> Store {
        self.services.store(name)
    }

    /// Stops taking work (HTTP requests, queue messages, schedule ticks) at
    /// once; the future it returns waits up to the grace period for
    /// invocations in flight and reports what was left.
    pub fn shutdown(self) -> impl Future<Output = ShutdownReport> + Send {
        self.shutdown.cancel();
        self.finish()
    }

    async fn finish(self) -> ShutdownReport {
        for task in self.background {
            let _ = task.await;
        }
        self.tracker.close();
        let finished = tokio::time::timeout(self.grace, self.tracker.wait())
            .await
            .is_ok();
        let abandoned = if finished { 0 } else { self.tracker.len() };
        let _ = tokio::time::timeout(self.grace, self.server).await;
        let left_in_queues = self
            .broker
            .depths()
            .into_iter()
            .filter(|(_, depth)| depth.total() > 0)
            .collect();
        ShutdownReport {
            abandoned,
            left_in_queues,
        }
    }
}

/// Logs what the app serves: each HTTP route with its access (the local
/// runtime answers anyone, so it says which routes would be private
/// deployed), and each other trigger.
fn announce(app: &App, url: &str) {
    tracing::info!(app = %app.name(), url = %url, "local runtime started");
    for function in app.functions() {
        match function.trigger() {
            Trigger::Http { method, route } => {
                let access = &function.policy().access;
                let note = if access.is_public() {
                    "public".to_owned()
                } else {
                    format!("{access} when deployed; open here")
                };
                tracing::info!(function = %function.name(), "{method} {url}{route} ({note})");
            }
            other => tracing::info!(function = %function.name(), trigger = ?other, "listening"),
        }
    }
}
