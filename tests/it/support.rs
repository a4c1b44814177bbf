//! Starting apps and waiting for what they do.

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use cloudfn::{
    App,
    local::{LocalRuntime, Running},
};

/// Starts `app` on a free loopback port, its stores in memory.
pub async fn start(app: App) -> Running {
    LocalRuntime::new(app)
        .port(0)
        .memory_stores()
        .shutdown_grace(Duration::from_secs(10))
        .start()
        .await
        .expect("app starts")
}

/// Polls `done` until it holds; fails the test, saying `what`, if it never
/// does (a guard against hanging, not a measure of speed).
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    eventually_async(what, || std::future::ready(done())).await
}

/// [`eventually`], for a check that awaits (a store read).
pub async fn eventually_async<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < give_up,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn client() -> reqwest::Client {
    // With the azure or gcp feature, reqwest has rustls and no provider of
    // its own.
    #[cfg(feature = "azure")]
    cloudfn::azure::client::install_tls();
    #[cfg(feature = "gcp")]
    cloudfn::gcp::client::install_tls();
    reqwest::Client::new()
}

/// LocalStack's URL, when the test command started it. Without it the AWS
/// tests skip, loudly, unless `TEST_INTEGRATION=1` says they must run.
#[cfg(feature = "aws")]
pub fn localstack() -> Option<String> {
    emulator("CLOUDFN_TEST_LOCALSTACK_URL", "LocalStack")
}

/// moto's URL (DynamoDB), like [`localstack`].
#[cfg(feature = "aws")]
pub fn dynamodb() -> Option<String> {
    emulator("CLOUDFN_TEST_DYNAMODB_URL", "moto (DynamoDB)")
}

/// Azurite's account as a connection string (Queue and Table endpoints),
/// when the test command started it; like [`localstack`].
#[cfg(feature = "azure")]
pub fn azurite() -> Option<String> {
    let queue = emulator("CLOUDFN_TEST_AZURITE_QUEUE_URL", "Azurite")?;
    let table = emulator("CLOUDFN_TEST_AZURITE_TABLE_URL", "Azurite")?;
    let (name, key) = cloudfn::azure::client::DEVELOPMENT_ACCOUNT;
    Some(format!(
        "DefaultEndpointsProtocol=http;AccountName={name};AccountKey={key};QueueEndpoint={queue};TableEndpoint={table}"
    ))
}

/// The Pub/Sub and Firestore emulators' `HOST:PORT`s, when the test
/// command started them; like [`localstack`], except that a machine
/// without `gcloud` skips them even under `TEST_INTEGRATION=1` (the test
/// command says so loudly).
#[cfg(feature = "gcp")]
pub fn google_emulators() -> Option<(String, String)> {
    if std::env::var("CLOUDFN_TEST_NO_GCLOUD").as_deref() == Ok("1") {
        eprintln!("SKIPPED: no gcloud on this machine, so no Google emulators");
        return None;
    }
    let pubsub = emulator("CLOUDFN_TEST_PUBSUB_HOST", "the Pub/Sub emulator")?;
    let firestore = emulator("CLOUDFN_TEST_FIRESTORE_HOST", "the Firestore emulator")?;
    Some((pubsub, firestore))
}

#[cfg(any(feature = "aws", feature = "azure", feature = "gcp"))]
fn emulator(variable: &str, name: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("TEST_INTEGRATION").as_deref() == Ok("1") => {
            panic!("TEST_INTEGRATION=1 but {variable} is unset: run scripts/test")
        }
        _ => {
            eprintln!("SKIPPED: {name} is not running (scripts/test starts it)");
            None
        }
    }
}

/// The example `name` cargo built beside this test (with `--all-features`,
/// so with every cloud adapter).
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let binary = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        binary.exists(),
        "{} is missing: run the tests with --all-features",
        binary.display()
    );
    binary
}

/// Everything the `tracing` subscriber writes on this thread while it is
/// alive, as plain text (the local runtime's tasks run on the test's one
/// thread).
pub struct Logs {
    written: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    pub fn capture() -> Self {
        let written = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink(written.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        Self {
            written,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.written.lock().unwrap()).into_owned()
    }
}
