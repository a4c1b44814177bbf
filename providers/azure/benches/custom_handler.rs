//! The custom-handler server against a bare hyper server doing the same
//! work, in one run, on loopback:
//!
//! - wrapped: the host's invocation payload for an HTTP trigger POSTed to
//!   `/hello`, read, the name taken from the request's URL, the `res`
//!   output written back (the peer does exactly that with `serde_json`
//!   values and nothing else);
//! - forwarded: `GET /hello?name=…` as an all-HTTP app receives it, a JSON
//!   greeting back.
//!
//! Then start-up to the first answered `GET /` (the host's readiness poll)
//! of the `hello` example built with the `azure` feature, when
//! `CLOUDFN_HELLO` names it (`scripts/bench-azure` builds it).
//!
//! cargo bench -p cloudfn-azure --bench custom_handler

use std::{
    convert::Infallible,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use cloudfn_core::{App, Context, Error, Function, HttpRequest, HttpResponse, Message, Method};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Connections driving each server at once.
const CONNECTIONS: usize = 32;
/// How long each contender is driven per round.
const ROUND: Duration = Duration::from_secs(2);
/// Rounds, alternating contenders; each round's ratio compares two
/// neighbouring runs, and the median of those is reported.
const ROUNDS: usize = 7;

async fn hello(req: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
    let name = req.query_param("name").unwrap_or_else(|| "world".into());
    Ok(HttpResponse::json(
        200,
        &json!({ "message": format!("hello, {name}") }),
    ))
}

async fn ignore(_: Message<Value>, _: Context) -> Result<(), Error> {
    Ok(())
}

/// `hello`, with a queue function beside it so that the host wraps HTTP
/// invocations (`wrapped`), or alone so that it forwards them.
fn app(wrapped: bool) -> App {
    let app = App::new("bench").function(Function::http("hello", Method::Get, "/hello", hello));
    if wrapped {
        app.function(Function::queue("ignore", "jobs", ignore))
    } else {
        app
    }
}

fn payload() -> Bytes {
    Bytes::from(
        json!({
            "Data": {"req": {
                "Url": "https://bench.azurewebsites.net/hello?name=ada",
                "Method": "GET",
                "Query": {"name": "ada"},
                "Headers": {"Accept": ["*/*"], "User-Agent": ["bench"]},
                "Params": {},
                "Identities": []
            }},
            "Metadata": {"Query": {"name": "ada"}, "Headers": {"Accept": "*/*"}, "name": "\"ada\"",
                         "sys": {"MethodName": "Functions.hello", "UtcNow": "2026-11-27T10:00:00Z", "RandGuid": "x"}}
        })
        .to_string(),
    )
}

/// The peer: hyper and serde_json alone, doing what the host needs.
async fn bare(request: http::Request<hyper::body::Incoming>) -> http::Response<Full<Bytes>> {
    let forwarded = request.method() == http::Method::GET;
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let name_of = |query: Option<&str>| {
        query
            .and_then(|q| {
                form_urlencoded(q)
                    .find(|(k, _)| k == "name")
                    .map(|(_, v)| v)
            })
            .unwrap_or_else(|| "world".into())
    };
    let greeting = |name: String| json!({ "message": format!("hello, {name}") }).to_string();
    let answer = if forwarded {
        greeting(name_of(parts.uri.query()))
    } else {
        let invocation: Value = serde_json::from_slice(&body).unwrap_or_default();
        let url = invocation["Data"]["req"]["Url"]
            .as_str()
            .unwrap_or_default();
        let query = url.split_once('?').map(|(_, q)| q);
        json!({
            "Outputs": {"res": {
                "statusCode": "200",
                "headers": {"content-type": "application/json"},
                "body": greeting(name_of(query)),
            }},
            "Logs": [],
            "ReturnValue": null
        })
        .to_string()
    };
    let mut response = http::Response::new(Full::new(Bytes::from(answer)));
    response.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn form_urlencoded(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

async fn serve_bare(listener: tokio::net::TcpListener, stop: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted.unwrap(),
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(|r| async { Ok::<_, Infallible>(bare(r).await) });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Drives `address` from [`CONNECTIONS`] keep-alive connections for
/// [`ROUND`]; requests answered per second.
async fn drive(address: std::net::SocketAddr, wrapped: bool) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + ROUND;
    let body = payload();
    let clients = (0..CONNECTIONS).map(|_| {
        let done = done.clone();
        let body = body.clone();
        tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(address).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .unwrap();
            tokio::spawn(connection);
            while Instant::now() < until {
                let request = if wrapped {
                    http::Request::post("/hello")
                        .header("content-type", "application/json")
                        .body(Full::new(body.clone()))
                } else {
                    http::Request::get("/hello?name=ada").body(Full::new(Bytes::new()))
                }
                .unwrap();
                let response = sender.send_request(request).await.unwrap();
                assert_eq!(response.status(), 200);
                let _ = response.into_body().collect().await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    let started = Instant::now();
    futures::future::join_all(clients).await;
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn measure<F: Future<Output = ()> + Send + 'static>(
    serve: impl FnOnce(tokio::net::TcpListener, CancellationToken) -> F,
    wrapped: bool,
) -> f64 {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve(listener, stop.clone()));
    let rate = drive(address, wrapped).await;
    stop.cancel();
    let _ = server.await;
    rate
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn throughput() {
    println!(
        "| mode | cloudfn-azure (median) | bare hyper (median) | ratio (median of {ROUNDS} rounds) | ratio range |\n|---|---|---|---|---|"
    );
    for wrapped in [true, false] {
        let (mut ours, mut peer, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let mine = measure(
                move |listener, stop| async move {
                    cloudfn_azure::serve_on(app(wrapped), listener, stop)
                        .await
                        .unwrap();
                },
                wrapped,
            )
            .await;
            let theirs = measure(serve_bare, wrapped).await;
            ours.push(mine);
            peer.push(theirs);
            ratios.push(mine / theirs);
        }
        let low = ratios.iter().cloned().fold(f64::MAX, f64::min);
        let high = ratios.iter().cloned().fold(0.0, f64::max);
        println!(
            "| {} | {:.0} req/s | {:.0} req/s | **{:.2}×** | {low:.2}–{high:.2} |",
            if wrapped {
                "wrapped (POST /hello, res output)"
            } else {
                "forwarded (GET /hello)"
            },
            median(ours),
            median(peer),
            median(ratios),
        );
    }
}

/// Exec to the first answered `GET /`, as the host polls it.
async fn start_up(binary: &str) {
    const STARTS: usize = 20;
    let mut times = Vec::new();
    for _ in 0..STARTS {
        let port = {
            let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
            l.local_addr().unwrap().port()
        };
        let started = Instant::now();
        let mut child = tokio::process::Command::new(binary)
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        loop {
            if let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .unwrap();
                tokio::spawn(connection);
                let request = http::Request::get("/")
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                if sender.send_request(request).await.is_ok() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        let _ = child.kill().await;
    }
    println!(
        "\nstart-up to the first answered GET / ({STARTS} starts): median {:.2} ms, max {:.2} ms",
        median(times.clone()),
        times.iter().cloned().fold(0.0, f64::max)
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        throughput().await;
        match std::env::var("CLOUDFN_HELLO") {
            Ok(binary) => start_up(&binary).await,
            Err(_) => println!(
                "\nstart-up: set CLOUDFN_HELLO to the hello example built with the azure feature"
            ),
        }
    });
}
