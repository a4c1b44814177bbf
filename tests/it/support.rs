//! Starting apps and waiting for what they do.

use std::time::Duration;

use cloudfn::{
    App,
    local::{LocalRuntime, Running},
};

/// Starts `app` on a free loopback port.
pub async fn start(app: App) -> Running {
    LocalRuntime::new(app)
        .port(0)
        .shutdown_grace(Duration::from_secs(10))
        .start()
        .await
        .expect("app starts")
}

/// Polls `done` until it holds; fails the test, saying `what`, if it never
/// does (a guard against hanging, not a measure of speed).
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            tokio::time::Instant::now() < give_up,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// LocalStack's URL, when the test command started it. Without it the AWS
/// tests skip, loudly, unless `TEST_INTEGRATION=1` says they must run.
#[cfg(feature = "aws")]
pub fn localstack() -> Option<String> {
    match std::env::var("CLOUDFN_TEST_LOCALSTACK_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("TEST_INTEGRATION").as_deref() == Ok("1") => {
            panic!("TEST_INTEGRATION=1 but CLOUDFN_TEST_LOCALSTACK_URL is unset: run scripts/test")
        }
        _ => {
            eprintln!("SKIPPED: LocalStack is not running (scripts/test starts it)");
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
