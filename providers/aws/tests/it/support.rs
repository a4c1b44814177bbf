//! Fixtures and in-process bootstraps.

use std::{path::PathBuf, process::Command, sync::OnceLock, time::Duration};

use cloudfn_aws::{emulate::RuntimeApiServer, runtime::RuntimeApi};
use cloudfn_core::App;
use serde_json::Value;

/// The real AWS payloads that ship with `aws_lambda_events`, found through
/// `cargo metadata` so they are read where cargo put the crate.
pub fn fixture(name: &str) -> Value {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // Only this platform's packages, which the build already fetched.
        let rustc = Command::new("rustc")
            .arg("-vV")
            .output()
            .expect("rustc runs");
        let host = String::from_utf8_lossy(&rustc.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
            .expect("rustc names its host");
        let out = Command::new(cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--offline",
                "--filter-platform",
                &host,
            ])
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .output()
            .expect("cargo metadata runs");
        assert!(
            out.status.success(),
            "cargo metadata: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
        let manifest = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "aws_lambda_events")
            .expect("aws_lambda_events is a dependency")["manifest_path"]
            .as_str()
            .unwrap()
            .to_owned();
        PathBuf::from(manifest)
            .parent()
            .unwrap()
            .join("src/fixtures")
    });
    let text = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// A real-shaped AWS payload kept with these tests (`tests/fixtures/`), for
/// events `aws_lambda_events` ships no example of.
pub fn own_fixture(name: &str) -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
    let text =
        std::fs::read(format!("{path}{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Starts a Runtime API server for `function` and the cloudfn loop serving
/// it in this process.
pub async fn bootstrap(app: App, function: &str) -> RuntimeApiServer {
    let server = RuntimeApiServer::start(function).await.unwrap();
    let api = RuntimeApi::new(&server.address());
    let name = function.to_owned();
    tokio::spawn(async move {
        let _ = cloudfn_aws::serve_on(app, &api, Some(&name)).await;
    });
    server
}

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// LocalStack's URL when the test command started it. Without it the test is
/// skipped loudly, unless `TEST_INTEGRATION=1` says it must run.
pub fn localstack() -> Option<String> {
    emulator("CLOUDFN_TEST_LOCALSTACK_URL", "LocalStack")
}

/// moto's URL (DynamoDB), like [`localstack`].
pub fn moto() -> Option<String> {
    emulator("CLOUDFN_TEST_DYNAMODB_URL", "moto")
}

fn emulator(variable: &str, name: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("TEST_INTEGRATION").as_deref() == Ok("1") => {
            panic!(
                "TEST_INTEGRATION=1 but {variable} is unset: run scripts/test, which starts {name}"
            )
        }
        _ => {
            eprintln!(
                "SKIPPED: {name} is not running (scripts/test starts it and sets {variable})"
            );
            None
        }
    }
}

/// SDK configuration for LocalStack at `url`.
pub async fn sdk_config(url: &str) -> aws_config::SdkConfig {
    cloudfn_aws::client::sdk_loader()
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .test_credentials()
        .load()
        .await
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}
