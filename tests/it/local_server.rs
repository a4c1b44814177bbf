//! The local HTTP server facing clients that misbehave, and its port.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use cloudfn::{
    App, Context, Error, Function, HttpRequest, HttpResponse, Method, local::LocalRuntime,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::support::example_binary;

/// How long a test waits for what it expects before it fails: a guard
/// against hanging, not a measure of speed.
const PATIENCE: Duration = Duration::from_secs(20);

fn upload_app() -> App {
    App::new("t").function(
        Function::http(
            "upload",
            Method::Post,
            "/upload",
            |req: HttpRequest, _: Context| async move {
                Ok::<_, Error>(HttpResponse::text(200, format!("{} bytes", req.body.len())))
            },
        )
        .max_body_bytes(1024),
    )
}

/// A client that sends its headers a byte at a time, and never finishes
/// them, is disconnected.
#[tokio::test]
async fn a_client_trickling_headers_is_disconnected() {
    let running = LocalRuntime::new(upload_app())
        .port(0)
        .header_read_timeout(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let (mut reader, mut writer) = TcpStream::connect(running.local_addr())
        .await
        .unwrap()
        .into_split();
    let trickle = tokio::spawn(async move {
        let _ = writer
            .write_all(b"POST /upload HTTP/1.1\r\nhost: x\r\n")
            .await;
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if writer.write_all(b"x").await.is_err() {
                break;
            }
        }
    });
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, reader.read_to_end(&mut answer)).await;
    trickle.abort();
    assert!(
        closed.is_ok(),
        "the connection is still open after {PATIENCE:?}"
    );
    running.shutdown().await;
}

/// A declared body over the limit is refused at once, before any of it is
/// sent: the client gets its 413 without writing a byte of the body.
#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_the_body() {
    let running = crate::support::start(upload_app()).await;
    let mut stream = TcpStream::connect(running.local_addr()).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 104857600\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer before the body after {PATIENCE:?}");
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    running.shutdown().await;
}

/// `PORT=not-a-port` stops the app with an error naming PORT, rather than
/// serving on 3000; the shop's banner does not print the bad value either.
#[test]
fn an_invalid_port_is_an_error() {
    for example in ["hello", "shop"] {
        let mut child = Command::new(example_binary(example))
            .env("PORT", "not-a-port")
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .env_remove("FUNCTIONS_CUSTOMHANDLER_PORT")
            .env_remove("K_SERVICE")
            .env_remove("FUNCTION_TARGET")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let give_up = std::time::Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if std::time::Instant::now() > give_up {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = child.wait_with_output().unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let status = status.unwrap_or_else(|| panic!("{example} kept running: {printed}"));
        assert!(!status.success(), "{example}: {printed}");
        assert!(printed.contains("PORT"), "{example}: {printed}");
        assert!(!printed.contains("127.0.0.1:"), "{example}: {printed}");
    }
}
