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

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use cloudfn_bench_support::{
    Column, Load, ROUNDS, Ready, STARTS, client_runtime, drive, measure, median, range,
    serve_hyper, start_ups,
};
use cloudfn_core::{App, Context, Error, Function, HttpRequest, HttpResponse, Message, Method};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

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

/// [`drive`] with the request of `mode`, every answer a 200.
async fn drive_mode(address: SocketAddr, wrapped: bool) -> Load {
    let body = payload();
    drive(address, move || request(wrapped, &body), 200).await
}

async fn throughput() {
    println!(
        "| mode | cloudfn-azure (median) | bare hyper (median) | throughput ratio (median of {ROUNDS}) | range | server CPU per request, cloudfn / hyper (medians) | CPU ratio, hyper / cloudfn (median of {ROUNDS}) | range |\n|---|---|---|---|---|---|---|---|"
    );
    for wrapped in [true, false] {
        let (mut ours, mut peer) = (Column::default(), Column::default());
        for _ in 0..ROUNDS {
            let mine = measure(
                "cloudfn-azure",
                move |listener, stop| async move {
                    cloudfn_azure::serve_on(app(wrapped), listener, stop)
                        .await
                        .unwrap();
                },
                move |address| drive_mode(address, wrapped),
            )
            .await;
            let theirs = measure(
                "bare-hyper",
                |listener, stop| serve_hyper(listener, stop, bare),
                move |address| drive_mode(address, wrapped),
            )
            .await;
            ours.push(&mine);
            peer.push(&theirs);
        }
        let (ratios, cpu_ratios) = Column::against(&ours, &peer);
        println!(
            "| {} | {:.0} req/s | {:.0} req/s | **{:.2}×** | {} | {:.1} µs / {:.1} µs | **{:.2}×** | {} |",
            if wrapped {
                "wrapped (POST /hello, res output)"
            } else {
                "forwarded (GET /hello)"
            },
            median(ours.rates),
            median(peer.rates),
            median(ratios.clone()),
            range(&ratios),
            median(ours.cpu),
            median(peer.cpu),
            median(cpu_ratios.clone()),
            range(&cpu_ratios),
        );
    }
}

/// Exec to the first answered `GET /`, as the host polls it.
async fn start_up(binary: &str) {
    let (median, max) = start_ups(
        |port| {
            tokio::process::Command::new(binary)
                .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap()
        },
        || {
            http::Request::get("/")
                .body(Full::new(Bytes::new()))
                .unwrap()
        },
        Ready::AnyAnswer,
    )
    .await;
    println!(
        "\nstart-up to the first answered GET / ({STARTS} starts): median {median:.2} ms, max {max:.2} ms"
    );
}

/// The request of `mode`, as the host sends it over the socket and as
/// hyper would hand it over in memory.
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
    let runtime = client_runtime();
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
