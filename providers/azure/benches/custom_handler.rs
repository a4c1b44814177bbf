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
//! Each server runs alone on a thread of its own, whose CPU time per
//! request is reported beside the rates. Then, with criterion, the same
//! work without sockets: one invocation answered by
//! `CustomHandler::answer` against the peer's function, from a request in
//! memory to the response's bytes — the part of a request's cost that is
//! the adapter's, free of the loopback's noise.
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
const ROUND: Duration = Duration::from_millis(500);
/// Rounds, alternating contenders; each round's ratio compares two
/// neighbouring runs, and the median of those is reported.
const ROUNDS: usize = 21;

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
async fn bare<B>(request: http::Request<B>) -> http::Response<Full<Bytes>>
where
    B: hyper::body::Body<Data = Bytes>,
{
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
/// [`ROUND`]; requests answered per second, and in all.
async fn drive(address: std::net::SocketAddr, wrapped: bool) -> (f64, u64) {
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
    let done = done.load(Ordering::Relaxed);
    (done as f64 / started.elapsed().as_secs_f64(), done)
}

/// CPU time the thread `tid` of this process has run, from the
/// scheduler's own account (`schedstat`, in nanoseconds).
fn cpu_time(tid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).unwrap();
    let ns = stat.split_whitespace().next().unwrap().parse().unwrap();
    Duration::from_nanos(ns)
}

/// One contender's round: requests answered per second, and the server's
/// CPU time per request.
struct Round {
    rate: f64,
    cpu_per_request: Duration,
}

/// Runs `serve` alone on a thread of its own (a current-thread runtime)
/// while [`drive`] loads it, so that its CPU time is its own: what a
/// request costs the server, undisturbed by the client sharing the cores.
async fn measure<F: Future<Output = ()> + 'static>(
    name: &str,
    serve: impl FnOnce(tokio::net::TcpListener, CancellationToken) -> F + Send + 'static,
    wrapped: bool,
) -> Round {
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let address = std_listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let stopping = stop.clone();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    // Named, so that a profile tells the contenders apart.
    let server = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let thread = std::fs::read_link("/proc/thread-self").unwrap();
            let tid = thread.file_name().unwrap().to_string_lossy().into_owned();
            tid_tx.send(tid).unwrap();
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                    serve(listener, stopping).await;
                });
        })
        .unwrap();
    let tid = tid_rx.recv().unwrap();
    let before = cpu_time(&tid);
    let (rate, requests) = drive(address, wrapped).await;
    let used = cpu_time(&tid) - before;
    stop.cancel();
    tokio::task::spawn_blocking(move || server.join().unwrap())
        .await
        .unwrap();
    Round {
        rate,
        cpu_per_request: used / requests.max(1) as u32,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn throughput() {
    println!(
        "| mode | cloudfn-azure (median) | bare hyper (median) | throughput ratio (median of {ROUNDS}) | range | server CPU per request, cloudfn / hyper (medians) | CPU ratio, hyper / cloudfn (median of {ROUNDS}) | range |\n|---|---|---|---|---|---|---|---|"
    );
    for wrapped in [true, false] {
        let (mut ours, mut peer, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let (mut our_cpu, mut peer_cpu, mut cpu_ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let mine = measure(
                "cloudfn-azure",
                move |listener, stop| async move {
                    cloudfn_azure::serve_on(app(wrapped), listener, stop)
                        .await
                        .unwrap();
                },
                wrapped,
            )
            .await;
            let theirs = measure("bare-hyper", serve_bare, wrapped).await;
            ours.push(mine.rate);
            peer.push(theirs.rate);
            ratios.push(mine.rate / theirs.rate);
            let (mine, theirs) = (
                mine.cpu_per_request.as_secs_f64() * 1e6,
                theirs.cpu_per_request.as_secs_f64() * 1e6,
            );
            our_cpu.push(mine);
            peer_cpu.push(theirs);
            cpu_ratios.push(theirs / mine);
        }
        let range = |values: &[f64]| {
            let low = values.iter().cloned().fold(f64::MAX, f64::min);
            let high = values.iter().cloned().fold(0.0, f64::max);
            format!("{low:.2}–{high:.2}")
        };
        println!(
            "| {} | {:.0} req/s | {:.0} req/s | **{:.2}×** | {} | {:.1} µs / {:.1} µs | **{:.2}×** | {} |",
            if wrapped {
                "wrapped (POST /hello, res output)"
            } else {
                "forwarded (GET /hello)"
            },
            median(ours),
            median(peer),
            median(ratios.clone()),
            range(&ratios),
            median(our_cpu),
            median(peer_cpu),
            median(cpu_ratios.clone()),
            range(&cpu_ratios),
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

/// The request of `mode` in memory, as hyper would hand it over.
fn request(wrapped: bool, body: &Bytes) -> http::Request<Full<Bytes>> {
    if wrapped {
        http::Request::post("/hello")
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))
    } else {
        http::Request::get("/hello?name=ada").body(Full::new(Bytes::new()))
    }
    .unwrap()
}

/// One invocation without sockets: the adapter against the peer.
fn in_memory(runtime: &tokio::runtime::Runtime) {
    let mut criterion = criterion::Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let body = payload();
    for wrapped in [true, false] {
        let mode = if wrapped { "wrapped" } else { "forwarded" };
        let app = app(wrapped);
        let (services, requeue) = runtime.block_on(async { cloudfn_azure::services(&app) });
        let handler = cloudfn_azure::runtime::CustomHandler::new(&app, services, requeue).unwrap();
        let mut group = criterion.benchmark_group(format!("invocation/{mode}"));
        group.bench_function("cloudfn-azure", |b| {
            b.to_async(runtime)
                .iter(|| handler.answer(request(wrapped, &body)))
        });
        group.bench_function("bare hyper", |b| {
            b.to_async(runtime).iter(|| bare(request(wrapped, &body)))
        });
        group.finish();
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    in_memory(&runtime);
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
