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
