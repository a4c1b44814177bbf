//! The `hello` example as Cloud Run runs it with the `gcp` feature: a real
//! process started with `PORT`, `FUNCTION_TARGET` and `K_SERVICE`, serving
//! its function, logging JSON lines Cloud Logging reads, and stopping on
//! SIGTERM; a target the app lacks stops it at once, naming its functions.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::support::example_binary;

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// `hello` started as Cloud Run starts a container, its stdout piped.
fn start(target: &str, port: u16) -> std::process::Child {
    Command::new(example_binary("hello"))
        .env("PORT", port.to_string())
        .env("FUNCTION_TARGET", target)
        .env("K_SERVICE", "hello")
        .env("GOOGLE_CLOUD_PROJECT", "shop-dev")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("FUNCTIONS_CUSTOMHANDLER_PORT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn hello_serves_its_function_logs_json_and_stops_on_sigterm() {
    let port = free_port();
    let mut child = start("hello", port);
    let url = format!("http://127.0.0.1:{port}/hello?name=ada");
    let http = crate::support::client();
    let started = Instant::now();
    let response = loop {
        match http.get(&url).send().await {
            Ok(response) => break response,
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("hello did not listen on 0.0.0.0:{port}: {e}"),
        }
    };
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "hello, ada");

    // The first line on stdout: the start, as Cloud Logging reads it.
    let stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let line: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert_eq!(line["severity"], "INFO", "{line}");
    assert_eq!(line["message"], "serving as a Cloud Run function", "{line}");
    assert_eq!(line["function"], "hello", "{line}");

    // Cloud Run stops a container with SIGTERM and kills it 10 s later.
    let signalled = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "hello exited with {status} after SIGTERM");
}

#[tokio::test]
async fn a_target_the_app_lacks_stops_the_process_naming_its_functions() {
    let child = start("goodbye", free_port());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("goodbye") && said.contains("hello") && said.contains("FUNCTION_TARGET"),
        "{said}"
    );
}
